// npm run bench:raft — the Raft core's own throughput ceiling: a 3-node cluster of real RaftNodes in one
// process, no faults, an in-memory "disk" (MemoryStorage, no fsync) and a network that delivers within a few
// virtual time units. Clients propose 128-byte values as fast as batching allows (64 per node per turn, all
// routed to the leader). Reports committed proposals per second of CPU time (process.cpuUsage) over a bounded
// run. Everything is seeded: the same run does the same work every time; only the timing varies.

import { decodeConfChange } from "../src/raft/confchange.js";
import { RaftNode } from "../src/raft/node.js";
import { MemoryStorage } from "../src/raft/storage.js";
import { EntryType, type Message, type NodeId } from "../src/raft/types.js";
import { EventQueue } from "../sim/event-queue.js";
import { Prng } from "../sim/prng.js";

const CPU_BUDGET_US = 5_000_000; // 5 s of CPU
const WALL_LIMIT_MS = 30_000; // … and never more than 30 s of wall time on a busy machine
const PER_NODE_PER_TURN = 64;
const PAYLOAD_BYTES = 128;
const TURN = 10; // virtual time units between proposal turns
const TICK = 100; // virtual time units per tick
const COMPACT_EVERY = 8192;

interface BenchHost {
  id: NodeId;
  node: RaftNode;
  storage: MemoryStorage;
  applied: number;
  appliedProposals: number;
  lastSnapshot: number;
}

const rng = new Prng(2024);
const queue = new EventQueue<() => void>();
let now = 0;
const ids = ["n1", "n2", "n3"];
const hosts = new Map<NodeId, BenchHost>();
for (const id of ids) {
  const storage = MemoryStorage.bootstrap(ids);
  const node = new RaftNode({ id, rng: rng.fork().asFunction() }, storage);
  hosts.set(id, { id, node, storage, applied: 1, appliedProposals: 0, lastSnapshot: 1 });
}

function send(messages: Message[]): void {
  for (const m of messages) queue.push(now + rng.int(1, 5), () => deliver(m));
}

function deliver(m: Message): void {
  const h = hosts.get(m.to)!;
  h.node.step(m);
  drain(h);
}

/** The Ready loop with an in-memory, instantly durable disk. */
function drain(h: BenchHost): void {
  while (h.node.hasReady()) {
    const rd = h.node.ready();
    if (rd.snapshot) h.storage.applySnapshot(rd.snapshot);
    if (rd.hardState) h.storage.setHardState(rd.hardState);
    h.storage.append(rd.entries);
    send(rd.messages);
    for (const e of rd.committed) {
      if (e.type === EntryType.ConfChange) h.node.applyConfChange(decodeConfChange(e.data));
      else if (e.data.byteLength > 0) h.appliedProposals++;
      h.applied = e.index;
    }
    h.node.advance(rd);
    if (h.applied - h.lastSnapshot >= COMPACT_EVERY) {
      h.storage.createSnapshot(h.applied, h.node.status().confState, new Uint8Array());
      h.storage.compact(h.applied - 64);
      h.lastSnapshot = h.applied;
    }
  }
}

function scheduleTicks(h: BenchHost): void {
  queue.push(now + TICK, () => {
    h.node.tick();
    drain(h);
    scheduleTicks(h);
  });
}

const payloads = Array.from({ length: 256 }, () => {
  const p = new Uint8Array(PAYLOAD_BYTES);
  for (let i = 0; i < p.length; i++) p[i] = rng.int(0, 255);
  return p;
});
let proposed = 0;
let refused = 0;

function leader(): BenchHost | undefined {
  for (const h of hosts.values()) if (h.node.role === "leader") return h;
  return undefined;
}

function turn(): void {
  const l = leader();
  if (l) {
    for (let i = 0; i < PER_NODE_PER_TURN * ids.length; i++) {
      try {
        l.node.propose(payloads[proposed & 255]);
        proposed++;
      } catch {
        refused++;
      }
    }
    drain(l);
  }
  queue.push(now + TURN, turn);
}

for (const h of hosts.values()) scheduleTicks(h);
hosts.get("n1")!.node.campaign();
drain(hosts.get("n1")!);
queue.push(TURN, turn);

const cpu0 = process.cpuUsage();
const wall0 = process.hrtime.bigint();
let events = 0;
let cpuUs = 0;
for (;;) {
  const next = queue.pop();
  if (!next) break;
  now = next.time;
  next.event();
  if (++events % 4096 === 0) {
    const c = process.cpuUsage(cpu0);
    cpuUs = c.user + c.system;
    if (cpuUs >= CPU_BUDGET_US || Number(process.hrtime.bigint() - wall0) / 1e6 >= WALL_LIMIT_MS) break;
  }
}
const c = process.cpuUsage(cpu0);
cpuUs = c.user + c.system;
const wallMs = Number(process.hrtime.bigint() - wall0) / 1e6;
const committed = Math.min(...[...hosts.values()].map((h) => h.appliedProposals));
const leaderHost = leader();
const result = {
  bench: "raft",
  nodes: 3,
  payloadBytes: PAYLOAD_BYTES,
  proposalsPerTurnPerNode: PER_NODE_PER_TURN,
  committedOnAllNodes: committed,
  proposed,
  refused,
  cpuSeconds: +(cpuUs / 1e6).toFixed(3),
  wallSeconds: +(wallMs / 1000).toFixed(3),
  committedPerCpuSecond: Math.round(committed / (cpuUs / 1e6)),
  virtualTicks: Math.round(now / TICK),
  events,
  leader: leaderHost?.id ?? null,
  term: leaderHost?.node.term ?? null,
};
console.log(JSON.stringify(result));
console.log(
  `raft core: ${result.committedPerCpuSecond.toLocaleString("en-US")} committed proposals per CPU second ` +
    `(${committed.toLocaleString("en-US")} committed on all 3 nodes in ${result.cpuSeconds} s CPU, ${result.wallSeconds} s wall; ` +
    `${PAYLOAD_BYTES}-byte payloads, ${PER_NODE_PER_TURN} per node per turn)`,
);
if (committed === 0) process.exitCode = 1;
