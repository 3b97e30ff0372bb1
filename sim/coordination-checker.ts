// State-machine checks across the whole cluster, after every applied index on every node:
//
// - identical outputs: every node that applies index i gets deeply equal results and events (same fields, same
//   values, same bytes, same event order), whether it applied from the start, after a restart from its snapshot, or after installing a
//   leader's snapshot;
// - the lock and election rules (test/locks/invariants.ts, CoordinationInvariants): at most `limit` holders,
//   tokens are granting indexes and strictly increase per plain lock, grants only to live leases, fenced
//   store writes only from a current holder, one leader per election with strictly increasing tokens, observe
//   never skips a change. One model is fed the first application of each index (the committed sequence, in
//   order: a node applies i only after i-1), reading lock/election state from the node that applied it; the
//   identical-outputs check extends each verdict to every other node.
// - identical snapshots: state-machine snapshots taken at the same index are byte-identical on every node;
// - a registry of every grant (lock → token → lease), which the simulated fenced resource consults: it must
//   never accept a token that the log did not grant to that writer.

import { unpack } from "msgpackr";
import type { Coordination, CoordinationEvent } from "../src/locks/index.js";
import type { ApplyOutput } from "../src/statemachine/index.js";
import { CoordinationInvariantViolation, CoordinationInvariants } from "./lock-invariants.js";
import { dataKey } from "./entry-data.js";
import { InvariantViolation } from "./invariants.js";

export interface CoordinationStats {
  grants: number;
  releases: number;
  leaseEndReleases: number;
  leaderChanges: number;
  fencedAccepted: number;
  fencedRefused: number;
  outputsCompared: number;
}

export class CoordinationChecker {
  private readonly invariants: CoordinationInvariants;
  /** The replica whose state the invariants read: the one that applied the index being checked. */
  private reading: Coordination | null = null;
  /** Per index: the first node's output and which node it was. Outputs are immutable once returned. */
  private readonly outputs = new Map<number, { output: ApplyOutput; by: string }>();
  /** lock → token → lease, for every grant the log made. */
  private readonly grants = new Map<string, Map<number, number>>();
  /** Per index: the first state-machine snapshot taken there. */
  private readonly snapshots = new Map<number, { key: string; by: string }>();
  private outputsCompared = 0;
  /** (clientId, seq) of every fenced write applied, to tell a session's retry from a new write. */
  private readonly sessionWrites = new Set<string>();
  checks = 0;

  constructor() {
    const reading = (): Coordination => this.reading!;
    this.invariants = new CoordinationInvariants({
      lockStatus: (name) => reading().lockStatus(name),
      electionLeader: (name) => reading().electionLeader(name),
      electionHistory: (name, from) => reading().electionHistory(name, from),
    });
  }

  /**
   * `host` applied the command `data` at `index` with `output`; `coordination` is its state right after.
   * Returns true when this is the first application of `index` anywhere (the committed stream, in order).
   */
  applied(host: string, index: number, data: Uint8Array, output: ApplyOutput, coordination: Coordination): boolean {
    this.checks++;
    const seen = this.outputs.get(index);
    if (seen !== undefined) {
      this.outputsCompared++;
      if (!deepEqual(seen.output, output)) {
        throw new InvariantViolation(
          "identical outputs",
          `${host} applied index ${index} with output ${describeOutput(output)}, but ${seen.by} got a different one`,
        );
      }
      return false;
    }
    this.outputs.set(index, { output, by: host });
    this.reading = coordination;
    try {
      this.invariants.afterApply(index, output);
      const fence = fenceOf(data);
      // A retry of a write its session already applied is answered from the record (exactly once): the outcome of
      // the first application, when that was judged; not a new write.
      const retry = fence?.session !== undefined && this.sessionWrites.has(fence.session);
      if (fence?.session !== undefined) this.sessionWrites.add(fence.session);
      if (fence !== null && !retry) {
        this.invariants.fencedWrite(fence.lock, fence.lease, fence.token, output.result, fence.named);
      }
    } catch (e) {
      if (e instanceof CoordinationInvariantViolation) {
        throw new InvariantViolation("lock/election rules", `at index ${index} on ${host}: ${e.message}`);
      }
      throw e;
    } finally {
      this.reading = null;
    }
    for (const wrapped of output.events) {
      if (wrapped.type !== "extension") continue;
      const e = wrapped.event as CoordinationEvent;
      if (e.kind !== "lockGranted") continue;
      let byToken = this.grants.get(e.name);
      if (byToken === undefined) this.grants.set(e.name, (byToken = new Map()));
      byToken.set(e.token, e.lease);
    }
    return true;
  }

  /** A host snapshotted its state machine at `index`: every snapshot of one index has the same bytes. */
  snapshotTaken(host: string, index: number, data: Uint8Array): void {
    this.checks++;
    const key = dataKey(data);
    const seen = this.snapshots.get(index);
    if (seen === undefined) this.snapshots.set(index, { key, by: host });
    else if (seen.key !== key) {
      throw new InvariantViolation(
        "identical snapshots",
        `${host}'s state-machine snapshot at index ${index} differs from ${seen.by}'s (${data.length} vs ${seen.key.length} bytes)`,
      );
    }
  }

  /** The lease the log granted `lock` to with `token`, if any. */
  grantedTo(lock: string, token: number): number | undefined {
    return this.grants.get(lock)?.get(token);
  }

  stats(): CoordinationStats {
    const s = this.invariants.seen;
    return {
      grants: s.grants,
      releases: s.releases,
      leaseEndReleases: s.leaseEndReleases,
      leaderChanges: s.leaderChanges,
      fencedAccepted: s.fencedAccepted,
      fencedRefused: s.fencedRefused,
      outputsCompared: this.outputsCompared,
    };
  }
}

/** The fence of a fenced put (the simulated clients bind it to their lease) and its session tag, or null. */
/** A fenced put's fence, with the writer's lease (the key's lease) and whether the fence names it. */
function fenceOf(
  data: Uint8Array,
): { lock: string; token: number; lease: number; named: boolean; session?: string } | null {
  let raw: unknown;
  try {
    raw = unpack(data.subarray(1));
  } catch {
    return null; // not a command at all: the state machine refused it, nothing fenced happened
  }
  if (typeof raw !== "object" || raw === null) return null;
  const c = raw as {
    op?: unknown;
    fence?: { lock?: unknown; token?: unknown; lease?: unknown };
    lease?: unknown;
    session?: { clientId?: unknown; seq?: unknown };
  };
  if (c.op !== "put" || c.fence === undefined) return null;
  const { lock, token } = c.fence;
  if (typeof lock !== "string" || typeof token !== "number" || typeof c.lease !== "number") return null;
  const named = c.fence.lease !== undefined;
  if (named && c.fence.lease !== c.lease) return null; // the clients name only their own lease
  const session = c.session !== undefined ? `${String(c.session.clientId)}/${String(c.session.seq)}` : undefined;
  return { lock, token, lease: c.lease, named, session };
}

/** Structural equality of plain data: primitives, Uint8Arrays, arrays and objects (same own keys). */
function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i]) return false; // same field order too: outputs are built by the same code path
    if (!deepEqual((a as Record<string, unknown>)[ka[i]], (b as Record<string, unknown>)[kb[i]])) return false;
  }
  return true;
}

function describeOutput(output: ApplyOutput): string {
  const text = JSON.stringify(output, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v));
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
