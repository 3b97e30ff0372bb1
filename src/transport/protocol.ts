// The client protocol (docs/protocol.md), shared by the server's gateway and the client library.
//
// Frames are msgpack maps over one WebSocket (binary messages):
//   client → server  { type: "hello", protocol, token?, forwardedBy? }        first frame, once
//                    { id, op, ...args }                                       requests
//   server → client  { type: "welcome", protocol, node, clusterId, leader, maxFrameBytes }   answer to hello
//                    { id, ok: result } | { id, error: { code, message, leader? } }
//                    { type: "push", stream, event }                           watch / lock / election streams
// A request's `id` is the client's own (a non-negative integer, unique among its requests in flight).

import { Packr } from "msgpackr";

export const PROTOCOL_VERSION = 1;

/** The WebSocket path on a member's client port. */
export const CLIENT_PATH = "/concord/v1";

export type ErrorCode =
  // framing and protocol
  | "MALFORMED_FRAME"
  | "FRAME_TOO_LARGE"
  | "PROTOCOL_MISMATCH"
  | "UNKNOWN_OP"
  | "INVALID_ARGUMENT"
  | "TOO_MANY_REQUESTS"
  | "TOO_MANY_CONNECTIONS"
  | "SLOW_CONSUMER"
  // auth
  | "UNAUTHENTICATED"
  | "PERMISSION_DENIED"
  // cluster state (retryable)
  | "NOT_LEADER"
  | "UNAVAILABLE"
  | "TIMEOUT"
  | "PROPOSAL_LOST"
  | "SHUTTING_DOWN"
  // from the state machine and locks
  | (string & {});

/** Errors a client may retry (with its session, writes stay exactly-once). */
export const RETRYABLE: ReadonlySet<string> = new Set([
  "NOT_LEADER",
  "UNAVAILABLE",
  "TIMEOUT",
  "PROPOSAL_LOST",
  "SHUTTING_DOWN",
  "TOO_MANY_REQUESTS",
]);

export interface WireError {
  code: ErrorCode;
  message: string;
  /** With NOT_LEADER: the leader's client URL when known. */
  leader?: string;
}

export interface HelloFrame {
  type: "hello";
  protocol: number;
  token?: string;
  /** Set by a follower forwarding requests to the leader: an HMAC proof of the cluster secret. */
  forwardedBy?: string;
}

export interface WelcomeFrame {
  type: "welcome";
  protocol: number;
  node: string;
  clusterId: string;
  /** The leader's client URL if known. */
  leader: string | null;
  /** The largest frame this member accepts (bytes); larger requests are refused with FRAME_TOO_LARGE. */
  maxFrameBytes?: number;
}

export interface RequestFrame {
  id: number;
  op: string;
  [arg: string]: unknown;
}

export type ReplyFrame = { id: number; ok: unknown } | { id: number; error: WireError };

export interface PushFrame {
  type: "push";
  stream: number;
  event: unknown;
}

export type ServerFrame = WelcomeFrame | ReplyFrame | PushFrame | { type: "error"; error: WireError };

export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The id of the refused request, when it could be read (the error is then its reply). */
    readonly requestId?: number,
  ) {
    super(message);
    this.name = "ProtocolError";
  }
}

// useRecords: false keeps every frame self-describing, so other clients can be written from docs/protocol.md alone.
// copyBuffers: the values of a member's answers own their memory, so a value an application keeps does not keep
// the whole frame it came in.
const packr = new Packr({ useRecords: false, copyBuffers: true, mapsAsObjects: true, moreTypes: false });
// A request's bytes are views of its frame, which ws never reuses (a view of the socket's read, or the join of its
// fragments): a request lives until it is answered, and what is kept beyond that is copied where it is kept (a
// command into the log's arena by encodeCommand). A copy per value was an ArrayBuffer of its own per put on the leader.
const requestPackr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

export function encodeFrame(frame: unknown): Buffer {
  return packr.pack(frame);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`;
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  return typeof v === "object" ? "a map" : `${typeof v} ${String(v)}`;
}

/** Decode a client frame; throws ProtocolError (MALFORMED_FRAME / FRAME_TOO_LARGE) on anything unexpected. */
export function decodeClientFrame(data: Uint8Array, maxBytes: number): HelloFrame | RequestFrame {
  if (data.byteLength > maxBytes) throw frameTooLarge(data, maxBytes);
  let v: unknown;
  try {
    v = requestPackr.unpack(data);
  } catch (e) {
    throw new ProtocolError("MALFORMED_FRAME", `frame is not valid msgpack (${(e as Error).message}); expected a msgpack map`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new ProtocolError("MALFORMED_FRAME", `frame is ${describe(v)}; expected a msgpack map with "id" and "op" (or a hello)`);
  }
  const f = v as Record<string, unknown>;
  if (f.type === "hello") {
    if (typeof f.protocol !== "number") throw new ProtocolError("MALFORMED_FRAME", `hello.protocol is ${describe(f.protocol)}; expected an integer`);
    if (f.token !== undefined && typeof f.token !== "string") throw new ProtocolError("MALFORMED_FRAME", `hello.token is ${describe(f.token)}; expected a string`);
    if (f.forwardedBy !== undefined && typeof f.forwardedBy !== "string") throw new ProtocolError("MALFORMED_FRAME", `hello.forwardedBy is ${describe(f.forwardedBy)}; expected a string`);
    return f as unknown as HelloFrame;
  }
  if (typeof f.id !== "number" || !Number.isSafeInteger(f.id) || f.id < 0) {
    throw new ProtocolError("MALFORMED_FRAME", `"id" is ${describe(f.id)}; expected a non-negative integer`);
  }
  if (typeof f.op !== "string") {
    throw new ProtocolError("MALFORMED_FRAME", `"op" is ${describe(f.op)}; expected the name of an op (docs/protocol.md lists them)`);
  }
  if (hasSuspectValue(f)) {
    const refused = refusedValue(f, data);
    if (refused !== undefined) throw new ProtocolError("INVALID_ARGUMENT", `${f.op}.${refused}`, f.id);
  }
  return f as RequestFrame;
}

/** 2^64 and -2^63: msgpack's integers end there, so a member could not pass a larger one on (a follower forwards). */
const UINT64_END = 1n << 64n;
const INT64_MIN = -(1n << 63n);

/**
 * Whether the decoded frame holds a string with U+FFFD or a BigInt: the only values refusedValue() may refuse.
 * One walk without paths, so the common frame costs no string building.
 */
function hasSuspectValue(frame: Record<string, unknown>): boolean {
  const stack: unknown[] = [frame];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === "string") {
      if (v.includes("\uFFFD")) return true;
    } else if (typeof v === "bigint") {
      return true;
    } else if (typeof v === "object" && v !== null && !(v instanceof Uint8Array)) {
      if (Array.isArray(v)) for (const x of v) stack.push(x);
      else for (const k in v) stack.push((v as Record<string, unknown>)[k]);
    }
  }
  return false;
}

/**
 * The path and the fault of a value in `frame` the protocol cannot take, anywhere in it (known field or not):
 * - a string that msgpack decoding changed: invalid UTF-8 decodes to U+FFFD without an error, so a string holding
 *   U+FFFD whose UTF-8 encoding is not in the raw frame was not valid UTF-8 on the wire;
 * - an integer past 64 bits (msgpackr's BigInt extension decodes one of any size): it could not be encoded again,
 *   so a follower could not forward the request that the leader would take.
 */
function refusedValue(frame: Record<string, unknown>, data: Uint8Array): string | undefined {
  const stack: [unknown, string][] = [[frame, ""]];
  while (stack.length > 0) {
    const [v, at] = stack.pop()!;
    if (typeof v === "string") {
      if (v.includes("\uFFFD") && Buffer.from(data.buffer, data.byteOffset, data.byteLength).indexOf(Buffer.from(v, "utf8")) < 0) {
        return `${at} is a string that is not valid UTF-8; keys and names are UTF-8 text (send arbitrary bytes as msgpack bin, in values)`;
      }
    } else if (typeof v === "bigint") {
      if (v >= UINT64_END || v < INT64_MIN) {
        return `${at} is an integer of ${v.toString(2).replace("-", "").length} bits; expected at most 64 bits (msgpack's int64 and uint64)`;
      }
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => stack.push([x, `${at}[${i}]`]));
    } else if (typeof v === "object" && v !== null && !(v instanceof Uint8Array)) {
      for (const [k, x] of Object.entries(v)) stack.push([x, at === "" ? k : `${at}.${k}`]);
    }
  }
  return undefined;
}

/** FRAME_TOO_LARGE for an oversized frame, naming its op and carrying its id when the frame can be read. */
function frameTooLarge(data: Uint8Array, maxBytes: number): ProtocolError {
  let id: number | undefined;
  let what = "frame";
  try {
    const f = requestPackr.unpack(data) as Record<string, unknown> | null;
    if (typeof f?.id === "number" && Number.isSafeInteger(f.id) && f.id >= 0) id = f.id;
    if (typeof f?.op === "string" && /^[a-zA-Z]{1,32}$/.test(f.op)) what = `${f.op} request`;
  } catch {
    // unreadable as well as too large: answered without an id
  }
  return new ProtocolError(
    "FRAME_TOO_LARGE",
    `${what} of ${data.byteLength} bytes exceeds this member's limit of ${maxBytes} bytes per frame (--max-request-bytes)`,
    id,
  );
}

/** Decode a server frame (client side); throws ProtocolError on anything unexpected. */
export function decodeServerFrame(data: Uint8Array): ServerFrame {
  let v: unknown;
  try {
    v = packr.unpack(data);
  } catch (e) {
    throw new ProtocolError("MALFORMED_FRAME", `server frame is not valid msgpack: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null) throw new ProtocolError("MALFORMED_FRAME", `server frame is ${describe(v)}; expected a map`);
  return v as ServerFrame;
}

/** Argument readers for request validation: each throws INVALID_ARGUMENT naming the field and what is accepted. */
export const arg = {
  string(f: RequestFrame, name: string, opts: { optional?: boolean; allowEmpty?: boolean } = {}): string {
    const v = f[name];
    if (v === undefined && opts.optional) return "";
    if (typeof v !== "string" || (!opts.allowEmpty && v.length === 0)) {
      throw new ProtocolError("INVALID_ARGUMENT", `${f.op}.${name} is ${describe(v)}; expected a ${opts.allowEmpty ? "" : "non-empty "}string`);
    }
    return v;
  },
  int(f: RequestFrame, name: string, opts: { optional?: boolean; min?: number; def?: number } = {}): number {
    const v = f[name];
    if (v === undefined && opts.optional) return opts.def ?? 0;
    const min = opts.min ?? 0;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
      throw new ProtocolError("INVALID_ARGUMENT", `${f.op}.${name} is ${describe(v)}; expected an integer >= ${min}`);
    }
    return v;
  },
  bool(f: RequestFrame, name: string): boolean {
    const v = f[name];
    if (v === undefined) return false;
    if (typeof v !== "boolean") throw new ProtocolError("INVALID_ARGUMENT", `${f.op}.${name} is ${describe(v)}; expected true or false`);
    return v;
  },
  bytes(f: RequestFrame, name: string): Uint8Array {
    const v = f[name];
    if (v instanceof Uint8Array) return v;
    if (typeof v === "string") return Buffer.from(v);
    throw new ProtocolError("INVALID_ARGUMENT", `${f.op}.${name} is ${describe(v)}; expected bytes (or a string)`);
  },
  oneOf<T extends string>(f: RequestFrame, name: string, values: readonly T[], def: T): T {
    const v = f[name];
    if (v === undefined) return def;
    if (typeof v !== "string" || !values.includes(v as T)) {
      throw new ProtocolError("INVALID_ARGUMENT", `${f.op}.${name} is ${describe(v)}; expected one of: ${values.join(", ")}`);
    }
    return v as T;
  },
};
