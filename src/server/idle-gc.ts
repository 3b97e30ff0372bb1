// Returns memory after a burst of writes: young-generation collections from the first quiet moment until V8 shrinks
// that generation, and a full garbage collection, compacting, once the member has been quiet for a second. At the
// first quiet moment it also has the state machine pack its values (`pack`), so the collection frees the chunks
// that emptied.
//
// V8 collects old-generation garbage — and the ArrayBuffers it keeps alive, such as the tens of megabytes of a
// snapshot just written — only when the heap or external memory grows past a limit, so a member that goes quiet
// after a burst keeps that garbage resident indefinitely (measured: 116 MiB of buffers of which 43 MiB live,
// after 100,000 puts). Its young generation, grown to 32 MiB under load, shrinks only at a collection that finds
// the allocation rate low: V8 averages it over the samples its last ten collections took (within 5 s), so the
// burst's samples must first be pushed out. V8's memory reducer does both for browsers; Node does not start it
// for servers; and the C heap keeps what the collected buffers freed until trimmed (c-heap.ts). The full
// collection pauses the member (260–520 ms measured at 100,000 keys; past COMPACT_UP_TO_HEAP_BYTES of live heap it
// does not compact, and past COLLECT_UP_TO_KEYS it is not taken at all), so it runs only once `progress` has moved by
// at most QUIET_OPS in `idleMs` — never under load, yet not never where connected clients' session keep-alives
// (one per client every 10 s) keep arriving; a young one takes under a millisecond (~10 ms the one that shrinks).
import { Packr } from "msgpackr";
import v8 from "node:v8";
import vm from "node:vm";
import { trimCHeap } from "./c-heap.js";

// msgpackr packs into one scratch buffer shared by every Packr in the process. A large message (a snapshot's meta,
// a snapshot chunk) grows it, and it stays that size: each time it fills, the next is allocated as large
// (measured: 8–12 MiB held by every member after 100,000 puts). Handing it a small buffer lets the large one go.
const packBufferOwner = new Packr();

/** Drop msgpackr's scratch buffer for a small one; outstanding packed views keep their bytes. */
export function shrinkPackBuffer(): void {
  packBufferOwner.useBuffer(Buffer.allocUnsafeSlow(8192));
}

type Collect = (options?: { type: "major" | "minor"; execution?: "sync" | "async"; flavor?: "regular" | "last-resort" }) => void;

/**
 * Whether this V8 keeps the pages a collection empties in a pool, committed, until a memory-reducing collection
 * (V8 12 and later: Node 22 and 24). There, neither a plain nor a compacting collection returned anything: after a
 * burst that left 17 MiB live, the resident set stayed at 345–372 MiB, and a member's at 245–290 MiB, until V8's
 * own memory reducer ran 8 s later. Its gc's `flavor: "last-resort"` is such a collection (it compacts, and
 * releases the pool): 70–77 MiB. V8 11 (Node 20) has no pool, and no such option.
 */
const POOLS_EMPTIED_PAGES = Number(process.versions.v8.split(".")[0]) >= 12;

/** V8's full collection: the `gc` global when --expose-gc is on, else one taken from a context created with it. */
export function findCollector(): Collect | undefined {
  const global = (globalThis as { gc?: unknown }).gc;
  if (typeof global === "function") return global as Collect;
  try {
    v8.setFlagsFromString("--expose-gc");
    const gc: unknown = vm.runInNewContext("gc");
    return typeof gc === "function" ? (gc as Collect) : undefined;
  } catch {
    return undefined;
  }
}

/** Operations (applied entries, reads, keep-alives) per look that still count as quiet: a few clients' keep-alives. */
const QUIET_OPS = 10;

/**
 * Live heap (what a plain full collection leaves) up to which a compacting collection follows it; above it, the
 * plain one alone. Compacting moves every live object: measured at 1,000,000 keys (a ~106 MiB heap), two compacting
 * collections stopped a member for 440-820 ms, long enough to risk its leadership, where one plain collection
 * frees the same garbage (a written snapshot's buffer is most of it) in a fraction of that. Below the bound, the
 * compaction is what returns the pages V8's heuristics leave a third empty, at a cost of tens of milliseconds.
 */
export const COMPACT_UP_TO_HEAP_BYTES = 64 << 20;

/**
 * Keys up to which the full collection (and the C heap's trim) is taken at all; past them the garbage is left to
 * V8's own collections, which mark incrementally. A pause grows with what is live: at 1,000,000 keys one plain
 * collection and the trim, taken while another member restarted beside it, stopped a member for 281-1,393 ms
 * (the collection 147-729 ms, the trim 72-932 ms), over an election timeout, for 100-290 MiB less resident memory
 * (bench:snapshot-stall --restart). Counted in keys, not heap bytes: right after a burst of 100,000 puts the heap
 * is 65-75 MiB, most of it the garbage to collect.
 */
export const COLLECT_UP_TO_KEYS = 500_000;

export interface IdleCollectorOptions {
  /** A full collection was taken: `ms` in all, split between the collection and the C heap's trim; compacting? */
  onCollected?: (
    ms: number,
    parts: { gcMs: number; trimMs: number; compacted: boolean; packMs: number; packedBytes: number },
  ) => void;
  /** The member held more than `collectUpToKeys` keys: no full collection was taken. */
  onLeftToV8?: (keys: number) => void;
  /** Quiet time before the full collection (at most QUIET_OPS of progress in it). */
  idleMs?: number;
  compactUpToHeapBytes?: number;
  /** The keys the member holds (the state machine's). */
  keys?: () => number;
  collectUpToKeys?: number;
  /** The young collections ended after `steps`: the last one shrank the generation from `fromBytes` to `toBytes`, or they gave up. */
  onYoungDone?: (steps: number, fromBytes: number, toBytes: number) => void;
  /** The young generation's committed bytes (V8's, by default): the young collections stop once it shrank. */
  youngGenerationBytes?: () => number;
  /**
   * Work that turns memory into garbage for the full collection, such as packing the state machine's values
   * (StateMachine.tightenValues); returns the bytes it freed. Run once per arm, at the first quiet look, and not
   * when the collection will be left to V8 (past collectUpToKeys). Not just before the collection: what it
   * allocates (the chunks it packs into) is a sample of a high allocation rate for V8, which then keeps the young
   * generation grown until ten young collections later — measured, 0.8 s longer.
   */
  pack?: () => number;
  /** Progress in busy seconds since the last arm, after which a burst arms the collector (BURST_OPS; watchBursts). */
  burstOps?: number;
}

/**
 * How often an armed collector looks whether the member is quiet. At each quiet look it takes a young collection
 * until V8 shrinks the young generation: each one adds a sample of the (now low) allocation rate, and V8 shrinks
 * the generation at the collection whose last ten samples average under 1 KB/ms (measured under Node 20: at the
 * 10th collection 100 ms apart, the 13th 50 ms apart, never when 20 ms apart, where the samples' time is too short
 * for the few bytes a timer allocates; with no collection at all, V8 waited for its 5 s window: 6 s). So the young
 * generation goes back about when the full collection runs, a quiet second after the burst, instead of 6 s later.
 */
const LOOK_MS = 100;

/** Young collections tried before giving up until the next arm (V8 keeps the generation while the member allocates). */
const YOUNG_MAX_STEPS = 30;

/**
 * Progress (applied entries, reads, keep-alives) in busy seconds since the last arm after which the collector arms
 * itself: a burst leaves its garbage and a grown young generation whether or not the member wrote a snapshot, and
 * members take turns to snapshot, so after 100,000 puts to a fresh cluster two of three had none to arm them and
 * stayed at 178–184 MiB where the third settled at 116 (Node 20, 2026-12-05). A second is busy when the progress
 * moved by a twentieth of this in it: a trickle (clients' keep-alives) never adds up to a burst, so it does not
 * earn a quiet member a full collection's pause every 20,000 operations.
 */
export const BURST_OPS = 20_000;

/** How often the progress is read for a burst (the collector's own looks run only while it is armed). */
const BURST_LOOK_MS = 1000;

/** Bytes V8 has committed to the young generation (the semi-spaces; "new_space"). */
function youngGenerationBytes(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_size ?? 0;
}

export class IdleCollector {
  private timer: NodeJS.Timeout | undefined;
  private burstWatch: NodeJS.Timeout | undefined;
  /** The progress at the last burst look, and what busy seconds added since the last arm. */
  private burstLookProgress = 0;
  private busyProgress = 0;
  private lastProgress = -1;
  /** The progress the current quiet window began at, and the looks since then (at most QUIET_OPS in all). */
  private windowStart = -1;
  private quietLooks = 0;
  private fullDone = false;
  /** Whether this arm's pack ran, how long it took and what it freed (reported with the full collection). */
  private packed = false;
  private packMs = 0;
  private packedBytes = 0;
  /** Young collections taken since the arm (or since the full collection, when V8 had not shrunk it by then). */
  private youngSteps = 0;
  private youngShrunk = false;
  private readonly collect = findCollector();
  collections = 0;
  youngCollections = 0;

  private readonly idleMs: number;
  private readonly youngBytes: () => number;

  /** `progress` moves while the member works (the server passes applied index + reads and keep-alives served). */
  constructor(
    private readonly progress: () => number,
    private readonly opts: IdleCollectorOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? 1000;
    this.youngBytes = opts.youngGenerationBytes ?? youngGenerationBytes;
  }

  /** Garbage worth returning was made (a snapshot was written, or a burst of work): collect once idle for `idleMs`. */
  arm(): void {
    this.busyProgress = 0;
    this.fullDone = false;
    this.packed = false;
    this.packMs = this.packedBytes = 0;
    this.youngShrunk = false;
    this.youngSteps = 0;
    if (this.timer || !this.collect) return;
    this.lastProgress = this.windowStart = this.progress();
    this.quietLooks = 0;
    this.timer = setInterval(() => this.checkIdle(), LOOK_MS);
    this.timer.unref();
  }

  /**
   * Runs every LOOK_MS while armed. A quiet look (at most QUIET_OPS since the last) takes a young collection until
   * the young generation shrank (or YOUNG_MAX_STEPS were taken); once the progress has moved by at most QUIET_OPS
   * over `idleMs`, the full collection. Stops when both are done.
   */
  checkIdle(): void {
    if (!this.timer) return;
    const now = this.progress();
    const moved = now - this.lastProgress;
    this.lastProgress = now;
    if (now - this.windowStart > QUIET_OPS) {
      this.windowStart = now; // work: the quiet window starts again
      this.quietLooks = 0;
    } else {
      this.quietLooks++;
    }
    if (moved > QUIET_OPS) return;
    if (!this.packed) this.packOnce();
    if (!this.fullDone && this.quietLooks * LOOK_MS >= this.idleMs) {
      this.fullDone = true;
      this.collectFull();
      // Light work before this quiet second may have used up the young collections without a shrink: the quiet
      // after the full collection gets its own.
      if (!this.youngShrunk) this.youngSteps = 0;
    }
    if (!this.youngDone()) this.collectYoung();
    if (this.fullDone && this.youngDone()) this.endLooks();
  }

  private packOnce(): void {
    this.packed = true;
    if (this.opts.pack === undefined || (this.opts.keys?.() ?? 0) > (this.opts.collectUpToKeys ?? COLLECT_UP_TO_KEYS)) return;
    const started = performance.now();
    this.packedBytes = this.opts.pack();
    this.packMs = performance.now() - started;
  }

  private youngDone(): boolean {
    return this.youngShrunk || this.youngSteps >= YOUNG_MAX_STEPS;
  }

  private collectYoung(): void {
    const before = this.youngBytes();
    this.collect!({ type: "minor" });
    this.youngCollections++;
    this.youngSteps++;
    const after = this.youngBytes();
    this.youngShrunk = after < before;
    if (this.youngDone()) this.opts.onYoungDone?.(this.youngSteps, before, after);
  }

  private collectFull(): void {
    const started = performance.now();
    shrinkPackBuffer();
    const keys = this.opts.keys?.() ?? 0;
    if (keys > (this.opts.collectUpToKeys ?? COLLECT_UP_TO_KEYS)) {
      this.opts.onLeftToV8?.(keys); // see COLLECT_UP_TO_KEYS
      return;
    }
    // A plain collection first: what it leaves is live, and the bound is on what compaction would move. Read
    // before it, the heap also counts the burst's garbage (young and old), which put a leader past the bound at
    // random and left it uncompacted (measured after 100,000 puts: 54 MiB of old generation committed for 29 MiB
    // on the followers, in two runs of four).
    this.collect!();
    const compacted = v8.getHeapStatistics().used_heap_size <= (this.opts.compactUpToHeapBytes ?? COMPACT_UP_TO_HEAP_BYTES);
    if (compacted) {
      // Compacting: V8's heuristics leave the old generation's pages a third empty after a write burst (measured:
      // 50–57 MiB committed for 35 MiB live); a compacting collection moves the live objects together and releases
      // the pages the plain one emptied (after that one alone the resident set does not shrink).
      if (POOLS_EMPTIED_PAGES) {
        this.collect!({ type: "major", execution: "sync", flavor: "last-resort" });
      } else {
        v8.setFlagsFromString("--compact-on-every-full-gc");
        try {
          this.collect!();
        } finally {
          v8.setFlagsFromString("--no-compact-on-every-full-gc");
        }
      }
    }
    const collected = performance.now();
    trimCHeap?.(); // the buffers just collected were freed into the C heap, which keeps them
    this.collections++;
    const done = performance.now();
    this.opts.onCollected?.(done - started, {
      gcMs: collected - started,
      trimMs: done - collected,
      compacted,
      packMs: this.packMs,
      packedBytes: this.packedBytes,
    });
  }

  private endLooks(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Arms the collector after every burst of `burstOps` (BURST_OPS) of progress, read every second, until stop. */
  watchBursts(): void {
    if (this.burstWatch || !this.collect) return;
    // From the progress now: a restarted member's recovered index is not a burst.
    this.burstLookProgress = this.progress();
    this.burstWatch = setInterval(() => this.checkBurst(), BURST_LOOK_MS);
    this.burstWatch.unref();
  }

  /** Arms the collector once busy seconds moved the progress by `burstOps` since the last arm (run by watchBursts). */
  checkBurst(): void {
    const burstOps = this.opts.burstOps ?? BURST_OPS;
    const now = this.progress();
    const moved = now - this.burstLookProgress;
    this.burstLookProgress = now;
    if (moved >= burstOps / 20) this.busyProgress += moved;
    if (this.busyProgress >= burstOps) this.arm();
  }

  /** Stops the looks and the burst watch. */
  stop(): void {
    this.endLooks();
    clearInterval(this.burstWatch);
    this.burstWatch = undefined;
  }
}
