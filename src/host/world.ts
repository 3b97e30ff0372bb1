// Everything the host reaches outside itself, as small interfaces: time, the disk (src/storage/file-system.ts),
// the peers, a dialer for the leader's client port, seeded randomness and a logger. A member (src/server) passes
// real sockets, files and timers; the simulator (sim/) passes a virtual clock, a simulated network and a
// simulated disk, and runs this same code. The host itself does no I/O and reads no clock of its own.

import type { Message, NodeId } from "../raft/types.js";
import type { PasswordRecord } from "../statemachine/auth.js";
import type { FileSystem } from "../storage/file-system.js";
import type { TransportStats } from "../transport/peer-stats.js";

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds (lease deadlines, request deadlines, durations). */
  now(): number;
  /** Wall-clock milliseconds since the epoch: informational only (a lease's grantedAt). */
  wallNow(): number;
  /** Runs `fn` once, `ms` from now, unless cancelled. */
  setTimer(ms: number, fn: () => void): Timer;
  /** Runs `fn` once this turn's work is done (after the I/O callbacks and promise jobs already due). */
  defer(fn: () => void): void;
  /**
   * Runs the next run of a long job split over turns (a snapshot): like defer, so the I/O callbacks that came in
   * during this run are handled first. The simulator lets virtual time pass here, as a real run takes it, so that
   * messages, disk completions and applied entries fall between the runs there too.
   */
  continueLater(fn: () => void): void;
}

/** What the host tells its peer network (PeerTransport in a member). */
export interface PeerNetwork {
  /** A Ready's messages; everything sent in one turn may leave in one frame per peer. */
  send(messages: readonly Message[]): void;
  /** Links to a peer, or re-points the link to a peer known under another URL. */
  addPeer(id: NodeId, url: string): void;
  removePeer(id: NodeId): void;
  stats(): TransportStats;
  stop(): Promise<void>;
}

/** What the peer network tells the host. */
export interface PeerHandlers {
  onMessages(batch: Message[]): void;
  /** A snapshot stream to `to` ended: delivered (`ok`) or failed. */
  onSnapshotStatus(to: NodeId, ok: boolean): void;
}

/** A follower's connection to the leader's client port, over which it forwards writes. */
export interface LeaderLink {
  readonly isOpen: boolean;
  /** Resolves with the leader's result, or rejects with its wire error (a RequestError) or a local one. */
  request(op: string, args: Record<string, unknown>, timeoutMs: number): Promise<unknown>;
  close(): void;
}

/** pino's shape, as much of it as the host uses. */
export interface HostLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object, msg?: string): void;
  fatal(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): HostLogger;
}

/**
 * Password hashing and token signing, done outside the deterministic code (node:crypto in a member): the
 * replicated state holds only salted hashes (src/statemachine/auth.ts), and tokens are signed (auth-tokens.ts).
 */
export interface AuthCrypto {
  /** A slow salted hash of `password` (scrypt), with a fresh random salt. */
  hashPassword(password: string): Promise<PasswordRecord>;
  /** Whether `password` hashes to `record` (constant time). */
  verifyPassword(password: string, record: PasswordRecord): Promise<boolean>;
  /** A MAC of `data` keyed by a secret every member of the cluster shares, and nobody else. */
  sign(data: string): string;
  /** Whether `mac` is sign(data) (constant time). */
  verify(data: string, mac: string): boolean;
}

export interface World {
  clock: Clock;
  fs: FileSystem;
  /** Uniform in [0, 1), seeded (election timeouts, read contexts); from crypto in a member, the seed in the simulator. */
  random(): number;
  logger: HostLogger;
  /** Starts the peer network (listening, in a member) with the host's handlers. */
  network(handlers: PeerHandlers): Promise<PeerNetwork>;
  authCrypto: AuthCrypto;
  /** Connects to the leader's client URL as a forwarding member (the hello carries the forwarding proof). */
  dialLeader(url: string): Promise<LeaderLink>;
}
