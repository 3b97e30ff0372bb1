// One load-generator process of bench/scale.ts (forked, driven over IPC): opens its share of the client
// connections, spreads its sessions over them, records keep-alive round trips while asked to, and the delivery
// latency of each fan-out event (the event's value carries the put's send time on the machine's monotonic clock,
// process.hrtime, which every process on the machine shares).
import { openConnection, type ScaleConnection, type SessionHooks, type Target } from "./scale-clients.js";

export type ToWorker =
  | { type: "start"; target: Target; connections: number[]; sessions: number; ttlS: number; key: string }
  | { type: "measure"; on: boolean }
  | { type: "fanout-report"; id: number }
  | { type: "stop" };

export type FromWorker =
  | { type: "ready"; sessions: number; setupMs: number }
  | { type: "failed"; error: string }
  | { type: "keepalives"; rttMs: number[]; errors: Record<string, number> }
  | { type: "fanout"; id: number; latencyMs: number[]; complete: boolean }
  | { type: "stopped"; errors: Record<string, number> };

/** Sessions opened at once per worker while setting up. */
const SETUP_CONCURRENCY = 32;
/** The longest one session's setup (grant + watch) may take before the run is called failed. */
const SESSION_SETUP_TIMEOUT_MS = 60_000;

const send = (m: FromWorker) => process.send?.(m);
const conns: ScaleConnection[] = [];
const errors: Record<string, number> = {};
const firstErrors: string[] = [];
let sessions = 0;
let measuring = false;
/** Set once stop() begins: what closing the connections itself ends is not an error of the run. */
let closing = false;
let rtts: number[] = [];
/** Delivery latencies per fan-out id. */
const fanouts = new Map<number, number[]>();

const hooks: SessionHooks = {
  keepAlive(rttMs) {
    if (measuring) rtts.push(rttMs);
  },
  event(value) {
    const now = process.hrtime.bigint();
    const m = /^(\d+):(\d+)$/.exec(value);
    if (!m) return;
    const id = Number(m[1]);
    const lat = fanouts.get(id) ?? [];
    fanouts.set(id, lat);
    lat.push(Number(now - BigInt(m[2])) / 1e6);
    if (lat.length === sessions) send({ type: "fanout", id, latencyMs: lat, complete: true });
  },
  error(kind, err) {
    if (closing) return;
    errors[kind] = (errors[kind] ?? 0) + 1;
    if (firstErrors.length < 5) {
      firstErrors.push(`${kind}: ${err instanceof Error ? err.message : String(err)}`);
      process.stderr.write(`scale worker ${process.pid}: ${firstErrors.at(-1)}\n`);
    }
  },
};

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)),
  );
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function start(m: Extract<ToWorker, { type: "start" }>): Promise<void> {
  const t0 = performance.now();
  for (const i of m.connections) conns.push(await withTimeout(openConnection(m.target, i), 30_000, `connection ${i}`));
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(SETUP_CONCURRENCY, m.sessions) }, async () => {
      while (next < m.sessions) {
        const s = next++;
        await withTimeout(
          conns[s % conns.length].openSession(m.key, m.ttlS, hooks),
          SESSION_SETUP_TIMEOUT_MS,
          `session ${s}`,
        );
        sessions++;
      }
    }),
  );
  send({ type: "ready", sessions, setupMs: performance.now() - t0 });
}

async function stop(): Promise<void> {
  closing = true;
  await Promise.allSettled(conns.map((c) => withTimeout(c.close(), 10_000, "close")));
  send({ type: "stopped", errors });
  process.disconnect?.();
  setTimeout(() => process.exit(0), 100).unref();
}

process.on("message", (m: ToWorker) => {
  if (m.type === "start")
    void start(m).catch((e: unknown) => send({ type: "failed", error: e instanceof Error ? e.message : String(e) }));
  else if (m.type === "measure") {
    if (m.on) rtts = [];
    else send({ type: "keepalives", rttMs: rtts, errors: { ...errors } });
    measuring = m.on;
  } else if (m.type === "fanout-report")
    send({ type: "fanout", id: m.id, latencyMs: fanouts.get(m.id) ?? [], complete: false });
  else void stop();
});
// The parent gone means nobody will stop us: leave.
process.on("disconnect", () => setTimeout(() => process.exit(0), 1000).unref());
