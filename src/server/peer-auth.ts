// How members authenticate each other, decided once from the configuration: which setups a member refuses to
// start with (config.ts), the keys of the peer handshake and of the forwarding proof (server.ts), and the mode
// the startup log states.
//
// Two keys are at stake. The peer handshake proves knowledge of a key (HMAC; src/transport/peer-handshake.ts);
// mutual TLS authenticates peers by certificate on its own. The forwarding proof is what a follower shows the
// leader's CLIENT port when it forwards a write; it makes the connection "internal", which token permissions do
// not restrict. Without a peer secret the only shared value is the cluster id, which is no secret: it is derived
// from the member list and every client's welcome carries it. So:
// - a member of a multi-member cluster needs a secret or mutual TLS, unless told --insecure-peers;
// - with bearer tokens it needs a secret (mutual TLS does not cover the client port), unless told --insecure-peers;
// - a single member without either uses a random handshake key (it accepts no peer, so none can inject Raft
//   messages) and a random forwarding proof (no member forwards to it);
// - the forwarding key also keys runtime users' tokens (src/host/auth-tokens.ts), so a member whose forwarding
//   key is the cluster id refuses to enable runtime auth (HostConfig.runtimeAuthRefusal).

import type { ServerConfig } from "./config.js";

export interface PeerAuthInput {
  /** Members in the initial cluster (a joining member lists the existing ones too). */
  members: number;
  peerSecret?: string | undefined;
  /** --peer-cert-file/--peer-key-file/--peer-ca-file: members authenticate each other with mutual TLS. */
  peerTls: boolean;
  /** --auth-tokens-file: clients are restricted by token permissions. */
  tokens: boolean;
  insecurePeers: boolean;
}

export const INSECURE_MODE = "INSECURE: cluster id as key (--insecure-peers)";

export type PeerAuthMode =
  | "mutual TLS + secret"
  | "peer secret"
  | "mutual TLS"
  | typeof INSECURE_MODE
  | "single member: no peer accepted (random key)";

export function peerAuthInput(c: ServerConfig): PeerAuthInput {
  return {
    members: c.initialCluster.size,
    peerSecret: c.peerSecret,
    peerTls: c.tls.peer !== undefined,
    tokens: c.authTokensFile !== undefined,
    insecurePeers: c.insecurePeers,
  };
}

/** What really authenticates peers. */
export function peerAuthMode(a: PeerAuthInput): PeerAuthMode {
  if (a.peerSecret !== undefined) return a.peerTls ? "mutual TLS + secret" : "peer secret";
  if (a.peerTls) return "mutual TLS";
  if (a.insecurePeers) return INSECURE_MODE;
  return "single member: no peer accepted (random key)";
}

const SECRET_FLAGS = "--peer-secret (better: the CONCORD_PEER_SECRET environment variable; flags show in ps)";
const TLS_FLAGS = "--peer-cert-file, --peer-key-file and --peer-ca-file";

/** Why this member must not start as configured, or undefined. */
export function peerAuthProblem(a: PeerAuthInput): string | undefined {
  if (a.members < 2 || a.peerSecret !== undefined || a.insecurePeers) return undefined;
  if (!a.peerTls) {
    return (
      `this member of a ${a.members}-member cluster has neither a peer secret nor mutual TLS, so anyone who can ` +
      `reach its peer port could join the consensus; give a shared secret with ${SECRET_FLAGS}, or mutual TLS ` +
      `with ${TLS_FLAGS}, or --insecure-peers to run without peer authentication (peers then use the cluster id, ` +
      `which anyone can learn, as key: local development and tests only)`
    );
  }
  if (a.tokens) {
    return (
      `with --auth-tokens-file, members of a multi-member cluster need a peer secret besides mutual TLS: followers ` +
      `forward writes to the leader's client port with a proof keyed by it, and without one that proof would be ` +
      `keyed by the cluster id, which any client can learn, letting it bypass token permissions; give ${SECRET_FLAGS}, ` +
      `or --insecure-peers to accept that`
    );
  }
  return undefined;
}

/** What an operator must see at startup about peer authentication (logged at warn). */
export function peerAuthWarnings(a: PeerAuthInput): string[] {
  if (peerAuthMode(a) !== INSECURE_MODE) return [];
  const warnings = [
    "peer authentication is OFF (--insecure-peers): peers authenticate with the cluster id as key, which anyone can learn, so anyone who can reach the peer port can join the consensus; give --peer-secret or peer mutual TLS outside local development and tests",
  ];
  if (a.tokens)
    warnings.push(
      "--insecure-peers with --auth-tokens-file: any client can compute the forwarding proof from the cluster id and so bypass token permissions",
    );
  return warnings;
}

/**
 * The peer handshake's key and the forwarding proof's key. `random` makes a fresh unguessable key (used where no
 * one legitimately needs to know the key).
 */
export function peerKeys(a: PeerAuthInput, clusterId: string, random: () => string): { handshake: string; forward: string } {
  if (a.peerSecret !== undefined) return { handshake: a.peerSecret, forward: a.peerSecret };
  // A single member that accepts no peer: nobody needs either key, so nobody can guess them.
  if (!a.peerTls && !a.insecurePeers) return { handshake: random(), forward: random() };
  // Mutual TLS authenticates the peer connection itself; the handshake key then only binds it to the cluster.
  // Without tokens an "internal" connection may do nothing an anonymous client may not, so a guessable proof
  // gives nothing away; with tokens it would (a member of a multi-member cluster is refused that setup), and
  // runtime auth (which needs the forwarding key secret: it also keys user tokens) cannot be enabled.
  const forward = a.tokens && !a.insecurePeers ? random() : clusterId;
  return { handshake: clusterId, forward };
}
