// Shared test fixtures for the transport: one message of every type, a capturing logger, polling.

import type { Message, NodeId } from "../../src/raft/types.js";
import type { PeerLogger } from "../../src/transport/peer.js";

export const bytesOf = (n: number, seed = 1): Uint8Array => {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
};

/** One message of each of the twelve types, with non-trivial field values. */
export function everyMessageType(from: NodeId = "n1", to: NodeId = "n2"): Message[] {
  const big = 2 ** 40 + 7; // beyond 32 bits: must survive msgpack as an exact number
  return [
    {
      type: "app",
      from,
      to,
      term: 3,
      logTerm: 2,
      index: big,
      commit: 9,
      entries: [
        { term: 3, index: big + 1, type: 0, data: bytesOf(256) },
        { term: 3, index: big + 2, type: 1, data: new Uint8Array() },
      ],
    },
    { type: "appResp", from, to, term: 3, index: 10, reject: true, hintIndex: 7, hintTerm: 2 },
    { type: "vote", from, to, term: 4, logTerm: 3, index: 11, transfer: true },
    { type: "preVote", from, to, term: 5, logTerm: 3, index: 11, transfer: false },
    { type: "voteResp", from, to, term: 4, reject: false },
    { type: "preVoteResp", from, to, term: 5, reject: true },
    { type: "heartbeat", from, to, term: 4, commit: 12, ctx: "read-17" },
    { type: "heartbeatResp", from, to, term: 4, ctx: "" },
    {
      type: "snap",
      from,
      to,
      term: 6,
      snapshot: {
        metadata: {
          index: 100,
          term: 5,
          confState: {
            voters: ["n1", "n2"],
            learners: ["n4"],
            votersOutgoing: ["n1", "n3"],
            learnersNext: ["n3"],
            autoLeave: true,
          },
        },
        data: bytesOf(1000, 9),
      },
    },
    { type: "timeoutNow", from, to, term: 7 },
    { type: "readIndex", from, to, term: 7, ctx: "ctx-ü-1" },
    { type: "readIndexResp", from, to, term: 7, ctx: "ctx-ü-1", index: 99, reject: false },
  ];
}

export interface LogRecord {
  level: "info" | "warn" | "debug";
  obj: Record<string, unknown>;
  msg: string;
}

export function captureLogger(): PeerLogger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  return {
    records,
    info: (obj, msg) => records.push({ level: "info", obj: obj as Record<string, unknown>, msg }),
    warn: (obj, msg) => records.push({ level: "warn", obj: obj as Record<string, unknown>, msg }),
    debug: (obj, msg) => records.push({ level: "debug", obj: obj as Record<string, unknown>, msg }),
  };
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
