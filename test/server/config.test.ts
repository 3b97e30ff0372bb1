import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Command } from "commander";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  addServerOptions,
  ConfigError,
  configWarnings,
  deriveClusterId,
  envName,
  flagName,
  formatBytes,
  loadConfig,
  parseInitialCluster,
  redactConfig,
  serverConfig,
  type ServerConfig,
} from "../../src/server/config.js";
import { loadTokens, parseTokens } from "../../src/server/tokens.js";
import { authorize, type AccessRequest, type TokenEntry } from "../../src/host/auth.js";
import { peerAuthInput, peerAuthMode, peerKeys } from "../../src/server/peer-auth.js";
import { createLogger, OnceLogger } from "../../src/server/logger.js";
import { runCli, type CliProcess } from "../client/cli.js";

let dir: string;
const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
/** A peer secret from the environment: what a member of a multi-member cluster needs (or TLS, or --insecure-peers). */
const SECRET = { CONCORD_PEER_SECRET: "s3cr3t-s3cr3t-s3cr3t" };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "concord-config-"));
  for (const f of ["cert.pem", "key.pem", "ca.pem"]) writeFileSync(join(dir, f), PEM);
  writeFileSync(join(dir, "not-pem.der"), Buffer.from([0x30, 0x82, 0x01, 0x0a]));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

/** An option's line in --help, as commander writes it (with the default, choices and variable). */
function helpOf(cmd: Command, flag: string): string {
  return cmd.createHelp().optionDescription(cmd.options.find((o) => o.long === flag)!);
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError, got none");
}

describe("loadConfig: defaults and derived values", () => {
  it("needs only a name and derives a single-member cluster", () => {
    const c = loadConfig(["--name", "n1"], {}, dir);
    expect(c.name).toBe("n1");
    expect(c.dataDir).toBe(join(dir, ".concord", "n1"));
    expect(c.clientUrl).toBe("ws://127.0.0.1:7000");
    expect(c.peerUrl).toBe("ws://127.0.0.1:7001");
    expect(c.clientListen).toEqual({ host: "127.0.0.1", port: 7000 });
    expect([...c.initialCluster]).toEqual([["n1", "ws://127.0.0.1:7001"]]);
    expect([...c.clientUrls]).toEqual([["n1", "ws://127.0.0.1:7000"]]);
    expect(c.clusterId).toBe(deriveClusterId(c.initialCluster));
    expect(c).toMatchObject({
      join: false,
      tickMs: 100,
      electionTicks: 10,
      heartbeatTicks: 1,
      snapshotEntries: 100_000,
      maxRequestBytes: 1.5 * 1024 * 1024,
      maxValueBytes: 1024 * 1024,
      maxInflightPerConnection: 1024,
      maxConnections: 10_000,
      logLevel: "info",
      logFormat: "json",
      repair: false,
      fsync: true,
      tls: {},
    });
    expect(c.peerSecret).toBeUndefined();
  });

  it("derives the same cluster id on every member regardless of list order", () => {
    const a = loadConfig(
      ["--name", "a", "--peer-url", "ws://h1:1", "--initial-cluster", "a=ws://h1:1,b=ws://h2:1"],
      SECRET,
      dir,
    );
    const b = loadConfig(
      [
        "--name",
        "b",
        "--peer-url",
        "ws://h2:1",
        "--client-url",
        "ws://h2:2",
        "--initial-cluster",
        "b=ws://h2:1,a=ws://h1:1",
      ],
      SECRET,
      dir,
    );
    expect(a.clusterId).toBe(b.clusterId);
    expect(a.clusterId).toMatch(/^[0-9a-f]{16}$/);
    const other = loadConfig(
      ["--name", "a", "--peer-url", "ws://h1:1", "--initial-cluster", "a=ws://h1:1,c=ws://h2:1"],
      SECRET,
      dir,
    );
    expect(other.clusterId).not.toBe(a.clusterId);
  });

  it("parses sizes with units and IPv6 listen addresses", () => {
    const c = loadConfig(
      ["--name", "n1", "--max-request-bytes", "2MiB", "--snapshot-bytes", "1.5 GB", "--client-url", "ws://[::1]:9000"],
      {},
      dir,
    );
    expect(c.maxRequestBytes).toBe(2 * 1024 * 1024);
    expect(c.snapshotBytes).toBe(1.5e9);
    expect(c.clientUrl).toBe("ws://[::1]:9000");
    expect(c.clientListen).toEqual({ host: "::1", port: 9000 });
  });

  it("builds the configuration from the CLI's own parsed command", () => {
    const cmd = addServerOptions(new Command("server"), dir).exitOverride();
    cmd.option("--verbose", "a flag of the CLI, not of the server");
    cmd.parse(["--name", "n7", "--tick-ms", "20", "--no-fsync", "--verbose"], { from: "user" });
    const c = serverConfig(cmd, dir);
    expect(c).toMatchObject({ name: "n7", tickMs: 20, fsync: false });
  });

  it("declares a flag, with help naming its environment variable, for every file key", () => {
    const cmd = addServerOptions(new Command("server"));
    const help = cmd.helpInformation();
    for (const key of ["tickMs", "initialCluster", "peerSecret", "authTokensFile", "maxKeyBytes", "fsync"]) {
      expect(help).toContain(flagName(key));
      expect(help).toContain(envName(key));
    }
    expect(help).toContain("--no-fsync");
    expect(helpOf(cmd, "--max-request-bytes")).toContain("(default: 1.5MiB, env: CONCORD_MAX_REQUEST_BYTES)");
    expect(helpOf(cmd, "--log-level")).toContain(
      '(choices: "fatal", "error", "warn", "info", "debug", "trace", "silent"',
    );
    expect(envName("maxInflightPerConnection")).toBe("CONCORD_MAX_INFLIGHT_PER_CONNECTION");
  });

  it("takes the storage quota from --quota-bytes, CONCORD_QUOTA_BYTES or the file, 2GiB by default", () => {
    expect(loadConfig(["--name", "n1"], {}, dir).quotaBytes).toBe(2 * 1024 ** 3);
    expect(loadConfig(["--name", "n1", "--quota-bytes", "8GiB"], {}, dir).quotaBytes).toBe(8 * 1024 ** 3);
    expect(loadConfig(["--name", "n1"], { CONCORD_QUOTA_BYTES: "64MiB" }, dir).quotaBytes).toBe(64 << 20);
    const cfg = file("quota.json", { name: "n1", quotaBytes: "4MiB" });
    expect(loadConfig(["--config", cfg], {}, dir).quotaBytes).toBe(4 << 20);
    expect(helpOf(addServerOptions(new Command("server")), "--quota-bytes")).toMatch(
      /NO_SPACE .*\(default: 2GiB, env: CONCORD_QUOTA_BYTES\)/,
    );
    const e = configError(() => loadConfig(["--name", "n1", "--quota-bytes", "1000"], {}, dir));
    expect(e.field).toBe("arguments");
    expect(e.message).toMatch(
      /option '--quota-bytes <size>' argument '1000' is invalid\. expected a size in bytes from 1048576 to 1099511627776, /,
    );
  });

  it("formats byte sizes for help text", () => {
    expect(formatBytes(2 * 1024 ** 3)).toBe("2GiB");
    expect(formatBytes(1572864)).toBe("1.5MiB");
    expect(formatBytes(4096)).toBe("4KiB");
    expect(formatBytes(1000)).toBe("1000");
  });
});

describe("loadConfig: precedence flag > env > file > default", () => {
  // A setting of each kind, given by ever more sources: the highest one wins. The config file lies in `dir`; the
  // working directory is `cwd`, so relative paths show which one they were resolved against.
  const cwd = () => join(dir, "elsewhere");
  const layers: { key: keyof ServerConfig; flag: string; env: string; file: unknown; expect: () => unknown[] }[] = [
    { key: "tickMs", flag: "12", env: "11", file: 10, expect: () => [100, 10, 11, 12] },
    { key: "maxValueBytes", flag: "3KiB", env: "2KiB", file: "1KiB", expect: () => [1 << 20, 1024, 2048, 3072] },
    { key: "repair", flag: "yes", env: "no", file: true, expect: () => [false, true, false, true] },
    { key: "logLevel", flag: "warn", env: "debug", file: "error", expect: () => ["info", "error", "debug", "warn"] },
    {
      key: "clientUrl",
      ...{ flag: "ws://127.0.0.1:7302", env: "ws://127.0.0.1:7202", file: "ws://127.0.0.1:7102" },
      expect: () => ["ws://127.0.0.1:7000", "ws://127.0.0.1:7102", "ws://127.0.0.1:7202", "ws://127.0.0.1:7302"],
    },
    {
      key: "dataDir",
      ...{ flag: "from-flag", env: "from-env", file: "from-file" },
      expect: () => [
        join(cwd(), ".concord", "n1"),
        join(dir, "from-file"),
        join(cwd(), "from-env"),
        join(cwd(), "from-flag"),
      ],
    },
  ];
  for (const l of layers) {
    it(`${flagName(l.key)}: the flag beats ${envName(l.key)}, which beats the file, which beats the default`, () => {
      const cfg = file(`layers-${l.key}.json`, { name: "n1", [l.key]: l.file });
      const env = { [envName(l.key)]: l.env };
      const values = [
        loadConfig(["--name", "n1"], {}, cwd()),
        loadConfig(["--config", cfg], {}, cwd()),
        loadConfig(["--config", cfg], env, cwd()),
        loadConfig(["--config", cfg, flagName(l.key), l.flag], env, cwd()),
      ].map((c) => c[l.key]);
      expect(values).toEqual(l.expect());
    });
  }

  it("names the source a value came from when a combination is refused", () => {
    const cfg = file("combination.json", { name: "n1", heartbeatTicks: 10 });
    const refused = (argv: string[], env: Record<string, string> = {}) =>
      configError(() => loadConfig(argv, env, dir)).field;
    expect(refused(["--config", cfg])).toBe(`config file ${cfg}: heartbeatTicks`);
    expect(refused(["--config", cfg], { CONCORD_HEARTBEAT_TICKS: "10" })).toBe("CONCORD_HEARTBEAT_TICKS");
    expect(refused(["--config", cfg, "--heartbeat-ticks", "10"], { CONCORD_HEARTBEAT_TICKS: "2" })).toBe(
      "--heartbeat-ticks",
    );
    expect(loadConfig(["--config", cfg], { CONCORD_HEARTBEAT_TICKS: "2" }, dir).heartbeatTicks).toBe(2);
  });

  it("takes each option from the highest source that sets it", () => {
    const cfg = file("precedence.json", {
      name: "n1",
      tickMs: 10,
      electionTicks: 30,
      heartbeatTicks: 3,
      logLevel: "debug",
    });
    const c = loadConfig(
      ["--config", cfg, "--tick-ms", "12"],
      { CONCORD_TICK_MS: "11", CONCORD_ELECTION_TICKS: "21" },
      dir,
    );
    expect(c.tickMs).toBe(12); // flag over env and file
    expect(c.electionTicks).toBe(21); // env over file
    expect(c.heartbeatTicks).toBe(3); // file over default
    expect(c.logLevel).toBe("debug");
    expect(c.snapshotEntries).toBe(100_000); // default
    expect(c.configFile).toBe(cfg);
  });

  it("lets --no-X turn off what the environment or the file turned on", () => {
    const cfg = file("bools.json", { name: "n1", repair: true });
    expect(loadConfig(["--config", cfg], {}, dir).repair).toBe(true);
    expect(loadConfig(["--config", cfg, "--no-repair"], {}, dir).repair).toBe(false);
    expect(loadConfig(["--name", "n1"], { CONCORD_FSYNC: "false" }, dir).fsync).toBe(false);
    expect(loadConfig(["--name", "n1", "--fsync"], { CONCORD_FSYNC: "off" }, dir).fsync).toBe(true);
  });

  it("reads the config file named by CONCORD_CONFIG and resolves its relative paths against the file", () => {
    const cfg = file("relative.json", {
      name: "n2",
      dataDir: "data/n2",
      initialCluster: { n2: "ws://127.0.0.1:7001" },
    });
    const c = loadConfig([], { CONCORD_CONFIG: cfg }, "/");
    expect(c.name).toBe("n2");
    expect(c.dataDir).toBe(join(dir, "data", "n2"));
  });

  it("joins an existing cluster with its id", () => {
    const c = loadConfig(
      [
        "--name",
        "n4",
        "--join",
        "--cluster-id",
        "abc123",
        "--initial-cluster",
        "n1=ws://h1:7001,n4=ws://127.0.0.1:7001",
        "--insecure-peers",
      ],
      {},
      dir,
    );
    expect(c).toMatchObject({ join: true, clusterId: "abc123", insecurePeers: true });
  });

  it("treats an empty environment variable as unset", () => {
    expect(loadConfig(["--name", "n1"], { CONCORD_TICK_MS: "" }, dir).tickMs).toBe(100);
  });
});

describe("loadConfig: every validation error names the field, the value and what is accepted", () => {
  const cases: { name: string; argv: () => string[]; env?: Record<string, string>; field: string; message: RegExp }[] =
    [
      { name: "missing name", argv: () => [], field: "--name", message: /required \(1 to 63 characters/ },
      {
        name: "bad name",
        argv: () => ["--name", "n 1"],
        field: "arguments",
        message: /^arguments: option '--name <name>' argument 'n 1' is invalid\. expected 1 to 63 characters/,
      },
      {
        name: "tick not a number",
        argv: () => ["--name", "n1", "--tick-ms", "abc"],
        field: "arguments",
        message:
          /^arguments: option '--tick-ms <ms>' argument 'abc' is invalid\. expected a positive integer number of milliseconds \(at most 60000\)$/,
      },
      {
        name: "tick zero",
        argv: () => ["--name", "n1", "--tick-ms", "0"],
        field: "arguments",
        message: /option '--tick-ms <ms>' argument '0' is invalid\. expected a positive integer/,
      },
      {
        name: "tick fractional from env",
        argv: () => ["--name", "n1"],
        env: { CONCORD_TICK_MS: "1.5" },
        field: "arguments",
        message:
          /^arguments: option '--tick-ms <ms>' value '1\.5' from env 'CONCORD_TICK_MS' is invalid\. expected a positive integer/,
      },
      {
        name: "election ticks too small",
        argv: () => ["--name", "n1", "--election-ticks", "1"],
        field: "arguments",
        message: /option '--election-ticks <n>' argument '1' is invalid\. .* from 2 to 10000$/,
      },
      {
        name: "heartbeat not below election",
        argv: () => ["--name", "n1", "--election-ticks", "5", "--heartbeat-ticks", "5"],
        field: "--heartbeat-ticks",
        message: /less than the election timeout \(5 ticks\), got 5/,
      },
      {
        name: "size garbage",
        argv: () => ["--name", "n1", "--max-value-bytes", "lots"],
        field: "arguments",
        message:
          /option '--max-value-bytes <size>' argument 'lots' is invalid\. expected a size in bytes .* e\.g\. 1\.5MiB$/,
      },
      {
        name: "size unknown unit",
        argv: () => ["--name", "n1", "--max-value-bytes", "5XB"],
        field: "arguments",
        message: /option '--max-value-bytes <size>' argument '5XB' is invalid/,
      },
      {
        name: "size fraction of a byte",
        argv: () => ["--name", "n1", "--max-key-bytes", "1.5"],
        field: "arguments",
        message: /option '--max-key-bytes <size>' argument '1\.5' is invalid\. .*\(not a whole number of bytes\)$/,
      },
      {
        name: "request smaller than key+value",
        argv: () => ["--name", "n1", "--max-request-bytes", "1MiB"],
        field: "--max-request-bytes",
        message: /at least maxKeyBytes \+ maxValueBytes .* got 1048576/,
      },
      {
        name: "bad bool from env",
        argv: () => ["--name", "n1"],
        env: { CONCORD_JOIN: "maybe" },
        field: "arguments",
        message:
          /option '--join \[bool\]' value 'maybe' from env 'CONCORD_JOIN' is invalid\. expected a boolean \(true\/false/,
      },
      {
        name: "bad log level",
        argv: () => ["--name", "n1", "--log-level", "loud"],
        field: "arguments",
        message:
          /option '--log-level <level>' argument 'loud' is invalid\. Allowed choices are fatal, error, warn, info, debug, trace, silent/,
      },
      {
        name: "bad log format",
        argv: () => ["--name", "n1", "--log-format", "xml"],
        field: "arguments",
        message: /option '--log-format <format>' argument 'xml' is invalid\. Allowed choices are json, pretty/,
      },
      {
        name: "unknown flag",
        argv: () => ["--name", "n1", "--tick", "5"],
        field: "arguments",
        message: /unknown option '--tick'/,
      },
      {
        name: "http url",
        argv: () => ["--name", "n1", "--client-url", "http://127.0.0.1:7000"],
        field: "arguments",
        message:
          /option '--client-url <url>' argument 'http:\/\/127\.0\.0\.1:7000' is invalid\. .*\(scheme http: is not ws: or wss:\)$/,
      },
      {
        name: "not a url",
        argv: () => ["--name", "n1", "--peer-url", "localhost"],
        field: "arguments",
        message: /option '--peer-url <url>' argument 'localhost' is invalid\. .*\(not a URL\)$/,
      },
      {
        name: "url with path",
        argv: () => ["--name", "n1", "--client-url", "ws://h:1/x"],
        field: "arguments",
        message: /option '--client-url <url>' .*no path, query or fragment/,
      },
      {
        name: "url with credentials",
        argv: () => ["--name", "n1", "--client-url", "ws://u:p@h:1"],
        field: "arguments",
        message: /option '--client-url <url>' .*credentials/,
      },
      {
        name: "url port zero",
        argv: () => ["--name", "n1", "--client-url", "ws://h:0"],
        field: "arguments",
        message: /option '--client-url <url>' .*port from 1 to 65535/,
      },
      {
        name: "client and peer on one port",
        argv: () => ["--name", "n1", "--client-url", "ws://127.0.0.1:7001"],
        field: "--peer-url (default)",
        message: /must differ from the client URL/,
      },
      {
        name: "join without other members",
        argv: () => ["--name", "n1", "--join", "--cluster-id", "c1"],
        field: "--initial-cluster",
        message: /with --join, must list the existing members/,
      },
      {
        name: "join without cluster id",
        argv: () => ["--name", "n1", "--join", "--initial-cluster", "n0=ws://h:1,n1=ws://127.0.0.1:7001"],
        field: "--cluster-id",
        message: /required with --join/,
      },
      {
        name: "bad cluster id",
        argv: () => ["--name", "n1", "--cluster-id", "a/b"],
        field: "arguments",
        message: /option '--cluster-id <id>' argument 'a\/b' is invalid/,
      },
      {
        name: "short peer secret, not echoed",
        argv: () => ["--name", "n1", "--peer-secret", "hunter2"],
        field: "--peer-secret",
        message: /16 to 1024 characters .* got a secret of 7 characters$/,
      },
      {
        name: "missing cert file",
        argv: () => ["--name", "n1", "--client-cert-file", join(dir, "nope.pem")],
        field: "arguments",
        message:
          /option '--client-cert-file <file>' argument '.*nope\.pem' is invalid\. expected an existing readable file \(ENOENT\)$/,
      },
      {
        name: "directory as cert",
        argv: () => ["--name", "n1", "--client-cert-file", dir],
        field: "arguments",
        message: /option '--client-cert-file <file>' .*expected a regular file/,
      },
      {
        name: "DER instead of PEM",
        argv: () => ["--name", "n1", "--client-cert-file", join(dir, "not-pem.der")],
        field: "arguments",
        message: /option '--client-cert-file <file>' .*expected a PEM file/,
      },
      {
        name: "cert without key",
        argv: () => ["--name", "n1", "--client-cert-file", join(dir, "cert.pem")],
        field: "--client-key-file",
        message: /required because --client-cert-file is given/,
      },
      {
        name: "key without cert",
        argv: () => ["--name", "n1", "--peer-key-file", join(dir, "key.pem")],
        field: "--peer-cert-file",
        message: /required because --peer-key-file is given/,
      },
      {
        name: "ca alone",
        argv: () => ["--name", "n1", "--client-ca-file", join(dir, "ca.pem")],
        field: "--client-ca-file",
        message: /needs a certificate and a key/,
      },
      {
        name: "peer tls without ca",
        argv: () => [
          "--name",
          "n1",
          "--peer-url",
          "wss://127.0.0.1:7001",
          "--peer-cert-file",
          join(dir, "cert.pem"),
          "--peer-key-file",
          join(dir, "key.pem"),
        ],
        field: "--peer-ca-file",
        message: /mutual TLS/,
      },
      {
        name: "tls but ws url",
        argv: () => [
          "--name",
          "n1",
          "--client-cert-file",
          join(dir, "cert.pem"),
          "--client-key-file",
          join(dir, "key.pem"),
        ],
        field: "--client-url (default)",
        message: /must use wss:/,
      },
      {
        name: "wss url without tls",
        argv: () => ["--name", "n1", "--client-url", "wss://127.0.0.1:7000"],
        field: "--client-url",
        message: /no TLS certificate is configured for the client port/,
      },
      {
        name: "missing tokens file",
        argv: () => ["--name", "n1", "--auth-tokens-file", join(dir, "none.json")],
        field: "arguments",
        message: /option '--auth-tokens-file <file>' .*existing readable file/,
      },
      {
        name: "missing config file",
        argv: () => ["--config", join(dir, "none.json")],
        field: "arguments",
        message: /option '--config <file>' .*existing readable file/,
      },
    ];
  for (const c of cases) {
    it(c.name, () => {
      const err = configError(() => loadConfig(c.argv(), c.env ?? {}, dir));
      expect(err.field).toBe(c.field);
      expect(err.message).toMatch(c.message);
      expect(err.message.startsWith(`${c.field}: `)).toBe(true);
      expect(err.code).toBe("CONFIG_INVALID");
    });
  }

  it("names every unknown key in the config file and lists the accepted ones", () => {
    const cfg = file("unknown.json", { name: "n1", tickMS: 5, colour: "red" });
    const err = configError(() => loadConfig(["--config", cfg], {}, dir));
    expect(err.message).toMatch(/unknown keys 'tickMS', 'colour'; accepted: name, dataDir, .*tickMs/);
  });

  it("rejects a config file that is not JSON, or not an object", () => {
    expect(configError(() => loadConfig(["--config", file("bad.json", "{ name: n1")], {}, dir)).message).toMatch(
      /not valid JSON .* expected an object/,
    );
    expect(configError(() => loadConfig(["--config", file("array.json", [1])], {}, dir)).message).toMatch(
      /expected a JSON object .* got an array/,
    );
  });

  const badFiles: [string, Record<string, unknown>, string, RegExp][] = [
    [
      "a number as true",
      { tickMs: true },
      "tickMs",
      /expected a positive integer number of milliseconds \(at most 60000\), got true$/,
    ],
    [
      "a size with an unknown unit",
      { maxValueBytes: "5XB" },
      "maxValueBytes",
      /expected a size in bytes .*, got '5XB'$/,
    ],
    [
      "a size as an object",
      { snapshotBytes: { mib: 1 } },
      "snapshotBytes",
      /expected a size in bytes .*, got \{"mib":1\}$/,
    ],
    [
      "a boolean as 'maybe'",
      { repair: "maybe" },
      "repair",
      /expected a boolean \(true\/false, 1\/0, yes\/no, on\/off\), got 'maybe'$/,
    ],
    ["a boolean as a number", { fsync: 2 }, "fsync", /expected a boolean .*, got 2$/],
    [
      "a log level not among the choices",
      { logLevel: "loud" },
      "logLevel",
      /expected one of fatal, error, warn, info, debug, trace, silent, got 'loud'$/,
    ],
    [
      "an http URL",
      { clientUrl: "http://h:1" },
      "clientUrl",
      /\(scheme http: is not ws: or wss:\), got 'http:\/\/h:1'$/,
    ],
    [
      "a member with a bad URL",
      { initialCluster: { n1: "tcp://h:1" } },
      "initialCluster",
      /member n1: expected a URL .*scheme tcp:/,
    ],
    [
      "members as an array",
      { initialCluster: ["n1"] },
      "initialCluster",
      /expected name=ws:\/\/host:port pairs .*, got \["n1"\]$/,
    ],
    ["a name as a number", { name: 5 }, "name", /expected 1 to 63 characters .*, got 5$/],
    [
      "a missing certificate (relative to the file)",
      { clientCertFile: "missing.pem" },
      "clientCertFile",
      /expected an existing readable file \(ENOENT\), got 'missing\.pem'$/,
    ],
    [
      "a short peer secret, not echoed",
      { peerSecret: "hunter2" },
      "peerSecret",
      /expected 16 to 1024 characters without whitespace, got a secret of 7 characters$/,
    ],
  ];
  for (const [name, values, key, message] of badFiles) {
    it(`names the config file's key for ${name}`, () => {
      const cfg = file(`bad-${key}.json`, { name: "n1", ...values });
      const err = configError(() => loadConfig(["--config", cfg], {}, dir));
      expect(err.field).toBe(`config file ${cfg}: ${key}`);
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain("hunter2");
    });
  }

  it("refuses the config file key 'config', and a file that is not an object", () => {
    const nested = file("nested.json", { name: "n1", config: "other.json" });
    expect(configError(() => loadConfig(["--config", nested], {}, dir)).message).toMatch(
      /unknown key 'config'; accepted: name, /,
    );
    for (const content of ["null", '"n1"', "5"])
      expect(configError(() => loadConfig(["--config", file("scalar.json", content)], {}, dir)).message).toMatch(
        /expected a JSON object of option names to values, got /,
      );
  });

  it("names the config file and key for a bad value from the file", () => {
    const cfg = file("badvalue.json", { name: "n1", tickMs: -5 });
    const err = configError(() => loadConfig(["--config", cfg], {}, dir));
    expect(err.field).toBe(`config file ${cfg}: tickMs`);
    expect(err.message).toMatch(/got -5$/);
  });
});

describe("concord server: a refused configuration is a usage error (exit 2, one line on stderr)", () => {
  const procs: CliProcess[] = [];
  afterEach(() => procs.splice(0).forEach((p) => p.kill())); // none should still run: each is refused at once

  it("names the flag, the variable or the file key, the value and what is accepted", async () => {
    const cfg = file("cli-bad.json", { name: "n1", electionTicks: "soon" });
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        ["server", "--name", "n1", "--tick-ms", "abc"],
        {},
        /^concord server: INVALID_ARGUMENT: option '--tick-ms <ms>' argument 'abc' is invalid\. expected a positive integer number of milliseconds \(at most 60000\) \(see `concord server --help`\)$/,
      ],
      [
        ["server", "--name", "n1"],
        { CONCORD_MAX_KEY_BYTES: "lots" },
        /^concord server: INVALID_ARGUMENT: option '--max-key-bytes <size>' value 'lots' from env 'CONCORD_MAX_KEY_BYTES' is invalid\. expected a size in bytes/,
      ],
      [
        ["server", "--config", cfg],
        {},
        /^concord server: config file .*cli-bad\.json: electionTicks: expected an integer number of ticks from 2 to 10000, got 'soon'$/,
      ],
      [["server"], {}, /^concord server: --name: required/],
    ];
    const runs = cases.map(([args, env]) => {
      const p = runCli(args, env);
      procs.push(p);
      return p.exited.then((r) => ({ ...r, err: p.stderr(), out: p.stdout() }));
    });
    const results = await Promise.all(runs);
    cases.forEach(([args, , expected], i) => {
      const r = results[i]!;
      expect(r.code, `concord ${args.join(" ")}: ${r.err}`).toBe(2);
      expect(r.out).toBe("");
      expect(r.err.split("\n")).toHaveLength(2);
      expect(r.err.trim()).toMatch(expected);
    });
  });
});

describe("initial cluster", () => {
  it("parses and normalizes members", () => {
    const m = parseInitialCluster("n1=ws://127.0.0.1:7001, n2 = ws://127.0.0.1:7011 ,n3=wss://h3:443");
    expect([...m]).toEqual([
      ["n1", "ws://127.0.0.1:7001"],
      ["n2", "ws://127.0.0.1:7011"],
      ["n3", "wss://h3:443"],
    ]);
  });

  const bad: [string, string, RegExp][] = [
    ["missing '='", "n1=ws://h:1,n2", /\('n2' is missing '='\), got 'n1=ws:\/\/h:1,n2'$/],
    ["bad url", "n1=ws://h:1,n2=tcp://h:2", /member n2: expected a URL .*\(scheme tcp: is not ws: or wss:\)/],
    ["not a url", "n1=ws://h:1,n2=h2", /member n2: expected a URL .*\(not a URL\)/],
    ["duplicate names", "n1=ws://h:1,n1=ws://h:2", /member 'n1' appears more than once/],
    ["bad member name", "n 1=ws://h:1", /member name 'n 1' is invalid/],
    ["empty", " ", /expected name=ws:\/\/host:port pairs/],
  ];
  for (const [name, text, message] of bad) {
    it(`rejects ${name}`, () => {
      const err = configError(() => parseInitialCluster(text));
      expect(err.field.startsWith("--initial-cluster")).toBe(true);
      expect(err.message).toMatch(message);
    });
  }

  it("requires this member in the cluster, with its own peer URL", () => {
    const missing = configError(() =>
      loadConfig(["--name", "n3", "--initial-cluster", "n1=ws://h1:1,n2=ws://h2:1"], {}, dir),
    );
    expect(missing.message).toBe(
      "--initial-cluster: does not contain this member 'n3' (members: n1, n2); add n3=ws://127.0.0.1:7001",
    );
    const mismatch = configError(() => loadConfig(["--name", "n1", "--initial-cluster", "n1=ws://h1:1"], {}, dir));
    expect(mismatch.message).toMatch(
      /gives n1=ws:\/\/h1:1 but this member's peer URL \(--peer-url \(default\)\) is ws:\/\/127.0.0.1:7001/,
    );
  });

  it("rejects two members sharing a peer URL", () => {
    const err = configError(() =>
      loadConfig(["--name", "a", "--peer-url", "ws://h:1", "--initial-cluster", "a=ws://h:1,b=ws://h:1"], {}, dir),
    );
    expect(err.message).toMatch(/members 'a' and 'b' share the peer URL ws:\/\/h:1/);
  });

  it("requires every peer URL to match the peer port's TLS", () => {
    const tls = [
      "--peer-cert-file",
      join(dir, "cert.pem"),
      "--peer-key-file",
      join(dir, "key.pem"),
      "--peer-ca-file",
      join(dir, "ca.pem"),
    ];
    const ok = loadConfig(
      ["--name", "a", "--peer-url", "wss://h:1", ...tls, "--initial-cluster", "a=wss://h:1,b=wss://h2:1"],
      {},
      dir,
    );
    expect(ok.tls.peer).toEqual({ cert: join(dir, "cert.pem"), key: join(dir, "key.pem"), ca: join(dir, "ca.pem") });
    const err = configError(() =>
      loadConfig(
        ["--name", "a", "--peer-url", "wss://h:1", ...tls, "--initial-cluster", "a=wss://h:1,b=ws://h2:1"],
        {},
        dir,
      ),
    );
    expect(err.message).toMatch(/member b has ws:\/\/h2:1, but every peer URL must use wss:/);
  });

  it("checks client URLs of the members", () => {
    const base = [
      "--name",
      "n1",
      "--initial-cluster",
      "n1=ws://127.0.0.1:7001,n2=ws://127.0.0.1:7011",
      "--insecure-peers",
    ];
    const c = loadConfig([...base, "--initial-cluster-clients", "n2=ws://127.0.0.1:7010"], {}, dir);
    expect([...c.clientUrls]).toEqual([
      ["n2", "ws://127.0.0.1:7010"],
      ["n1", "ws://127.0.0.1:7000"],
    ]);
    expect(
      configError(() => loadConfig([...base, "--initial-cluster-clients", "n9=ws://h:1"], {}, dir)).message,
    ).toMatch(/names 'n9', which is not in the initial cluster/);
    expect(
      configError(() => loadConfig([...base, "--initial-cluster-clients", "n1=ws://h:1"], {}, dir)).message,
    ).toMatch(/gives n1=ws:\/\/h:1 but this member's client URL/);
  });

  it("accepts the cluster as an object in the config file", () => {
    const cfg = file("cluster.json", {
      name: "n2",
      peerUrl: "ws://127.0.0.1:7011",
      clientUrl: "ws://127.0.0.1:7010",
      initialCluster: { n1: "ws://127.0.0.1:7001", n2: "ws://127.0.0.1:7011" },
      insecurePeers: true,
    });
    expect([...loadConfig(["--config", cfg], {}, dir).initialCluster.keys()]).toEqual(["n1", "n2"]);
  });
});

describe("peer authentication", () => {
  const members = [
    "--name",
    "n1",
    "--initial-cluster",
    "n1=ws://127.0.0.1:7001,n2=ws://127.0.0.1:7011,n3=ws://127.0.0.1:7021",
  ];
  const peerTls = () => [
    "--peer-url",
    "wss://127.0.0.1:7001",
    "--initial-cluster",
    "n1=wss://127.0.0.1:7001,n2=wss://127.0.0.1:7011",
    "--peer-cert-file",
    join(dir, "cert.pem"),
    "--peer-key-file",
    join(dir, "key.pem"),
    "--peer-ca-file",
    join(dir, "ca.pem"),
  ];
  const tokens = () => ["--auth-tokens-file", file("peer-auth-tokens.json", [])];

  it("refuses a member of a multi-member cluster with neither a secret nor mutual TLS, naming the flags that fix it", () => {
    for (const argv of [
      members,
      ["--name", "n4", "--join", "--cluster-id", "c1", "--initial-cluster", "n1=ws://h1:7001,n4=ws://127.0.0.1:7001"],
    ]) {
      const err = configError(() => loadConfig(argv, {}, dir));
      expect(err.field).toBe("peer authentication");
      for (const fix of [
        "--peer-secret",
        "CONCORD_PEER_SECRET",
        "--peer-cert-file",
        "--peer-key-file",
        "--peer-ca-file",
        "--insecure-peers",
      ])
        expect(err.message).toContain(fix);
      expect(err.message).toMatch(/neither a peer secret nor mutual TLS/);
    }
    expect(configError(() => loadConfig(members, {}, dir)).message).toMatch(/member of a 3-member cluster/);
  });

  it("starts with a secret (flag, environment or file), mutual TLS or --insecure-peers (flag, environment or file); a single member needs none", () => {
    expect(loadConfig([...members, "--peer-secret", "s3cr3t-s3cr3t-s3cr3t"], {}, dir).peerSecret).toBe(
      "s3cr3t-s3cr3t-s3cr3t",
    );
    expect(loadConfig(members, SECRET, dir).peerSecret).toBe("s3cr3t-s3cr3t-s3cr3t");
    const withSecretFile = file("peer-secret.json", { peerSecret: "s3cr3t-s3cr3t-s3cr3t" });
    expect(loadConfig([...members, "--config", withSecretFile], {}, dir).peerSecret).toBe("s3cr3t-s3cr3t-s3cr3t");
    expect(loadConfig(["--name", "n1", ...peerTls()], {}, dir).tls.peer).toBeDefined();
    expect(loadConfig([...members, "--insecure-peers"], {}, dir).insecurePeers).toBe(true);
    expect(loadConfig(members, { CONCORD_INSECURE_PEERS: "1" }, dir).insecurePeers).toBe(true);
    const insecureFile = file("insecure-peers.json", { insecurePeers: true });
    expect(loadConfig([...members, "--config", insecureFile], {}, dir).insecurePeers).toBe(true);
    // --no-insecure-peers takes back what the environment allowed.
    expect(
      configError(() => loadConfig([...members, "--no-insecure-peers"], { CONCORD_INSECURE_PEERS: "true" }, dir)).field,
    ).toBe("peer authentication");
    expect(configError(() => loadConfig(members, { CONCORD_INSECURE_PEERS: "maybe" }, dir)).message).toContain(
      "value 'maybe' from env 'CONCORD_INSECURE_PEERS' is invalid",
    );
    const single = loadConfig(["--name", "n1"], {}, dir);
    expect(single.insecurePeers).toBe(false);
    expect(configWarnings(single)).toEqual([]);
  });

  it("with bearer tokens, needs a peer secret besides mutual TLS (it keys the forwarding proof), unless --insecure-peers", () => {
    const err = configError(() => loadConfig(["--name", "n1", ...peerTls(), ...tokens()], {}, dir));
    expect(err.field).toBe("peer authentication");
    expect(err.message).toMatch(
      /with --auth-tokens-file, members of a multi-member cluster need a peer secret besides mutual TLS/,
    );
    expect(err.message).toContain("--peer-secret");
    expect(loadConfig(["--name", "n1", ...peerTls(), ...tokens()], SECRET, dir).peerSecret).toBeDefined();
    expect(loadConfig(["--name", "n1", ...peerTls(), ...tokens(), "--insecure-peers"], {}, dir).insecurePeers).toBe(
      true,
    );
    expect(loadConfig(["--name", "n1", ...tokens()], {}, dir).authTokensFile).toBeDefined(); // a single member
  });

  it("states the mode really in force, and the redacted config names a secret only when one was given", () => {
    const mode = (argv: string[], env: Record<string, string> = {}) =>
      peerAuthMode(peerAuthInput(loadConfig(argv, env, dir)));
    expect(mode(members, SECRET)).toBe("peer secret");
    expect(mode(["--name", "n1", ...peerTls()])).toBe("mutual TLS");
    expect(mode(["--name", "n1", ...peerTls()], SECRET)).toBe("mutual TLS + secret");
    expect(mode([...members, "--insecure-peers"])).toBe("INSECURE: cluster id as key (--insecure-peers)");
    expect(mode([...members, "--insecure-peers"], SECRET)).toBe("peer secret"); // the secret is what is used
    expect(mode(["--name", "n1"])).toBe("single member: no peer accepted (random key)");

    const insecure = redactConfig(loadConfig([...members, "--insecure-peers"], {}, dir));
    expect(insecure.peerAuth).toBe("INSECURE: cluster id as key (--insecure-peers)");
    expect("peerSecret" in insecure).toBe(false);
    const secret = redactConfig(loadConfig(members, SECRET, dir));
    expect(secret).toMatchObject({ peerAuth: "peer secret", peerSecret: "<redacted>" });
    // Through the real logger, which censors any peerSecret field that exists: none is shown when none was given.
    const out = sink();
    const log = createLogger({ level: "info", format: "json", name: "n1", destination: out.stream });
    log.info({ config: insecure }, "starting");
    log.info({ config: secret }, "starting");
    const [a, b] = out.lines().map((l) => JSON.parse(l) as { config: Record<string, unknown> });
    expect(a!.config.peerSecret).toBeUndefined();
    expect(a!.config.peerAuth).toBe("INSECURE: cluster id as key (--insecure-peers)");
    expect(b!.config.peerSecret).toBe("<redacted>");
    expect(out.lines().join("\n")).not.toContain("s3cr3t");
  });

  it("warns at start when peers are insecure, and that tokens can then be bypassed", () => {
    const insecure = configWarnings(loadConfig([...members, "--insecure-peers"], {}, dir));
    expect(insecure).toHaveLength(1);
    expect(insecure[0]).toMatch(
      /peer authentication is OFF \(--insecure-peers\).*anyone who can reach the peer port can join/,
    );
    const withTokens = configWarnings(loadConfig([...members, "--insecure-peers", ...tokens()], {}, dir));
    expect(withTokens.some((w) => /forwarding proof.*bypass token permissions/.test(w))).toBe(true);
    expect(configWarnings(loadConfig(members, SECRET, dir))).toEqual([]);
  });

  it("keys the handshake and the forwarding proof with nothing a client can learn, unless --insecure-peers", () => {
    let n = 0;
    const random = () => `random-${++n}`;
    const keys = (argv: string[], env: Record<string, string> = {}) => {
      const c = loadConfig(argv, env, dir);
      return { clusterId: c.clusterId, ...peerKeys(peerAuthInput(c), c.clusterId, random) };
    };
    expect(keys(members, SECRET)).toMatchObject({
      handshake: SECRET.CONCORD_PEER_SECRET,
      forward: SECRET.CONCORD_PEER_SECRET,
    });
    // Mutual TLS authenticates peers; without tokens the forwarding proof grants nothing an anonymous client lacks.
    const tls = keys(["--name", "n1", ...peerTls()]);
    expect(tls).toMatchObject({ handshake: tls.clusterId, forward: tls.clusterId });
    const insecure = keys([...members, "--insecure-peers", ...tokens()]);
    expect(insecure).toMatchObject({ handshake: insecure.clusterId, forward: insecure.clusterId });
    // A single member accepts no peer, and with tokens no one can pass for a forwarding member.
    const single = keys(["--name", "n1"]);
    expect(single.handshake).toMatch(/^random-/);
    expect(single.forward).toMatch(/^random-/);
    const singleWithTokens = keys(["--name", "n1", ...tokens()]);
    expect(singleWithTokens.handshake).toMatch(/^random-/);
    expect(singleWithTokens.forward).toMatch(/^random-/);
    expect(singleWithTokens.forward).not.toBe(singleWithTokens.handshake);
  });
});

describe("warnings and redaction", () => {
  it("warns loudly about fsync off and about open ports, and never prints the peer secret", () => {
    const c = loadConfig(
      ["--name", "n1", "--no-fsync", "--client-url", "ws://0.0.0.0:7000", "--peer-url", "ws://0.0.0.0:7001"],
      { CONCORD_PEER_SECRET: "s3cr3t-s3cr3t-s3cr3t" },
      dir,
    );
    const warnings = configWarnings(c);
    expect(warnings.some((w) => /fsync is OFF/.test(w))).toBe(true);
    expect(warnings.some((w) => /client port listens on 0\.0\.0\.0 without authentication/.test(w))).toBe(true);
    expect(warnings.some((w) => /peer port/.test(w))).toBe(false); // a secret is set
    expect(c.peerSecret).toBe("s3cr3t-s3cr3t-s3cr3t");
    expect(JSON.stringify(redactConfig(c))).not.toContain("s3cr3t");
    expect(configWarnings(loadConfig(["--name", "n1"], {}, dir))).toEqual([]);
  });
});

describe("tokens and authorize", () => {
  const tokens = [
    {
      token: "ci-token-0123456789",
      name: "ci",
      permissions: [
        { prefix: "config/", access: "read" },
        { prefix: "config/ci/", access: "write" },
        { lock: "jobs/", access: "write" },
        { election: "", access: "read" },
      ],
    },
    {
      token: "admin-token-0123456789",
      name: "ops",
      permissions: [
        { prefix: "", access: "admin" },
        { cluster: true, access: "admin" },
      ],
    },
  ];

  it("looks up entries by token and loads them from a file", () => {
    const table = loadTokens(file("tokens.json", tokens));
    expect(table.size).toBe(2);
    expect(table.lookup("ci-token-0123456789")?.name).toBe("ci");
    expect(table.lookup("ci-token-012345678")).toBeUndefined();
    expect(table.lookup("")).toBeUndefined();
  });

  const ci = parseTokens(JSON.stringify(tokens), "t").lookup("ci-token-0123456789")!;
  const ops = parseTokens(JSON.stringify(tokens), "t").lookup("admin-token-0123456789")!;
  const table: [string, TokenEntry, AccessRequest, boolean][] = [
    ["read under a read prefix", ci, { kind: "key", name: "config/db/url", access: "read" }, true],
    ["write under a read-only prefix", ci, { kind: "key", name: "config/db/url", access: "write" }, false],
    ["write under the narrower write prefix", ci, { kind: "key", name: "config/ci/x", access: "write" }, true],
    ["write ⊇ read", ci, { kind: "key", name: "config/ci/x", access: "read" }, true],
    ["admin not implied by write", ci, { kind: "key", name: "config/ci/x", access: "admin" }, false],
    ["key outside every prefix", ci, { kind: "key", name: "secrets/x", access: "read" }, false],
    ["range over a wider prefix than granted", ci, { kind: "key", name: "config", access: "read" }, false],
    ["whole keyspace range", ci, { kind: "key", name: "", access: "read" }, false],
    ["lock under a lock prefix", ci, { kind: "lock", name: "jobs/nightly", access: "write" }, true],
    ["key permission does not grant locks", ci, { kind: "lock", name: "config/x", access: "read" }, false],
    ["election read on all names", ci, { kind: "election", name: "anything", access: "read" }, true],
    ["election campaign needs write", ci, { kind: "election", name: "anything", access: "write" }, false],
    ["cluster without a cluster permission", ci, { kind: "cluster", name: "", access: "read" }, false],
    ["admin ⊇ write on keys", ops, { kind: "key", name: "x", access: "write" }, true],
    ["admin key prefix does not grant locks", ops, { kind: "lock", name: "x", access: "read" }, false],
    ["cluster admin", ops, { kind: "cluster", name: "member-add", access: "admin" }, true],
  ];
  for (const [name, entry, request, allowed] of table) {
    it(`${allowed ? "allows" : "denies"}: ${name}`, () => expect(authorize(entry, request)).toBe(allowed));
  }

  const malformed: [string, unknown, RegExp][] = [
    ["not JSON", "[{", /not valid JSON/],
    ["not an array", { token: "x" }, /expected a JSON array/],
    ["entry not an object", ["x"], /\[0\]: expected an object \{ token, name, permissions \}, got 'x'/],
    [
      "short token, not echoed",
      [{ token: "short", name: "a", permissions: [] }],
      /\[0\]\.token: expected a string of at least 16 characters without whitespace, got a secret of 5 characters$/,
    ],
    ["bad name", [{ token: "t".repeat(16), name: "", permissions: [] }], /\[0\]\.name: expected 1 to 63/],
    [
      "permissions not an array",
      [{ token: "t".repeat(16), name: "a", permissions: {} }],
      /\[0\]\.permissions: expected an array/,
    ],
    [
      "unknown entry key",
      [{ token: "t".repeat(16), name: "a", permissions: [], role: "x" }],
      /\[0\]: unknown key 'role'/,
    ],
    [
      "bad access",
      [{ token: "t".repeat(16), name: "a", permissions: [{ prefix: "", access: "all" }] }],
      /\[0\]\.permissions\[0\]\.access: expected one of read, write, admin, got 'all'/,
    ],
    [
      "two targets",
      [{ token: "t".repeat(16), name: "a", permissions: [{ prefix: "", lock: "", access: "read" }] }],
      /exactly one of prefix, lock, election, cluster besides access, got prefix, lock/,
    ],
    [
      "unknown target",
      [{ token: "t".repeat(16), name: "a", permissions: [{ table: "x", access: "read" }] }],
      /unknown key 'table'/,
    ],
    [
      "prefix not a string",
      [{ token: "t".repeat(16), name: "a", permissions: [{ prefix: 5, access: "read" }] }],
      /\.prefix: expected a string name prefix/,
    ],
    [
      "cluster not true",
      [{ token: "t".repeat(16), name: "a", permissions: [{ cluster: "yes", access: "read" }] }],
      /\.cluster: expected true/,
    ],
    [
      "duplicate token",
      [
        { token: "t".repeat(16), name: "a", permissions: [] },
        { token: "t".repeat(16), name: "b", permissions: [] },
      ],
      /\[1\]\.token: the same token as entry 'a'/,
    ],
    [
      "duplicate name",
      [
        { token: "t".repeat(16), name: "a", permissions: [] },
        { token: "u".repeat(16), name: "a", permissions: [] },
      ],
      /\[1\]\.name: 'a' is used by an earlier entry/,
    ],
  ];
  for (const [name, content, message] of malformed) {
    it(`rejects a tokens file: ${name}`, () => {
      const err = configError(() =>
        parseTokens(typeof content === "string" ? content : JSON.stringify(content), "tokens.json"),
      );
      expect(err.message.startsWith("tokens file tokens.json")).toBe(true);
      expect(err.message).toMatch(message);
    });
  }

  const schemaErrors: [string, unknown, string, RegExp][] = [
    [
      "a missing token",
      [{ name: "a", permissions: [] }],
      "[0].token",
      /expected a string of at least 16 characters without whitespace, got nothing$/,
    ],
    [
      "a token with whitespace",
      [{ token: "a b c d e f g h i j", name: "a", permissions: [] }],
      "[0].token",
      /got a secret of 19 characters$/,
    ],
    [
      "missing permissions",
      [{ token: "t".repeat(16), name: "a" }],
      "[0].permissions",
      /expected an array of permissions, got nothing$/,
    ],
    [
      "a permission that is not an object",
      [{ token: "t".repeat(16), name: "a", permissions: ["read"] }],
      "[0].permissions[0]",
      /expected \{ "prefix" \| "lock" \| "election"/,
    ],
    [
      "a permission without a target",
      [{ token: "t".repeat(16), name: "a", permissions: [{ access: "read" }] }],
      "[0].permissions[0]",
      /exactly one of prefix, lock, election, cluster besides access, got none$/,
    ],
    [
      "a permission without access",
      [{ token: "t".repeat(16), name: "a", permissions: [{ lock: "" }] }],
      "[0].permissions[0].access",
      /expected one of read, write, admin, got nothing$/,
    ],
    [
      "a second entry's lock prefix",
      [
        { token: "t".repeat(16), name: "a", permissions: [] },
        { token: "u".repeat(16), name: "b", permissions: [{ lock: null, access: "read" }] },
      ],
      "[1].permissions[0].lock",
      /expected a string name prefix \("" for all\), got null$/,
    ],
  ];
  for (const [name, content, where, message] of schemaErrors) {
    it(`names the entry and field of a tokens file with ${name}`, () => {
      const err = configError(() => parseTokens(JSON.stringify(content), "t.json"));
      expect(err.field).toBe(`tokens file t.json${where}`);
      expect(err.message).toMatch(message);
      expect(err.message).not.toMatch(/a b c|tttt/);
    });
  }

  it("names an unreadable tokens file", () => {
    expect(configError(() => loadTokens(join(dir, "absent.json"))).message).toMatch(
      /tokens file .*absent\.json: cannot read it: ENOENT/,
    );
  });
});

// The logger lives in src/server/logger.ts; its tests sit here because logLevel/logFormat are configuration.
function sink(): { stream: Writable; lines: () => string[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString("utf8"));
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter((l) => l !== ""),
  };
}

describe("logging", () => {
  it("writes JSON lines with name, level, ISO time, and redacts secrets", () => {
    const out = sink();
    const log = createLogger({ level: "info", format: "json", name: "n1", destination: out.stream });
    log.debug("not at info");
    log.info({ config: { peerSecret: "very-secret-value", tickMs: 100 }, token: "tok-123456789012345" }, "started");
    const lines = out.lines();
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 30,
      name: "n1",
      msg: "started",
      token: "<redacted>",
      config: { peerSecret: "<redacted>", tickMs: 100 },
    });
    expect(new Date(line.time as string).toISOString()).toBe(line.time);
    expect(lines[0]).not.toContain("very-secret-value");
  });

  it("writes human-readable lines in pretty format", async () => {
    const out = sink();
    const log = createLogger({ level: "debug", format: "pretty", name: "n2", destination: out.stream });
    log.debug({ term: 3 }, "became leader");
    await new Promise((resolve) => setTimeout(resolve, 20));
    const text = out.lines().join("\n");
    expect(text).toMatch(/DEBUG.*\(n2\).*became leader/);
    expect(text).toMatch(/term: 3/);
    expect(text.trimStart().startsWith("{")).toBe(false);
  });

  it("OnceLogger logs a (key, reason) once until reset, and again when the reason changes", () => {
    const out = sink();
    const once = new OnceLogger(createLogger({ level: "info", format: "json", name: "n1", destination: out.stream }));
    expect(once.log("warn", "peer:n2", "cluster id mismatch", { remote: "10.0.0.2" })).toBe(true);
    expect(once.log("warn", "peer:n2", "cluster id mismatch")).toBe(false);
    expect(once.log("warn", "peer:n2", "cluster id mismatch")).toBe(false);
    expect(once.log("warn", "peer:n3", "cluster id mismatch")).toBe(true);
    expect(once.log("warn", "peer:n2", "bad secret")).toBe(true);
    expect(once.log("warn", "peer:n2", "bad secret")).toBe(false);
    expect(once.reset("peer:n2")).toBe(1);
    expect(once.log("warn", "peer:n2", "bad secret")).toBe(true);
    const lines = out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.key, l.reason, l.previousReasonRepeats])).toEqual([
      ["peer:n2", "cluster id mismatch", undefined],
      ["peer:n3", "cluster id mismatch", undefined],
      ["peer:n2", "bad secret", 2],
      ["peer:n2", "bad secret", undefined],
    ]);
    expect(lines[0]).toMatchObject({ level: 40, remote: "10.0.0.2", msg: "cluster id mismatch" });
  });

  it("OnceLogger forgets the least recently logged key beyond its bound", () => {
    const out = sink();
    const once = new OnceLogger(
      createLogger({ level: "info", format: "json", name: "n1", destination: out.stream }),
      2,
    );
    once.log("info", "a", "r");
    once.log("info", "b", "r");
    once.log("info", "c", "r"); // evicts a
    expect(once.size).toBe(2);
    expect(once.log("info", "b", "r")).toBe(false);
    expect(once.log("info", "a", "r")).toBe(true);
    expect(
      () => new OnceLogger(createLogger({ level: "info", format: "json", name: "x", destination: out.stream }), 0),
    ).toThrow(/maxKeys: expected a positive integer, got 0/);
  });
});
