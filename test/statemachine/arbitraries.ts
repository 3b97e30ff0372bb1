// fast-check generators of command templates. A template picks leases and clients by position ("pick"), and
// is resolved against the reference model's state just before it is applied, so random sequences actually hit
// live leases and sessions instead of almost always naming ids that do not exist.

import fc from "fast-check";
import type { Command, TxnOp } from "../../src/statemachine/commands.js";
import type { Limits } from "../../src/statemachine/limits.js";
import type { Model } from "./model.js";

export const TEST_LIMITS: Limits = {
  maxKeyBytes: 8,
  maxValueBytes: 6,
  maxTxnOps: 3,
  maxKeys: 5,
  historyRevisions: 6,
  historyMaxEvents: 9,
  maxSessionResponses: 3,
  minLeaseTtlMs: 100,
  maxLeaseTtlMs: 10_000,
  // The model has no storage quota: one it never reaches (quota.test.ts covers NO_SPACE).
  quotaBytes: 2 ** 40,
};

// Prefix-related keys, multi-byte UTF-8 (é: 2 bytes, 😀: 4), and one over maxKeyBytes.
const key = fc.oneof(
  { weight: 15, arbitrary: fc.constantFrom("a", "a/b", "a/c", "a/b/c", "ab", "b", "é", "😀x") },
  { weight: 1, arbitrary: fc.constant("toolongkey") },
);
const prefixKey = fc.constantFrom("", "a", "a/", "b", "é", "zz");
const value = fc.oneof(
  { weight: 15, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 6 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 7, maxLength: 8 }) },
);
const pick = fc.nat({ max: 7 });

type Template = { kind: string; [k: string]: unknown };

const putT = fc.record({
  kind: fc.constant("put"),
  key,
  value,
  lease: fc.option(pick, { nil: undefined, freq: 3 }),
  prevKv: fc.boolean(),
});
const deleteT = fc.record({ kind: fc.constant("delete"), key, prefix: fc.boolean(), prevKv: fc.boolean() });
/** Half the reads are at a past revision: this many revisions back (-1: one ahead; beyond the history: compacted). */
const pastRevision = fc.option(fc.integer({ min: -1, max: 9 }), { nil: undefined, freq: 2 });
const rangeT = fc.oneof(
  fc.record({
    kind: fc.constant("range"),
    key,
    prefix: fc.constant(false),
    limit: fc.constant(0),
    after: fc.option(key, { nil: undefined }),
    revisionBack: pastRevision,
  }),
  fc.record({
    kind: fc.constant("range"),
    key: prefixKey,
    prefix: fc.constant(true),
    limit: fc.nat({ max: 2 }),
    after: fc.option(key, { nil: undefined }),
    revisionBack: pastRevision,
  }),
);
const compareT = fc.oneof(
  fc.record({ key, target: fc.constant("value"), result: fc.constantFrom("=", "!=", "<", ">"), value }),
  fc.record({
    key,
    target: fc.constantFrom("version", "createRevision", "modRevision", "lease"),
    result: fc.constantFrom("=", "!=", "<", ">"),
    value: fc.nat({ max: 12 }),
  }),
);
const txnOpT = fc.oneof(putT, deleteT, rangeT);
const txnT = fc.record({
  kind: fc.constant("txn"),
  compare: fc.array(compareT, { maxLength: 4 }),
  success: fc.array(txnOpT, { maxLength: 3 }),
  failure: fc.array(txnOpT, { maxLength: 2 }),
});

export const templateArb: fc.Arbitrary<Template> = fc
  .oneof(
    { weight: 6, arbitrary: putT },
    { weight: 2, arbitrary: deleteT },
    { weight: 2, arbitrary: rangeT },
    { weight: 3, arbitrary: txnT },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("compact"), delta: fc.integer({ min: -3, max: 1 }) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("leaseGrant"),
        ttlMs: fc.constantFrom(50, 100, 5000, 5000, 5000, 20_000),
        grantedAt: fc.nat({ max: 1e6 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("leaseRevoke"), lease: pick }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("leaseExpire"), leases: fc.array(pick, { maxLength: 3 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("leaseTimeToLive"), lease: pick }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("leaseList") }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("registerClient"), lease: fc.nat({ max: 2 }) }) },
  )
  .chain((t) =>
    // A third of commands carry a session tag: client by pick, seq 1..6, lowestUnacked 1..seq.
    fc
      .oneof(
        { weight: 2, arbitrary: fc.constant(undefined) },
        {
          weight: 1,
          arbitrary: fc
            .record({ client: fc.nat({ max: 2 }), seq: fc.integer({ min: 1, max: 6 }) })
            .chain(({ client, seq }) =>
              fc.record({ client: fc.constant(client), seq: fc.constant(seq), low: fc.integer({ min: 1, max: seq }) }),
            ),
        },
      )
      .map((session) => ({ ...t, session })),
  );

/** Live lease ids, plus one that never existed, chosen by position modulo their count + 1. */
function leaseId(model: Model, p: unknown): number {
  const ids = [...model.leases.keys()].sort((a, b) => a - b);
  const at = (p as number) % (ids.length + 1);
  return at === ids.length ? 999_999 : ids[at];
}

function resolveOp(t: Template, model: Model): TxnOp {
  switch (t.kind) {
    case "put": {
      const op: TxnOp = { op: "put", key: t.key as string, value: t.value as Uint8Array };
      if (t.lease !== undefined) op.lease = leaseId(model, t.lease);
      if (t.prevKv) op.prevKv = true;
      return op;
    }
    case "delete": {
      const op: TxnOp = { op: "delete", key: t.key as string };
      if (t.prefix) op.prefix = true;
      if (t.prevKv) op.prevKv = true;
      return op;
    }
    default: {
      const op: TxnOp = { op: "range", key: t.key as string };
      if (t.prefix) op.prefix = true;
      if (t.limit) op.limit = t.limit as number;
      if (t.after !== undefined) op.after = t.after as string;
      if (t.revisionBack !== undefined) op.revision = Math.max(1, model.revision - (t.revisionBack as number));
      return op;
    }
  }
}

export function resolve(t: Template, model: Model): Command {
  let c: Command;
  switch (t.kind) {
    case "put":
    case "delete":
    case "range":
      c = resolveOp(t, model);
      break;
    case "txn":
      c = {
        op: "txn",
        compare: t.compare as never,
        success: (t.success as Template[]).map((o) => resolveOp(o, model)),
        failure: (t.failure as Template[]).map((o) => resolveOp(o, model)),
      };
      break;
    case "compact":
      c = { op: "compact", revision: Math.max(1, model.revision + (t.delta as number)) };
      break;
    case "leaseGrant":
      c = { op: "leaseGrant", ttlMs: t.ttlMs as number, grantedAt: t.grantedAt as number };
      break;
    case "leaseRevoke":
      c = { op: "leaseRevoke", id: leaseId(model, t.lease) };
      break;
    case "leaseExpire":
      c = { op: "leaseExpire", ids: (t.leases as number[]).map((p) => leaseId(model, p)) };
      break;
    case "leaseTimeToLive":
      c = { op: "leaseTimeToLive", id: leaseId(model, t.lease) };
      break;
    case "leaseList":
      c = { op: "leaseList" };
      break;
    default:
      c = { op: "registerClient", lease: leaseId(model, t.lease) };
  }
  const s = t.session as { client: number; seq: number; low: number } | undefined;
  if (s !== undefined) {
    const clients = [...model.sessions.keys()].sort((a, b) => a - b);
    const at = s.client % (clients.length + 1);
    const clientId = at === clients.length ? 999_998 : clients[at];
    c.session = { clientId, seq: s.seq, lowestUnacked: s.low };
  }
  return c;
}

/** Results compared as plain data: bytes become hex strings (Buffer and Uint8Array alike), messages are dropped. */
export function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return "0x" + Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("");
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== "message" && x !== undefined) out[k] = normalize(x);
    return out;
  }
  return v;
}
