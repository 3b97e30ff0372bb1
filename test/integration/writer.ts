// A minimal failover-aware client for integration tests (deliberately independent of src/client): one
// connection at a time; on a retryable error or a lost connection it moves to the next member and retries the
// same request. Writes carry an exactly-once session tag, so a retry of a write whose first attempt was applied
// returns the recorded outcome instead of applying it again.
//
// Every error is recorded: retryable ones are counted, anything else is kept in `fatalErrors` and rethrown.

import type { ClientSocket } from "../../src/transport/client-socket.js";
import { RequestError } from "../../src/transport/client-socket.js";
import { isRetryable, sleep, type LocalCluster } from "../../src/harness/index.js";

export class RetryingClient {
  private sock: ClientSocket | null = null;
  private cursor: number;
  readonly retryableErrors = new Map<string, number>();
  readonly fatalErrors: { op: string; code: string; message: string }[] = [];

  constructor(
    private readonly cluster: LocalCluster,
    /** Members this client may use (names); re-read on each reconnect, so members may come and go. */
    private readonly candidates: () => string[],
    start = 0,
    private readonly requestTimeoutMs = 5000,
  ) {
    this.cursor = start;
  }

  /** Send `op` until it succeeds or fails with a non-retryable error, for at most `deadlineMs`. */
  async request<T>(op: string, args: Record<string, unknown>, deadlineMs = 60_000): Promise<T> {
    const deadline = performance.now() + deadlineMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const sock = await this.connection();
        return await sock.request<T>(op, args, this.requestTimeoutMs);
      } catch (e) {
        const code = e instanceof RequestError ? e.code : "CLIENT_EXCEPTION";
        if (!isRetryable(code)) {
          this.fatalErrors.push({ op, code, message: (e as Error).message });
          throw e;
        }
        this.retryableErrors.set(code, (this.retryableErrors.get(code) ?? 0) + 1);
        if (performance.now() > deadline) {
          this.fatalErrors.push({
            op,
            code: "GAVE_UP",
            message: `${op} still failing after ${deadlineMs} ms: ${(e as Error).message}`,
          });
          throw e;
        }
        this.rotate();
        await sleep(Math.min(20 * (attempt + 1), 200));
      }
    }
  }

  private rotate(): void {
    this.sock?.close();
    this.sock = null;
    this.cursor++;
  }

  private async connection(): Promise<ClientSocket> {
    if (this.sock?.isOpen) return this.sock;
    this.sock = null;
    const names = this.candidates();
    if (names.length === 0) throw new RequestError({ code: "UNAVAILABLE", message: "no candidate member" });
    const name = names[this.cursor % names.length];
    this.sock = await this.cluster.connect(name, { connectTimeoutMs: 2000 });
    return this.sock;
  }

  close(): void {
    this.sock?.close();
    this.sock = null;
  }

  get retryableCount(): number {
    let n = 0;
    for (const c of this.retryableErrors.values()) n += c;
    return n;
  }
}

/**
 * A writer with an exactly-once session: each write is `put <prefix><seq> = "<seq>"`, retried with the same
 * seq until acknowledged. Acknowledged seqs are recorded; a key applied twice would show version 2.
 */
export class SessionWriter {
  readonly client: RetryingClient;
  clientId = 0;
  private seq = 0;
  readonly acked: number[] = [];

  constructor(
    cluster: LocalCluster,
    candidates: () => string[],
    readonly prefix: string,
    start = 0,
  ) {
    this.client = new RetryingClient(cluster, candidates, start);
  }

  async open(leaseTtlMs = 600_000): Promise<void> {
    const lease = await this.client.request<{ id: number }>("leaseGrant", { ttlMs: leaseTtlMs });
    const reg = await this.client.request<{ clientId: number }>("registerClient", { lease: lease.id });
    this.clientId = reg.clientId;
  }

  key(seq: number): string {
    return `${this.prefix}${String(seq).padStart(6, "0")}`;
  }

  /** One write, retried until acknowledged (writes are sequential, so lowestUnacked = seq). */
  async writeNext(): Promise<number> {
    const seq = ++this.seq;
    await this.client.request("put", {
      key: this.key(seq),
      value: String(seq),
      session: { clientId: this.clientId, seq, lowestUnacked: seq },
    });
    this.acked.push(seq);
    return seq;
  }

  /** Write until `stop()` returns true. */
  async run(stop: () => boolean, pauseMs = 0): Promise<void> {
    while (!stop()) {
      await this.writeNext();
      if (pauseMs > 0) await sleep(pauseMs);
    }
  }
}

/** The keys under `prefix` on `member`, read locally (serializable) with paging. */
export async function readPrefix(
  cluster: LocalCluster,
  member: string,
  prefix: string,
): Promise<Map<string, { value: string; version: number }>> {
  const sock = await cluster.connect(member);
  const out = new Map<string, { value: string; version: number }>();
  try {
    let after: string | undefined;
    for (;;) {
      const r = await sock.request<{
        kvs: { key: string; value: Uint8Array; version: number }[];
        more: boolean;
        cursor?: string;
      }>(
        "range",
        {
          key: prefix,
          prefix: true,
          consistency: "serializable",
          limit: 1000,
          ...(after !== undefined ? { after } : {}),
        },
        10_000,
      );
      for (const kv of r.kvs) out.set(kv.key, { value: Buffer.from(kv.value).toString("utf8"), version: kv.version });
      if (!r.more || r.kvs.length === 0) break;
      after = r.cursor ?? r.kvs[r.kvs.length - 1].key;
    }
  } finally {
    sock.close();
  }
  return out;
}

/** Failures as human-readable lines: every acknowledged seq missing on `member`, or applied more than once. */
export function checkWriter(
  w: SessionWriter,
  member: string,
  kvs: Map<string, { value: string; version: number }>,
): string[] {
  const problems: string[] = [];
  for (const seq of w.acked) {
    const kv = kvs.get(w.key(seq));
    if (!kv) problems.push(`${member}: acknowledged write ${w.key(seq)} is missing`);
    else if (kv.value !== String(seq)) problems.push(`${member}: ${w.key(seq)} holds ${kv.value}, expected ${seq}`);
    else if (kv.version !== 1)
      problems.push(`${member}: ${w.key(seq)} has version ${kv.version}: applied more than once`);
  }
  let ours = 0;
  for (const k of kvs.keys()) if (k.startsWith(w.prefix)) ours++;
  if (ours !== w.acked.length)
    problems.push(`${member}: ${ours} keys under ${w.prefix} but ${w.acked.length} acknowledged writes`);
  return problems;
}
