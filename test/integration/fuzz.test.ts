// Fuzz the client port of a real 3-member cluster with >= 100,000 hostile frames over several connections, to
// the leader and to a follower (which forwards writes): every frame gets exactly one well-formed reply (or, for
// the frames that may, a close), no reply is an untyped INTERNAL error, the members stay up and healthy, and
// their resident memory stays bounded. Replay a failure with CONCORD_FUZZ_SEED=<seed>.

import { Packr } from "msgpackr";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCluster } from "../../src/harness/index.js";
import { FrameFuzzer, type FuzzFrame } from "./fuzz-frames.js";

const TARGET_FRAMES = 100_000;
const CONNECTIONS = 8;
const BATCH = 250;
// A bound on the loop, not a speed requirement: on a quiet machine the frames take 15–30 s, on a loaded one
// (CI running two files at once beside other work) up to ~80 s.
const TIME_BUDGET_MS = 120_000;
const MAX_REQUEST_BYTES = 1.5 * 1024 * 1024; // the server default (--max-request-bytes)
const RSS_GROWTH_LIMIT = 256 * 1024 * 1024;

const unpackr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

interface FuzzStats {
  sent: number;
  replies: number;
  pushes: number;
  closes: number;
  unanswered: number;
  unexpectedCloses: string[];
  malformed: string[];
  codes: Map<string, number>;
  kinds: Map<string, number>;
  internal: string[];
}

/** Why `frame` (a decoded server frame) is not well formed, or null if it is. Counts error codes. */
function checkReply(v: unknown, stats: FuzzStats): string | null {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return `not a map: ${JSON.stringify(v)}`;
  const f = v as Record<string, unknown>;
  const checkError = (e: unknown): string | null => {
    if (typeof e !== "object" || e === null) return `error is not a map: ${JSON.stringify(e)}`;
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code !== "string" || !/^[A-Z_]+$/.test(code)) return `error.code is ${JSON.stringify(code)}`;
    if (typeof message !== "string" || message.length === 0) return `error.message is ${JSON.stringify(message)}`;
    stats.codes.set(code, (stats.codes.get(code) ?? 0) + 1);
    if (code === "INTERNAL") stats.internal.push(message);
    return null;
  };
  if (f.type === "push") return typeof f.stream === "number" && "event" in f ? null : `bad push ${JSON.stringify(f)}`;
  if (f.type === "welcome")
    return f.protocol === 1 && typeof f.node === "string" ? null : `bad welcome ${JSON.stringify(f)}`;
  if (f.type === "error") return checkError(f.error);
  if (typeof f.id !== "number" || !Number.isSafeInteger(f.id) || f.id < 0) return `reply id is ${JSON.stringify(f.id)}`;
  const hasOk = "ok" in f;
  const hasError = "error" in f;
  if (hasOk === hasError)
    return `reply has ${hasOk ? "both ok and error" : "neither ok nor error"}: ${JSON.stringify(f).slice(0, 200)}`;
  return hasError ? checkError(f.error) : null;
}

/** One fuzzing connection: batches of frames, each batch waiting until every frame has been answered. */
async function fuzzConnection(url: string, fuzzer: FrameFuzzer, stats: FuzzStats, quota: () => boolean): Promise<void> {
  while (quota()) {
    const ws = new WebSocket(`${url}/concord/v1`, { perMessageDeflate: false });
    let replies = 0;
    let closed: string | null = null;
    let wake: (() => void) | null = null;
    ws.on("message", (data: Buffer, isBinary) => {
      if (!isBinary) {
        stats.malformed.push("a text frame from the server");
        return;
      }
      let v: unknown;
      try {
        v = unpackr.unpack(data);
      } catch (e) {
        stats.malformed.push(`undecodable server frame: ${(e as Error).message}`);
        return;
      }
      const problem = checkReply(v, stats);
      if (problem) stats.malformed.push(problem);
      if ((v as { type?: unknown })?.type === "push") stats.pushes++;
      else replies++;
      wake?.();
    });
    ws.on("close", (code, reason) => {
      closed = `${code} ${reason.toString()}`;
      wake?.();
    });
    ws.on("error", () => {});
    const waitUntil = async (done: () => boolean, ms: number) => {
      const deadline = performance.now() + ms;
      while (!done() && closed === null && performance.now() < deadline) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
        wake = null;
      }
    };
    await new Promise<void>((resolve) => {
      ws.once("open", () => resolve());
      ws.once("close", () => resolve());
    });
    if (closed !== null) {
      stats.unexpectedCloses.push(`connect failed: ${closed}`);
      return;
    }
    ws.send(unpackr.pack({ type: "hello", protocol: 1 }));
    await waitUntil(() => replies >= 1, 5000);
    let expected = 1;
    while (closed === null && quota()) {
      const frames: FuzzFrame[] = Array.from({ length: BATCH }, () => fuzzer.next());
      for (const f of frames) {
        stats.kinds.set(f.kind, (stats.kinds.get(f.kind) ?? 0) + 1);
        ws.send(f.data, { binary: typeof f.data !== "string" });
      }
      stats.sent += frames.length;
      expected += frames.length;
      await waitUntil(() => replies >= expected, 10_000);
      if (closed !== null) {
        stats.unexpectedCloses.push(`closed after an ordinary batch: ${closed}`);
        stats.unanswered += Math.max(0, expected - replies);
        break;
      }
      if (replies < expected) {
        stats.unanswered += expected - replies;
        expected = replies; // keep counting from here
      }
      // Now and then, with every earlier frame answered, a frame that may close the connection (in-flight
      // replies are lost with a closed connection, so it goes alone).
      const closing = fuzzer.maybeClosing(0.04, MAX_REQUEST_BYTES);
      if (closing) {
        stats.kinds.set(closing.kind, (stats.kinds.get(closing.kind) ?? 0) + 1);
        ws.send(closing.data, { binary: true });
        stats.sent++;
        expected++;
        // Answered with a typed error, or the connection closed (a frame above the transport's limit); either
        // way this connection ends here and a new one takes over.
        await waitUntil(() => replies >= expected, 10_000);
        if (closed !== null) stats.closes++;
        else if (replies < expected) stats.unanswered += expected - replies;
        break;
      }
    }
    stats.replies += replies;
    ws.terminate();
  }
}

describe.sequential("client port fuzzing", () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ size: 3, basePort: 9400, tickMs: 50, snapshotEntries: 5000, logLevel: "warn" });
  });
  afterAll(async () => {
    await cluster?.teardown();
  });

  it(`survives ${TARGET_FRAMES} random and mutated frames with a well-formed reply to each`, async () => {
    const seed = Number(process.env.CONCORD_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const leader = await cluster.waitForLeader();
    const follower = cluster.running().find((n) => n !== leader)!;
    const targets = [leader, follower];
    const rssBefore = Object.fromEntries(
      await Promise.all(targets.map(async (n) => [n, await cluster.rssBytes(n)] as const)),
    );

    const stats: FuzzStats = {
      sent: 0,
      replies: 0,
      pushes: 0,
      closes: 0,
      unanswered: 0,
      unexpectedCloses: [],
      malformed: [],
      codes: new Map(),
      kinds: new Map(),
      internal: [],
    };
    const started = performance.now();
    const quota = () => stats.sent < TARGET_FRAMES && performance.now() - started < TIME_BUDGET_MS;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, (_, i) =>
        fuzzConnection(cluster.member(targets[i % 2]).clientUrl, new FrameFuzzer(seed + i), stats, quota),
      ),
    );
    const elapsed = Math.round(performance.now() - started);

    const rssAfter = Object.fromEntries(
      await Promise.all(targets.map(async (n) => [n, await cluster.rssBytes(n)] as const)),
    );
    const summary = {
      seed,
      elapsedMs: elapsed,
      sent: stats.sent,
      replies: stats.replies,
      pushes: stats.pushes,
      closes: stats.closes,
      unanswered: stats.unanswered,
      kinds: Object.fromEntries(stats.kinds),
      codes: Object.fromEntries(stats.codes),
      rssMiB: Object.fromEntries(
        targets.map((n) => [n, `${(rssBefore[n] / 2 ** 20).toFixed(0)} → ${(rssAfter[n] / 2 ** 20).toFixed(0)}`]),
      ),
    };
    console.log(`fuzz: ${JSON.stringify(summary)}`);

    expect(stats.malformed.slice(0, 5), `seed ${seed}`).toEqual([]);
    expect([...new Set(stats.internal)].slice(0, 5), `seed ${seed}: untyped errors`).toEqual([]);
    expect(stats.unexpectedCloses.slice(0, 5), `seed ${seed}`).toEqual([]);
    expect(stats.unanswered, `seed ${seed}: frames without a reply`).toBe(0);
    expect(stats.sent, `seed ${seed}: frames sent within ${TIME_BUDGET_MS} ms`).toBeGreaterThanOrEqual(TARGET_FRAMES);

    // Every member is still up, healthy, agrees on a leader, and serves a write.
    for (const n of cluster.running()) expect((await cluster.httpGet(n, "/health")).status).toBe(200);
    expect(cluster.running()).toHaveLength(3);
    await cluster.waitForLeader(10_000);
    const sock = await cluster.connect(follower);
    try {
      await sock.request("put", { key: "after-fuzz", value: "ok" }, 5000);
    } finally {
      sock.close();
    }
    for (const n of targets) expect(rssAfter[n] - rssBefore[n], `${n} RSS growth`).toBeLessThan(RSS_GROWTH_LIMIT);
  }, TIME_BUDGET_MS + 60_000);

  it("refuses hostile cluster administration requests with typed errors and stays up", async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.running().find((n) => n !== leader)!;
    for (const target of [leader, follower]) {
      const sock = await cluster.connect(target);
      try {
        // Each must be refused with a typed error ("snapshot" may also succeed: it is a legitimate request).
        const attempts: [string, Record<string, unknown>][] = [
          ["memberRemove", { member: "no-such-member" }],
          ["memberPromote", { member: "no-such-member" }],
          ["memberRemove", { member: 42 }],
          ["memberAdd", { member: "", peerUrl: "ws://127.0.0.1:1" }],
          ["memberAdd", { member: "bad", peerUrl: "not a url" }],
          ["memberAdd", { member: "bad2", peerUrl: 7 }],
          ["memberUpdate", { member: "no-such-member", peerUrl: "ws://127.0.0.1:1" }],
          ["memberUpdate", { member: leader, peerUrl: "not a url" }],
          ["memberUpdate", { member: leader, peerUrl: 7 }],
          ["memberUpdate", { member: leader, peerUrl: "ws://127.0.0.1:1", clientUrl: "ftp://x" }],
          ["lockList", { prefix: 7 }],
          ["lockList", { limit: 100_000 }],
          ["electionList", { after: 3 }],
          ["leaseList", { after: -1 }],
                    ["transferLeader", { to: "no-such-member" }],
          ["transferLeader", { to: {} }],
          ["compact", { revision: -1 }],
          ["compact", { revision: 2 ** 60 }],
          ["snapshot", {}],
        ];
        for (const [op, args] of attempts) {
          const outcome = await sock.request(op, args, 10_000).then(
            (ok) => ({ ok }),
            (e: { code?: string; message?: string }) => ({ code: e.code, message: e.message }),
          );
          // A refusal must be typed and explain itself; an INTERNAL error is an unvalidated input.
          const what = `${op} ${JSON.stringify(args)} on ${target}`;
          if (op === "snapshot" && !("code" in outcome)) continue;
          expect("code" in outcome, `${what} was accepted: ${JSON.stringify(outcome)}`).toBe(true);
          if ("code" in outcome) {
            expect(outcome.code, `${what}: ${outcome.message}`).not.toBe("INTERNAL");
            expect(outcome.message?.length, what).toBeGreaterThan(0);
          }
        }
      } finally {
        sock.close();
      }
    }
    // The cluster is intact: three voters, a leader, and writes succeed.
    const s = await cluster.status(await cluster.waitForLeader(10_000));
    expect(s.confState.voters.sort()).toEqual(["n1", "n2", "n3"]);
    for (const n of cluster.running()) expect((await cluster.httpGet(n, "/health")).status).toBe(200);
  });
});
