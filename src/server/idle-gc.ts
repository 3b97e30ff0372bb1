// Returns memory after a burst of writes: a full, compacting garbage collection once the member has gone quiet,
// and a young-generation one once it has stayed quiet long enough for V8 to shrink that generation.
//
// V8 collects old-generation garbage — and the ArrayBuffers it keeps alive, such as the tens of megabytes of a
// snapshot just written — only when the heap or external memory grows past a limit, so a member that goes quiet
// after a burst keeps that garbage resident indefinitely (measured: 116 MiB of buffers of which 43 MiB live,
// after 100,000 puts). Its young generation, grown to 32 MiB under load, shrinks only at a collection that finds
// the allocation rate of the last seconds low. V8's memory reducer does both for browsers; Node does not start it
// for servers; and the C heap keeps what the collected buffers freed until trimmed (c-heap.ts). The full
// collection pauses the member (~350 ms measured at 100,000 keys; past COMPACT_UP_TO_HEAP_BYTES of heap it does
// not compact, and past COLLECT_UP_TO_KEYS it is not taken at all), so it runs only once `progress` has moved by
// at most QUIET_OPS in `idleMs` — never under load, yet not never where connected clients' session keep-alives
// (one per client every 10 s) keep arriving; the young one takes well under a millisecond.
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

type Collect = (options?: { type: "major" | "minor" }) => void;

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
 * Heap size up to which the full collection compacts (twice); above it, one collection that does not force
 * compaction. Compacting moves every live object: measured at 1,000,000 keys (a ~106 MiB heap), two compacting
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
  onCollected?: (ms: number, parts: { gcMs: number; trimMs: number; compacted: boolean }) => void;
  /** The member held more than `collectUpToKeys` keys: no full collection was taken. */
  onLeftToV8?: (keys: number) => void;
  /** How often it looks whether the member is quiet. */
  idleMs?: number;
  compactUpToHeapBytes?: number;
  /** The keys the member holds (the state machine's). */
  keys?: () => number;
  collectUpToKeys?: number;
}

/** Quiet time after which V8's allocation rate (averaged over ~5 s) lets a young collection shrink the generation. */
const YOUNG_SHRINK_AFTER_MS = 6000;

export class IdleCollector {
  private timer: NodeJS.Timeout | undefined;
  private lastProgress = -1;
  private quietMs = 0;
  private fullDone = false;
  private readonly collect = findCollector();
  collections = 0;
  youngCollections = 0;

  private readonly idleMs: number;

  /** `progress` moves while the member works (the server passes applied index + reads and keep-alives served). */
  constructor(
    private readonly progress: () => number,
    private readonly opts: IdleCollectorOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? 1000;
  }

  /** Garbage worth returning was made (a snapshot was written): collect once idle for `idleMs`. */
  arm(): void {
    this.fullDone = false;
    if (this.timer || !this.collect) return;
    this.lastProgress = this.progress();
    this.quietMs = 0;
    this.timer = setInterval(() => this.checkIdle(), this.idleMs);
    this.timer.unref();
  }

  /**
   * Runs every `idleMs` while armed: the full collection at the first quiet look, the young one once quiet for
   * YOUNG_SHRINK_AFTER_MS since. A busy look (more than QUIET_OPS) in between restarts the wait.
   */
  checkIdle(): void {
    if (!this.timer) return;
    const now = this.progress();
    const moved = now - this.lastProgress;
    this.lastProgress = now;
    if (moved > QUIET_OPS) {
      this.quietMs = 0; // still busy: look again in idleMs
      return;
    }
    this.quietMs += this.idleMs;
    if (!this.fullDone) {
      this.fullDone = true;
      this.quietMs = 0;
      this.collectFull();
    } else if (this.quietMs >= YOUNG_SHRINK_AFTER_MS) {
      this.stop();
      this.collect!({ type: "minor" });
      this.youngCollections++;
    }
  }

  private collectFull(): void {
    const started = performance.now();
    shrinkPackBuffer();
    const keys = this.opts.keys?.() ?? 0;
    if (keys > (this.opts.collectUpToKeys ?? COLLECT_UP_TO_KEYS)) {
      this.opts.onLeftToV8?.(keys); // see COLLECT_UP_TO_KEYS
      return;
    }
    const compacted = v8.getHeapStatistics().used_heap_size <= (this.opts.compactUpToHeapBytes ?? COMPACT_UP_TO_HEAP_BYTES);
    if (compacted) {
      // Twice: the first frees the garbage, the second releases the pages the first emptied to the OS (measured:
      // after one collection the resident set does not shrink). Compacting: V8's heuristics leave the old
      // generation's pages a third empty after a write burst (measured: 50–57 MiB committed for 35 MiB live).
      v8.setFlagsFromString("--compact-on-every-full-gc");
      try {
        this.collect!();
        this.collect!();
      } finally {
        v8.setFlagsFromString("--no-compact-on-every-full-gc");
      }
    } else {
      this.collect!(); // a large heap: see COMPACT_UP_TO_HEAP_BYTES
    }
    const collected = performance.now();
    trimCHeap?.(); // the buffers just collected were freed into the C heap, which keeps them
    this.collections++;
    const done = performance.now();
    this.opts.onCollected?.(done - started, { gcMs: collected - started, trimMs: done - collected, compacted });
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
