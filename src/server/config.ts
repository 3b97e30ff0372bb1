// Server configuration: one table of settings declares the command-line flags, the CONCORD_* environment
// variables (commander's .env()), the JSON config file's keys (a zod schema built from the same table) and how each
// value is parsed (the kinds in config-values.ts, as commander argParsers), so the four never disagree.
//
// Precedence, per option: flag > environment > file > default. Commander settles flag > environment > default;
// the config file's values are then applied with commander's value source 'config' to options still at their
// default. An empty value counts as unset (the shells' `VAR= cmd` idiom). Bad flags and variables are
// commander's usage errors naming the flag or variable, the value and what is accepted; bad file values and
// combinations raise a ConfigError naming the field as its source spells it (`--tick-ms`, `CONCORD_TICK_MS`,
// `config file x.json: tickMs`). Secrets are never echoed.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Command, CommanderError, Option } from "commander";
import type { AutoCompaction } from "../host/auto-compaction.js";
import { DEFAULT_LIMITS } from "../statemachine/limits.js";
import { DEFAULT_MEMORY_LOG_BYTES } from "../storage/defaults.js";
import {
  boolean,
  byteSize,
  formatBytes,
  integer,
  matching,
  memberMap,
  NAME_EXPECT,
  NAME_PATTERN,
  parseMembers,
  path,
  show,
  wsUrl,
  type ListenAddress,
  type ValueKind,
} from "./config-values.js";
import { peerAuthInput, peerAuthMode, peerAuthProblem, peerAuthWarnings } from "./peer-auth.js";
import { loadZod, type Zod } from "./zod.js";

export { formatBytes, type ListenAddress };

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
  /** Bytes of the newest log entries held in memory; older ones are read back from the WAL when needed. */
  memoryLogBytes: number;
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

export const DEFAULT_CLIENT_URL = "ws://127.0.0.1:7000";
export const DEFAULT_PEER_URL = "ws://127.0.0.1:7001";

// ---------------------------------------------------------------------------------------------------------
// The settings.

interface Setting {
  /** Placeholder of the value in --help; booleans take an optional one (`--join`, `--join false`). */
  arg: string;
  help: string;
  kind?: ValueKind<unknown>;
  choices?: readonly string[];
  /** What a config file may give besides a string written as on the command line. */
  json?: "members" | "boolean" | "number";
  /** As a user would write it; parsed by `kind`. Absent for required and derived settings. */
  default?: string;
  /** Never echoed in errors; validated after parsing, since commander's errors show the value. */
  secret?: boolean;
}

const MIB = 1 << 20;
const text = (help: string, arg: string, kind: ValueKind<string>) => ({ help, arg, kind });
const file = (help: string, kind = path("pem")) => ({ help, arg: "<file>", kind });
const url = (help: string, dflt: string) => ({ help, arg: "<url>", kind: wsUrl, default: dflt });
const members = (help: string) => ({ help, arg: "<list>", kind: memberMap, json: "members" as const });
const flag = (help: string, dflt: boolean) => ({
  help,
  arg: "[bool]",
  kind: boolean,
  json: "boolean" as const,
  default: dflt ? "on" : "off",
});
const choice = <C extends string>(help: string, arg: string, choices: readonly C[], dflt: C) => ({
  help,
  arg,
  choices,
  default: dflt as string,
});
const count = (help: string, arg: string, min: number, max: number, unit: string, dflt: number) => ({
  help,
  arg,
  kind: integer(min, max, unit),
  json: "number" as const,
  default: String(dflt),
});
const bytes = (help: string, min: number, max: number, dflt: number) => ({
  help,
  arg: "<size>",
  kind: byteSize(min, max),
  json: "number" as const,
  default: formatBytes(dflt),
});

const SETTINGS = {
  config: file("JSON config file (keys are the camelCase option names)", path("file")),
  name: text("this member's name in the cluster, e.g. n1", "<name>", matching(NAME_PATTERN, NAME_EXPECT)),
  dataDir: text("directory for the WAL and snapshots (default: .concord/<name>)", "<dir>", path("dir")),
  clientUrl: url("ws(s)://host:port clients connect to; the node listens there", DEFAULT_CLIENT_URL),
  peerUrl: url("ws(s)://host:port other members connect to; the node listens there", DEFAULT_PEER_URL),
  initialCluster: members("all members' peer URLs: n1=ws://h1:7001,n2=ws://h2:7001 (default: <name>=<peer-url>)"),
  initialClusterClients: members("members' client URLs, to redirect clients to the leader: n1=ws://h1:7000,…"),
  clusterId: text(
    "cluster id checked on peer connections (default: derived from the initial cluster; required with --join)",
    "<id>",
    matching(/^[A-Za-z0-9._-]{1,64}$/, "1 to 64 characters of A-Z a-z 0-9 . _ -"),
  ),
  peerSecret: {
    ...text(
      "shared secret for peer connections (prefer CONCORD_PEER_SECRET: flags are visible in ps)",
      "<secret>",
      matching(/^\S{16,1024}$/, "16 to 1024 characters without whitespace"),
    ),
    secret: true,
  },
  insecurePeers: flag(
    "let a member of a multi-member cluster run without --peer-secret or peer mTLS: peers then authenticate with the cluster id, which anyone can learn (local development and tests only)",
    false,
  ),
  join: flag("join an existing cluster as a new member (no bootstrap)", false),
  tickMs: count("Raft tick interval", "<ms>", 1, 60_000, "milliseconds", 100),
  electionTicks: count("election timeout in ticks (randomized in [n, 2n))", "<n>", 2, 10_000, "ticks", 10),
  heartbeatTicks: count("heartbeat interval in ticks", "<n>", 1, 10_000, "ticks", 1),
  // 100,000 as etcd's --snapshot-count. A snapshot writes the whole state and the watch history: at 10,000 a member
  // under put load with a small state (bench:compare's 10,000 keys) spent 6-10 % of its CPU on snapshots (A/B, put
  // c=64, docs/benchmarks.md). A large state is governed by the size rule anyway. Members take turns in spans of
  // this many indexes (snapshot-policy.ts), so a restart replays at most about members × this many entries of a
  // small one.
  snapshotEntries: count(
    "snapshot after this many entries, once the log since the last snapshot is as large as it, in this member's turn (spans of this many indexes dealt to the members)",
    "<n>",
    1,
    1e9,
    "entries",
    100_000,
  ),
  snapshotBytes: bytes("snapshot after this many bytes of entries (e.g. 64MiB)", 1, 2 ** 40, 64 * MIB),
  memoryLogBytes: bytes(
    "log entries held in memory, newest first; older ones (up to the last snapshot) are read back from the WAL when a follower or the apply needs them",
    0,
    2 ** 40,
    DEFAULT_MEMORY_LOG_BYTES,
  ),
  maxRequestBytes: bytes("largest client request frame", 1024, 64 * MIB, 1.5 * MIB),
  maxKeyBytes: bytes("largest key (must be equal on every member)", 1, 64 * MIB, DEFAULT_LIMITS.maxKeyBytes),
  maxValueBytes: bytes("largest value (must be equal on every member)", 1, 64 * MIB, DEFAULT_LIMITS.maxValueBytes),
  quotaBytes: bytes(
    "storage quota: once the replicated state holds this much, writes that add data fail with NO_SPACE until `concord alarm disarm`; the leader's applies to the cluster (give every member the same)",
    MIB,
    2 ** 40,
    DEFAULT_LIMITS.quotaBytes,
  ),
  maxInflightPerConnection: count("most unanswered requests per client connection", "<n>", 1, 1e6, "requests", 1024),
  maxConnections: count("most client connections", "<n>", 1, 1_000_000, "connections", 10_000),
  clientCertFile: file("PEM certificate for the client port (enables wss)"),
  clientKeyFile: file("PEM private key for the client port"),
  clientCaFile: file("PEM CA bundle: require client certificates signed by it"),
  peerCertFile: file("PEM certificate for the peer port (enables wss, mutual TLS)"),
  peerKeyFile: file("PEM private key for the peer port"),
  peerCaFile: file("PEM CA bundle that signs every member's peer certificate"),
  authTokensFile: file("JSON file of bearer tokens with permissions (default: no auth)", path("file")),
  autoCompactionMode: {
    help: "compact the history automatically while leading: revision (keep the last N revisions) or periodic (keep a time span)",
    arg: "<mode>",
    choices: ["revision", "periodic"] as const,
  },
  autoCompactionRetention: text(
    "what auto-compaction keeps: a number of revisions (revision mode) or a duration such as 30m or 1h (periodic)",
    "<n|duration>",
    matching(/^\d+(\.\d+)?(ms|s|m|h)?$/, "a number of revisions, or a duration such as 30m or 1h"),
  ),
  logLevel: choice<LogLevel>(
    "log level",
    "<level>",
    ["fatal", "error", "warn", "info", "debug", "trace", "silent"],
    "info",
  ),
  logFormat: choice<LogFormat>("log format", "<format>", ["json", "pretty"], "json"),
  repair: flag("truncate a corrupt WAL tail on start instead of refusing to start", false),
  fsync: flag("fsync the WAL (--no-fsync only for tests and benchmarks: loses acknowledged writes on crash)", true),
} satisfies Record<string, Setting>;

type Key = keyof typeof SETTINGS;
const KEYS = Object.keys(SETTINGS) as Key[];
const setting = (key: Key): Setting => SETTINGS[key];

/** A setting's parsed value; undefined when no source gives one and it has no default. */
type ValueOf<S> = S extends { choices: readonly (infer C)[] } ? C : S extends { kind: ValueKind<infer T> } ? T : never;
type Parsed = {
  [K in Key]: (typeof SETTINGS)[K] extends { default: string }
    ? ValueOf<(typeof SETTINGS)[K]>
    : ValueOf<(typeof SETTINGS)[K]> | undefined;
};

export function flagName(key: string): string {
  return "--" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

export function envName(key: string): string {
  return "CONCORD_" + key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

/**
 * Declares every server flag on `cmd`, each with its CONCORD_* variable and default; relative paths given by flag
 * or variable resolve against `cwd`. Booleans get a `--no-` twin so that a flag can turn off what the
 * environment or the file turned on.
 */
export function addServerOptions(cmd: Command, cwd: string = process.cwd()): Command {
  for (const key of KEYS) {
    const s = setting(key);
    const option = new Option(`${flagName(key)} ${s.arg}`, s.help).env(envName(key));
    if (s.choices !== undefined) option.choices(s.choices);
    const parse = s.secret ? undefined : (option.parseArg ?? ((raw: string) => s.kind!.parse(raw, cwd)));
    if (parse !== undefined)
      option.argParser((raw: string, previous: unknown) => (raw === "" ? "" : parse(raw, previous)));
    if (s.default !== undefined) option.default(s.kind?.parse(s.default, cwd) ?? s.default, s.default);
    cmd.addOption(option);
    if (s.kind === boolean) cmd.addOption(new Option(`--no-${flagName(key).slice(2)}`, `turn ${flagName(key)} off`));
  }
  return cmd;
}

// ---------------------------------------------------------------------------------------------------------
// The config file: a JSON object of setting names to values written as on the command line, or as JSON numbers,
// booleans and (for member lists) objects of names to URLs.

/** A setting's value in the config file: strings are parsed as on the command line; other JSON is checked first. */
function fileValue(z: typeof Zod.z, s: Setting, dir: string): Zod.ZodType {
  if (s.choices !== undefined) {
    const expect = `expected one of ${s.choices.join(", ")}`;
    return z.enum(s.choices as [string, ...string[]], { error: (i) => `${expect}, got ${show(i.input)}` });
  }
  const other = { members: z.record(z.string(), z.string()), boolean: z.boolean(), number: z.number() };
  const input = z.union([z.string(), s.json === undefined ? z.string() : other[s.json]], {
    error: (i) => `expected ${s.kind!.expect}, got ${show(i.input, s.secret)}`,
  });
  return input.transform((raw, ctx) => {
    if (s.secret) return raw; // checked after parsing, as from any source
    try {
      return typeof raw === "object"
        ? parseMembers(Object.entries(raw as Record<string, string>))
        : s.kind!.parse(String(raw), dir);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: `${(err as Error).message}, got ${show(raw)}` });
      return z.NEVER;
    }
  });
}

function fileSchema(dir: string) {
  const { z } = loadZod();
  const keys = KEYS.filter((k) => k !== "config");
  return z.strictObject(Object.fromEntries(keys.map((k) => [k, fileValue(z, setting(k), dir).optional()])), {
    error: (i) =>
      i.code === "unrecognized_keys"
        ? `unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `'${k}'`).join(", ")}; accepted: ${keys.join(", ")}`
        : `expected a JSON object of option names to values, got ${Array.isArray(i.input) ? "an array" : show(i.input)}`,
  });
}

function readConfigFile(file: string): Record<string, unknown> {
  const where = `config file ${file}`;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(where, `cannot read it: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      where,
      `not valid JSON (${(err as Error).message}); expected an object of option names to values`,
    );
  }
  const result = fileSchema(dirname(file)).safeParse(json);
  if (result.success) return result.data;
  const issue = result.error.issues.find((i) => i.code === "unrecognized_keys") ?? result.error.issues[0]!;
  throw new ConfigError(issue.path.length === 0 ? where : `${where}: ${String(issue.path[0])}`, issue.message);
}

// ---------------------------------------------------------------------------------------------------------
// From parsed options to the configuration.

/**
 * Parses `argv` (without the program and command names) and `env` as `concord server` does, then builds the
 * configuration. Throws ConfigError, with field "arguments" for commander's usage errors.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv, cwd: string = process.cwd()): ServerConfig {
  const cmd = addServerOptions(new Command("server"), cwd);
  cmd.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  const saved = process.env;
  process.env = env; // commander reads .env() variables from process.env; the parse is synchronous
  try {
    cmd.parse(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) throw new ConfigError("arguments", err.message.replace(/^error: /, ""));
    throw err;
  } finally {
    process.env = saved;
  }
  return serverConfig(cmd, cwd);
}

/**
 * The configuration from a command that addServerOptions declared and commander parsed: applies the config
 * file, then checks what no single value can show. Throws ConfigError on the first bad field.
 */
export function serverConfig(cmd: Command, cwd: string = process.cwd()): ServerConfig {
  const defaults = new Map(
    cmd.options.filter((o) => !o.negate).map((o) => [o.attributeName(), o.defaultValue as unknown]),
  );
  for (const key of KEYS)
    if (cmd.getOptionValue(key) === "") cmd.setOptionValueWithSource(key, defaults.get(key), "default");

  const configFile = cmd.getOptionValue("config") as string | undefined;
  if (configFile !== undefined) {
    for (const [key, value] of Object.entries(readConfigFile(configFile))) {
      const source = cmd.getOptionValueSource(key);
      if (source === undefined || source === "default") cmd.setOptionValueWithSource(key, value, "config");
    }
  }
  const label = (key: Key): string => {
    const source = cmd.getOptionValueSource(key);
    if (source === "env") return envName(key);
    if (source === "config") return `config file ${configFile}: ${key}`;
    return source === "default" ? `${flagName(key)} (default)` : flagName(key);
  };
  const o = cmd.opts<Parsed>();

  const { name, clientUrl: client, peerUrl: peer, join } = o;
  if (name === undefined)
    throw new ConfigError(
      flagName("name"),
      `required (${NAME_EXPECT}); set it by flag, ${envName("name")} or the config file`,
    );
  for (const key of KEYS.filter((k) => setting(k).secret)) {
    const secret = o[key] as string | undefined;
    try {
      if (secret !== undefined) setting(key).kind!.parse(secret, cwd);
    } catch (err) {
      throw new ConfigError(label(key), `${(err as Error).message}, got ${show(secret, true)}`);
    }
  }
  if (client.listen.port === peer.listen.port && sameHost(client.listen.host, peer.listen.host))
    throw new ConfigError(
      label("peerUrl"),
      `must differ from the client URL ${client.url} (the two ports serve different protocols)`,
    );

  const initialCluster = o.initialCluster ?? new Map([[name, peer.url]]);
  const clusterLabel = label("initialCluster");
  const ownPeer = initialCluster.get(name);
  if (ownPeer === undefined)
    throw new ConfigError(
      clusterLabel,
      `does not contain this member '${name}' (members: ${[...initialCluster.keys()].join(", ")}); add ${name}=${peer.url}`,
    );
  if (ownPeer !== peer.url)
    throw new ConfigError(
      clusterLabel,
      `gives ${name}=${ownPeer} but this member's peer URL (${label("peerUrl")}) is ${peer.url}; they must be equal`,
    );
  if (join && initialCluster.size < 2)
    throw new ConfigError(
      clusterLabel,
      `with --join, must list the existing members to contact besides '${name}', e.g. n1=ws://h1:7001,${name}=${peer.url}`,
    );
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

  const clientUrls = new Map(o.initialClusterClients);
  for (const member of clientUrls.keys()) {
    if (!initialCluster.has(member))
      throw new ConfigError(
        label("initialClusterClients"),
        `names '${member}', which is not in the initial cluster (members: ${[...initialCluster.keys()].join(", ")})`,
      );
  }
  const ownClient = clientUrls.get(name);
  if (ownClient !== undefined && ownClient !== client.url)
    throw new ConfigError(
      label("initialClusterClients"),
      `gives ${name}=${ownClient} but this member's client URL (${label("clientUrl")}) is ${client.url}; they must be equal`,
    );
  clientUrls.set(name, client.url);

  if (o.clusterId === undefined && join)
    throw new ConfigError(
      flagName("clusterId"),
      "required with --join: the id derived from the initial cluster would differ from the existing cluster's (`concord status` shows it)",
    );
  if (o.heartbeatTicks >= o.electionTicks)
    throw new ConfigError(
      label("heartbeatTicks"),
      `must be less than the election timeout (${o.electionTicks} ticks), got ${o.heartbeatTicks}`,
    );
  if (o.maxKeyBytes + o.maxValueBytes > o.maxRequestBytes)
    throw new ConfigError(
      label("maxRequestBytes"),
      `must be at least maxKeyBytes + maxValueBytes (${o.maxKeyBytes} + ${o.maxValueBytes} = ${o.maxKeyBytes + o.maxValueBytes}) so that the largest put fits in one request, got ${o.maxRequestBytes}`,
    );

  const tls: ServerConfig["tls"] = {};
  const clientTls = tlsFiles("client", o.clientCertFile, o.clientKeyFile, o.clientCaFile, label);
  const peerTls = tlsFiles("peer", o.peerCertFile, o.peerKeyFile, o.peerCaFile, label);
  if (clientTls !== undefined) tls.client = clientTls;
  if (peerTls !== undefined) {
    if (peerTls.ca === undefined)
      throw new ConfigError(
        flagName("peerCaFile"),
        "required when the peer port uses TLS: members authenticate each other with mutual TLS",
      );
    tls.peer = peerTls;
  }
  checkScheme(
    client.url,
    label("clientUrl"),
    tls.client !== undefined,
    "client",
    "--client-cert-file/--client-key-file",
  );
  checkScheme(
    peer.url,
    label("peerUrl"),
    tls.peer !== undefined,
    "peer",
    "--peer-cert-file/--peer-key-file/--peer-ca-file",
  );
  for (const [member, url] of initialCluster) {
    if (url.startsWith("wss:") !== (tls.peer !== undefined))
      throw new ConfigError(
        clusterLabel,
        `member ${member} has ${url}, but every peer URL must use ${tls.peer !== undefined ? "wss:" : "ws:"} like this member's peer port`,
      );
  }

  const peerProblem = peerAuthProblem({
    members: initialCluster.size,
    peerSecret: o.peerSecret,
    peerTls: tls.peer !== undefined,
    tokens: o.authTokensFile !== undefined,
    insecurePeers: o.insecurePeers,
  });
  if (peerProblem !== undefined) throw new ConfigError("peer authentication", peerProblem);

  const config: ServerConfig = {
    name,
    dataDir: o.dataDir ?? resolve(cwd, ".concord", name),
    clientUrl: client.url,
    clientListen: client.listen,
    peerUrl: peer.url,
    peerListen: peer.listen,
    initialCluster,
    clientUrls,
    clusterId: o.clusterId ?? deriveClusterId(initialCluster),
    insecurePeers: o.insecurePeers,
    join,
    tickMs: o.tickMs,
    electionTicks: o.electionTicks,
    heartbeatTicks: o.heartbeatTicks,
    snapshotEntries: o.snapshotEntries,
    snapshotBytes: o.snapshotBytes,
    memoryLogBytes: o.memoryLogBytes,
    maxRequestBytes: o.maxRequestBytes,
    maxKeyBytes: o.maxKeyBytes,
    maxValueBytes: o.maxValueBytes,
    quotaBytes: o.quotaBytes,
    maxInflightPerConnection: o.maxInflightPerConnection,
    maxConnections: o.maxConnections,
    tls,
    logLevel: o.logLevel,
    logFormat: o.logFormat,
    repair: o.repair,
    fsync: o.fsync,
  };
  const autoCompaction = autoCompactionOf(o.autoCompactionMode, o.autoCompactionRetention, label);
  if (autoCompaction !== undefined) config.autoCompaction = autoCompaction;
  if (o.peerSecret !== undefined) config.peerSecret = o.peerSecret;
  if (o.authTokensFile !== undefined) config.authTokensFile = o.authTokensFile;
  if (configFile !== undefined) config.configFile = configFile;
  return config;
}

/**
 * --auto-compaction-mode with --auto-compaction-retention, as etcd's flags — except that a periodic retention
 * needs its unit: etcd reads a bare number as hours, Concord's durations read one as milliseconds.
 */
function autoCompactionOf(
  mode: "revision" | "periodic" | undefined,
  retention: string | undefined,
  label: (key: Key) => string,
): AutoCompaction | undefined {
  if (mode === undefined && retention === undefined) return undefined;
  if (mode === undefined)
    throw new ConfigError(
      label("autoCompactionMode"),
      `required with ${label("autoCompactionRetention")}: revision or periodic`,
    );
  if (retention === undefined) {
    throw new ConfigError(
      label("autoCompactionRetention"),
      `required with ${label("autoCompactionMode")} ${mode}: ${mode === "revision" ? "the number of revisions to keep, such as 10000" : "the time span to keep, such as 1h"}`,
    );
  }
  if (mode === "revision") {
    const n = Number(retention);
    if (!/^\d+$/.test(retention) || !Number.isSafeInteger(n) || n < 1) {
      throw new ConfigError(
        label("autoCompactionRetention"),
        `revision mode keeps a number of revisions: expected an integer >= 1, got ${JSON.stringify(retention)}`,
      );
    }
    return { mode, retention: n };
  }
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(retention);
  const ms = m
    ? Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"])
    : NaN;
  if (!(ms >= 1000)) {
    throw new ConfigError(
      label("autoCompactionRetention"),
      `periodic mode keeps a time span: expected a duration with its unit, at least 1s (such as 30m or 1h), got ${JSON.stringify(retention)}`,
    );
  }
  return { mode: "periodic", retentionMs: ms };
}

/** Parses "n1=ws://h:1,n2=ws://h:2" into normalized URLs by member name; `label` names the field in errors. */
export function parseInitialCluster(text: string, label = flagName("initialCluster")): Map<string, string> {
  try {
    return memberMap.parse(text, ".");
  } catch (err) {
    throw new ConfigError(label, `${(err as Error).message}, got ${show(text)}`);
  }
}

function sameHost(a: string, b: string): boolean {
  const wildcard = (h: string) => h === "0.0.0.0" || h === "::";
  return a === b || wildcard(a) || wildcard(b);
}

function tlsFiles(
  port: "client" | "peer",
  cert: string | undefined,
  key: string | undefined,
  ca: string | undefined,
  label: (key: Key) => string,
): TlsFiles | undefined {
  if (cert === undefined && key === undefined) {
    if (ca !== undefined)
      throw new ConfigError(
        label(`${port}CaFile`),
        `given without ${flagName(`${port}CertFile`)} and ${flagName(`${port}KeyFile`)}; TLS needs a certificate and a key`,
      );
    return undefined;
  }
  const both = "TLS needs both a certificate and a key";
  if (cert === undefined)
    throw new ConfigError(flagName(`${port}CertFile`), `required because ${label(`${port}KeyFile`)} is given; ${both}`);
  if (key === undefined)
    throw new ConfigError(flagName(`${port}KeyFile`), `required because ${label(`${port}CertFile`)} is given; ${both}`);
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
