import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import type { Message } from "../../src/raft/types.js";
import {
  FrameDecodeError,
  FrameKind,
  MAX_CTX_LENGTH,
  MAX_NODE_ID_LENGTH,
  NONCE_BYTES,
  PROOF_BYTES,
  SnapAckStatus,
  decodeFrame,
  decodeMessage,
  encodeBatch,
  encodeChallenge,
  encodeHello,
  encodeMessage,
  encodeSnapAck,
  encodeSnapBegin,
  encodeSnapChunk,
  encodeWelcome,
  messageToTuple,
  type Frame,
} from "../../src/transport/codec.js";
import { bytesOf, everyMessageType } from "./fixtures.js";

const raw = new Packr({ useRecords: false });

function decodeError(bytes: Uint8Array): FrameDecodeError {
  try {
    decodeFrame(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(FrameDecodeError);
    return err as FrameDecodeError;
  }
  throw new Error("decodeFrame accepted a malformed frame");
}

// An independent statement of what a valid message is, written without looking at the codec's validators.
const isUint = (v: unknown): boolean => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isId = (v: unknown): boolean => typeof v === "string" && v.length > 0 && v.length <= MAX_NODE_ID_LENGTH;
const isCtx = (v: unknown): boolean => typeof v === "string" && v.length <= MAX_CTX_LENGTH;
const isBool = (v: unknown): boolean => typeof v === "boolean";
const FIELDS: Record<string, string[]> = {
  app: ["logTerm:u", "index:u", "commit:u", "entries:e"],
  appResp: ["index:u", "reject:b", "hintIndex:u", "hintTerm:u"],
  vote: ["logTerm:u", "index:u", "transfer:b"],
  preVote: ["logTerm:u", "index:u", "transfer:b"],
  voteResp: ["reject:b"],
  preVoteResp: ["reject:b"],
  heartbeat: ["commit:u", "ctx:c"],
  heartbeatResp: ["ctx:c"],
  snap: ["snapshot:s"],
  timeoutNow: [],
  readIndex: ["ctx:c"],
  readIndexResp: ["ctx:c", "index:u", "reject:b"],
};
function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`decodeFrame returned an invalid message: ${what}`);
}
function checkMessage(m: Message): void {
  const spec = FIELDS[m.type];
  check(spec !== undefined, `type ${m.type}`);
  check(isId(m.from) && isId(m.to) && isUint(m.term), "header");
  const keys = Object.keys(m).sort().join();
  check(keys === ["type", "from", "to", "term", ...spec.map((f) => f.split(":")[0])].sort().join(), `fields ${keys}`);
  const rec = m as unknown as Record<string, unknown>;
  for (const f of spec) {
    const [name, kind] = f.split(":");
    const v = rec[name];
    if (kind === "u") check(isUint(v), name);
    if (kind === "b") check(isBool(v), name);
    if (kind === "c") check(isCtx(v), name);
    if (kind === "e") {
      for (const e of v as { term: unknown; index: unknown; type: unknown; data: unknown }[]) {
        check(
          isUint(e.term) && isUint(e.index) && (e.type === 0 || e.type === 1) && e.data instanceof Uint8Array,
          "entry",
        );
      }
    }
    if (kind === "s") {
      const s = v as { metadata: { index: unknown; term: unknown; confState: Record<string, unknown> }; data: unknown };
      check(isUint(s.metadata.index) && isUint(s.metadata.term) && s.data instanceof Uint8Array, "snapshot");
      for (const k of ["voters", "learners", "votersOutgoing", "learnersNext"]) {
        check((s.metadata.confState[k] as unknown[]).every(isId), k);
      }
      check(isBool(s.metadata.confState.autoLeave), "autoLeave");
    }
  }
}

function checkFrame(f: Frame): void {
  if (f.kind === FrameKind.Batch) f.messages.forEach(checkMessage);
  else if (f.kind === FrameKind.SnapChunk) check(f.data instanceof Uint8Array, "chunk data");
  else if (f.kind === FrameKind.Challenge) check(f.nonce.byteLength === NONCE_BYTES, "nonce");
  else if (f.kind === FrameKind.Hello) check(f.proof.byteLength === PROOF_BYTES, "proof");
}

describe("codec: messages", () => {
  it("round-trips every message type, alone and in one batch", () => {
    const all = everyMessageType();
    expect(new Set(all.map((m) => m.type)).size).toBe(12);
    for (const m of all) expect(decodeMessage(encodeMessage(m))).toEqual(m);
    const frame = decodeFrame(encodeBatch(all));
    expect(frame).toEqual({ kind: FrameKind.Batch, messages: all });
  });

  it("round-trips a commitOnly append, and an append without the flag has none", () => {
    const m: Message = { type: "app", from: "n1", to: "n2", term: 3, logTerm: 3, index: 9, entries: [], commit: 9, commitOnly: true };
    expect(decodeMessage(encodeMessage(m))).toEqual(m);
    const plain = decodeMessage(encodeMessage({ ...m, commitOnly: undefined }));
    expect("commitOnly" in plain).toBe(false);
  });

  it("decodes entry data as views into the frame (zero-copy)", () => {
    const bytes = encodeBatch([everyMessageType()[0]]);
    const f = decodeFrame(bytes);
    if (f.kind !== FrameKind.Batch || f.messages[0].type !== "app") throw new Error("expected an app batch");
    expect(f.messages[0].entries[0].data.buffer).toBe(bytes.buffer);
  });

  it("round-trips every control frame", () => {
    const nonce = bytesOf(NONCE_BYTES, 3);
    const proof = bytesOf(PROOF_BYTES, 4);
    const snap = everyMessageType()[8];
    if (snap.type !== "snap") throw new Error("fixture order");
    const frames: Frame[] = [
      { kind: FrameKind.Challenge, protocol: 1, clusterId: "c", serverId: "n2", nonce },
      { kind: FrameKind.Hello, protocol: 1, clusterId: "c", from: "n1", to: "n2", nonce, proof },
      { kind: FrameKind.Welcome, proof },
      {
        kind: FrameKind.SnapBegin,
        streamId: 3,
        from: "n1",
        to: "n2",
        term: 6,
        metadata: snap.snapshot.metadata,
        totalBytes: 5,
      },
      { kind: FrameKind.SnapChunk, streamId: 3, offset: 0, data: bytesOf(5) },
      { kind: FrameKind.SnapAck, streamId: 3, receivedBytes: 5, status: SnapAckStatus.Done, reason: "" },
    ];
    const encoded = [
      encodeChallenge(frames[0] as never),
      encodeHello(frames[1] as never),
      encodeWelcome(frames[2] as never),
      encodeSnapBegin(frames[3] as never),
      encodeSnapChunk(frames[4] as never),
      encodeSnapAck(frames[5] as never),
    ];
    encoded.forEach((bytes, i) => expect(decodeFrame(bytes)).toEqual(frames[i]));
  });
});

describe("codec: validation names the bad field", () => {
  const app = everyMessageType()[0];
  const tupleOf = (m: Message): unknown[] => messageToTuple(m);

  it.each([
    ["negative term", (t: unknown[]) => (t[3] = -1), "messages[0].term", "non-negative safe integer"],
    ["fractional index", (t: unknown[]) => (t[5] = 1.5), "messages[0].index", "non-negative safe integer"],
    ["empty from", (t: unknown[]) => (t[1] = ""), "messages[0].from", "node id"],
    ["unknown type", (t: unknown[]) => (t[0] = 99), "messages[0].type", "message type code"],
    [
      "string data",
      (t: unknown[]) => ((t[7] as unknown[][])[1][3] = "x"),
      "messages[0].entries[1].data",
      "binary data",
    ],
    [
      "entry type 2",
      (t: unknown[]) => ((t[7] as unknown[][])[0][2] = 2),
      "messages[0].entries[0].type",
      "0 (normal) or 1",
    ],
    ["two extra fields", (t: unknown[]) => t.push(true, 1), "messages[0]", '"app" message tuple of 8 fields (9 with commitOnly)'],
    ["commitOnly not true", (t: unknown[]) => ((t[7] = []), t.push(1)), "messages[0].commitOnly", "true (or the field left out)"],
    ["commitOnly with entries", (t: unknown[]) => t.push(true), "messages[0].entries", "no entries on a commitOnly append"],
    ["entries a map", (t: unknown[]) => (t[7] = { a: 1 }), "messages[0].entries", "array of entries"],
  ])("%s", (_name, mutate, field, expected) => {
    const t = tupleOf(app);
    (t[7] as unknown[]) = (t[7] as unknown[][]).map((e) => [...e]);
    mutate(t);
    const err = decodeError(raw.pack([FrameKind.Batch, [t]]));
    expect(err.field).toBe(field);
    expect(err.message).toContain(expected);
  });

  it("refuses an oversized ctx, an unknown frame kind, trailing bytes, empty and oversized frames", () => {
    const hb = tupleOf({
      type: "heartbeat",
      from: "a",
      to: "b",
      term: 1,
      commit: 1,
      ctx: "x".repeat(MAX_CTX_LENGTH + 1),
    });
    expect(decodeError(raw.pack([FrameKind.Batch, [hb]])).field).toBe("messages[0].ctx");
    expect(decodeError(raw.pack([42])).field).toBe("frame.kind");
    const ok = encodeBatch([]);
    const trailing = new Uint8Array(ok.byteLength + 1);
    trailing.set(ok);
    expect(decodeError(trailing).field).toBe("frame");
    expect(decodeError(new Uint8Array()).field).toBe("frame");
    expect(() => decodeFrame(encodeBatch([app]), 10)).toThrow(/between 1 and 10 bytes/);
  });
});

describe("codec: fuzz", () => {
  // xorshift32: the seed is printed in a failure's message so a failure replays.
  function rng(seed: number): () => number {
    let x = seed >>> 0 || 1;
    return () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
  }

  function randomValue(r: () => number, depth = 0): unknown {
    switch (Math.floor(r() * 12)) {
      case 0:
        return Math.floor(r() * 2 ** 33) - 2 ** 32;
      case 1:
        return r() * 1000;
      case 2:
        return "n" + Math.floor(r() * 10);
      case 3:
        return r() < 0.5;
      case 4:
        return null;
      case 5:
        return bytesOf(Math.floor(r() * 40), Math.floor(r() * 1000) + 1);
      case 6:
        return depth < 3 ? Array.from({ length: Math.floor(r() * 6) }, () => randomValue(r, depth + 1)) : [];
      case 7:
        return { a: randomValue(r, depth + 1) };
      case 8:
        return Math.floor(r() * 13);
      case 9:
        return 2 ** 60;
      case 10:
        return "";
      default:
        return -0.5;
    }
  }

  /** Replaces one random leaf or element of a nested tuple. */
  function mutateTuple(t: unknown, r: () => number): unknown {
    if (!Array.isArray(t) || t.length === 0 || r() < 0.15) return randomValue(r);
    const copy = [...t];
    const i = Math.floor(r() * copy.length);
    const action = r();
    if (action < 0.1) copy.splice(i, 1);
    else if (action < 0.2) copy.push(randomValue(r));
    else copy[i] = mutateTuple(copy[i], r);
    return copy;
  }

  it("never throws anything but FrameDecodeError and never returns an invalid frame (12,000 inputs)", () => {
    const seed = 0x5eed;
    const r = rng(seed);
    const valid = everyMessageType();
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 12_000; i++) {
      let input: Uint8Array;
      const mode = i % 4;
      const base = [FrameKind.Batch, valid.slice(Math.floor(r() * 12)).map(messageToTuple)];
      if (mode === 0) {
        input = bytesOf(1 + Math.floor(r() * 200), Math.floor(r() * 2 ** 31) + 1);
      } else if (mode === 1) {
        input = raw.pack(mutateTuple(base, r));
      } else if (mode === 2) {
        const bytes = new Uint8Array(encodeBatch(valid));
        for (let k = 0; k < 1 + Math.floor(r() * 4); k++) bytes[Math.floor(r() * bytes.length)] = Math.floor(r() * 256);
        input = bytes;
      } else {
        const bytes = encodeBatch(valid);
        input = bytes.subarray(0, Math.floor(r() * bytes.length));
      }
      try {
        const frame = decodeFrame(input);
        accepted++;
        checkFrame(frame);
        if (frame.kind === FrameKind.Batch) {
          // What was accepted re-encodes to a frame that decodes to the same bytes again.
          const again = encodeBatch(frame.messages);
          const reDecoded = decodeFrame(again);
          if (
            reDecoded.kind !== FrameKind.Batch ||
            !Buffer.from(encodeBatch(reDecoded.messages)).equals(Buffer.from(again))
          ) {
            throw new Error(`seed ${seed} input ${i}: accepted frame does not round-trip`);
          }
        }
      } catch (err) {
        if (!(err instanceof FrameDecodeError)) {
          throw new Error(`seed ${seed} input ${i}: ${(err as Error).stack}`);
        }
        rejected++;
      }
    }
    // Both outcomes must actually occur, or the fuzzer tests nothing.
    expect(accepted).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(5000);
  });
});
