// Shared helpers for the storage tests: temp directories, a seeded PRNG, comparable log states and a
// random workload that drives a DurableStorage while recording the exact state after every operation.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { MemoryStorage, type Storage } from "../../src/raft/storage.js";
import { EntryType, type ConfState, type Entry, type HardState, type Snapshot } from "../../src/raft/types.js";
import type { DurableStorage } from "../../src/storage/durable-storage.js";

export function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `concord-storage-${label}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** mulberry32: small, seeded, good enough for test workloads. */
export function prng(seed: number): { next(): number; int(lo: number, hi: number): number } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)) };
}

export const entry = (index: number, term: number, data: Uint8Array | number[] = [index & 0xff]): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: data instanceof Uint8Array ? data : new Uint8Array(data),
});

export interface LogState {
  snapIndex: number;
  snapTerm: number;
  firstIndex: number;
  lastIndex: number;
  hardState: HardState;
  entries: string[];
}

/** A snapshot of applied state at `index` of `log`, as a host builds one for saveSnapshot. */
export function snapshotAt(log: Storage, index: number, confState: ConfState, data: Uint8Array): Snapshot {
  return { metadata: { index, term: log.term(index), confState }, data };
}

/** A plain, comparable picture of a log. */
export function logState(log: Storage): LogState {
  const snap = log.snapshot().metadata;
  const entries = log.lastIndex() >= log.firstIndex() ? log.entries(log.firstIndex(), log.lastIndex() + 1) : [];
  return {
    snapIndex: snap.index,
    snapTerm: snap.term,
    firstIndex: log.firstIndex(),
    lastIndex: log.lastIndex(),
    hardState: log.initialState().hardState,
    entries: entries.map((e) => `${e.index}/${e.term}/${e.type}/${Buffer.from(e.data).toString("hex")}`),
  };
}

export interface CapturedWarning {
  obj: Record<string, unknown>;
  msg: string;
}

export function captureLogger(): { warnings: CapturedWarning[]; warn(obj: object, msg: string): void } {
  const warnings: CapturedWarning[] = [];
  return { warnings, warn: (obj, msg) => warnings.push({ obj: obj as Record<string, unknown>, msg }) };
}

/** One Ready-like operation of the random workload. */
export interface WorkloadOp {
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  /** saveSnapshot at this index instead of save */
  snapshotAt?: number;
}

/**
 * Drives `disk` with `count` random operations (appends, conflict truncations, hard-state changes, local
 * snapshots, installed snapshots), awaiting each, and returns for every operation the exact log state after
 * it and the states a torn write of it may leave (a prefix of its records: marker, entries, hard state).
 */
export async function runWorkload(
  disk: DurableStorage,
  seed: number,
  count: number,
  opts: { snapshots: boolean; tailWithoutSnapshots?: number } = { snapshots: true },
  /** Live progress, for a test that crashes the disk mid-run: the states the operation in flight may leave. */
  progress?: { acked: LogState[]; inFlight: LogState[] },
): Promise<{ ops: WorkloadOp[]; after: LogState[]; partial: LogState[][] }> {
  const rnd = prng(seed);
  const ops: WorkloadOp[] = [];
  const after: LogState[] = [];
  const partial: LogState[][] = [];
  let term = Math.max(1, disk.hardState.term);
  for (let i = 0; i < count; i++) {
    const log = disk.log;
    const last = log.lastIndex();
    const first = log.firstIndex();
    const roll = rnd.next();
    const snapshotsAllowed = opts.snapshots && i < count - (opts.tailWithoutSnapshots ?? 0);
    const randomData = (): Uint8Array => Uint8Array.from({ length: rnd.int(0, 24) }, () => rnd.int(0, 255));
    let op: WorkloadOp;
    if (snapshotsAllowed && roll < 0.08 && last > log.snapshot().metadata.index) {
      op = { entries: [], snapshotAt: rnd.int(first, last) };
    } else if (snapshotsAllowed && roll < 0.12) {
      term++;
      const index = last + rnd.int(1, 5);
      op = {
        entries: [],
        snapshot: { metadata: { index, term, confState: log.snapshot().metadata.confState }, data: randomData() },
        hardState: { term, vote: null, commit: index },
      };
    } else if (roll < 0.25 && last >= first) {
      term++;
      const from = rnd.int(Math.max(first, last - 4), last);
      const n = rnd.int(1, 3);
      op = {
        entries: Array.from({ length: n }, (_, k) => entry(from + k, term, randomData())),
        hardState: { term, vote: "n1", commit: Math.min(disk.hardState.commit, from - 1) },
      };
    } else if (roll < 0.35) {
      op = {
        entries: [],
        hardState: {
          term,
          vote: rnd.next() < 0.5 ? null : "n2",
          commit: Math.max(disk.hardState.commit, Math.min(last, disk.hardState.commit + rnd.int(0, 3))),
        },
      };
    } else {
      const n = rnd.int(1, 4);
      op = { entries: Array.from({ length: n }, (_, k) => entry(last + 1 + k, term, randomData())) };
    }
    const before = logState(disk.log);
    if (op.snapshotAt !== undefined) {
      const confState = disk.log.snapshot().metadata.confState;
      const data = randomData();
      if (progress) {
        const s = storageFrom(before, undefined);
        s.createSnapshot(op.snapshotAt, confState, data);
        s.compact(op.snapshotAt);
        progress.inFlight = [before, logState(s)];
      }
      await disk.saveSnapshot(snapshotAt(disk.log, op.snapshotAt, confState, data));
      partial.push([]);
    } else {
      partial.push(partialStates(before, op));
      if (progress) progress.inFlight = [before, ...partial.at(-1)!, completedState(before, op)];
      await disk.save(op.hardState, op.entries, op.snapshot);
    }
    ops.push(op);
    after.push(logState(disk.log));
    if (progress) {
      progress.acked.push(after.at(-1)!);
      progress.inFlight = [];
    }
  }
  return { ops, after, partial };
}

/** States after a strict, non-empty prefix of an operation's records (marker, entries, hard state). */
function partialStates(before: LogState, op: WorkloadOp): LogState[] {
  const steps: ((s: MemoryStorage) => void)[] = [];
  if (op.snapshot) steps.push((s) => s.applySnapshot(op.snapshot!));
  if (op.entries.length > 0) steps.push((s) => s.append(op.entries));
  if (op.hardState) steps.push((s) => s.setHardState(op.hardState!));
  const out: LogState[] = [];
  for (let k = 1; k < steps.length; k++) {
    const s = storageFrom(before, op.snapshot);
    for (const step of steps.slice(0, k)) step(s);
    out.push(logState(s));
  }
  return out;
}

/** The state after every record of an operation. */
function completedState(before: LogState, op: WorkloadOp): LogState {
  const s = storageFrom(before, op.snapshot);
  if (op.snapshot) s.applySnapshot(op.snapshot);
  if (op.entries.length > 0) s.append(op.entries);
  if (op.hardState) s.setHardState(op.hardState);
  return logState(s);
}

/** A MemoryStorage holding the log `st` describes (its snapshot's confState from the hint, else empty). */
export function storageFrom(st: LogState, snapshotHint: Snapshot | undefined): MemoryStorage {
  const s = new MemoryStorage();
  if (st.snapIndex > 0) {
    const confState = snapshotHint?.metadata.confState ?? {
      voters: [],
      learners: [],
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    };
    s.applySnapshot({ metadata: { index: st.snapIndex, term: st.snapTerm, confState }, data: new Uint8Array() });
  }
  s.setHardState(st.hardState);
  s.append(
    st.entries.map((e) => {
      const [index, term, type, hex] = e.split("/");
      return {
        index: Number(index),
        term: Number(term),
        type: Number(type) as EntryType,
        data: Buffer.from(hex, "hex"),
      };
    }),
  );
  return s;
}

/** Every file under `dir`, by relative path. */
export function readTree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const file = path.join(dir, name);
    if (fs.statSync(file).isFile()) out.set(name, fs.readFileSync(file));
  }
  return out;
}

export function writeTree(dir: string, files: Map<string, Buffer>): void {
  removeDir(dir);
  for (const [name, data] of files) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), data);
  }
}
