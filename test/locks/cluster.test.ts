// Locks and elections on a real Raft cluster (3 RaftNodes, the real coordination state machine on each) over a
// seeded lossy network with partitions and node crashes/restarts (a restarted node rebuilds its state machine
// by re-applying the committed log from its storage). Clients act on what they learned from applied events,
// so they keep using tokens after being deposed. After every apply on every node the invariants of
// invariants.ts hold, and every node applies the same output at each index. Stopgap until test/sim hosts it.

import { describe, expect, it } from "vitest";
import { RaftNode } from "../../src/raft/node.js";
import { MemoryStorage } from "../../src/raft/storage.js";
import { EntryType, type Message, type NodeId } from "../../src/raft/types.js";
import { createCoordinationStateMachine, type Coordination, type CoordinationEvent } from "../../src/locks/index.js";
import { decodeCommand, encodeCommand, type Command, type PutCommand } from "../../src/statemachine/index.js";
import { CoordinationInvariants } from "../../sim/lock-invariants.js";
import { bytes } from "./harness.js";

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

const IDS: NodeId[] = ["n1", "n2", "n3"];
const LOCKS = [
  { name: "a", limit: 1 },
  { name: "sem", limit: 2 },
];
const ELECTIONS = ["e1"];
const canonical = (v: unknown) => JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? `b:${[...x].join(".")}` : x));

interface Host {
  id: NodeId;
  storage: MemoryStorage;
  raft: RaftNode;
  c: Coordination;
  invariants: CoordinationInvariants;
  up: boolean;
}

interface Stats {
  applied: number;
  crashes: number;
  partitions: number;
  leaderElections: number;
  seen: Record<string, number>;
}

function simulate(seed: number, rounds: number, stats: Stats): void {
  const random = rng(seed);
  const chance = (p: number) => random() < p;
  const choose = <T>(list: T[]): T | undefined =>
    list.length === 0 ? undefined : list[Math.floor(random() * list.length)];

  const hosts = new Map<NodeId, Host>();
  const start = (id: NodeId, storage: MemoryStorage): Host => {
    const c = createCoordinationStateMachine();
    const host: Host = {
      id,
      storage,
      raft: new RaftNode(
        { id, rng: rng(seed * 31 + id.charCodeAt(1) + stats.crashes * 7), electionTicks: 10 },
        storage,
      ),
      c,
      invariants: new CoordinationInvariants(c),
      up: true,
    };
    hosts.set(id, host);
    return host;
  };
  for (const id of IDS) start(id, MemoryStorage.bootstrap(IDS));

  /** The first output applied at each index, which every other apply must equal. */
  const outputs = new Map<number, string>();
  // What clients know, learned from applied events (so they may be stale).
  const leases = new Set<number>();
  const grants = new Map<string, { lease: number; token: number }[]>();
  const leaderTokens: number[] = [];
  let inflight: Message[] = [];
  let partitioned: NodeId | null = null;
  let partitionLeft = 0;
  let lastLeader: NodeId | null = null;

  const applyEntry = (host: Host, index: number, data: Uint8Array) => {
    const out = host.c.stateMachine.apply(index, data);
    const text = canonical(out);
    const first = outputs.get(index);
    if (first === undefined) outputs.set(index, text);
    else expect(text, `${host.id} output at ${index}`).toBe(first);
    host.invariants.afterApply(index, out);
    const command = decodeCommand(data);
    if ("op" in command && command.op === "put" && (command as PutCommand).fence) {
      const fence = (command as PutCommand).fence!;
      const writer = Number(new TextDecoder().decode((command as PutCommand).value).split("@")[0]);
      host.invariants.fencedWrite(fence.lock, writer, fence.token, out.result, fence.lease !== undefined);
    }
    for (const w of out.events) {
      if (w.type === "leaseGranted") leases.add(w.id);
      if (w.type === "leaseEnded") leases.delete(w.id);
      if (w.type !== "extension") continue;
      const e = w.event as CoordinationEvent;
      if (e.kind === "lockGranted") {
        if (!grants.has(e.name)) grants.set(e.name, []);
        const list = grants.get(e.name)!;
        if (!list.some((g) => g.token === e.token && g.lease === e.lease))
          list.push({ lease: e.lease, token: e.token });
      }
      if (e.kind === "leadershipGained" && !leaderTokens.includes(e.token)) leaderTokens.push(e.token);
    }
    stats.applied++;
  };

  const processReady = (host: Host) => {
    while (host.raft.hasReady()) {
      const rd = host.raft.ready();
      if (rd.snapshot) host.storage.applySnapshot(rd.snapshot);
      if (rd.hardState) host.storage.setHardState(rd.hardState);
      host.storage.append(rd.entries);
      inflight.push(...rd.messages);
      for (const e of rd.committed) {
        if (e.type === EntryType.Normal && e.data.byteLength > 0) applyEntry(host, e.index, e.data);
      }
      host.raft.advance(rd);
    }
  };

  const propose = (command: Command) => {
    const leader = [...hosts.values()].find((h) => h.up && h.raft.role === "leader");
    if (leader === undefined) return;
    leader.raft.propose(encodeCommand(command));
  };

  const clientStep = (round: number) => {
    const lease = choose([...leases]);
    const r = random();
    if (lease === undefined || r < 0.1) return propose({ op: "leaseGrant", ttlMs: 1000, grantedAt: round });
    const lock = LOCKS[Math.floor(random() * LOCKS.length)];
    const known = grants.get(lock.name) ?? [];
    if (r < 0.35) return propose({ op: "lockAcquire", name: lock.name, lease, limit: lock.limit, wait: chance(0.8) });
    if (r < 0.45) {
      const g = choose(known);
      if (g) propose({ op: "lockRelease", name: lock.name, token: g.token, lease: g.lease });
      return;
    }
    if (r < 0.65) {
      // Recent holds are more likely than ancient ones: clients mostly act on fresh knowledge.
      const g = known.length > 0 ? known[Math.max(0, known.length - 1 - Math.floor(random() * 4))] : undefined;
      if (g)
        propose({
          op: "put",
          key: `res/${lock.name}`,
          value: bytes(`${g.lease}@${g.token}`),
          fence: { lock: lock.name, token: g.token },
        });
      return;
    }
    if (r < 0.75) return propose({ op: "electionCampaign", name: ELECTIONS[0], lease, value: bytes(`v${round}`) });
    if (r < 0.82) {
      const token =
        leaderTokens.length > 0
          ? leaderTokens[Math.max(0, leaderTokens.length - 1 - Math.floor(random() * 3))]
          : undefined;
      if (token !== undefined)
        propose({
          op: chance(0.5) ? "electionResign" : "electionProclaim",
          name: ELECTIONS[0],
          token,
          value: bytes(`p${round}`),
        });
      return;
    }
    if (r < 0.9) return propose({ op: "leaseExpire", ids: [...new Set([lease, choose([...leases])!])] });
    return propose({ op: "leaseRevoke", id: lease });
  };

  for (let round = 0; round < rounds; round++) {
    // Faults: a partition that isolates one node for a while, and crashes with restart.
    if (partitioned === null && chance(0.01)) {
      partitioned = choose(IDS)!;
      partitionLeft = 20 + Math.floor(random() * 60);
      stats.partitions++;
    } else if (partitioned !== null && --partitionLeft <= 0) partitioned = null;
    if (chance(0.005)) {
      const victim = hosts.get(choose(IDS)!)!;
      // Storage is what was persisted (every Ready is persisted before advance); the state machine is lost.
      start(victim.id, victim.storage);
      stats.crashes++;
    }
    for (const host of hosts.values()) host.raft.tick();
    if (chance(0.6)) clientStep(round);
    for (const host of hosts.values()) processReady(host);
    const leader = [...hosts.values()].find((h) => h.raft.role === "leader")?.id ?? null;
    if (leader !== null && leader !== lastLeader) stats.leaderElections++;
    lastLeader = leader ?? lastLeader;
    // Deliver in a shuffled order, dropping 5% and everything crossing the partition.
    const batch = inflight;
    inflight = [];
    for (let i = batch.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [batch[i], batch[j]] = [batch[j], batch[i]];
    }
    for (const m of batch) {
      if (chance(0.05) || m.from === partitioned || m.to === partitioned) continue;
      hosts.get(m.to)!.raft.step(m);
    }
  }
  // Heal and let every node catch up: all must reach the same state.
  for (let i = 0; i < 200; i++) {
    for (const host of hosts.values()) host.raft.tick();
    for (const host of hosts.values()) processReady(host);
    const batch = inflight;
    inflight = [];
    for (const m of batch) hosts.get(m.to)!.raft.step(m);
  }
  const all = [...hosts.values()];
  const applied = all.map((h) => h.c.stateMachine.lastApplied);
  expect(new Set(applied).size, `applied ${applied}`).toBe(1);
  expect(new Set(all.map((h) => h.c.stateMachine.hash())).size).toBe(1);
  for (const host of all)
    for (const [k, v] of Object.entries(host.invariants.seen)) stats.seen[k] = (stats.seen[k] ?? 0) + v;
}

describe("locks on a Raft cluster with partitions and crashes", () => {
  it("keeps every invariant on every node across seeds", () => {
    const stats: Stats = { applied: 0, crashes: 0, partitions: 0, leaderElections: 0, seen: {} };
    const seeds = Number(process.env.LOCKS_CLUSTER_SEEDS ?? 12);
    for (let seed = 1; seed <= seeds; seed++) {
      try {
        simulate(seed, 1500, stats);
      } catch (e) {
        throw new Error(`seed ${seed}: ${(e as Error).message}`, { cause: e });
      }
    }
    console.log("cluster:", stats);
    expect(stats.crashes).toBeGreaterThan(5);
    expect(stats.partitions).toBeGreaterThan(20);
    expect(stats.leaderElections).toBeGreaterThan(seeds);
    expect(stats.seen.grants).toBeGreaterThan(300);
    expect(stats.seen.leaseEndReleases).toBeGreaterThan(50);
    expect(stats.seen.fencedRefused).toBeGreaterThan(50);
    expect(stats.seen.fencedAccepted).toBeGreaterThan(50);
  }, 60_000);
});
