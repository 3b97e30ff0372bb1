import type { WireError } from "./protocol.js";

/** A request that failed with a wire error from the server, or locally (connection lost, timeout). */
export class RequestError extends Error {
  readonly code: string;
  readonly leader?: string;
  /** INVALID_ARGUMENT: the offending field. */
  readonly field?: string;
  /** COMPACTED: the compaction revision (resume after it). */
  readonly compactRevision?: number;
  constructor(error: WireError & { field?: string; compactRevision?: number }) {
    super(error.message);
    this.name = "RequestError";
    this.code = error.code;
    if (error.leader !== undefined) this.leader = error.leader;
    if (error.field !== undefined) this.field = error.field;
    if (error.compactRevision !== undefined) this.compactRevision = error.compactRevision;
  }

  /** The wire form, to relay as is (a follower forwarding a leader's answer). */
  toWire(): WireError & { field?: string; compactRevision?: number } {
    const w: WireError & { field?: string; compactRevision?: number } = { code: this.code, message: this.message };
    if (this.leader !== undefined) w.leader = this.leader;
    if (this.field !== undefined) w.field = this.field;
    if (this.compactRevision !== undefined) w.compactRevision = this.compactRevision;
    return w;
  }
}
