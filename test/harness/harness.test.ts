// The cluster harness (src/harness) on real member processes (ports 8600–8621 and 8650): MemberStatus is what
// /status answers, kill/restart keeps a member's data, pause takes a member out of the waits, and members never
// outlive the process that started them.

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCluster, retrying, waitUntil, type MemberStatus, type PeerCounters } from "../../src/harness/index.js";
import { MEMBER_NODE_FLAGS } from "../../src/server/member-node-flags.js";

// Every key of each part of MemberStatus; `satisfies` makes the compiler reject a missing or an extra one.
const STATUS_KEYS = {
  id: true,
  term: true,
  vote: true,
  commit: true,
  applied: true,
  lastIndex: true,
  role: true,
  leader: true,
  confState: true,
  progress: true,
  leadTransferee: true,
  revision: true,
  compactRevision: true,
  autoCompaction: true,
  keys: true,
  stateBytes: true,
  quotaBytes: true,
  alarms: true,
  snapshotIndex: true,
  members: true,
  transport: true,
  storage: true,
  leases: true,
  fatal: true,
} satisfies Record<keyof MemberStatus, true>;
const OPTIONAL = ["leases", "fatal", "autoCompaction"];
const CONF_STATE_KEYS = {
  voters: true,
  learners: true,
  votersOutgoing: true,
  learnersNext: true,
  autoLeave: true,
} satisfies Record<keyof MemberStatus["confState"], true>;
const MEMBER_KEYS = { id: true, peerUrl: true, clientUrl: true, role: true } satisfies Record<
  keyof MemberStatus["members"][number],
  true
>;
const TRANSPORT_KEYS = {
  peers: true,
  droppedUnknownPeer: true,
  decodeErrors: true,
  refusedConnections: true,
} satisfies Record<keyof MemberStatus["transport"], true>;
const PEER_KEYS = {
  framesSent: true,
  messagesSent: true,
  bytesSent: true,
  droppedDisconnected: true,
  droppedOverflow: true,
  connects: true,
  reconnects: true,
  connected: true,
  rttMs: true,
  snapshotsSent: true,
  snapshotsFailed: true,
  framesReceived: true,
  messagesReceived: true,
  bytesReceived: true,
  snapshotsReceived: true,
} satisfies Record<keyof PeerCounters, true>;
const STORAGE_KEYS = { fsyncs: true, saves: true, bytes: true, maxSavesPerFsync: true, releasedReads: true } satisfies Record<
  keyof MemberStatus["storage"],
  true
>;
const PROGRESS_KEYS = { match: true, next: true, state: true } satisfies Record<
  keyof MemberStatus["progress"][string],
  true
>;

const sorted = (keys: object) => Object.keys(keys).sort();

describe.sequential("LocalCluster", () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ size: 3, basePort: 8600, tickMs: 50, logLevel: "warn" });
  });
  afterAll(async () => {
    await cluster?.teardown();
  });

  it("MemberStatus describes what a member's /status answers, on the leader and on a follower", async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.running().find((n) => n !== leader)!;
    const raw = async (n: string) => JSON.parse((await cluster.httpGet(n, "/status")).body) as Record<string, unknown>;
    for (const [name, s] of [
      [leader, await raw(leader)],
      [follower, await raw(follower)],
    ] as const) {
      const required = sorted(STATUS_KEYS).filter((k) => !OPTIONAL.includes(k));
      const present = Object.keys(s).sort();
      expect(
        present.filter((k) => !OPTIONAL.includes(k)),
        name,
      ).toEqual(required);
      expect(
        present.filter((k) => !(k in STATUS_KEYS)),
        `${name}: keys MemberStatus lacks`,
      ).toEqual([]);
      const st = s as unknown as MemberStatus;
      expect(sorted(st.confState)).toEqual(sorted(CONF_STATE_KEYS));
      for (const m of st.members) expect(sorted(m)).toEqual(sorted(MEMBER_KEYS));
      expect(sorted(st.transport)).toEqual(sorted(TRANSPORT_KEYS));
      expect(Object.keys(st.transport.peers).length).toBeGreaterThan(0);
      for (const p of Object.values(st.transport.peers)) expect(sorted(p)).toEqual(sorted(PEER_KEYS));
      expect(sorted(st.storage)).toEqual(sorted(STORAGE_KEYS));
      expect(["follower", "pre-candidate", "candidate", "leader"]).toContain(st.role);
    }
    const ls = (await raw(leader)) as unknown as MemberStatus;
    expect(ls.role).toBe("leader");
    expect(typeof ls.leases).toBe("number"); // the leader keeps lease deadlines; followers leave the key out
    expect(Object.keys(ls.progress).sort()).toEqual(["n1", "n2", "n3"]);
    for (const p of Object.values(ls.progress)) expect(sorted(p)).toEqual(sorted(PROGRESS_KEYS));
    expect(ls.members.every((m) => m.role === "voter")).toBe(true);
  });

  it("members run under MEMBER_NODE_FLAGS (V8's collections on one thread)", () => {
    for (const n of cluster.running()) {
      const argv = fs.readFileSync(`/proc/${cluster.pid(n)}/cmdline`, "utf8").split("\0");
      expect(argv.slice(1, 1 + MEMBER_NODE_FLAGS.length)).toEqual([...MEMBER_NODE_FLAGS]);
      expect(MEMBER_NODE_FLAGS).toContain("--single-threaded-gc");
    }
  });

  it("a killed member restarts on its data directory; a paused one is left out of reachable() and the waits", async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.running().find((n) => n !== leader)!;
    const sock = await cluster.connect(leader);
    try {
      await retrying(() => sock.request("put", { key: "harness/k", value: "v" }, 5000));
    } finally {
      sock.close();
    }
    const commit = (await cluster.status(leader)).commit;
    await cluster.waitForApplied(follower, commit);
    const pidBefore = cluster.pid(follower)!;
    await cluster.kill(follower);
    expect(cluster.running()).not.toContain(follower);
    expect((await cluster.exited(follower)).signal).toBe("SIGKILL");
    await cluster.restart(follower);
    expect(cluster.pid(follower)).not.toBe(pidBefore);
    // Applied from its own WAL (and the leader), the key is there again.
    const s = await cluster.waitForApplied(follower, commit, 30_000);
    expect(s.keys).toBeGreaterThanOrEqual(1);
    expect(cluster.logTail(follower, 10_000).match(/### harness: starting/g)).toHaveLength(2);

    cluster.pause(follower);
    try {
      expect(cluster.paused()).toEqual([follower]);
      expect(cluster.reachable()).not.toContain(follower);
      expect(cluster.running()).toContain(follower);
      expect(await cluster.waitForLeader(10_000)).toBe(leader);
    } finally {
      cluster.resume(follower);
    }
    expect(cluster.reachable()).toContain(follower);
  });
});

it("members die with the process that started them, even when it crashes", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "concord-harness-owner-"));
  try {
    const script = fileURLToPath(new URL("./owner-crash.script.ts", import.meta.url));
    const owner = spawn(process.execPath, ["--import", "tsx", script, "8650", root], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    owner.stdout.on("data", (d: Buffer) => (out += d.toString()));
    owner.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const killer = setTimeout(() => owner.kill("SIGKILL"), 60_000);
    const code = await new Promise<number | null>((r) => owner.on("exit", (c) => r(c)));
    clearTimeout(killer);
    expect(code, out).toBe(1);
    expect(out).toContain("the owner crashes with its member running");
    expect(out).toMatch(/^\{"pid":\d+\}$/m); // the member was up
    // Its ports are free again: the member is gone (a zombie not yet reaped would hold none either).
    const canListen = (port: number) =>
      new Promise<boolean>((resolve) => {
        const srv = net.createServer();
        srv.once("error", () => resolve(false));
        srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
      });
    await waitUntil("the member's ports to be free", 5000, async () =>
      (await canListen(8650)) && (await canListen(8651)) ? true : undefined,
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
