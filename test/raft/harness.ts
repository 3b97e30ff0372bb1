// A minimal synchronous network of RaftNodes for unit tests: messages are delivered in order, instantly,
// unless a link is cut. (The fault-injecting, seeded network is the simulator, sim/.)
import { decodeConfChange } from "../../src/raft/confchange.js";
import { RaftNode, type RaftConfig } from "../../src/raft/node.js";
import { MemoryStorage } from "../../src/raft/storage.js";
import { EntryType, type Entry, type Message, type NodeId } from "../../src/raft/types.js";

export function seededRng(seed: number): () => number {
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

export class TestCluster {
  readonly nodes = new Map<NodeId, RaftNode>();
  readonly storages = new Map<NodeId, MemoryStorage>();
  readonly applied = new Map<NodeId, Entry[]>();
  readonly reads = new Map<NodeId, { index: number; ctx: string }[]>();
  private readonly cut = new Set<string>();
  /** Messages delivered, for assertions. */
  readonly delivered: Message[] = [];
  /** Optional filter: return false to drop a message. */
  filter: (m: Message) => boolean = () => true;

  constructor(
    ids: NodeId[],
    private readonly overrides: Partial<RaftConfig> = {},
    seed = 1,
  ) {
    let i = 0;
    for (const id of ids) this.add(id, MemoryStorage.bootstrap(ids), seed + i++);
  }

  add(id: NodeId, storage: MemoryStorage, seed: number): RaftNode {
    const node = new RaftNode({ id, rng: seededRng(seed), ...this.overrides }, storage);
    this.nodes.set(id, node);
    this.storages.set(id, storage);
    this.applied.set(id, []);
    this.reads.set(id, []);
    return node;
  }

  node(id: NodeId): RaftNode {
    return this.nodes.get(id)!;
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cutLink(id, other);
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}>${b}`);
    this.cut.add(`${b}>${a}`);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Process every node's Ready and deliver messages until the cluster is quiet. */
  settle(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      const inflight: Message[] = [];
      let busy = false;
      for (const [id, node] of this.nodes) {
        if (!node.hasReady()) continue;
        busy = true;
        const rd = node.ready();
        const st = this.storages.get(id)!;
        if (rd.snapshot) st.applySnapshot(rd.snapshot);
        if (rd.hardState) st.setHardState(rd.hardState);
        st.append(rd.entries);
        inflight.push(...rd.messages);
        for (const e of rd.committed) {
          if (e.type === EntryType.ConfChange) node.applyConfChange(decodeConfChange(e.data));
          else if (e.data.byteLength > 0) this.applied.get(id)!.push(e);
        }
        this.reads.get(id)!.push(...rd.readStates);
        node.advance(rd);
      }
      if (!busy) return;
      for (const m of inflight) {
        if (this.cut.has(`${m.from}>${m.to}`) || !this.filter(m)) continue;
        this.delivered.push(m);
        this.nodes.get(m.to)?.step(m);
      }
    }
    throw new Error("cluster did not settle");
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.node(id).tick();
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) node.tick();
      this.settle();
    }
  }

  elect(id: NodeId): void {
    this.node(id).campaign();
    this.settle();
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.role === "leader").map((n) => n.id);
  }
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
export const text = (e: Entry): string => new TextDecoder().decode(e.data);
