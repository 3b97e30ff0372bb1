// The kinds of value a server option takes, each parsed the same way from a flag, a CONCORD_* variable and a
// string in the config file (commander calls `parse` as the option's argParser; config-file.ts calls it for file
// values). A rejected value throws commander's InvalidArgumentError saying what is accepted; the caller names the
// field and the value.

import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { InvalidArgumentError } from "commander";

export interface ValueKind<T> {
  /** What is accepted, for errors: "a positive integer number of ticks (at most 10000)". */
  expect: string;
  /** Relative paths resolve against `baseDir` (the working directory, or the config file's directory). */
  parse(raw: string, baseDir: string): T;
}

export interface ListenAddress {
  /** Host name or IP address without IPv6 brackets. */
  host: string;
  port: number;
}

export interface WsUrl {
  /** Normalized ws(s)://host:port. */
  url: string;
  listen: ListenAddress;
}

const MIB = 1 << 20;
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const NAME_EXPECT = "1 to 63 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit";

function refuse(expect: string, detail = ""): never {
  throw new InvalidArgumentError(`expected ${expect}${detail === "" ? "" : ` (${detail})`}`);
}

export function matching(pattern: RegExp, expect: string): ValueKind<string> {
  return { expect, parse: (raw) => (pattern.test(raw) ? raw : refuse(expect)) };
}

export function integer(min: number, max: number, unit: string): ValueKind<number> {
  const expect =
    min === 1
      ? `a positive integer number of ${unit} (at most ${max})`
      : `an integer number of ${unit} from ${min} to ${max}`;
  return {
    expect,
    parse: (raw) => {
      const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
      return Number.isSafeInteger(n) && n >= min && n <= max ? n : refuse(expect);
    },
  };
}

const BYTE_UNITS: Record<string, number> = {
  ...{ "": 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9 },
  ...{ kib: 1024, mib: MIB, gib: 1024 * MIB },
};

/** A byte count as an integer or with a unit: 1048576, "1MiB", "1.5 MiB", "64KB". */
export function byteSize(min: number, max: number): ValueKind<number> {
  const expect = `a size in bytes from ${min} to ${max}, as an integer or with a unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. 1.5MiB`;
  return {
    expect,
    parse: (raw) => {
      const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw);
      const unit = m === null ? undefined : BYTE_UNITS[m[2]!.toLowerCase()];
      if (m === null || unit === undefined) return refuse(expect);
      const n = Number(m[1]) * unit;
      if (!Number.isInteger(n)) return refuse(expect, "not a whole number of bytes");
      return Number.isSafeInteger(n) && n >= min && n <= max ? n : refuse(expect);
    },
  };
}

/** 2147483648 → "2GiB", 1572864 → "1.5MiB", 4096 → "4KiB", 1000 → "1000". */
export function formatBytes(n: number): string {
  if (n >= 1024 * MIB && Number.isInteger((n / (1024 * MIB)) * 1000)) return `${n / (1024 * MIB)}GiB`;
  if (n >= MIB && Number.isInteger((n / MIB) * 1000)) return `${n / MIB}MiB`;
  if (n >= 1024 && Number.isInteger((n / 1024) * 1000)) return `${n / 1024}KiB`;
  return String(n);
}

const TRUE = ["true", "1", "yes", "on"];
const FALSE = ["false", "0", "no", "off"];
export const boolean: ValueKind<boolean> = {
  expect: "a boolean (true/false, 1/0, yes/no, on/off)",
  parse(raw) {
    const v = raw.trim().toLowerCase();
    return TRUE.includes(v) ? true : FALSE.includes(v) ? false : refuse(this.expect);
  },
};

/** A path, made absolute; `file` options must name an existing regular file (`pem`: holding a PEM block). */
export function path(kind: "dir" | "file" | "pem"): ValueKind<string> {
  const expect = kind === "dir" ? "a file system path" : kind === "file" ? "an existing readable file" : "a PEM file";
  return {
    expect,
    parse(raw, baseDir) {
      if (raw.trim() === "" || raw.includes("\0")) return refuse("a file system path");
      const absolute = resolve(baseDir, raw);
      if (kind === "dir") return absolute;
      let isFile: boolean;
      try {
        isFile = statSync(absolute).isFile();
      } catch (err) {
        return refuse("an existing readable file", (err as NodeJS.ErrnoException).code ?? (err as Error).message);
      }
      if (!isFile) return refuse("a regular file", "not a file");
      // Catches a swapped or wrong file (a DER file, a key given as the CA) at startup rather than at first TLS use.
      if (kind === "pem" && !readFileSync(absolute, "latin1").includes("-----BEGIN "))
        return refuse("a PEM file (with a -----BEGIN …----- block)");
      return absolute;
    },
  };
}

/** ws(s)://host:port, normalized; anything else (paths, credentials, queries) is refused. */
export const wsUrl: ValueKind<WsUrl> = {
  expect: "a URL ws://host:port or wss://host:port",
  parse(raw) {
    let url: URL;
    try {
      url = new URL(raw.trim());
    } catch {
      return refuse(this.expect, "not a URL");
    }
    if (url.protocol !== "ws:" && url.protocol !== "wss:")
      return refuse(this.expect, `scheme ${url.protocol} is not ws: or wss:`);
    if (url.username !== "" || url.password !== "") return refuse(this.expect, "credentials do not belong in the URL");
    if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "")
      return refuse(this.expect, "no path, query or fragment");
    if (url.hostname === "") return refuse(this.expect, "no host");
    // WHATWG URL drops a port equal to the scheme's default (80 for ws, 443 for wss).
    const port = url.port === "" ? (url.protocol === "ws:" ? 80 : 443) : Number(url.port);
    if (port === 0) return refuse(`${this.expect} with a port from 1 to 65535`);
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    return { url: `${url.protocol}//${url.hostname}:${port}`, listen: { host, port } };
  },
};

/**
 * Member URLs by name: "n1=ws://h:1,n2=ws://h:2" (the config file may give a JSON object { n1: "ws://h:1" }
 * instead, which parseMembers takes as pairs).
 */
export const memberMap: ValueKind<Map<string, string>> = {
  expect: "name=ws://host:port pairs separated by commas, e.g. n1=ws://10.0.0.1:7001,n2=ws://10.0.0.2:7001",
  parse(raw) {
    if (raw.trim() === "") return refuse(this.expect);
    const pairs = raw.split(",").map((part): [string, string] => {
      const eq = part.indexOf("=");
      if (eq < 0) return refuse(this.expect, `'${part.trim()}' is missing '='`);
      return [part.slice(0, eq).trim(), part.slice(eq + 1).trim()];
    });
    return parseMembers(pairs);
  },
};

export function parseMembers(pairs: [string, string][]): Map<string, string> {
  const members = new Map<string, string>();
  for (const [name, url] of pairs) {
    if (!NAME_PATTERN.test(name))
      throw new InvalidArgumentError(`member name '${name}' is invalid: expected ${NAME_EXPECT}`);
    if (members.has(name))
      throw new InvalidArgumentError(`member '${name}' appears more than once; each name must be unique`);
    try {
      members.set(name, wsUrl.parse(url, ".").url);
    } catch (err) {
      throw new InvalidArgumentError(`member ${name}: ${(err as Error).message}`);
    }
  }
  return members;
}

/** Shows a rejected value; secrets are described, never echoed. */
export function show(raw: unknown, secret = false): string {
  if (raw === undefined) return "nothing";
  if (secret) return typeof raw === "string" ? `a secret of ${raw.length} characters` : `a ${typeof raw}`;
  if (typeof raw === "string") return `'${raw.length > 200 ? raw.slice(0, 200) + "…" : raw}'`;
  return JSON.stringify(raw) ?? String(raw);
}
