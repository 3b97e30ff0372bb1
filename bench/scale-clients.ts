// The two systems as bench/scale.ts drives them: one client connection that carries many sessions (a lease kept
// alive by the client library's own keep-alive loop, and a watch), and a put for the fan-out.
//
// Concord: one `connect()` client is one WebSocket to the leader (the client moves there itself); its leases and
// watches are multiplexed on it. etcd: one `Etcd3` client (the etcd3 package, as ../shared/bench/etcd/bench.mjs
// uses) pinned to one member, so one HTTP/2 connection; the etcd3 package opens one LeaseKeepAlive stream per
// lease and shares one Watch stream between its watchers, all on that connection. Each library keeps its leases
// alive every TTL/3, the interval etcd's Go client uses (Concord's moves each earlier, to a 100 ms grid it shares).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { connect, type Client, type Lease } from "../src/index.js";

export type System = "concord" | "etcd";

/** What one session reports, as it happens. */
export interface SessionHooks {
  /** A keep-alive was answered `rttMs` after it was sent. */
  keepAlive(rttMs: number): void;
  /** A watch event's value arrived. */
  event(value: string): void;
  /** Something went wrong that a user would see (a keep-alive failing, a lease lost, a watch ending). */
  error(kind: string, err: unknown): void;
}

export interface ScaleConnection {
  /** Opens one session on this connection: a lease of `ttlS` seconds kept alive, and a watch on `key`. */
  openSession(key: string, ttlS: number, hooks: SessionHooks): Promise<void>;
  put(key: string, value: string): Promise<void>;
  close(): Promise<void>;
}

/** Where to reach a system: Concord's client URLs, or etcd's client addresses and its client's install. */
export interface Target {
  system: System;
  endpoints: string[];
  /** The etcd3 package's install (etcdClientDir()); etcd only. */
  etcdClientDir?: string;
}

/** Opens client connection number `index` (etcd: pinned to member `index` mod 3). */
export async function openConnection(target: Target, index: number): Promise<ScaleConnection> {
  return target.system === "concord"
    ? concordConnection(await connect(target.endpoints))
    : etcdConnection(target, index);
}

function concordConnection(client: Client): ScaleConnection {
  const leases: Lease[] = [];
  return {
    async openSession(key, ttlS, hooks) {
      const lease = await client.grantLease(ttlS * 1000);
      leases.push(lease);
      // Time each keep-alive the lease's own loop sends (it calls keepAliveOnce every TTL/3).
      const once = lease.keepAliveOnce.bind(lease);
      lease.keepAliveOnce = async () => {
        const t0 = performance.now();
        const ok = await once();
        if (ok) hooks.keepAlive(performance.now() - t0);
        else if (lease.alive) hooks.error("keep-alive failed", new Error(`keep-alive of lease ${lease.id} failed`));
        return ok;
      };
      lease.lost.addEventListener("abort", () => hooks.error("lease lost", lease.lost.reason), { once: true });
      const watch = client.watch(key);
      await watch.ready();
      void (async () => {
        for await (const ev of watch) if (ev.type === "put") hooks.event(ev.kv.text);
      })().catch((e: unknown) => hooks.error("watch ended", e));
    },
    async put(key, value) {
      await client.put(key, value);
    },
    async close() {
      for (const l of leases) l.stop();
      await client.close();
    },
  };
}

// The slice of the etcd3 package's API used here (it is installed outside this repository, untyped for us).
interface EtcdLease {
  grant(): Promise<string>;
  on(event: "keepaliveFired" | "keepaliveEstablished", fn: () => void): void;
  on(event: "keepaliveSucceeded", fn: (res: unknown) => void): void;
  on(event: "keepaliveFailed" | "lost", fn: (err: unknown) => void): void;
  release(): Promise<void>;
}
interface EtcdWatcher {
  on(event: "put", fn: (kv: { value: Buffer }) => void): void;
  on(event: "error" | "disconnected", fn: (err: unknown) => void): void;
}
interface Etcd3Client {
  lease(ttlS: number, opts: { autoKeepAlive: boolean }): EtcdLease;
  watch(): { key(k: string): { create(): Promise<EtcdWatcher> } };
  put(key: string): { value(v: string): Promise<unknown> };
  close(): void;
}
type Etcd3Ctor = new (opts: { hosts: string[]; grpcOptions?: Record<string, string | number> }) => Etcd3Client;

function etcdConnection(target: Target, index: number): ScaleConnection {
  if (!target.etcdClientDir) throw new Error("etcd target without etcdClientDir");
  const { Etcd3 } = createRequire(path.join(target.etcdClientDir, "package.json"))("etcd3") as { Etcd3: Etcd3Ctor };
  const host = target.endpoints[index % target.endpoints.length];
  // grpc-js shares one subchannel (TCP connection) between channels with equal options; a distinct user agent
  // per client gives each client its own connection, shared by its Lease, Watch and KV service stubs.
  const client = new Etcd3({
    hosts: [`http://${host}`],
    grpcOptions: { "grpc.primary_user_agent": `concord-scale/${index}` },
  });
  const leases: EtcdLease[] = [];
  return {
    async openSession(key, ttlS, hooks) {
      const lease = client.lease(ttlS, { autoKeepAlive: true });
      // One keep-alive is in flight at a time on a lease's stream: fired, then answered (or failed).
      let firedAt: number | null = null;
      lease.on("keepaliveFired", () => (firedAt = performance.now()));
      lease.on("keepaliveSucceeded", () => {
        if (firedAt !== null) hooks.keepAlive(performance.now() - firedAt);
        firedAt = null;
      });
      lease.on("keepaliveFailed", (e) => hooks.error("keep-alive failed", e));
      lease.on("lost", (e) => hooks.error("lease lost", e));
      await lease.grant();
      leases.push(lease);
      const watcher = await client.watch().key(key).create();
      watcher.on("put", (kv) => hooks.event(kv.value.toString()));
      watcher.on("error", (e) => hooks.error("watch error", e));
      watcher.on("disconnected", (e) => hooks.error("watch disconnected", e));
    },
    async put(key, value) {
      await client.put(key).value(value);
    },
    async close() {
      client.close();
    },
  };
}

/** The etcd3 package needs node_modules: installed once into a writable copy of ../shared/bench/etcd. */
export function etcdClientDir(sharedDir: string): string {
  const dir = path.join(os.tmpdir(), "concord-etcd-bench-client");
  if (!fs.existsSync(path.join(dir, "node_modules/etcd3"))) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.cpSync(sharedDir, dir, { recursive: true });
    execFileSync("chmod", ["-R", "u+w", dir]);
    execFileSync("npm", ["install", "--no-audit", "--no-fund"], { cwd: dir, stdio: "ignore", timeout: 300_000 });
  }
  return dir;
}
