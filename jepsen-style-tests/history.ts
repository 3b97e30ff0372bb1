// The history recorder: client operations as JSONL exactly as ../shared/vectors/README.md describes
// (`process`, `type` invoke|ok|fail|info, `f`, `key`, `value`, `token`, `time` in nanoseconds since the run
// started), plus a separate log of nemesis events on the same clock for the report's timeline.
//
// Invariants: a process has at most one operation open (an `info` completion retires the process id: the
// operation may still take effect later, so the worker continues under a fresh id, as Jepsen does); every
// completion names the same `f` and `key` as its invoke; events are appended in real-time order.

import { assert } from "../src/assert.js";

export interface RecordedEvent {
  process: number;
  type: "invoke" | "ok" | "fail" | "info";
  f: string;
  key?: string;
  value: unknown;
  token?: number;
  time: number;
  /** Not part of the vectors format: why an op failed or is unknown. Stripped from history.jsonl. */
  error?: string;
}

export interface NemesisEvent {
  time: number;
  /** "start" of a fault, "stop" (healed), or "info" (a observation, e.g. a detected corruption). */
  phase: "start" | "stop" | "info";
  nemesis: string;
  detail: string;
}

export interface OpenOp {
  ok(value?: unknown, token?: number): void;
  fail(value?: unknown, error?: string): void;
  info(error?: string): void;
}

export class History {
  private readonly start = process.hrtime.bigint();
  readonly events: RecordedEvent[] = [];
  readonly nemesis: NemesisEvent[] = [];
  private readonly openProcesses = new Set<number>();

  /** Nanoseconds since the run started. */
  now(): number {
    return Number(process.hrtime.bigint() - this.start);
  }

  invoke(proc: number, f: string, value: unknown, key?: string): OpenOp {
    assert(!this.openProcesses.has(proc), `process ${proc} already has an open operation`);
    this.openProcesses.add(proc);
    const base = (type: RecordedEvent["type"], v: unknown): RecordedEvent => {
      const e: RecordedEvent = { process: proc, type, f, value: v ?? null, time: this.now() };
      if (key !== undefined) e.key = key;
      return e;
    };
    this.events.push(base("invoke", value));
    let done = false;
    const complete = (e: RecordedEvent) => {
      assert(!done, `operation ${f} of process ${proc} completed twice`);
      done = true;
      this.openProcesses.delete(proc);
      this.events.push(e);
    };
    return {
      ok: (v = value, token) => {
        const e = base("ok", v);
        if (token !== undefined) e.token = token;
        complete(e);
      },
      fail: (v = value, error) => {
        const e = base("fail", v);
        if (error !== undefined) e.error = error;
        complete(e);
      },
      info: (error) => {
        const e = base("info", value);
        if (error !== undefined) e.error = error;
        complete(e);
      },
    };
  }

  fault(phase: NemesisEvent["phase"], nemesis: string, detail: string): void {
    this.nemesis.push({ time: this.now(), phase, nemesis, detail });
  }

  /** The history in the vectors' JSONL format (diagnostic `error` fields removed). */
  toJsonl(): string {
    return this.events.map(({ error: _error, ...e }) => JSON.stringify(e)).join("\n") + "\n";
  }

  count(f?: string): { ok: number; fail: number; info: number; total: number } {
    const c = { ok: 0, fail: 0, info: 0, total: 0 };
    for (const e of this.events) {
      if (e.type === "invoke" || (f !== undefined && e.f !== f)) continue;
      c[e.type]++;
      c.total++;
    }
    return c;
  }
}

/** Per worker: the current process id, retired after an `info` (the op may still be in flight). */
export class ProcessIds {
  private readonly current: number[];
  constructor(readonly workers: number) {
    this.current = Array.from({ length: workers }, (_, i) => i);
  }
  of(worker: number): number {
    return this.current[worker]!;
  }
  retire(worker: number): void {
    this.current[worker]! += this.workers;
  }
}
