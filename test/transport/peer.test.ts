// Peer transports on real loopback sockets.

import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import type { Message, NodeId, SnapshotMessage } from "../../src/raft/types.js";
import {
  FrameKind,
  PEER_PROTOCOL_VERSION,
  decodeFrame,
  encodeBatch,
  encodeChallenge,
  encodeHello,
  encodeWelcome,
} from "../../src/transport/codec.js";
import { PeerCloseCode, clientProof, newNonce, serverProof } from "../../src/transport/peer-handshake.js";
import { PEER_PATH, PeerConfigError, PeerTransport, type PeerTransportOptions } from "../../src/transport/peer.js";
import { createServer } from "node:net";
import { bytesOf, captureLogger, everyMessageType, sleep, waitFor } from "./fixtures.js";

/** A loopback port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

interface Node {
  t: PeerTransport;
  inbox: Message[];
  batches: number[];
  snapshotStatus: { to: NodeId; ok: boolean }[];
  log: ReturnType<typeof captureLogger>;
}

const running: PeerTransport[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((t) => t.stop()));
});

async function node(id: NodeId, overrides: Partial<PeerTransportOptions> = {}): Promise<Node> {
  const log = captureLogger();
  const n: Node = { t: undefined as never, inbox: [], batches: [], snapshotStatus: [], log };
  n.t = new PeerTransport({
    id,
    clusterId: "test-cluster",
    secret: "s3cret-for-tests",
    listen: { host: "127.0.0.1", port: 0 },
    logger: log,
    backoff: { initialMs: 20, maxMs: 200 },
    onMessages: (batch) => {
      n.batches.push(batch.length);
      n.inbox.push(...batch);
    },
    onSnapshotStatus: (to, ok) => n.snapshotStatus.push({ to, ok }),
    ...overrides,
  });
  running.push(n.t);
  await n.t.start();
  return n;
}

/** Connects every pair both ways and waits for every link to be up. */
async function mesh(...nodes: Node[]): Promise<void> {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.t.addPeer(b.t.id, b.t.url);
  await waitFor(
    () => nodes.every((a) => nodes.every((b) => a === b || a.t.stats().peers[b.t.id]?.connected === true)),
    "all links connected",
  );
}

const hb = (from: NodeId, to: NodeId, commit: number): Message => ({
  type: "heartbeat",
  from,
  to,
  term: 1,
  commit,
  ctx: "",
});

describe("PeerTransport", () => {
  it("answers a member it was never told about, at the URL its handshake gave", async () => {
    // a is not told about b: as a member that missed the change adding b, when b leads and writes to it.
    const a = await node("a");
    const port = await freePort();
    const b = await node("b", { listen: { host: "127.0.0.1", port }, advertiseUrl: `ws://127.0.0.1:${port}` });
    a.t.send([hb("a", "b", 1)]);
    expect(a.t.stats().droppedUnknownPeer).toBe(1); // nobody told a where b is
    b.t.addPeer("a", a.t.url);
    await waitFor(() => b.t.stats().peers.a?.connected === true, "b connected to a");
    b.t.send([hb("b", "a", 7)]);
    await waitFor(() => a.inbox.length === 1, "a hears from b");
    // The answer goes over a link a learned from b's handshake (dialed on first use: Raft retries).
    await waitFor(() => {
      a.t.send([hb("a", "b", 8)]);
      return b.inbox.length > 0;
    }, "b hears a's answer");
    expect(b.inbox[0]).toMatchObject({ from: "a", commit: 8 });
    expect(a.log.records.some((r) => /known only from its handshake/.test(r.msg))).toBe(true);
  });

  it("delivers every message type, and one turn's messages as one frame per peer", async () => {
    const [a, b] = [await node("a"), await node("b")];
    await mesh(a, b);
    const all = everyMessageType("a", "b").filter((m) => m.type !== "snap");
    a.t.send(all.slice(0, 5));
    a.t.send(all.slice(5)); // same turn: joins the same frame
    await waitFor(() => b.inbox.length === all.length, "b receives all");
    expect(b.inbox).toEqual(all);
    expect(b.batches).toEqual([all.length]);
    const sa = a.t.stats().peers.b;
    const sb = b.t.stats().peers.a;
    expect(sa.framesSent).toBe(1);
    expect(sa.messagesSent).toBe(all.length);
    expect(sb.framesReceived).toBe(1);
    expect(sb.messagesReceived).toBe(all.length);
    expect(sb.bytesReceived).toBe(sa.bytesSent);

    // The reply travels on b's own connection to a.
    b.t.send([hb("b", "a", 1)]);
    await waitFor(() => a.inbox.length === 1, "a receives the reply");
    expect(b.t.stats().peers.a.framesSent).toBe(1);
  });

  it("sends commit-only appends alone after the turn (setImmediate), and with any other message at once", async () => {
    const [a, b] = [await node("a"), await node("b")];
    await mesh(a, b);
    const commitOnly = (commit: number): Message => ({ type: "app", from: "a", to: "b", term: 1, logTerm: 1, index: commit, entries: [], commit, commitOnly: true });
    const microtasks = async () => {
      for (let i = 0; i < 10; i++) await Promise.resolve();
    };
    const framesSent = () => a.t.stats().peers.b.framesSent;

    a.t.send([commitOnly(1)]);
    await microtasks();
    expect(framesSent()).toBe(0); // what the turn's microtasks send (a leader's replies) goes first
    await new Promise((r) => setImmediate(r));
    expect(framesSent()).toBe(1);

    a.t.send([commitOnly(2)]);
    a.t.send([hb("a", "b", 2)]);
    await microtasks();
    expect(framesSent()).toBe(2); // the heartbeat took the commit along, in one frame
    await waitFor(() => b.inbox.length === 3, "b receives all three");
    expect(b.inbox).toEqual([commitOnly(1), commitOnly(2), hb("a", "b", 2)]);
    expect(b.batches).toEqual([1, 2]);
  });

  it("three nodes: each turn sends exactly one frame to each peer", async () => {
    const nodes = [await node("n1"), await node("n2"), await node("n3")];
    await mesh(...nodes);
    const turns = 20;
    for (let turn = 0; turn < turns; turn++) {
      for (const n of nodes) {
        const out: Message[] = [];
        for (const peer of nodes)
          if (peer !== n) for (let k = 0; k < 8; k++) out.push(hb(n.t.id, peer.t.id, turn * 8 + k));
        n.t.send(out);
      }
      await sleep(1); // end the turn
    }
    await waitFor(() => nodes.every((n) => n.inbox.length === 2 * turns * 8), "all delivered");
    for (const n of nodes) {
      for (const peer of nodes) {
        if (peer === n) continue;
        const s = n.t.stats().peers[peer.t.id];
        expect(s.framesSent).toBe(turns);
        expect(s.messagesSent).toBe(turns * 8);
        // Per sender, order is preserved: commits arrive increasing.
        const commits = n.inbox.filter((m) => m.from === peer.t.id).map((m) => (m as { commit: number }).commit);
        expect(commits).toEqual([...commits].sort((x, y) => x - y));
      }
      expect(n.batches.every((size) => size === 8)).toBe(true);
    }
  });

  it("refuses a wrong cluster id, logging the reason once per peer, and the dialer keeps retrying", async () => {
    const b = await node("b");
    const a = await node("a", { clusterId: "other-cluster" });
    a.t.addPeer("b", b.t.url);
    await waitFor(() => b.t.stats().refusedConnections >= 4, "several refused attempts");
    const warns = b.log.records.filter((r) => r.level === "warn" && r.msg === "peer connection refused");
    expect(warns).toHaveLength(1);
    expect(warns[0].obj).toMatchObject({ peer: "a", code: PeerCloseCode.WrongCluster });
    expect(String(warns[0].obj.reason)).toContain('wrong cluster id "other-cluster"');
    const clientWarns = a.log.records.filter((r) => r.level === "warn" && String(r.obj.reason).includes("refused"));
    expect(clientWarns).toHaveLength(1);
    expect(String(clientWarns[0].obj.reason)).toContain("4002");
    expect(a.t.stats().peers.b.connected).toBe(false);
    await waitFor(() => a.t.stats().peers.b.reconnects >= 4, "the dialer retries after each refusal");
    a.t.send([hb("a", "b", 1)]);
    expect(a.t.stats().peers.b.droppedDisconnected).toBe(1);
  });

  it("refuses a wrong secret without revealing it", async () => {
    const b = await node("b");
    const a = await node("a", { secret: "not-the-secret" });
    a.t.addPeer("b", b.t.url);
    await waitFor(() => b.t.stats().refusedConnections >= 2, "refused");
    const warn = b.log.records.find((r) => r.level === "warn" && r.msg === "peer connection refused");
    expect(warn?.obj).toMatchObject({ peer: "a", code: PeerCloseCode.AuthFailed });
    expect(String(warn?.obj.reason)).toContain("wrong cluster secret");
    expect(JSON.stringify(b.log.records) + JSON.stringify(a.log.records)).not.toContain("s3cret-for-tests");
    expect(b.inbox).toHaveLength(0);
  });

  it("closes a connection that sends garbage or lies about the sender, and keeps serving others", async () => {
    const b = await node("b");
    const garbage = new WebSocket(b.t.url + PEER_PATH);
    const closed = new Promise<[number, string]>((resolve) =>
      garbage.on("close", (c, r) => resolve([c, r.toString()])),
    );
    garbage.on("message", (data: Buffer) => {
      expect(decodeFrame(data).kind).toBe(FrameKind.Challenge);
      garbage.send(Buffer.from([0xc1, 0xff, 0x00]));
    });
    const [code, reason] = await closed;
    expect(code).toBe(PeerCloseCode.BadFrame);
    expect(reason).toContain("malformed peer frame");
    expect(b.t.stats().decodeErrors).toBe(1);

    const a = await node("a");
    await mesh(a, b);
    a.t.send([hb("a", "b", 5)]);
    await waitFor(() => b.inbox.length === 1, "still serving");
  });

  it("accepts peers added before start() and dials them on start()", async () => {
    const b = await node("b");
    const log = captureLogger();
    const early = new PeerTransport({
      id: "early",
      clusterId: "test-cluster",
      secret: "s3cret-for-tests",
      listen: { host: "127.0.0.1", port: 0 },
      logger: log,
      onMessages: () => {},
    });
    running.push(early);
    early.addPeer("b", b.t.url);
    expect(early.stats().peers.b).toBeUndefined();
    await early.start();
    await waitFor(() => early.stats().peers.b?.connected === true, "dialed on start");
  });

  it("reconnects after the remote restarts on the same port", async () => {
    const a = await node("a");
    let b = await node("b");
    const port = b.t.address().port;
    await mesh(a, b);
    await b.t.stop();
    await waitFor(() => a.t.stats().peers.b.connected === false, "a sees b down");
    a.t.send([hb("a", "b", 1)]);
    expect(a.t.stats().peers.b.droppedDisconnected).toBeGreaterThanOrEqual(1);
    await sleep(100); // a few failed dials
    b = await node("b", { listen: { host: "127.0.0.1", port } });
    await waitFor(() => a.t.stats().peers.b.connected === true, "a reconnected", 5000);
    expect(a.t.stats().peers.b.connects).toBe(2);
    expect(a.t.stats().peers.b.reconnects).toBeGreaterThanOrEqual(2);
    a.t.send([hb("a", "b", 2)]);
    await waitFor(() => b.inbox.length === 1, "delivered after reconnect");
    expect(b.inbox[0]).toMatchObject({ commit: 2 });
  });

  it("drops (and counts) messages beyond maxQueueBytes instead of queueing them", async () => {
    const [a, b] = [await node("a", { maxQueueBytes: 64 * 1024 }), await node("b")];
    await mesh(a, b);
    const entry = (i: number): Message => ({
      type: "app",
      from: "a",
      to: "b",
      term: 1,
      logTerm: 1,
      index: i,
      commit: 0,
      entries: [{ term: 1, index: i + 1, type: 0, data: bytesOf(4096, i + 1) }],
    });
    a.t.send(Array.from({ length: 40 }, (_, i) => entry(i))); // ~160 KiB in one turn
    await waitFor(() => b.inbox.length > 0, "the first part arrives");
    await sleep(50);
    const s = a.t.stats().peers.b;
    expect(s.droppedOverflow).toBeGreaterThan(0);
    expect(s.messagesSent + s.droppedOverflow).toBe(40);
    expect(b.inbox.length).toBe(s.messagesSent);
    expect(s.messagesSent).toBeLessThanOrEqual(16);
  });

  it("streams a 20 MB snapshot in chunks, reassembles it byte-equal, and keeps other messages flowing", async () => {
    const [a, b] = [await node("a", { snapshotChunkBytes: 1 << 20, snapshotWindowChunks: 4 }), await node("b")];
    await mesh(a, b);
    const data = bytesOf(20 * 1024 * 1024 + 123, 77);
    const snap: SnapshotMessage = {
      type: "snap",
      from: "a",
      to: "b",
      term: 9,
      snapshot: {
        metadata: {
          index: 5000,
          term: 8,
          confState: { voters: ["a", "b"], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
        },
        data,
      },
    };
    a.t.send([snap, hb("a", "b", 1)]);
    // Raft's retry of the same snapshot while it streams gets the stream's one outcome; another snapshot is refused.
    a.t.send([snap]);
    a.t.send([{ ...snap, snapshot: { ...snap.snapshot, metadata: { ...snap.snapshot.metadata, index: 6000 } } }]);
    await waitFor(() => a.snapshotStatus.length === 2, "snapshot status", 20_000);
    expect(a.snapshotStatus).toEqual([{ to: "b", ok: false }, { to: "b", ok: true }]);
    expect(b.inbox.filter((m) => m.type === "snap")).toHaveLength(1);
    const got = b.inbox.find((m) => m.type === "snap") as SnapshotMessage;
    expect(got.snapshot.metadata).toEqual(snap.snapshot.metadata);
    expect(got.snapshot.data.byteLength).toBe(data.byteLength);
    expect(Buffer.from(got.snapshot.data).equals(Buffer.from(data))).toBe(true);
    // The heartbeat sent with it was not held back until the whole snapshot was through.
    expect(b.inbox.findIndex((m) => m.type === "heartbeat")).toBeLessThan(b.inbox.indexOf(got));
    const s = a.t.stats().peers.b;
    expect(s.snapshotsSent).toBe(1);
    expect(s.bytesSent).toBeGreaterThan(data.byteLength);
    expect(b.t.stats().peers.a.framesReceived).toBeGreaterThanOrEqual(22); // begin + 21 chunks + batch
  });

  it("reports a snapshot failure when the receiver refuses its size or the link is down", async () => {
    const [a, b] = [await node("a"), await node("b", { maxSnapshotBytes: 1024 })];
    const snap = (to: NodeId): SnapshotMessage => ({
      type: "snap",
      from: "a",
      to,
      term: 2,
      snapshot: {
        metadata: {
          index: 10,
          term: 2,
          confState: { voters: ["a"], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
        },
        data: bytesOf(4096),
      },
    });
    await mesh(a, b);
    a.t.send([snap("b")]);
    await waitFor(() => a.snapshotStatus.length === 1, "status");
    expect(a.snapshotStatus[0]).toEqual({ to: "b", ok: false });
    expect(a.log.records.some((r) => String(r.obj.reason).includes("exceeds the limit of 1024"))).toBe(true);
    expect(b.inbox).toHaveLength(0);

    a.t.addPeer("c", "ws://127.0.0.1:1"); // nothing listens there
    a.t.send([snap("c")]);
    await waitFor(() => a.snapshotStatus.length === 2, "status for c");
    expect(a.snapshotStatus[1]).toEqual({ to: "c", ok: false });
  });

  it("drops messages to unknown peers and validates its options", async () => {
    const a = await node("a");
    a.t.send([hb("a", "zz", 1)]);
    expect(a.t.stats().droppedUnknownPeer).toBe(1);
    const b = await node("b");
    await mesh(a, b);
    a.t.removePeer("b");
    a.t.send([hb("a", "b", 1)]);
    expect(a.t.stats().droppedUnknownPeer).toBe(2);
    expect(a.t.stats().peers.b?.connected ?? false).toBe(false);
    const base = { id: "x", clusterId: "c", secret: "s", listen: { host: "127.0.0.1", port: 0 }, onMessages: () => {} };
    expect(() => new PeerTransport({ ...base, id: "" })).toThrow(PeerConfigError);
    expect(() => new PeerTransport({ ...base, peers: new Map([["y", "http://h:1"]]) })).toThrow(/ws:\/\/ or wss:\/\//);
    expect(() => new PeerTransport({ ...base, maxQueueBytes: -1 })).toThrow(/maxQueueBytes/);
    expect(() => new PeerTransport({ ...base, secret: "" })).toThrow(/secret/);
  });

  it("a frame is refused if any message in it claims another sender", async () => {
    // Forge a frame as if from an authenticated peer: a real link from "a", with a message claiming to be "c".
    const [a, b] = [await node("a"), await node("b")];
    await mesh(a, b);
    const link = (a.t as unknown as { links: Map<string, { ws: WebSocket }> }).links.get("b")!;
    link.ws.send(encodeBatch([hb("c", "b", 1)]));
    await waitFor(() => b.t.stats().decodeErrors === 1, "refused");
    expect(b.inbox).toHaveLength(0);
    await waitFor(() => a.t.stats().peers.b.connects === 2, "a redials");
  });

  it("speaks protocol 1 to a member of the previous release: a commitOnly append goes as a plain one", async () => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((r) => wss.once("listening", r));
    const hellos: number[] = [];
    const received: Message[] = [];
    wss.on("connection", (ws) => {
      const nonce = newNonce();
      ws.send(encodeChallenge({ protocol: 1, clusterId: "test-cluster", serverId: "old", nonce }));
      ws.on("message", (data: Buffer) => {
        const f = decodeFrame(data);
        if (f.kind === FrameKind.Hello) {
          hellos.push(f.protocol);
          const binding = { clusterId: f.clusterId, from: f.from, to: f.to, serverNonce: nonce, clientNonce: f.nonce };
          ws.send(encodeWelcome({ proof: serverProof("s3cret-for-tests", binding) }));
        } else if (f.kind === FrameKind.Batch) received.push(...f.messages);
      });
    });
    try {
      const a = await node("a");
      a.t.addPeer("old", `ws://127.0.0.1:${(wss.address() as { port: number }).port}`);
      await waitFor(() => a.t.stats().peers.old?.connected === true, "connected to the old member");
      const app: Message = { type: "app", from: "a", to: "old", term: 2, logTerm: 2, index: 7, entries: [], commit: 7, commitOnly: true };
      a.t.send([app]);
      await waitFor(() => received.length === 1, "the append arrives");
      expect(hellos).toEqual([1]);
      expect(received[0]).toEqual({ ...app, commitOnly: undefined });
      expect("commitOnly" in received[0]).toBe(false);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });

  it.each([
    [1, "accepts", null],
    [PEER_PROTOCOL_VERSION + 1, "refuses", PeerCloseCode.ProtocolMismatch],
  ])("a hello of protocol %i: %s it", async (protocol, _verb, closeCode) => {
    const b = await node("b");
    const ws = new WebSocket(new URL(PEER_PATH, b.t.url));
    ws.on("error", () => {}); // the refusal closes the socket; 'close' says how
    const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)));
    const welcomed = new Promise<boolean>((r) => {
      ws.on("message", (data: Buffer) => {
        const f = decodeFrame(data);
        if (f.kind === FrameKind.Welcome) r(true);
        if (f.kind !== FrameKind.Challenge) return;
        const nonce = newNonce();
        const binding = { clusterId: "test-cluster", from: "new", to: "b", serverNonce: f.nonce, clientNonce: nonce };
        ws.send(encodeHello({ protocol, clusterId: "test-cluster", from: "new", to: "b", nonce, proof: clientProof("s3cret-for-tests", binding) }));
      });
      ws.once("close", () => r(false));
    });
    try {
      if (closeCode === null) expect(await welcomed).toBe(true);
      else {
        expect(await closed).toBe(closeCode);
        expect(b.log.records.some((r) => String(r.obj.reason ?? r.msg).includes(`protocol ${protocol} unsupported; this node speaks 1 to ${PEER_PROTOCOL_VERSION}`))).toBe(true);
      }
    } finally {
      ws.terminate();
    }
  });

  it("fails a snapshot whose receiver stops acknowledging, and redials", async () => {
    // A peer that authenticates properly and then never acks a chunk.
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((r) => wss.once("listening", r));
    const frames: number[] = [];
    wss.on("connection", (ws) => {
      const nonce = newNonce();
      ws.send(encodeChallenge({ protocol: PEER_PROTOCOL_VERSION, clusterId: "test-cluster", serverId: "mute", nonce }));
      ws.on("message", (data: Buffer) => {
        const f = decodeFrame(data);
        frames.push(f.kind);
        if (f.kind === FrameKind.Hello) {
          const binding = { clusterId: f.clusterId, from: f.from, to: f.to, serverNonce: nonce, clientNonce: f.nonce };
          ws.send(encodeWelcome({ proof: serverProof("s3cret-for-tests", binding) }));
        }
      });
    });
    try {
      const a = await node("a", {
        snapshotStallTimeoutMs: 150,
        pingIntervalMs: 25,
        snapshotChunkBytes: 1024,
        snapshotWindowChunks: 2,
      });
      const port = (wss.address() as { port: number }).port;
      a.t.addPeer("mute", `ws://127.0.0.1:${port}`);
      await waitFor(() => a.t.stats().peers.mute?.connected === true, "connected to the mute peer");
      a.t.send([
        {
          type: "snap",
          from: "a",
          to: "mute",
          term: 2,
          snapshot: {
            metadata: {
              index: 10,
              term: 2,
              confState: { voters: ["a"], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
            },
            data: bytesOf(10_000),
          },
        },
      ]);
      await waitFor(() => a.snapshotStatus.length === 1, "the stalled snapshot is reported");
      expect(a.snapshotStatus[0]).toEqual({ to: "mute", ok: false });
      // Flow control held the sender to its window: begin + 2 chunks, nothing more.
      expect(frames.filter((k) => k === FrameKind.SnapChunk)).toHaveLength(2);
      expect(
        a.log.records.some((r) => String(r.obj.reason).includes("snapshot stream made no progress for 150 ms")),
      ).toBe(true);
      await waitFor(() => a.t.stats().peers.mute.connects === 2, "redialed after resetting the stalled connection");
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });

  it("measures RTT with pings, and resets a connection whose peer stops answering them", async () => {
    const [a, b] = [await node("a", { pingIntervalMs: 20 }), await node("b")];
    await mesh(a, b);
    await waitFor(() => a.t.stats().peers.b.rttMs !== null, "an RTT sample");
    expect(a.t.stats().peers.b.rttMs).toBeGreaterThan(0);
    expect(a.t.stats().peers.b.rttMs).toBeLessThan(1000);

    // A peer that completes the handshake but never answers pings (autoPong off).
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, autoPong: false });
    await new Promise((r) => wss.once("listening", r));
    wss.on("connection", (ws) => {
      const nonce = newNonce();
      ws.send(encodeChallenge({ protocol: PEER_PROTOCOL_VERSION, clusterId: "test-cluster", serverId: "deaf", nonce }));
      ws.on("message", (data: Buffer) => {
        const f = decodeFrame(data);
        if (f.kind !== FrameKind.Hello) return;
        const binding = { clusterId: f.clusterId, from: f.from, to: f.to, serverNonce: nonce, clientNonce: f.nonce };
        ws.send(encodeWelcome({ proof: serverProof("s3cret-for-tests", binding) }));
      });
    });
    try {
      const c = await node("c", { pingIntervalMs: 20, deadPeerTimeoutMs: 100 });
      c.t.addPeer("deaf", `ws://127.0.0.1:${(wss.address() as { port: number }).port}`);
      await waitFor(() => c.t.stats().peers.deaf.connects >= 2, "reset and redialed");
      expect(c.log.records.some((r) => r.obj.reason === "no pong for 100 ms")).toBe(true);
    } finally {
      for (const ws of wss.clients) ws.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
});
