// The vocabulary of the Raft core: entries, persistent state, membership, messages and Ready.
// Everything here is plain data so that the transport can encode it and the simulator can copy it.

export type NodeId = string;

export const EntryType = { Normal: 0, ConfChange: 1 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** A log entry. An entry with empty `data` of type Normal is the leader's no-op for its term. */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be durable before a node answers a vote or an append (term, vote) or may be durable (commit). */
export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

/**
 * Membership. Outside a joint configuration only `voters` and `learners` are set. While joint,
 * `votersOutgoing` holds the old voters and `learnersNext` the old voters that become learners on leaving.
 */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  votersOutgoing: NodeId[];
  learnersNext: NodeId[];
  autoLeave: boolean;
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

export type ConfChangeKind = "addVoter" | "addLearner" | "removeNode";

export interface ConfChangeSingle {
  kind: ConfChangeKind;
  nodeId: NodeId;
}

/**
 * A membership change. One change is applied directly; several (or `transition: "explicit" | "joint"`) go
 * through joint consensus. An empty `changes` list leaves a joint configuration.
 * `transition`: "auto" (default) — joint only when needed, left automatically;
 * "joint" — always joint, left automatically; "explicit" — always joint, left by an empty change.
 * `context` is opaque to Raft (the server puts the new member's URLs there).
 */
export interface ConfChange {
  changes: ConfChangeSingle[];
  transition?: "auto" | "joint" | "explicit";
  context?: string;
}

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

export interface SoftState {
  leader: NodeId | null;
  role: Role;
}

/** The answer to a readIndex request: once `applied >= index`, a read tagged `ctx` is linearizable. */
export interface ReadState {
  index: number;
  ctx: string;
}

// ---------------------------------------------------------------------------------------------------------
// Messages between nodes. `term` is the sender's term; 0 only for messages that carry no term.

interface MessageBase {
  from: NodeId;
  to: NodeId;
  term: number;
}

/** Append entries after (logTerm, index); also carries the leader's commit. */
export interface AppendMessage extends MessageBase {
  type: "app";
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  /**
   * Set on an append that only carries a new commit index, to a follower in replicate state that has been sent
   * every entry (so `entries` is empty). The follower answers it only to reject it: a success would tell the
   * leader nothing the acks of the entries sent before it do not. One reply fewer per follower per commit.
   */
  commitOnly?: true;
}

/**
 * Reply to "app". On success `index` is the last index the follower now matches.
 * On rejection `index` is the rejected prevIndex and (`hintIndex`, `hintTerm`) the follower's best guess of
 * where the logs may match: the largest index <= hint whose term <= the leader's logTerm (fast backtracking).
 */
export interface AppendResponseMessage extends MessageBase {
  type: "appResp";
  index: number;
  reject: boolean;
  hintIndex: number;
  hintTerm: number;
}

/** Request for a vote (or a pre-vote, which changes no state). `transfer` marks a leadership transfer. */
export interface VoteMessage extends MessageBase {
  type: "vote" | "preVote";
  logTerm: number;
  index: number;
  transfer: boolean;
}

export interface VoteResponseMessage extends MessageBase {
  type: "voteResp" | "preVoteResp";
  reject: boolean;
}

/** Heartbeat: keeps followers from campaigning and carries commit (never beyond the follower's match). */
export interface HeartbeatMessage extends MessageBase {
  type: "heartbeat";
  commit: number;
  /** The ReadIndex round this heartbeat confirms, or "" */
  ctx: string;
}

export interface HeartbeatResponseMessage extends MessageBase {
  type: "heartbeatResp";
  ctx: string;
}

export interface SnapshotMessage extends MessageBase {
  type: "snap";
  snapshot: Snapshot;
}

/** Leadership transfer: the receiver campaigns at once, ignoring its election timer and leases. */
export interface TimeoutNowMessage extends MessageBase {
  type: "timeoutNow";
}

/** A follower asks the leader for a read index on behalf of its clients. */
export interface ReadIndexMessage extends MessageBase {
  type: "readIndex";
  ctx: string;
}

export interface ReadIndexResponseMessage extends MessageBase {
  type: "readIndexResp";
  ctx: string;
  index: number;
  /** true when the leader could not serve it (e.g. no entry committed in its term yet); the follower retries */
  reject: boolean;
}

export type Message =
  | AppendMessage
  | AppendResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | SnapshotMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage;

export type MessageType = Message["type"];

// ---------------------------------------------------------------------------------------------------------

/**
 * What the host must do, in this order:
 * 1. persist `hardState`, `entries` and `snapshot` durably (one fsync);
 * 2. send `messages` (a leader's "app", "heartbeat" and "snap" messages may be sent before step 1: the
 *    leader counts its own entries toward commit only after `advance`, Raft thesis §10.2.1);
 * 3. apply `snapshot` (if any) and then `committed` entries to the state machine, in order;
 * 4. call `advance(ready)`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committed: Entry[];
  messages: Message[];
  readStates: ReadState[];
  /** true when hardState (term/vote) or entries changed: the persist step needs an fsync */
  mustSync: boolean;
}

export const emptyConfState = (): ConfState => ({
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
});

export const emptyHardState = (): HardState => ({ term: 0, vote: null, commit: 0 });

export const isEmptySnapshot = (s: Snapshot | undefined): boolean => s === undefined || s.metadata.index === 0;

/** A snapshot's bytes read a range at a time, in order from the start (the transport streams them so). */
export interface SnapshotReader {
  readonly size: number;
  /** `length` bytes at `offset`; throws if they cannot be read or turn out damaged. */
  read(offset: number, length: number): Uint8Array;
}

/**
 * Hidden on a snapshot whose bytes are on disk (lazySnapshot): opens a reader of them, so that a sender never loads
 * the whole snapshot at once. Not a field: a snapshot stays plain data for codecs and copies.
 */
const READER = Symbol("snapshot reader");

/** Gives `snapshot` a way to read its bytes a range at a time (see READER). */
export function attachReader(snapshot: Snapshot, open: () => SnapshotReader): Snapshot {
  Object.defineProperty(snapshot, READER, { value: open, enumerable: false });
  return snapshot;
}

/** A reader of `snapshot`'s bytes: from its file when it has one (attachReader), else over `data`. */
export function snapshotReader(snapshot: Snapshot): SnapshotReader {
  const open = (snapshot as { [READER]?: () => SnapshotReader })[READER];
  if (open) return open();
  const data = snapshot.data;
  return { size: data.byteLength, read: (offset, length) => data.subarray(offset, offset + length) };
}

/** Bytes an entry costs against batching limits. */
export const entrySize = (e: Entry): number => e.data.byteLength + 24;
