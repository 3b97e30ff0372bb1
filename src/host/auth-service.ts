// Runtime auth on a member: the principal a hello establishes, the check before an op is served, the sender
// stamped on what this member proposes or forwards (checked again at apply), `authenticate`, and hashing the
// passwords an admin sets. Hashing and verifying passwords and signing tokens go through World.authCrypto; the
// replicated state (src/statemachine/auth.ts) only ever holds salted hashes.

import type { AccessRequest } from "../statemachine/auth-permissions.js";
import type { PasswordRecord } from "../statemachine/auth.js";
import { ProtocolError, arg, type HelloFrame, type RequestFrame } from "../transport/protocol.js";
import { actorOf, actorPrincipal, authenticate, refusal, requestNeeds, type AccessNeed, type AuthContext, type Principal } from "./auth.js";
import { issueUserToken } from "./auth-tokens.js";
import { CommandFailure } from "./errors.js";
import type { ClientConnection } from "./gateway.js";
import type { HostConfig } from "./host-config.js";
import type { Replica } from "./replica.js";
import type { AuthCrypto } from "./world.js";

export const DEFAULT_USER_TOKEN_TTL_MS = 5 * 60_000;
const MAX_PASSWORD_LENGTH = 1024;

export class AuthService {
  constructor(
    private readonly replica: Replica,
    private readonly config: HostConfig,
    private readonly crypto: AuthCrypto,
  ) {}

  private context(): AuthContext {
    return { tokens: this.config.tokens, forwardProof: this.config.forwardProof, runtime: this.replica.coord.auth, crypto: this.crypto, wallNow: this.replica.clock.wallNow() };
  }

  hello(hello: HelloFrame): Principal {
    return authenticate(hello, this.context());
  }

  /**
   * Throws unless `p` may make `req` now, then stamps the sender on it. A forwarded request is checked again
   * here (the leader) as its sender, against this member's state.
   */
  admit(p: Principal, req: RequestFrame, need: AccessNeed): void {
    const as = p.kind === "internal" ? actorPrincipal(req.actor) : p;
    if (as) {
      const r = refusal(as, requestNeeds(req, need, as), this.context());
      if (r) throw new ProtocolError(r[0] as "PERMISSION_DENIED", r[1]);
    }
    const actor = actorOf(p, req);
    if (actor) req.actor = actor;
    else delete req.actor;
  }

  /** Throws PERMISSION_DENIED unless `p` may see what an answer shows (Op.reveals); a forwarded request is checked where it came from. */
  admitAnswer(p: Principal, shown: readonly AccessRequest[]): void {
    if (p.kind === "internal" || shown.length === 0) return;
    const r = refusal(p, shown, this.context());
    if (r) throw new ProtocolError(r[0] as "PERMISSION_DENIED", `${r[1]} (in the answer's key list; ask without keys)`);
  }

  /** Why `conn`'s principal may no longer reach `needs` (a stream to end), or null. */
  refusal(conn: ClientConnection, needs: readonly AccessRequest[]): string | null {
    return refusal(conn.principal as Principal, needs, this.context())?.[1] ?? null;
  }

  /** `authenticate { name, password }`: a token for the user, and the connection is that user from now on. */
  async authenticate(conn: ClientConnection, req: RequestFrame): Promise<{ token: string; ttlMs: number }> {
    const name = arg.string(req, "name");
    const password = this.password(req);
    await this.replica.readBarrier();
    const auth = this.replica.coord.auth;
    if (!auth.isEnabled) throw new CommandFailure({ code: "AUTH_NOT_ENABLED", message: "runtime auth is not enabled (concord auth enable)" });
    const user = auth.user(name);
    // Verify even for an unknown user, so that the time taken does not tell which users exist.
    const record = user?.password ?? UNKNOWN_USER_RECORD;
    const valid = await this.crypto.verifyPassword(password, record);
    if (!user || !valid) throw new CommandFailure({ code: "AUTH_FAILED", message: "authentication failed: unknown user or wrong password" });
    const ttlMs = this.config.userTokenTtlMs ?? DEFAULT_USER_TOKEN_TTL_MS;
    const token = issueUserToken({ user: name, generation: user.generation, expiresAt: this.replica.clock.wallNow() + ttlMs }, this.crypto);
    conn.principal = { kind: "user", name, generation: user.generation } satisfies Principal;
    return { token, ttlMs };
  }

  /** The command that sets a user's password: the request with its password replaced by a salted hash. */
  async withHashedPassword(req: RequestFrame, smOp: string): Promise<Record<string, unknown>> {
    const password = this.password(req);
    const { id: _id, password: _p, ...fields } = req;
    return { ...fields, op: smOp, password: await this.crypto.hashPassword(password) };
  }

  /** Refuses `authEnable` where user tokens could be forged. */
  checkCanEnable(): void {
    if (this.config.runtimeAuthRefusal) throw new CommandFailure({ code: "FAILED_PRECONDITION", message: this.config.runtimeAuthRefusal });
  }

  private password(req: RequestFrame): string {
    const password = arg.string(req, "password");
    if (password.length > MAX_PASSWORD_LENGTH) throw new ProtocolError("INVALID_ARGUMENT", `password: at most ${MAX_PASSWORD_LENGTH} characters`);
    return password;
  }
}

/** Verified against when the user does not exist, so that the answer takes as long (no password hashes to zeros). */
const UNKNOWN_USER_RECORD: PasswordRecord = { salt: new Uint8Array(16), hash: new Uint8Array(32), N: 16384, r: 8, p: 1 };
