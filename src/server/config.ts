// Server configuration: one option table drives the command-line flags, the CONCORD_* environment variables,
// the JSON config file and the validation, so the four can never disagree about names, defaults or ranges.
//
// Precedence, per option: flag > environment > file > default. Every rejected value raises a ConfigError
// naming the field in the vocabulary of the source it came from (`--tick-ms`, `CONCORD_TICK_MS` or
// `config file x.json: tickMs`), the value (secrets are never echoed) and what is accepted.
//
// Bearer-token authorization (loadTokens/authorize) lives at the end of this file because the token file is
// part of the configuration; it is a separate concern and may move to its own module.

import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import type { Access, Permission, TokenEntry, TokenTable } from "../host/auth.js";
import type { AutoCompaction } from "../host/auto-compaction.js";
import { DEFAULT_LIMITS } from "../statemachine/limits.js";
import { peerAuthInput, peerAuthMode, peerAuthProblem, peerAuthWarnings } from "./peer-auth.js";

export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
  /** The field as its source spells it: `--tick-ms`, `CONCORD_TICK_MS`, `config file /x.json: tickMs`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = "ConfigError";
    this.field = field;
  }
}

export interface TlsFiles {
  /** PEM certificate chain file. */
  cert: string;
  /** PEM private key file. */
  key: string;
  /** PEM CA bundle used to verify the other side (required for peers: mutual TLS). */
  ca?: string;
}

export interface ListenAddress {
  /** Host name or IP address without IPv6 brackets. */
  host: string;
  port: number;
}

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
export type LogFormat = "json" | "pretty";

export interface ServerConfig {
  /** This member's id in the cluster, e.g. "n1". */
  name: string;
  /** Absolute path of the directory holding the WAL and the snapshots. */
  dataDir: string;
  /** Normalized ws(s)://host:port that clients use; the node listens on its host and port. */
  clientUrl: string;
  clientListen: ListenAddress;
  /** Normalized ws(s)://host:port for peers; the node listens on its host and port. */
  peerUrl: string;
  peerListen: ListenAddress;
  /** Every member's peer URL by name, this node included (invariant: initialCluster.get(name) === peerUrl). */
  initialCluster: Map<string, string>;
  /** Client URLs of the members that are known, this node included; used to tell clients where the leader is. */
  clientUrls: Map<string, string>;
  /** Identifies the cluster on every peer connection so that nodes of two clusters never talk. */
  clusterId: string;
  /** Shared secret checked on peer connections (in addition to, or instead of, mutual TLS). */
  peerSecret?: string;
  /** Lets members of a multi-member cluster run without a peer secret or mutual TLS (see peer-auth.ts). */
  insecurePeers: boolean;
  /** A new member joining an existing cluster: starts empty, without bootstrapping a configuration. */
  join: boolean;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /** Take a snapshot after this many applied entries since the last one... */
  snapshotEntries: number;
  /** ...or after this many bytes of entries, whichever comes first. */
  snapshotBytes: number;
  maxRequestBytes: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  /**
   * The storage quota this member establishes while it leads: past it the NO_SPACE alarm refuses writes that add
   * data. The quota in force is replicated state (statemachine/state-machine.ts), set through the log.
   */
  quotaBytes: number;
  /** The history compaction the member proposes while it leads (--auto-compaction-mode/-retention). */
  autoCompaction?: AutoCompaction;
  maxInflightPerConnection: number;
  maxConnections: number;
  tls: { client?: TlsFiles; peer?: TlsFiles };
  authTokensFile?: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** Storage recovery: truncate a corrupt WAL tail instead of refusing to start. */
  repair: boolean;
  /** false only for tests and benchmarks: acknowledged writes can be lost on a crash. */
  fsync: boolean;
  /** The config file that was read, if any. */
  configFile?: string;
}

// ---------------------------------------------------------------------------------------------------------
// The option table.

type OptionKind =
  | { type: "string"; pattern: RegExp; expect: string; secret?: boolean }
  | { type: "path"; mustExist: boolean; pem?: boolean }
  | { type: "int"; min: number; max: number; unit: string }
  | { type: "bytes"; min: number; max: number }
  | { type: "bool" }
  | { type: "enum"; choices: readonly string[] }
  | { type: "url" }
  | { type: "map" };

interface OptionSpec {
  /** camelCase key: the commander attribute name and the config file key. */
  key: string;
  /** Placeholder for the value in --help; absent for booleans. */
  arg?: string;
  help: string;
  kind: OptionKind;
  /** Shown in --help and used when no source gives a value; absent for required or derived options. */
  default?: string | number | boolean;
}

const MIB = 1 << 20;
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const NAME_EXPECT = "1 to 63 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit";

const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const LOG_FORMATS: readonly LogFormat[] = ["json", "pretty"];

export const DEFAULT_CLIENT_URL = "ws://127.0.0.1:7000";
export const DEFAULT_PEER_URL = "ws://127.0.0.1:7001";

const OPTIONS: readonly OptionSpec[] = [
  {
    key: "config",
    arg: "<file>",
    help: "JSON config file (keys are the camelCase option names)",
    kind: { type: "path", mustExist: true },
  },
  {
    key: "name",
    arg: "<name>",
    help: "this member's name in the cluster, e.g. n1",
    kind: { type: "string", pattern: NAME_PATTERN, expect: NAME_EXPECT },
  },
  {
    key: "dataDir",
    arg: "<dir>",
    help: "directory for the WAL and snapshots (default: .concord/<name>)",
    kind: { type: "path", mustExist: false },
  },
  {
    key: "clientUrl",
    arg: "<url>",
    help: "ws(s)://host:port clients connect to; the node listens there",
    kind: { type: "url" },
    default: DEFAULT_CLIENT_URL,
  },
  {
    key: "peerUrl",
    arg: "<url>",
    help: "ws(s)://host:port other members connect to; the node listens there",
    kind: { type: "url" },
    default: DEFAULT_PEER_URL,
  },
  {
    key: "initialCluster",
    arg: "<list>",
    help: "all members' peer URLs: n1=ws://h1:7001,n2=ws://h2:7001 (default: <name>=<peer-url>)",
    kind: { type: "map" },
  },
  {
    key: "initialClusterClients",
    arg: "<list>",
    help: "members' client URLs, to redirect clients to the leader: n1=ws://h1:7000,…",
    kind: { type: "map" },
  },
  {
    key: "clusterId",
    arg: "<id>",
    help: "cluster id checked on peer connections (default: derived from the initial cluster; required with --join)",
    kind: { type: "string", pattern: /^[A-Za-z0-9._-]{1,64}$/, expect: "1 to 64 characters of A-Z a-z 0-9 . _ -" },
  },
  {
    key: "peerSecret",
    arg: "<secret>",
    help: "shared secret for peer connections (prefer CONCORD_PEER_SECRET: flags are visible in ps)",
    kind: {
      type: "string",
      pattern: /^\S{16,1024}$/,
      expect: "16 to 1024 characters without whitespace",
      secret: true,
    },
  },
  {
    key: "insecurePeers",
    help: "let a member of a multi-member cluster run without --peer-secret or peer mTLS: peers then authenticate with the cluster id, which anyone can learn (local development and tests only)",
    kind: { type: "bool" },
    default: false,
  },
  {
    key: "join",
    help: "join an existing cluster as a new member (no bootstrap)",
    kind: { type: "bool" },
    default: false,
  },
  {
    key: "tickMs",
    arg: "<ms>",
    help: "Raft tick interval",
    kind: { type: "int", min: 1, max: 60_000, unit: "milliseconds" },
    default: 100,
  },
  {
    key: "electionTicks",
    arg: "<n>",
    help: "election timeout in ticks (randomized in [n, 2n))",
    kind: { type: "int", min: 2, max: 10_000, unit: "ticks" },
    default: 10,
  },
  {
    key: "heartbeatTicks",
    arg: "<n>",
    help: "heartbeat interval in ticks",
    kind: { type: "int", min: 1, max: 10_000, unit: "ticks" },
    default: 1,
  },
  {
    key: "snapshotEntries",
    arg: "<n>",
    help: "snapshot after this many entries, once the log since the last snapshot is as large as it",
    kind: { type: "int", min: 1, max: 1e9, unit: "entries" },
    default: 10_000,
  },
  {
    key: "snapshotBytes",
    arg: "<size>",
    help: "snapshot after this many bytes of entries (e.g. 64MiB)",
    kind: { type: "bytes", min: 1, max: 2 ** 40 },
    default: 64 * MIB,
  },
  {
    key: "maxRequestBytes",
    arg: "<size>",
    help: "largest client request frame",
    kind: { type: "bytes", min: 1024, max: 64 * MIB },
    default: 1.5 * MIB,
  },
  {
    key: "maxKeyBytes",
    arg: "<size>",
    help: "largest key (must be equal on every member)",
    kind: { type: "bytes", min: 1, max: 64 * MIB },
    default: DEFAULT_LIMITS.maxKeyBytes,
  },
  {
    key: "maxValueBytes",
    arg: "<size>",
    help: "largest value (must be equal on every member)",
    kind: { type: "bytes", min: 1, max: 64 * MIB },
    default: DEFAULT_LIMITS.maxValueBytes,
  },
  {
    key: "quotaBytes",
    arg: "<size>",
    help: "storage quota: once the replicated state holds this much, writes that add data fail with NO_SPACE until `concord alarm disarm`; the leader's applies to the cluster (give every member the same)",
    kind: { type: "bytes", min: MIB, max: 2 ** 40 },
    default: DEFAULT_LIMITS.quotaBytes,
  },
  {
    key: "maxInflightPerConnection",
    arg: "<n>",
    help: "most unanswered requests per client connection",
    kind: { type: "int", min: 1, max: 1_000_000, unit: "requests" },
    default: 1024,
  },
  {
    key: "maxConnections",
    arg: "<n>",
    help: "most client connections",
    kind: { type: "int", min: 1, max: 1_000_000, unit: "connections" },
    default: 10_000,
  },
  {
    key: "clientCertFile",
    arg: "<file>",
    help: "PEM certificate for the client port (enables wss)",
    kind: { type: "path", mustExist: true, pem: true },
  },
  {
    key: "clientKeyFile",
    arg: "<file>",
    help: "PEM private key for the client port",
    kind: { type: "path", mustExist: true, pem: true },
  },
  {
    key: "clientCaFile",
    arg: "<file>",
    help: "PEM CA bundle: require client certificates signed by it",
    kind: { type: "path", mustExist: true, pem: true },
  },
  {
    key: "peerCertFile",
    arg: "<file>",
    help: "PEM certificate for the peer port (enables wss, mutual TLS)",
    kind: { type: "path", mustExist: true, pem: true },
  },
  {
    key: "peerKeyFile",
    arg: "<file>",
    help: "PEM private key for the peer port",
    kind: { type: "path", mustExist: true, pem: true },
  },
  {
    key: "peerCaFile",
    arg: "<file>",
    help: "PEM CA bundle that signs every member's peer certificate",
    kind: { type: "path", mustExist: true, pem: true },
  },
  {
    key: "authTokensFile",
    arg: "<file>",
    help: "JSON file of bearer tokens with permissions (default: no auth)",
    kind: { type: "path", mustExist: true },
  },
  {
    key: "autoCompactionMode",
    arg: "<mode>",
    help: "compact the history automatically while leading: revision (keep the last N revisions) or periodic (keep a time span)",
    kind: { type: "enum", choices: ["revision", "periodic"] },
  },
  {
    key: "autoCompactionRetention",
    arg: "<n|duration>",
    help: "what auto-compaction keeps: a number of revisions (revision mode) or a duration such as 30m or 1h (periodic)",
    kind: { type: "string", pattern: /^\d+(\.\d+)?(ms|s|m|h)?$/, expect: "a number of revisions, or a duration such as 30m or 1h" },
  },
  {
    key: "logLevel",
    arg: "<level>",
    help: `log level: ${LOG_LEVELS.join(", ")}`,
    kind: { type: "enum", choices: LOG_LEVELS },
    default: "info",
  },
  {
    key: "logFormat",
    arg: "<format>",
    help: "log format: json or pretty",
    kind: { type: "enum", choices: LOG_FORMATS },
    default: "json",
  },
  {
    key: "repair",
    help: "truncate a corrupt WAL tail on start instead of refusing to start",
    kind: { type: "bool" },
    default: false,
  },
  {
    key: "fsync",
    help: "fsync the WAL (--no-fsync only for tests and benchmarks: loses acknowledged writes on crash)",
    kind: { type: "bool" },
    default: true,
  },
];

const OPTION_BY_KEY = new Map(OPTIONS.map((o) => [o.key, o]));
const FILE_KEYS = OPTIONS.filter((o) => o.key !== "config").map((o) => o.key);

export function flagName(key: string): string {
  return "--" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

export function envName(key: string): string {
  return "CONCORD_" + key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

/**
 * Declares every server flag on `cmd`. No commander defaults: an absent flag must stay undefined so that the
 * environment and the file can supply it; defaults are shown in the help text instead. Booleans get a
 * `--no-` twin so that a flag can turn off what the environment or the file turned on.
 */
export function addServerOptions(cmd: Command): Command {
  for (const spec of OPTIONS) {
    const shownDefault = spec.default === undefined ? "" : ` (default: ${showDefault(spec)})`;
    const help = `${spec.help}${shownDefault} [env ${envName(spec.key)}]`;
    if (spec.kind.type === "bool") {
      cmd.addOption(new Option(flagName(spec.key), help));
      cmd.addOption(new Option(`--no-${flagName(spec.key).slice(2)}`, `turn ${flagName(spec.key)} off`));
    } else {
      cmd.addOption(new Option(`${flagName(spec.key)} ${spec.arg}`, help));
    }
  }
  return cmd;
}

function showDefault(spec: OptionSpec): string {
  if (spec.kind.type === "bool") return spec.default ? "on" : "off";
  if (spec.kind.type === "bytes" && typeof spec.default === "number") return formatBytes(spec.default);
  return String(spec.default);
}

/** 2147483648 → "2GiB", 1572864 → "1.5MiB", 4096 → "4KiB", 1000 → "1000". */
export function formatBytes(n: number): string {
  if (n >= 1024 * MIB && Number.isInteger((n / (1024 * MIB)) * 1000)) return `${n / (1024 * MIB)}GiB`;
  if (n >= MIB && Number.isInteger((n / MIB) * 1000)) return `${n / MIB}MiB`;
  if (n >= 1024 && Number.isInteger((n / 1024) * 1000)) return `${n / 1024}KiB`;
  return String(n);
}

// ---------------------------------------------------------------------------------------------------------
// Loading.

/** Where a raw value came from; `label` names the field the way that source spells it. */
interface Sourced {
  key: string;
  raw: unknown;
  label: string;
  /** Relative paths resolve against this directory (the config file's, or the working directory). */
  baseDir: string;
}

export type ParsedOptions = Record<string, unknown>;

/**
 * Builds the configuration from flags (argv without the program and command names, or commander's parsed
 * `opts()`), the environment and the optional config file. Throws ConfigError on the first bad field.
 */
export function loadConfig(
  argv: string[] | ParsedOptions,
  env: NodeJS.ProcessEnv,
  cwd: string = process.cwd(),
): ServerConfig {
  // Parsed options may carry the CLI's own flags besides ours; commander has already refused unknown flags.
  const flags = Array.isArray(argv) ? parseArgv(argv) : argv;

  const configRaw = pick("config", flags, env, undefined, cwd);
  let file: Record<string, unknown> | undefined;
  let configFile: string | undefined;
  if (configRaw !== undefined) {
    configFile = parsePath(configRaw, true);
    file = readConfigFile(configFile, configRaw.label);
  }
  const fileDir = configFile === undefined ? cwd : dirname(configFile);
  const source = (key: string) =>
    pick(key, flags, env, file === undefined ? undefined : { values: file, name: configFile!, dir: fileDir }, cwd);

  const value = <T>(key: string, parse: (s: Sourced) => T): T | undefined => {
    const s = source(key);
    return s === undefined ? undefined : parse(s);
  };
  const str = (key: string) => value(key, parseString);
  const int = (key: string) => value(key, parseInt);
  const bytes = (key: string) => value(key, parseBytes);
  const bool = (key: string) => value(key, parseBool);
  const path = (key: string) =>
    value(key, (s) => {
      const kind = OPTION_BY_KEY.get(key)!.kind as Extract<OptionKind, { type: "path" }>;
      const absolute = parsePath(s, kind.mustExist);
      if (kind.pem === true) checkPem(absolute, s);
      return absolute;
    });
  const def = <T>(key: string): T => OPTION_BY_KEY.get(key)!.default as T;
  const label = (key: string) => source(key)?.label ?? flagName(key);

  const name = str("name");
  if (name === undefined)
    throw new ConfigError(
      flagName("name"),
      `required (${NAME_EXPECT}); set it by flag, ${envName("name")} or the config file`,
    );

  const clientUrlSource = source("clientUrl") ?? defaultSource("clientUrl", cwd);
  const clientParsed = parseWsUrl(clientUrlSource.raw, clientUrlSource.label);
  const peerUrlSource = source("peerUrl") ?? defaultSource("peerUrl", cwd);
  const peerParsed = parseWsUrl(peerUrlSource.raw, peerUrlSource.label);
  if (
    clientParsed.listen.port === peerParsed.listen.port &&
    sameHost(clientParsed.listen.host, peerParsed.listen.host)
  ) {
    throw new ConfigError(
      peerUrlSource.label,
      `must differ from the client URL ${clientParsed.url} (the two ports serve different protocols)`,
    );
  }

  const join = bool("join") ?? def<boolean>("join");

  const clusterSource = source("initialCluster");
  const initialCluster =
    clusterSource === undefined ? new Map([[name, peerParsed.url]]) : parseMemberMap(clusterSource);
  const clusterLabel = clusterSource?.label ?? flagName("initialCluster");
  const ownPeer = initialCluster.get(name);
  if (ownPeer === undefined) {
    throw new ConfigError(
      clusterLabel,
      `does not contain this member '${name}' (members: ${[...initialCluster.keys()].join(", ")}); add ${name}=${peerParsed.url}`,
    );
  }
  if (ownPeer !== peerParsed.url) {
    throw new ConfigError(
      clusterLabel,
      `gives ${name}=${ownPeer} but this member's peer URL (${peerUrlSource.label}) is ${peerParsed.url}; they must be equal`,
    );
  }
  if (join && initialCluster.size < 2) {
    throw new ConfigError(
      clusterLabel,
      `with --join, must list the existing members to contact besides '${name}', e.g. n1=ws://h1:7001,${name}=${peerParsed.url}`,
    );
  }
  const seenPeerUrls = new Map<string, string>();
  for (const [member, url] of initialCluster) {
    const other = seenPeerUrls.get(url);
    if (other !== undefined)
      throw new ConfigError(
        clusterLabel,
        `members '${other}' and '${member}' share the peer URL ${url}; each member needs its own`,
      );
    seenPeerUrls.set(url, member);
  }

  const clientsSource = source("initialClusterClients");
  const clientUrls = clientsSource === undefined ? new Map<string, string>() : parseMemberMap(clientsSource);
  for (const member of clientUrls.keys()) {
    if (!initialCluster.has(member)) {
      throw new ConfigError(
        clientsSource!.label,
        `names '${member}', which is not in the initial cluster (members: ${[...initialCluster.keys()].join(", ")})`,
      );
    }
  }
  const ownClient = clientUrls.get(name);
  if (ownClient !== undefined && ownClient !== clientParsed.url) {
    throw new ConfigError(
      clientsSource!.label,
      `gives ${name}=${ownClient} but this member's client URL (${clientUrlSource.label}) is ${clientParsed.url}; they must be equal`,
    );
  }
  clientUrls.set(name, clientParsed.url);

  let clusterId = str("clusterId");
  if (clusterId === undefined) {
    if (join) {
      throw new ConfigError(
        flagName("clusterId"),
        "required with --join: the id derived from the initial cluster would differ from the existing cluster's (`concord status` shows it)",
      );
    }
    clusterId = deriveClusterId(initialCluster);
  }

  const tickMs = int("tickMs") ?? def<number>("tickMs");
  const electionTicks = int("electionTicks") ?? def<number>("electionTicks");
  const heartbeatTicks = int("heartbeatTicks") ?? def<number>("heartbeatTicks");
  if (heartbeatTicks >= electionTicks) {
    throw new ConfigError(
      label("heartbeatTicks"),
      `must be less than the election timeout (${electionTicks} ticks), got ${heartbeatTicks}`,
    );
  }

  const maxRequestBytes = bytes("maxRequestBytes") ?? def<number>("maxRequestBytes");
  const maxKeyBytes = bytes("maxKeyBytes") ?? def<number>("maxKeyBytes");
  const maxValueBytes = bytes("maxValueBytes") ?? def<number>("maxValueBytes");
  if (maxKeyBytes + maxValueBytes > maxRequestBytes) {
    throw new ConfigError(
      label("maxRequestBytes"),
      `must be at least maxKeyBytes + maxValueBytes (${maxKeyBytes} + ${maxValueBytes} = ${maxKeyBytes + maxValueBytes}) so that the largest put fits in one request, got ${maxRequestBytes}`,
    );
  }

  const tls: ServerConfig["tls"] = {};
  const clientTls = tlsFiles("client", path("clientCertFile"), path("clientKeyFile"), path("clientCaFile"), label);
  const peerTls = tlsFiles("peer", path("peerCertFile"), path("peerKeyFile"), path("peerCaFile"), label);
  if (clientTls !== undefined) tls.client = clientTls;
  if (peerTls !== undefined) {
    if (peerTls.ca === undefined) {
      throw new ConfigError(
        flagName("peerCaFile"),
        "required when the peer port uses TLS: members authenticate each other with mutual TLS",
      );
    }
    tls.peer = peerTls;
  }
  checkScheme(
    clientParsed.url,
    clientUrlSource.label,
    tls.client !== undefined,
    "client",
    "--client-cert-file/--client-key-file",
  );
  checkScheme(
    peerParsed.url,
    peerUrlSource.label,
    tls.peer !== undefined,
    "peer",
    "--peer-cert-file/--peer-key-file/--peer-ca-file",
  );
  for (const [member, url] of initialCluster) {
    if (url.startsWith("wss:") !== (tls.peer !== undefined)) {
      throw new ConfigError(
        clusterLabel,
        `member ${member} has ${url}, but every peer URL must use ${tls.peer !== undefined ? "wss:" : "ws:"} like this member's peer port`,
      );
    }
  }

  const peerSecret = str("peerSecret");
  const insecurePeers = bool("insecurePeers") ?? def<boolean>("insecurePeers");
  const authTokensFile = path("authTokensFile");
  const peerProblem = peerAuthProblem({
    members: initialCluster.size,
    peerSecret,
    peerTls: tls.peer !== undefined,
    tokens: authTokensFile !== undefined,
    insecurePeers,
  });
  if (peerProblem !== undefined) throw new ConfigError("peer authentication", peerProblem);

  const dataDir = path("dataDir") ?? resolve(cwd, ".concord", name);
  const config: ServerConfig = {
    name,
    dataDir,
    clientUrl: clientParsed.url,
    clientListen: clientParsed.listen,
    peerUrl: peerParsed.url,
    peerListen: peerParsed.listen,
    initialCluster,
    clientUrls,
    clusterId,
    insecurePeers,
    join,
    tickMs,
    electionTicks,
    heartbeatTicks,
    snapshotEntries: int("snapshotEntries") ?? def<number>("snapshotEntries"),
    snapshotBytes: bytes("snapshotBytes") ?? def<number>("snapshotBytes"),
    maxRequestBytes,
    maxKeyBytes,
    maxValueBytes,
    quotaBytes: bytes("quotaBytes") ?? def<number>("quotaBytes"),
    autoCompaction: autoCompactionOf(value("autoCompactionMode", parseEnum), str("autoCompactionRetention"), label),
    maxInflightPerConnection: int("maxInflightPerConnection") ?? def<number>("maxInflightPerConnection"),
    maxConnections: int("maxConnections") ?? def<number>("maxConnections"),
    tls,
    logLevel: (value("logLevel", parseEnum) ?? def<string>("logLevel")) as LogLevel,
    logFormat: (value("logFormat", parseEnum) ?? def<string>("logFormat")) as LogFormat,
    repair: bool("repair") ?? def<boolean>("repair"),
    fsync: bool("fsync") ?? def<boolean>("fsync"),
  };
  if (peerSecret !== undefined) config.peerSecret = peerSecret;
  if (authTokensFile !== undefined) config.authTokensFile = authTokensFile;
  if (configFile !== undefined) config.configFile = configFile;
  return config;
}

/**
 * --auto-compaction-mode with --auto-compaction-retention, as etcd's flags — except that a periodic retention
 * needs its unit: etcd reads a bare number as hours, Concord's durations read one as milliseconds.
 */
function autoCompactionOf(
  mode: string | undefined,
  retention: string | undefined,
  label: (key: string) => string,
): AutoCompaction | undefined {
  if (mode === undefined && retention === undefined) return undefined;
  if (mode === undefined) {
    throw new ConfigError(label("autoCompactionMode"), `required with ${label("autoCompactionRetention")}: revision or periodic`);
  }
  if (retention === undefined) {
    throw new ConfigError(
      label("autoCompactionRetention"),
      `required with ${label("autoCompactionMode")} ${mode}: ${mode === "revision" ? "the number of revisions to keep, such as 10000" : "the time span to keep, such as 1h"}`,
    );
  }
  if (mode === "revision") {
    const n = Number(retention);
    if (!/^\d+$/.test(retention) || !Number.isSafeInteger(n) || n < 1) {
      throw new ConfigError(label("autoCompactionRetention"), `revision mode keeps a number of revisions: expected an integer >= 1, got ${JSON.stringify(retention)}`);
    }
    return { mode, retention: n };
  }
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(retention);
  const ms = m ? Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"]) : NaN;
  if (!(ms >= 1000)) {
    throw new ConfigError(
      label("autoCompactionRetention"),
      `periodic mode keeps a time span: expected a duration with its unit, at least 1s (such as 30m or 1h), got ${JSON.stringify(retention)}`,
    );
  }
  return { mode: "periodic", retentionMs: ms };
}

function parseArgv(argv: string[]): ParsedOptions {
  const cmd = addServerOptions(new Command("server"));
  cmd.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  try {
    cmd.parse(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) throw new ConfigError("arguments", err.message.replace(/^error: /, ""));
    throw err;
  }
  // Commander sets a value only for flags that were given, so absent flags fall through to env and file.
  return cmd.opts();
}

function pick(
  key: string,
  flags: ParsedOptions,
  env: NodeJS.ProcessEnv,
  file: { values: Record<string, unknown>; name: string; dir: string } | undefined,
  cwd: string,
): Sourced | undefined {
  if (flags[key] !== undefined) return { key, raw: flags[key], label: flagName(key), baseDir: cwd };
  const fromEnv = env[envName(key)];
  // An empty variable counts as unset, as in most shells' `VAR= cmd` idiom.
  if (fromEnv !== undefined && fromEnv !== "") return { key, raw: fromEnv, label: envName(key), baseDir: cwd };
  if (file !== undefined && file.values[key] !== undefined)
    return { key, raw: file.values[key], label: `config file ${file.name}: ${key}`, baseDir: file.dir };
  return undefined;
}

function defaultSource(key: string, cwd: string): Sourced {
  return { key, raw: OPTION_BY_KEY.get(key)!.default, label: `${flagName(key)} (default)`, baseDir: cwd };
}

function readConfigFile(file: string, label: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(label, `cannot read ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `config file ${file}`,
      `not valid JSON (${(err as Error).message}); expected an object of option names to values`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(
      `config file ${file}`,
      `expected a JSON object of option names to values, got ${Array.isArray(parsed) ? "an array" : JSON.stringify(parsed)}`,
    );
  }
  const values = parsed as Record<string, unknown>;
  const unknown = Object.keys(values).filter((k) => !FILE_KEYS.includes(k));
  if (unknown.length > 0) {
    throw new ConfigError(
      `config file ${file}`,
      `unknown key${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `'${k}'`).join(", ")}; accepted: ${FILE_KEYS.join(", ")}`,
    );
  }
  return values;
}

/** Shows a rejected value; secrets are described, never echoed. */
function show(raw: unknown, secret = false): string {
  if (secret) return typeof raw === "string" ? `a secret of ${raw.length} characters` : `a ${typeof raw}`;
  if (typeof raw === "string") return `'${raw.length > 200 ? raw.slice(0, 200) + "…" : raw}'`;
  return JSON.stringify(raw) ?? String(raw);
}

function specOf(s: Sourced): OptionSpec {
  return OPTION_BY_KEY.get(s.key)!;
}

function parseString(s: Sourced): string {
  const spec = specOf(s);
  const kind = spec.kind as Extract<OptionKind, { type: "string" }>;
  if (typeof s.raw !== "string" || !kind.pattern.test(s.raw)) {
    throw new ConfigError(s.label, `expected ${kind.expect}, got ${show(s.raw, kind.secret)}`);
  }
  return s.raw;
}

function parseInt(s: Sourced): number {
  const kind = specOf(s).kind as Extract<OptionKind, { type: "int" }>;
  const expect =
    kind.min === 1
      ? `a positive integer number of ${kind.unit} (at most ${kind.max})`
      : `an integer number of ${kind.unit} from ${kind.min} to ${kind.max}`;
  let n: number;
  if (typeof s.raw === "number") n = s.raw;
  else if (typeof s.raw === "string" && /^\s*\d+\s*$/.test(s.raw)) n = Number(s.raw);
  else throw new ConfigError(s.label, `expected ${expect}, got ${show(s.raw)}`);
  if (!Number.isSafeInteger(n) || n < kind.min || n > kind.max)
    throw new ConfigError(s.label, `expected ${expect}, got ${show(s.raw)}`);
  return n;
}

const BYTE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  kib: 1024,
  mib: MIB,
  gib: 1024 * MIB,
};

/** Accepts a byte count as an integer or with a unit: 1048576, "1MiB", "1.5 MiB", "64KB". */
function parseBytes(s: Sourced): number {
  const kind = specOf(s).kind as Extract<OptionKind, { type: "bytes" }>;
  const expect = `a size in bytes from ${kind.min} to ${kind.max}, as an integer or with a unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. 1.5MiB`;
  let n: number | undefined;
  if (typeof s.raw === "number") n = s.raw;
  else if (typeof s.raw === "string") {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s.raw);
    const unit = m === null ? undefined : BYTE_UNITS[m[2]!.toLowerCase()];
    if (m !== null && unit !== undefined) n = Number(m[1]) * unit;
  }
  if (n === undefined || !Number.isSafeInteger(n) || n < kind.min || n > kind.max) {
    throw new ConfigError(
      s.label,
      `expected ${expect}, got ${show(s.raw)}${n !== undefined && !Number.isInteger(n) ? " (not a whole number of bytes)" : ""}`,
    );
  }
  return n;
}

function parseBool(s: Sourced): boolean {
  if (typeof s.raw === "boolean") return s.raw;
  if (typeof s.raw === "string") {
    const v = s.raw.trim().toLowerCase();
    if (v === "true" || v === "1" || v === "yes" || v === "on") return true;
    if (v === "false" || v === "0" || v === "no" || v === "off") return false;
  }
  throw new ConfigError(s.label, `expected a boolean (true/false, 1/0, yes/no, on/off), got ${show(s.raw)}`);
}

function parseEnum(s: Sourced): string {
  const kind = specOf(s).kind as Extract<OptionKind, { type: "enum" }>;
  if (typeof s.raw !== "string" || !kind.choices.includes(s.raw)) {
    throw new ConfigError(s.label, `expected one of ${kind.choices.join(", ")}, got ${show(s.raw)}`);
  }
  return s.raw;
}

function parsePath(s: Sourced, mustExist: boolean): string {
  if (typeof s.raw !== "string" || s.raw.trim() === "" || s.raw.includes("\0")) {
    throw new ConfigError(s.label, `expected a file system path, got ${show(s.raw)}`);
  }
  const absolute = resolve(s.baseDir, s.raw);
  if (mustExist) {
    let isFile = false;
    try {
      isFile = statSync(absolute).isFile();
    } catch (err) {
      throw new ConfigError(
        s.label,
        `expected an existing readable file, got ${show(s.raw)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
    if (!isFile) throw new ConfigError(s.label, `expected a regular file, got ${show(s.raw)} (not a file)`);
  }
  return absolute;
}

/** Catches a swapped or wrong file (a DER file, a key given as the CA) at startup rather than at first TLS use. */
function checkPem(file: string, s: Sourced): void {
  const text = readFileSync(file, "latin1");
  if (!text.includes("-----BEGIN "))
    throw new ConfigError(s.label, `expected a PEM file (with a -----BEGIN …----- block), got ${show(s.raw)}`);
}

/** Parses and normalizes ws(s)://host:port; anything else (paths, credentials, queries) is refused. */
export function parseWsUrl(raw: unknown, label: string): { url: string; listen: ListenAddress } {
  const expect = "a URL ws://host:port or wss://host:port";
  if (typeof raw !== "string") throw new ConfigError(label, `expected ${expect}, got ${show(raw)}`);
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ConfigError(label, `expected ${expect}, got ${show(raw)} (not a URL)`);
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:")
    throw new ConfigError(label, `expected ${expect}, got ${show(raw)} (scheme ${url.protocol} is not ws: or wss:)`);
  if (url.username !== "" || url.password !== "")
    throw new ConfigError(label, `expected ${expect}, got ${show(raw)} (credentials do not belong in the URL)`);
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "") {
    throw new ConfigError(label, `expected ${expect}, got ${show(raw)} (no path, query or fragment)`);
  }
  if (url.hostname === "") throw new ConfigError(label, `expected ${expect}, got ${show(raw)} (no host)`);
  // WHATWG URL drops a port equal to the scheme's default (80 for ws, 443 for wss).
  const port = url.port === "" ? (url.protocol === "ws:" ? 80 : 443) : Number(url.port);
  if (port === 0) throw new ConfigError(label, `expected ${expect} with a port from 1 to 65535, got ${show(raw)}`);
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return { url: `${url.protocol}//${url.hostname}:${port}`, listen: { host, port } };
}

function sameHost(a: string, b: string): boolean {
  const wildcard = (h: string) => h === "0.0.0.0" || h === "::";
  return a === b || wildcard(a) || wildcard(b);
}

/** Parses "n1=ws://h:1,n2=ws://h:2" into normalized URLs by member name; `label` names the field in errors. */
export function parseInitialCluster(text: string, label = flagName("initialCluster")): Map<string, string> {
  return parseMemberMap({ key: "initialCluster", raw: text, label, baseDir: "." });
}

/** Parses "n1=ws://h:1,n2=ws://h:2" (or, from a config file, an object { n1: "ws://h:1", … }). */
function parseMemberMap(s: Sourced): Map<string, string> {
  const expect = "name=ws://host:port pairs separated by commas, e.g. n1=ws://10.0.0.1:7001,n2=ws://10.0.0.2:7001";
  let pairs: [string, unknown][];
  if (typeof s.raw === "string") {
    if (s.raw.trim() === "") throw new ConfigError(s.label, `expected ${expect}, got ''`);
    pairs = s.raw.split(",").map((part) => {
      const eq = part.indexOf("=");
      if (eq < 0) throw new ConfigError(s.label, `expected ${expect}, got ${show(part.trim())} (missing '=')`);
      return [part.slice(0, eq).trim(), part.slice(eq + 1).trim()];
    });
  } else if (typeof s.raw === "object" && s.raw !== null && !Array.isArray(s.raw)) {
    pairs = Object.entries(s.raw);
  } else {
    throw new ConfigError(
      s.label,
      `expected ${expect} (or a JSON object of names to URLs in the config file), got ${show(s.raw)}`,
    );
  }
  const members = new Map<string, string>();
  for (const [name, url] of pairs) {
    if (!NAME_PATTERN.test(name))
      throw new ConfigError(s.label, `member name ${show(name)} is invalid: expected ${NAME_EXPECT}`);
    if (members.has(name))
      throw new ConfigError(s.label, `member '${name}' appears more than once; each name must be unique`);
    members.set(name, parseWsUrl(url, `${s.label} (member ${name})`).url);
  }
  return members;
}

function tlsFiles(
  port: "client" | "peer",
  cert: string | undefined,
  key: string | undefined,
  ca: string | undefined,
  label: (key: string) => string,
): TlsFiles | undefined {
  if (cert === undefined && key === undefined) {
    if (ca !== undefined)
      throw new ConfigError(
        label(`${port}CaFile`),
        `given without ${flagName(`${port}CertFile`)} and ${flagName(`${port}KeyFile`)}; TLS needs a certificate and a key`,
      );
    return undefined;
  }
  if (cert === undefined)
    throw new ConfigError(
      flagName(`${port}CertFile`),
      `required because ${label(`${port}KeyFile`)} is given; TLS needs both a certificate and a key`,
    );
  if (key === undefined)
    throw new ConfigError(
      flagName(`${port}KeyFile`),
      `required because ${label(`${port}CertFile`)} is given; TLS needs both a certificate and a key`,
    );
  return ca === undefined ? { cert, key } : { cert, key, ca };
}

function checkScheme(url: string, label: string, tls: boolean, port: string, tlsFlags: string): void {
  if (tls && !url.startsWith("wss:"))
    throw new ConfigError(label, `must use wss: because TLS is configured for the ${port} port, got '${url}'`);
  if (!tls && url.startsWith("wss:"))
    throw new ConfigError(
      label,
      `uses wss: but no TLS certificate is configured for the ${port} port; give ${tlsFlags} or use ws:`,
    );
}

/** A stable id from the sorted member list, so that every member of a bootstrap derives the same one. */
export function deriveClusterId(members: ReadonlyMap<string, string>): string {
  const canonical = [...members]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([n, u]) => `${n}=${u}`)
    .join(",");
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}

/** Things an operator must see at startup; the node logs each one at warn level. */
export function configWarnings(config: ServerConfig): string[] {
  const warnings: string[] = [];
  if (!config.fsync)
    warnings.push(
      "fsync is OFF: acknowledged writes will be lost if the machine crashes; use only for tests and benchmarks",
    );
  if (config.repair)
    warnings.push(
      "repair is ON: a corrupt WAL tail will be truncated, which can lose entries this member acknowledged",
    );
  const loopback = (h: string) => h === "127.0.0.1" || h === "::1" || h === "localhost";
  if (config.authTokensFile === undefined && !loopback(config.clientListen.host)) {
    warnings.push(
      `the client port listens on ${config.clientListen.host} without authentication (no --auth-tokens-file)`,
    );
  }
  warnings.push(...peerAuthWarnings(peerAuthInput(config)));
  return warnings;
}

/**
 * The configuration as a plain object for logging, with secrets removed and the peer authentication really in
 * force stated. `peerSecret` is present only when one was given (the logger would otherwise print a
 * "<redacted>" for an undefined field, pretending a secret exists).
 */
export function redactConfig(config: ServerConfig): Record<string, unknown> {
  const { peerSecret, initialCluster, clientUrls, ...rest } = config;
  return {
    ...rest,
    initialCluster: Object.fromEntries(initialCluster),
    clientUrls: Object.fromEntries(clientUrls),
    peerAuth: peerAuthMode(peerAuthInput(config)),
    ...(peerSecret === undefined ? {} : { peerSecret: "<redacted>" }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Bearer tokens and permissions (what they mean: src/host/auth.ts).

const ACCESS_VALUES: readonly Access[] = ["read", "write", "admin"];
const MIN_TOKEN_LENGTH = 16;

function hashToken(token: string): string {
  // The table is keyed by a hash so that lookup time leaks nothing useful about the stored tokens.
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Parses the token file's text; `source` names it in errors. */
export function parseTokens(text: string, source: string): TokenTable {
  const shape = `[{ "token": "…", "name": "ci", "permissions": [{ "prefix": "config/", "access": "read" | "write" | "admin" }, { "lock": "jobs/", "access": "write" }, { "election": "", "access": "read" }, { "cluster": true, "access": "admin" }] }]`;
  const fail = (where: string, message: string): never => {
    throw new ConfigError(`tokens file ${source}${where}`, message);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return fail("", `not valid JSON (${(err as Error).message}); expected ${shape}`);
  }
  if (!Array.isArray(parsed)) return fail("", `expected a JSON array of token entries like ${shape}`);
  const byHash = new Map<string, TokenEntry>();
  const names = new Set<string>();
  parsed.forEach((item: unknown, i) => {
    const at = `[${i}]`;
    if (typeof item !== "object" || item === null || Array.isArray(item))
      return fail(at, `expected an object { token, name, permissions }, got ${show(item)}`);
    const { token, name, permissions, ...extra } = item as Record<string, unknown>;
    const extraKeys = Object.keys(extra);
    if (extraKeys.length > 0)
      fail(
        at,
        `unknown key${extraKeys.length > 1 ? "s" : ""} ${extraKeys.map((k) => `'${k}'`).join(", ")}; accepted: token, name, permissions`,
      );
    if (typeof token !== "string" || token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
      fail(
        `${at}.token`,
        `expected a string of at least ${MIN_TOKEN_LENGTH} characters without whitespace, got ${show(token, true)}`,
      );
    }
    if (typeof name !== "string" || !NAME_PATTERN.test(name))
      fail(`${at}.name`, `expected ${NAME_EXPECT}, got ${show(name)}`);
    if (names.has(name as string))
      fail(`${at}.name`, `'${name as string}' is used by an earlier entry; names must be unique`);
    if (!Array.isArray(permissions))
      return fail(`${at}.permissions`, `expected an array of permissions, got ${show(permissions)}`);
    const hash = hashToken(token as string);
    if (byHash.has(hash))
      fail(`${at}.token`, `the same token as entry '${byHash.get(hash)!.name}'; every token must be unique`);
    names.add(name as string);
    byHash.set(hash, {
      name: name as string,
      permissions: permissions.map((p: unknown, j) => parsePermission(p, `${at}.permissions[${j}]`, fail)),
    });
  });
  return { lookup: (token: string) => byHash.get(hashToken(token)), size: byHash.size };
}

function parsePermission(raw: unknown, at: string, fail: (where: string, message: string) => never): Permission {
  const expect = `{ "prefix" | "lock" | "election": "<name prefix>", "access": "read" | "write" | "admin" } or { "cluster": true, "access": … }`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    return fail(at, `expected ${expect}, got ${show(raw)}`);
  const { access, ...target } = raw as Record<string, unknown>;
  if (typeof access !== "string" || !ACCESS_VALUES.includes(access as Access))
    fail(`${at}.access`, `expected one of read, write, admin, got ${show(access)}`);
  const keys = Object.keys(target);
  if (keys.length !== 1)
    return fail(
      at,
      `expected exactly one of prefix, lock, election, cluster besides access, got ${keys.length === 0 ? "none" : keys.join(", ")}`,
    );
  const field = keys[0]!;
  const value = target[field];
  if (field === "cluster") {
    if (value !== true) fail(`${at}.cluster`, `expected true, got ${show(value)}`);
    return { kind: "cluster", prefix: "", access: access as Access };
  }
  const kind = field === "prefix" ? "key" : field === "lock" ? "lock" : field === "election" ? "election" : undefined;
  if (kind === undefined)
    return fail(at, `unknown key '${field}'; expected one of prefix, lock, election, cluster besides access`);
  if (typeof value !== "string")
    return fail(`${at}.${field}`, `expected a string name prefix ("" for all), got ${show(value)}`);
  return { kind, prefix: value, access: access as Access };
}

/** Reads and validates a token file. */
export function loadTokens(file: string): TokenTable {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`tokens file ${file}`, `cannot read it: ${(err as Error).message}`);
  }
  return parseTokens(text, file);
}
