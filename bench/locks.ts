// Locks and elections benchmark (not a test): applied lock acquire+release pairs per second, and hand-offs per
// second with 1,000 queued waiters (by release, by lease revocation) and 1,000 queued election candidates.
// Commands are pre-encoded (tokens are log indexes, so they are known in advance); the figures include
// decode + validation + apply + the apply-end hook, as on a follower, not the client's encoding.
// Every loop is bounded by a count and by a time budget.
//
//   node --import tsx bench/locks.ts [--pairs 200000] [--handoffs 100000] [--waiters 1000]

import { createCoordinationStateMachine, type Coordination } from "../src/locks/index.js";
import { encodeCommand, type Command } from "../src/statemachine/commands.js";

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}
const PAIRS = arg("pairs", 200_000);
const HANDOFFS = arg("handoffs", 100_000);
const WAITERS = arg("waiters", 1000);
const TIME_BUDGET_MS = 5_000;

function run(c: Coordination, command: Command): unknown {
  const { result } = c.stateMachine.applyCommand(c.stateMachine.lastApplied + 1, command);
  if (!result.ok) throw new Error(`bench setup failed: ${result.error.code} ${result.error.message}`);
  return result.value;
}
function grantLeases(c: Coordination, n: number): number[] {
  return Array.from(
    { length: n },
    () => (run(c, { op: "leaseGrant", ttlMs: 60_000, grantedAt: 0 }) as { id: number }).id,
  );
}

/**
 * Applies `batch(i)` (pre-encoded entries for round i, starting at the next index) round by round until
 * `rounds` or the time budget; returns rounds per second.
 */
function timeRounds(
  c: Coordination,
  rounds: number,
  batch: (i: number, firstIndex: number) => Uint8Array[],
  check: (i: number) => void,
) {
  // Pre-encode in chunks so encoding stays out of the timed part without holding every round in memory.
  const CHUNK = 4096;
  let done = 0;
  let ms = 0;
  while (done < rounds && ms < TIME_BUDGET_MS) {
    const n = Math.min(CHUNK, rounds - done);
    const encoded: Uint8Array[][] = [];
    let index = c.stateMachine.lastApplied + 1;
    for (let i = 0; i < n; i++) {
      const entries = batch(done + i, index);
      encoded.push(entries);
      index += entries.length;
    }
    const start = performance.now();
    for (const entries of encoded) {
      for (const bytes of entries) {
        const { result } = c.stateMachine.apply(c.stateMachine.lastApplied + 1, bytes);
        if (!result.ok) throw new Error(`bench command failed: ${result.error.code} ${result.error.message}`);
      }
    }
    ms += performance.now() - start;
    done += n;
    check(done);
  }
  return { rounds: done, perSec: Math.round((done / ms) * 1000), ms: Math.round(ms) };
}

const rows: Record<string, string | number>[] = [];
const json: Record<string, number> = {};

// 1. Uncontended acquire + release pairs (a few names round-robin, one lease).
{
  const c = createCoordinationStateMachine();
  const [lease] = grantLeases(c, 1);
  const names = ["lock/0", "lock/1", "lock/2", "lock/3"];
  const r = timeRounds(
    c,
    PAIRS,
    (i, first) => {
      const name = names[i % names.length];
      return [
        encodeCommand({ op: "lockAcquire", name, lease }),
        encodeCommand({ op: "lockRelease", name, token: first }),
      ];
    },
    () => {
      for (const name of names) if (c.lockStatus(name).limit !== 0) throw new Error(`${name} still held`);
    },
  );
  rows.push({ benchmark: "acquire+release pairs (uncontended)", count: r.rounds, "per second": r.perSec, ms: r.ms });
  json.lockPairsPerSec = r.perSec;
}

// 2. Hand-off by release with WAITERS queued: the holder releases (the head is granted), then re-queues.
{
  const c = createCoordinationStateMachine();
  const leases = grantLeases(c, WAITERS + 1);
  for (const lease of leases) run(c, { op: "lockAcquire", name: "hot", lease });
  let holder = c.lockStatus("hot").holders[0];
  let queue = [...c.lockStatus("hot").waiters];
  const r = timeRounds(
    c,
    HANDOFFS,
    (_i, first) => {
      // Release at `first` grants the queue head with token `first`; the old holder then queues at the tail.
      const entries = [
        encodeCommand({ op: "lockRelease", name: "hot", token: holder.token }),
        encodeCommand({ op: "lockAcquire", name: "hot", lease: holder.lease }),
      ];
      const next = queue.shift()!;
      queue.push(holder.lease);
      holder = { lease: next, token: first };
      return entries;
    },
    () => {
      const status = c.lockStatus("hot");
      if (status.waiters.length !== WAITERS || status.holders[0].token !== holder.token)
        throw new Error("hand-off model diverged");
      queue = status.waiters;
    },
  );
  rows.push({
    benchmark: `hand-offs by release, ${WAITERS} waiters`,
    count: r.rounds,
    "per second": r.perSec,
    ms: r.ms,
  });
  json.handoffsPerSecRelease = r.perSec;
}

// 3. Hand-off by lease revocation with WAITERS queued: a fresh lease queues, then the holder's lease is revoked.
{
  const c = createCoordinationStateMachine();
  const leases = grantLeases(c, WAITERS + 1);
  for (const lease of leases) run(c, { op: "lockAcquire", name: "hot", lease });
  let holder = c.lockStatus("hot").holders[0].lease;
  let queue = [...c.lockStatus("hot").waiters];
  const r = timeRounds(
    c,
    HANDOFFS,
    (_i, first) => {
      const fresh = first; // the leaseGrant's index is the new lease id
      const entries = [
        encodeCommand({ op: "leaseGrant", ttlMs: 60_000, grantedAt: 0 }),
        encodeCommand({ op: "lockAcquire", name: "hot", lease: fresh }),
        encodeCommand({ op: "leaseRevoke", id: holder }),
      ];
      queue.push(fresh);
      holder = queue.shift()!;
      return entries;
    },
    () => {
      const status = c.lockStatus("hot");
      if (status.waiters.length !== WAITERS || status.holders[0].lease !== holder)
        throw new Error("revoke model diverged");
      queue = status.waiters;
    },
  );
  rows.push({
    benchmark: `hand-offs by lease revoke, ${WAITERS} waiters (3 entries each)`,
    count: r.rounds,
    "per second": r.perSec,
    ms: r.ms,
  });
  json.handoffsPerSecLeaseRevoke = r.perSec;
}

// 4. Election hand-off by resign with WAITERS candidates queued: the leader resigns, then campaigns again.
{
  const c = createCoordinationStateMachine();
  const leases = grantLeases(c, WAITERS + 1);
  const value = new Uint8Array(16);
  for (const lease of leases) run(c, { op: "electionCampaign", name: "svc", lease, value });
  let leader = c.electionLeader("svc")!;
  let token = leader.token;
  let lease = leader.lease;
  let queue = c.electionCandidates("svc").slice(1);
  const r = timeRounds(
    c,
    HANDOFFS,
    (_i, first) => {
      const entries = [
        encodeCommand({ op: "electionResign", name: "svc", token }),
        encodeCommand({ op: "electionCampaign", name: "svc", lease, value }),
      ];
      queue.push(lease);
      lease = queue.shift()!;
      token = first;
      return entries;
    },
    () => {
      leader = c.electionLeader("svc")!;
      if (leader.lease !== lease || leader.token !== token) throw new Error("election model diverged");
      queue = c.electionCandidates("svc").slice(1);
    },
  );
  rows.push({
    benchmark: `leader hand-offs by resign, ${WAITERS} candidates`,
    count: r.rounds,
    "per second": r.perSec,
    ms: r.ms,
  });
  json.electionHandoffsPerSec = r.perSec;
}

console.table(rows);
console.log(JSON.stringify({ bench: "locks", waiters: WAITERS, ...json }));
