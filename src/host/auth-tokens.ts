// Runtime users' tokens: signed, not stored. `concord1.<user>:<generation>:<expires>.<mac>`, the MAC keyed by
// the secret the members share (AuthCrypto.sign: an HMAC keyed by the peer secret in a member), so any member
// accepts a token any other issued, with no write per login and across restarts.
//
// Why signed rather than etcd's "simple" tokens (random, held in each member's memory): a simple token is
// known only where it was issued — after a restart, or on the member a client fails over to, it is unknown;
// etcd replicates each one through Raft to avoid that, a log write per login. A signed token costs nothing to
// check anywhere. What it cannot do is be withdrawn before it expires, so it carries only the user's identity:
// the permissions are looked up in the replicated state on every request, a deleted user's token fails that
// lookup, and `generation` (the index that set the password) ends every token of a user whose password changed.
// A token is checked when a connection presents it (hello); an authenticated connection stays so while its user
// exists with that password. Expiry is judged by the checking member's wall clock.

import type { AuthCrypto } from "./world.js";

export const USER_TOKEN_PREFIX = "concord1.";

export interface UserTokenClaims {
  user: string;
  generation: number;
  /** Wall-clock milliseconds since the epoch. */
  expiresAt: number;
}

export function issueUserToken(claims: UserTokenClaims, crypto: AuthCrypto): string {
  const payload = `${encodeURIComponent(claims.user)}:${claims.generation}:${claims.expiresAt}`;
  return `${USER_TOKEN_PREFIX}${payload}.${crypto.sign(payload)}`;
}

/** The claims of a genuine, unexpired token, or why it is refused. */
export function readUserToken(token: string, crypto: AuthCrypto, wallNow: number): UserTokenClaims | string {
  const body = token.slice(USER_TOKEN_PREFIX.length);
  const dot = body.lastIndexOf(".");
  const payload = body.slice(0, dot);
  if (dot < 0 || !crypto.verify(payload, body.slice(dot + 1))) return "the user token is not one this cluster issued";
  const [user, generation, expiresAt] = payload.split(":");
  const claims = { user: decodeURIComponent(user), generation: Number(generation), expiresAt: Number(expiresAt) };
  if (!(claims.expiresAt > wallNow)) return "the user token expired";
  return claims;
}
