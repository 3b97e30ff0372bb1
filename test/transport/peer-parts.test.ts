// The transport's pure parts: backoff schedule and the snapshot stream state machines.

import { describe, expect, it } from "vitest";
import { attachReader, type SnapshotMessage } from "../../src/raft/types.js";
import { FrameKind, SnapAckStatus, decodeFrame, type Frame } from "../../src/transport/codec.js";
import { Backoff } from "../../src/transport/peer-backoff.js";
import { SnapshotStreamReceiver, SnapshotStreamSender } from "../../src/transport/peer-snapshot.js";
import { bytesOf } from "./fixtures.js";

describe("Backoff", () => {
  it("doubles from initialMs to maxMs, jitters within ±jitter, and resets", () => {
    const mid = new Backoff({ initialMs: 50, maxMs: 2000, jitter: 0.5, random: () => 0.5 });
    expect(Array.from({ length: 8 }, () => mid.next())).toEqual([50, 100, 200, 400, 800, 1600, 2000, 2000]);
    mid.reset();
    expect(mid.next()).toBe(50);
    expect(new Backoff({ initialMs: 100, jitter: 0.5, random: () => 0 }).next()).toBe(50);
    expect(new Backoff({ initialMs: 100, jitter: 0.5, random: () => 0.999999 }).next()).toBe(150);
  });

  it("refuses nonsensical settings", () => {
    expect(() => new Backoff({ initialMs: 0 })).toThrow(/initialMs/);
    expect(() => new Backoff({ jitter: 1 })).toThrow(/jitter/);
  });
});

const snapOf = (data: Uint8Array): SnapshotMessage => ({
  type: "snap",
  from: "a",
  to: "b",
  term: 4,
  snapshot: {
    metadata: {
      index: 9,
      term: 3,
      confState: { voters: ["a", "b"], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    },
    data,
  },
});

describe("snapshot streams", () => {
  it("keeps at most windowChunks unacknowledged and reassembles in order", () => {
    const data = bytesOf(55, 5);
    const wire: Frame[] = [];
    const sender = new SnapshotStreamSender(7, snapOf(data), (f) => wire.push(decodeFrame(f)), 10, 2);
    const receiver = new SnapshotStreamReceiver("b", "a", 1000);
    sender.start();
    expect(wire.map((f) => f.kind)).toEqual([FrameKind.SnapBegin, FrameKind.SnapChunk, FrameKind.SnapChunk]);
    let delivered: SnapshotMessage | undefined;
    // Deliver frames one by one, feeding each ack back: the window refills one chunk per ack.
    for (let i = 0; i < wire.length; i++) {
      const f = wire[i];
      const step =
        f.kind === FrameKind.SnapBegin
          ? receiver.begin(f)
          : f.kind === FrameKind.SnapChunk
            ? receiver.chunk(f)
            : undefined;
      if (step === undefined) throw new Error("unexpected frame");
      if (step.completed) delivered = step.completed;
      sender.onAck({ kind: FrameKind.SnapAck, ...step.ack });
      const chunksWritten = wire.length - 1; // frame 0 is the begin
      const chunksAcked = i; // frames 1..i were chunks the receiver acked
      expect(chunksWritten - chunksAcked).toBeLessThanOrEqual(2);
    }
    expect(sender.state).toBe("done");
    expect(wire.filter((f) => f.kind === FrameKind.SnapChunk)).toHaveLength(6);
    expect(delivered).toEqual(snapOf(data));
  });

  it("reads a snapshot on disk a chunk at a time as it sends, never its data whole; an unreadable chunk fails the stream", () => {
    const data = bytesOf(55, 5);
    const reads: number[] = [];
    const onDisk = (failAt?: number): SnapshotMessage => {
      const m = snapOf(new Uint8Array());
      const snapshot = {
        metadata: m.snapshot.metadata,
        get data(): Uint8Array {
          throw new Error("the whole data was loaded");
        },
      };
      attachReader(snapshot, () => ({
        size: data.length,
        read: (offset, length) => {
          if (offset === failAt) throw new Error("checksum mismatch");
          reads.push(offset);
          return data.subarray(offset, offset + length);
        },
      }));
      return { ...m, snapshot };
    };
    const wire: Frame[] = [];
    const sender = new SnapshotStreamSender(8, onDisk(), (f) => wire.push(decodeFrame(f)), 10, 2);
    const receiver = new SnapshotStreamReceiver("b", "a", 1000);
    sender.start();
    let delivered: SnapshotMessage | undefined;
    for (let i = 0; i < wire.length; i++) {
      const f = wire[i];
      const step = f.kind === FrameKind.SnapBegin ? receiver.begin(f) : f.kind === FrameKind.SnapChunk ? receiver.chunk(f) : undefined;
      if (step === undefined) throw new Error("unexpected frame");
      if (step.completed) delivered = step.completed;
      sender.onAck({ kind: FrameKind.SnapAck, ...step.ack });
      // Read as the window allows, not ahead of it.
      expect(reads.length - (i > 0 ? i : 0)).toBeLessThanOrEqual(2);
    }
    expect(sender.state).toBe("done");
    expect(reads).toEqual([0, 10, 20, 30, 40, 50]);
    expect(Buffer.from(delivered!.snapshot.data).equals(data)).toBe(true);

    // The last chunk cannot be read (its file's checksum fails): it is never sent, and the stream fails.
    const failing: Frame[] = [];
    const broken = new SnapshotStreamSender(9, onDisk(50), (f) => failing.push(decodeFrame(f)), 10, 10);
    broken.start();
    expect(broken.state).toBe("failed");
    expect(broken.failureReason).toMatch(/cannot read the snapshot: checksum mismatch/);
    expect(failing.filter((f) => f.kind === FrameKind.SnapChunk).map((f) => (f as { offset: number }).offset)).toEqual([0, 10, 20, 30, 40]);
  });

  it("the receiver refuses oversize, misaddressed, out-of-order and overrunning streams", () => {
    const r = new SnapshotStreamReceiver("b", "a", 100);
    const begin = {
      kind: FrameKind.SnapBegin,
      streamId: 1,
      from: "a",
      to: "b",
      term: 1,
      metadata: snapOf(new Uint8Array()).snapshot.metadata,
      totalBytes: 20,
    } as const;
    expect(r.begin({ ...begin, totalBytes: 101 }).ack).toMatchObject({
      status: SnapAckStatus.Failed,
      reason: expect.stringContaining("exceeds the limit of 100"),
    });
    expect(r.begin({ ...begin, from: "c" }).ack.status).toBe(SnapAckStatus.Failed);
    expect(r.begin({ ...begin, to: "x" }).ack.status).toBe(SnapAckStatus.Failed);
    expect(r.begin(begin).ack.status).toBe(SnapAckStatus.Progress);
    expect(r.chunk({ kind: FrameKind.SnapChunk, streamId: 1, offset: 5, data: bytesOf(5) }).ack).toMatchObject({
      status: SnapAckStatus.Failed,
      reason: "chunk at offset 5, expected 0",
    });
    expect(r.busy).toBe(false);
    r.begin(begin);
    expect(r.chunk({ kind: FrameKind.SnapChunk, streamId: 1, offset: 0, data: bytesOf(21) }).ack.status).toBe(
      SnapAckStatus.Failed,
    );
    expect(r.begin({ ...begin, totalBytes: 0 }).completed?.snapshot.data.byteLength).toBe(0);
  });

  it("the sender fails on a refusal or an impossible ack", () => {
    const s1 = new SnapshotStreamSender(1, snapOf(bytesOf(30)), () => {}, 10, 1);
    s1.start();
    s1.onAck({ kind: FrameKind.SnapAck, streamId: 1, receivedBytes: 0, status: SnapAckStatus.Failed, reason: "full" });
    expect([s1.state, s1.failureReason]).toEqual(["failed", "receiver refused the snapshot: full"]);
    const s2 = new SnapshotStreamSender(2, snapOf(bytesOf(30)), () => {}, 10, 1);
    s2.start();
    s2.onAck({ kind: FrameKind.SnapAck, streamId: 2, receivedBytes: 25, status: SnapAckStatus.Progress, reason: "" });
    expect(s2.state).toBe("failed");
  });
});
