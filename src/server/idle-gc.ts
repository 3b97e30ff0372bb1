// Returns memory after a burst of writes: one full garbage collection once the member has gone quiet.
//
// V8 collects old-generation garbage — and the ArrayBuffers it keeps alive, such as the tens of megabytes of a
// snapshot just written — only when the heap or external memory grows past a limit, so a member that goes quiet
// after a burst keeps that garbage resident indefinitely (measured: 116 MiB of buffers of which 43 MiB live,
// after 100,000 puts). V8's memory reducer does this for browsers; Node does not start it for servers. The
// collection pauses the member (~200 ms measured at 100,000 keys), so it runs only once `progress` has not
// moved for `idleMs`, never under load.
import v8 from "node:v8";
import vm from "node:vm";

type Collect = () => void;

/** V8's full collection: the `gc` global when --expose-gc is on, else one taken from a context created with it. */
function findCollector(): Collect | undefined {
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

export class IdleCollector {
  private timer: NodeJS.Timeout | undefined;
  private lastProgress = -1;
  private readonly collect = findCollector();
  collections = 0;

  /** `progress` moves while the member works (the server passes applied index + reads and keep-alives served). */
  constructor(
    private readonly progress: () => number,
    private readonly onCollected: (ms: number) => void = () => {},
    private readonly idleMs = 1000,
  ) {}

  /** Garbage worth returning was made (a snapshot was written): collect once idle for `idleMs`. */
  arm(): void {
    if (this.timer || !this.collect) return;
    this.lastProgress = this.progress();
    this.timer = setInterval(() => this.checkIdle(), this.idleMs);
    this.timer.unref();
  }

  /** Runs every `idleMs` while armed: collects if progress did not move since the last look. */
  checkIdle(): void {
    if (!this.timer) return;
    const now = this.progress();
    if (now !== this.lastProgress) {
      this.lastProgress = now; // still busy: look again in idleMs
      return;
    }
    this.stop();
    // Twice: the first frees the garbage, the second releases the pages the first emptied to the OS (measured:
    // after one collection the resident set does not shrink).
    const started = performance.now();
    this.collect!();
    this.collect!();
    this.collections++;
    this.onCollected(performance.now() - started);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
