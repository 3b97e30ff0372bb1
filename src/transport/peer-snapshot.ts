// Snapshot streaming. A "snap" message can carry hundreds of MB, so it never travels as one frame: the sender
// opens a stream (SnapBegin: the message without its data, and the data's size), then sends chunks in order,
// keeping at most `windowChunks` unacknowledged (credit-based flow control: the receiver acks every chunk it
// has copied, so a slow receiver slows the sender instead of filling memory on either side). The receiver
// reassembles into one buffer of the announced size and delivers the whole message when the last byte
// arrives. Batches of ordinary messages are written on the same connection between chunks, so a snapshot
// delays them by at most one chunk.
//
// Both halves are plain state machines without timers or sockets: the link drives them and owns the clock.

import { assert } from "../assert.js";
import { snapshotReader, type NodeId, type SnapshotMessage, type SnapshotReader } from "../raft/types.js";
import {
  SnapAckStatus,
  encodeSnapBegin,
  encodeSnapChunk,
  type SnapAckFrame,
  type SnapBeginFrame,
  type SnapChunkFrame,
} from "./codec.js";

export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
export const DEFAULT_SNAPSHOT_WINDOW_CHUNKS = 4;

export type SnapshotOutcome = "pending" | "done" | "failed";

export class SnapshotStreamSender {
  /** The snapshot's bytes, read a chunk at a time as they are sent: from its file when it is on disk. */
  private readonly source: SnapshotReader;
  private sentBytes = 0;
  private ackedBytes = 0;
  private outcome: SnapshotOutcome = "pending";
  failureReason = "";

  constructor(
    readonly streamId: number,
    readonly message: SnapshotMessage,
    private readonly write: (frame: Uint8Array) => void,
    private readonly chunkBytes = DEFAULT_SNAPSHOT_CHUNK_BYTES,
    private readonly windowChunks = DEFAULT_SNAPSHOT_WINDOW_CHUNKS,
  ) {
    assert(chunkBytes > 0 && windowChunks > 0, "snapshot chunks and window must be positive");
    this.source = snapshotReader(message.snapshot);
  }

  get totalBytes(): number {
    return this.source.size;
  }

  get state(): SnapshotOutcome {
    return this.outcome;
  }

  start(): void {
    const m = this.message;
    this.write(
      encodeSnapBegin({
        streamId: this.streamId,
        from: m.from,
        to: m.to,
        term: m.term,
        metadata: m.snapshot.metadata,
        totalBytes: this.totalBytes,
      }),
    );
    this.pump();
  }

  /** Applies the receiver's ack; returns true when it changed the outcome or granted credit. */
  onAck(ack: SnapAckFrame): boolean {
    if (ack.streamId !== this.streamId || this.outcome !== "pending") return false;
    if (ack.status === SnapAckStatus.Failed) {
      this.outcome = "failed";
      this.failureReason = `receiver refused the snapshot: ${ack.reason}`;
      return true;
    }
    if (ack.receivedBytes > this.sentBytes || ack.receivedBytes < this.ackedBytes) {
      this.outcome = "failed";
      this.failureReason = `receiver acked ${ack.receivedBytes} bytes; sent ${this.sentBytes}, acked ${this.ackedBytes}`;
      return true;
    }
    this.ackedBytes = ack.receivedBytes;
    if (ack.status === SnapAckStatus.Done) {
      if (this.ackedBytes !== this.totalBytes) {
        this.outcome = "failed";
        this.failureReason = `receiver reported done at ${this.ackedBytes} of ${this.totalBytes} bytes`;
      } else {
        this.outcome = "done";
      }
      return true;
    }
    this.pump();
    return true;
  }

  fail(reason: string): void {
    if (this.outcome !== "pending") return;
    this.outcome = "failed";
    this.failureReason = reason;
  }

  /**
   * Sends chunks while the window has credit, each read as it goes. A chunk that cannot be read (the file is gone,
   * or its checksum fails at the end: the last chunk is then never sent) fails the stream.
   */
  private pump(): void {
    const total = this.source.size;
    const windowBytes = this.chunkBytes * this.windowChunks;
    while (this.outcome === "pending" && this.sentBytes < total && this.sentBytes - this.ackedBytes < windowBytes) {
      let data: Uint8Array;
      try {
        data = this.source.read(this.sentBytes, Math.min(this.chunkBytes, total - this.sentBytes));
      } catch (e) {
        this.fail(`cannot read the snapshot: ${(e as Error).message}`);
        return;
      }
      this.write(encodeSnapChunk({ streamId: this.streamId, offset: this.sentBytes, data }));
      this.sentBytes += data.byteLength;
    }
  }
}

/** What the receiver answers to one frame, and the reassembled message once complete. */
export interface ReceiveStep {
  ack: Omit<SnapAckFrame, "kind">;
  completed?: SnapshotMessage;
}

/** Reassembles the snapshot streams arriving on one authenticated inbound connection (one at a time). */
export class SnapshotStreamReceiver {
  private current: { begin: SnapBeginFrame; data: Uint8Array; received: number } | null = null;

  constructor(
    private readonly self: NodeId,
    private readonly peer: NodeId,
    private readonly maxSnapshotBytes: number,
  ) {}

  /** True while a stream has begun and not completed (its buffer is held). */
  get busy(): boolean {
    return this.current !== null;
  }

  begin(f: SnapBeginFrame): ReceiveStep {
    // A new stream supersedes an unfinished one: the sender gave up on it (timeout) and Raft retried.
    this.current = null;
    const refuse = (reason: string): ReceiveStep => ({
      ack: { streamId: f.streamId, receivedBytes: 0, status: SnapAckStatus.Failed, reason },
    });
    if (f.from !== this.peer) return refuse(`snapshot from "${f.from}" on the connection of "${this.peer}"`);
    if (f.to !== this.self) return refuse(`snapshot addressed to "${f.to}", this node is "${this.self}"`);
    if (f.totalBytes > this.maxSnapshotBytes) {
      return refuse(`snapshot of ${f.totalBytes} bytes exceeds the limit of ${this.maxSnapshotBytes}`);
    }
    const data = new Uint8Array(f.totalBytes);
    this.current = { begin: f, data, received: 0 };
    if (f.totalBytes === 0) return this.complete();
    return { ack: { streamId: f.streamId, receivedBytes: 0, status: SnapAckStatus.Progress, reason: "" } };
  }

  chunk(f: SnapChunkFrame): ReceiveStep {
    const cur = this.current;
    const refuse = (reason: string, received = 0): ReceiveStep => {
      this.current = null;
      return { ack: { streamId: f.streamId, receivedBytes: received, status: SnapAckStatus.Failed, reason } };
    };
    if (cur === null || cur.begin.streamId !== f.streamId)
      return refuse(`chunk of unknown snapshot stream ${f.streamId}`);
    if (f.offset !== cur.received) return refuse(`chunk at offset ${f.offset}, expected ${cur.received}`, cur.received);
    if (f.data.byteLength === 0 || cur.received + f.data.byteLength > cur.data.byteLength) {
      return refuse(`chunk of ${f.data.byteLength} bytes at ${f.offset} overruns ${cur.data.byteLength}`, cur.received);
    }
    cur.data.set(f.data, cur.received);
    cur.received += f.data.byteLength;
    if (cur.received === cur.data.byteLength) return this.complete();
    return { ack: { streamId: f.streamId, receivedBytes: cur.received, status: SnapAckStatus.Progress, reason: "" } };
  }

  /** The connection ended: an unfinished stream is discarded. */
  abort(): void {
    this.current = null;
  }

  private complete(): ReceiveStep {
    const cur = this.current;
    assert(cur !== null && cur.received === cur.data.byteLength, "snapshot completed before its last byte");
    this.current = null;
    const b = cur.begin;
    return {
      ack: { streamId: b.streamId, receivedBytes: cur.received, status: SnapAckStatus.Done, reason: "" },
      completed: {
        type: "snap",
        from: b.from,
        to: b.to,
        term: b.term,
        snapshot: { metadata: b.metadata, data: cur.data },
      },
    };
  }
}
