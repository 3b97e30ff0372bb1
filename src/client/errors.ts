// Typed errors of the client library. Every failure a caller sees is a ConcordError with a stable `code`:
// the server's wire codes (docs/protocol.md) plus a few the client raises itself (LOCK_TIMEOUT, LOCK_BUSY,
// ABORTED, CLOSED, INVALID_ARGUMENT for bad input caught before anything is sent).

import { RETRYABLE, type WireError } from "../transport/protocol.js";

export class ConcordError extends Error {
  /** The error code: a wire code from the server or one of the client's own (see ClientErrorCode). */
  readonly code: string;
  /** With NOT_LEADER: the leader's client URL when the server knew it. */
  readonly leader?: string;
  /** With INVALID_ARGUMENT: the offending field. */
  readonly field?: string;
  /** With COMPACTED: the oldest revision still available. */
  readonly compactRevision?: number;

  constructor(error: { code: string; message: string; leader?: string; field?: string; compactRevision?: number }) {
    super(error.message);
    this.name = "ConcordError";
    this.code = error.code;
    if (error.leader !== undefined) this.leader = error.leader;
    if (error.field !== undefined) this.field = error.field;
    if (error.compactRevision !== undefined) this.compactRevision = error.compactRevision;
  }

  /** True if the same request may be sent again (writes keep their session seq, so they stay exactly-once). */
  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }
}

/** Codes raised by the client itself, never by a server. */
export type ClientErrorCode =
  "INVALID_ARGUMENT" | "LOCK_TIMEOUT" | "LOCK_BUSY" | "ABORTED" | "CLOSED" | "LEASE_LOST" | "WATCH_BROKEN";

export function clientError(code: ClientErrorCode, message: string, field?: string): ConcordError {
  return new ConcordError(field === undefined ? { code, message } : { code, message, field });
}

/** Bad input from the caller: names the argument, what was given and what is accepted. */
export function invalidArgument(field: string, accepted: string, got: unknown): ConcordError {
  return clientError("INVALID_ARGUMENT", `${field} is ${describe(got)}; expected ${accepted}`, field);
}

/** Converts anything thrown by the socket layer or the server into a ConcordError. */
export function toConcordError(e: unknown): ConcordError {
  if (e instanceof ConcordError) return e;
  if (typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string") {
    const w = e as WireError & { field?: string; compactRevision?: number };
    return new ConcordError({
      code: w.code,
      message: w.message,
      leader: w.leader,
      field: w.field,
      compactRevision: w.compactRevision,
    });
  }
  return new ConcordError({ code: "UNAVAILABLE", message: e instanceof Error ? e.message : String(e) });
}

export function describe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "missing";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`;
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  if (typeof v === "number") return String(v);
  return typeof v === "object" ? "an object" : `${typeof v} ${String(v)}`;
}
