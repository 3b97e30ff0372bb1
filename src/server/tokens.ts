// The bearer-token file (--auth-tokens-file): its schema, and the lookup table built from it. What the
// permissions mean is src/host/auth.ts. A rejected file raises a ConfigError naming the entry and field
// (`tokens file t.json[0].permissions[1].access`) and what is accepted; tokens are never echoed.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Permission, TokenEntry, TokenTable } from "../host/auth.js";
import { ConfigError } from "./config.js";
import { NAME_EXPECT, NAME_PATTERN, show } from "./config-values.js";
import { loadZod } from "./zod.js";

const { z } = loadZod();

const MIN_TOKEN_LENGTH = 16;
const SHAPE = `[{ "token": "…", "name": "ci", "permissions": [{ "prefix": "config/", "access": "read" | "write" | "admin" }, { "lock": "jobs/", "access": "write" }, { "election": "", "access": "read" }, { "cluster": true, "access": "admin" }] }]`;
const TARGETS = { prefix: "key", lock: "lock", election: "election", cluster: "cluster" } as const;
const EXACTLY_ONE = "exactly one of prefix, lock, election, cluster besides access";

/** A string matching `pattern`, else "expected <expect>, got <value>". */
const text = (pattern: RegExp, expect: string, secret = false) => {
  const error = (i: { input: unknown }) => `expected ${expect}, got ${show(i.input, secret)}`;
  return z.string({ error }).regex(pattern, { error });
};
const namePrefix = z.string({ error: (i) => `expected a string name prefix ("" for all), got ${show(i.input)}` });
const unknownKeys = (keys: string[], accepted: string) =>
  `unknown key${keys.length > 1 ? "s" : ""} ${keys.map((k) => `'${k}'`).join(", ")}; ${accepted}`;

const permission = z
  .strictObject(
    {
      access: z.enum(["read", "write", "admin"], {
        error: (i) => `expected one of read, write, admin, got ${show(i.input)}`,
      }),
      prefix: namePrefix.optional(),
      lock: namePrefix.optional(),
      election: namePrefix.optional(),
      cluster: z.literal(true, { error: (i) => `expected true, got ${show(i.input)}` }).optional(),
    },
    {
      error: (i) =>
        i.code === "unrecognized_keys"
          ? unknownKeys(i.keys, `expected ${EXACTLY_ONE}`)
          : `expected { "prefix" | "lock" | "election": "<name prefix>", "access": "read" | "write" | "admin" } or { "cluster": true, "access": … }, got ${show(i.input)}`,
    },
  )
  .superRefine((p, ctx) => {
    const given = Object.keys(TARGETS).filter((t) => p[t as keyof typeof TARGETS] !== undefined);
    if (given.length !== 1)
      ctx.addIssue({
        code: "custom",
        message: `expected ${EXACTLY_ONE}, got ${given.length === 0 ? "none" : given.join(", ")}`,
      });
  })
  .transform((p): Permission => {
    const target = (Object.keys(TARGETS) as (keyof typeof TARGETS)[]).find((t) => p[t] !== undefined)!;
    return { kind: TARGETS[target], prefix: target === "cluster" ? "" : (p[target] as string), access: p.access };
  });

const entry = z.strictObject(
  {
    token: text(
      new RegExp(`^\\S{${MIN_TOKEN_LENGTH},}$`),
      `a string of at least ${MIN_TOKEN_LENGTH} characters without whitespace`,
      true,
    ),
    name: text(NAME_PATTERN, NAME_EXPECT),
    permissions: z.array(permission, { error: (i) => `expected an array of permissions, got ${show(i.input)}` }),
  },
  {
    error: (i) =>
      i.code === "unrecognized_keys"
        ? unknownKeys(i.keys, "accepted: token, name, permissions")
        : `expected an object { token, name, permissions }, got ${show(i.input)}`,
  },
);

const tokensFile = z
  .array(entry, { error: () => `expected a JSON array of token entries like ${SHAPE}` })
  .superRefine((entries, ctx) => {
    const nameOfToken = new Map<string, string>();
    const names = new Set<string>();
    entries.forEach(({ token, name }, i) => {
      if (names.has(name))
        ctx.addIssue({
          code: "custom",
          path: [i, "name"],
          message: `'${name}' is used by an earlier entry; names must be unique`,
        });
      const other = nameOfToken.get(token);
      if (other !== undefined)
        ctx.addIssue({
          code: "custom",
          path: [i, "token"],
          message: `the same token as entry '${other}'; every token must be unique`,
        });
      names.add(name);
      nameOfToken.set(token, name);
    });
  });

function hashToken(token: string): string {
  // The table is keyed by a hash so that lookup time leaks nothing useful about the stored tokens.
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Parses the token file's text; `source` names it in errors. */
export function parseTokens(text: string, source: string): TokenTable {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`tokens file ${source}`, `not valid JSON (${(err as Error).message}); expected ${SHAPE}`);
  }
  const result = tokensFile.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ConfigError(`tokens file ${source}${z.core.toDotPath(issue.path)}`, issue.message);
  }
  const byHash = new Map<string, TokenEntry>(
    result.data.map(({ token, name, permissions }) => [hashToken(token), { name, permissions }]),
  );
  return { lookup: (token: string) => byHash.get(hashToken(token)), size: byHash.size };
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
