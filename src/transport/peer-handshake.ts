// Peer authentication. On a new connection the server sends a challenge (its cluster id, its node id and a
// fresh nonce); the client answers with who it is, its own nonce and an HMAC-SHA256 over both nonces keyed by
// the shared cluster secret; the server answers with its own HMAC, so each side proves knowledge of the secret
// without sending it, and neither proof can be replayed on another connection (the other side's nonce is
// fresh). The two proofs are domain-separated so a server proof is never a valid client proof.

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { NONCE_BYTES } from "./codec.js";
import type { NodeId } from "../raft/types.js";

/** WebSocket close codes (4000-4999 are the application's) with which a peer connection is refused or ended. */
export const PeerCloseCode = {
  ProtocolMismatch: 4001,
  WrongCluster: 4002,
  AuthFailed: 4003,
  WrongNode: 4004,
  BadHandshake: 4005,
  Replaced: 4006,
  BadFrame: 4007,
  SnapshotStalled: 4008,
  GoingAway: 1001,
} as const;
export type PeerCloseCode = (typeof PeerCloseCode)[keyof typeof PeerCloseCode];

/** Close codes after which retrying cannot help until an operator fixes configuration. */
export const REFUSAL_CODES: ReadonlySet<number> = new Set([
  PeerCloseCode.ProtocolMismatch,
  PeerCloseCode.WrongCluster,
  PeerCloseCode.AuthFailed,
  PeerCloseCode.WrongNode,
]);

export interface HandshakeBinding {
  clusterId: string;
  /** The connecting (client) node. */
  from: NodeId;
  /** The accepting (server) node. */
  to: NodeId;
  serverNonce: Uint8Array;
  clientNonce: Uint8Array;
}

export const newNonce = (): Uint8Array => new Uint8Array(randomBytes(NONCE_BYTES));

function proof(role: "client" | "server", secret: string, b: HandshakeBinding): Uint8Array {
  const h = createHmac("sha256", secret);
  // NUL separators: node and cluster ids cannot be shifted between fields to forge the same input.
  h.update(`concord-peer-v1\0${role}\0${b.clusterId}\0${b.from}\0${b.to}\0`);
  h.update(b.serverNonce);
  h.update(b.clientNonce);
  return new Uint8Array(h.digest());
}

export const clientProof = (secret: string, b: HandshakeBinding): Uint8Array => proof("client", secret, b);
export const serverProof = (secret: string, b: HandshakeBinding): Uint8Array => proof("server", secret, b);

/** Constant-time comparison of two proofs. */
export function proofsEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

/** ws limits a close reason to 123 bytes of UTF-8. */
export function closeReason(text: string): string {
  const buf = Buffer.from(text, "utf8");
  return buf.byteLength <= 123 ? text : buf.subarray(0, 116).toString("utf8") + "...";
}
