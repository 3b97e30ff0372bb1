// A member's snapshot: the membership with its URLs (Raft's ConfState holds only ids) and the state machine's
// deterministic bytes. Framed by hand — magic, version, u32 header length, msgpack header, then the state
// machine's bytes as they are — so that encoding never copies tens of megabytes through msgpack, whose shared
// encode buffer would keep the largest size it ever saw for the life of the process.
import { Packr } from "msgpackr";

export interface Member {
  id: string;
  peerUrl: string;
  clientUrl: string;
}

export interface NodeSnapshot {
  v: 1;
  members: Member[];
  sm: Uint8Array;
  /**
   * The log position of the state: the index of the last entry applied (membership changes and no-ops included,
   * so it can be past the state machine's own last applied index) and its term. Written by `concord snapshot
   * save`; files saved by older versions have neither.
   */
  index?: number;
  term?: number;
}

const MAGIC = [0x43, 0x4e, 0x53, 0x4e]; // "CNSN"
const VERSION = 1;
const HEADER = MAGIC.length + 1 + 4;
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

export function encodeNodeSnapshot(s: NodeSnapshot): Uint8Array {
  const header = nodeSnapshotHeader(s);
  const out = new Uint8Array(header.length + s.sm.byteLength);
  out.set(header, 0);
  out.set(s.sm, header.length);
  return out;
}

/**
 * Everything before the state machine's bytes: a member snapshot is this followed by them. A snapshot taken a run
 * at a time (StateMachine.beginSnapshot) writes them after it, in the same buffer.
 */
export function nodeSnapshotHeader(s: Omit<NodeSnapshot, "sm">): Uint8Array {
  const header = packr.pack({ members: s.members, ...position(s) });
  const out = new Uint8Array(HEADER + header.length);
  out.set(MAGIC, 0);
  out[4] = VERSION;
  new DataView(out.buffer).setUint32(5, header.length, true);
  out.set(header, HEADER);
  return out;
}

/** Reads a member's snapshot (what `concord snapshot save` writes); throws a clear Error on anything else. */
export function decodeNodeSnapshot(bytes: Uint8Array): NodeSnapshot {
  if (bytes.byteLength < HEADER || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error("not a Concord snapshot (it does not start with the CNSN magic)");
  }
  if (bytes[4] !== VERSION) throw new Error(`snapshot format version ${bytes[4]} is not supported (this build reads ${VERSION})`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(5, true);
  if (HEADER + headerLength > bytes.byteLength) throw new Error("snapshot header runs past the end of the data (truncated file?)");
  const header = packr.unpack(bytes.subarray(HEADER, HEADER + headerLength)) as { members?: unknown; index?: unknown; term?: unknown };
  const members = header?.members;
  if (!Array.isArray(members) || !members.every((m) => typeof m?.id === "string" && typeof m?.peerUrl === "string")) {
    throw new Error("snapshot header has no valid member list");
  }
  const snap: NodeSnapshot = { v: 1, members: members as Member[], sm: bytes.subarray(HEADER + headerLength) };
  for (const field of ["index", "term"] as const) {
    const v = header[field];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new Error(`snapshot header has an invalid ${field} ${String(v)}`);
    snap[field] = v;
  }
  return snap;
}

/** The header's optional log position, when the snapshot has one. */
function position(s: Omit<NodeSnapshot, "sm">): { index?: number; term?: number } {
  const out: { index?: number; term?: number } = {};
  if (s.index !== undefined) out.index = s.index;
  if (s.term !== undefined) out.term = s.term;
  return out;
}
