// Runtime auth under faults. An admin (the tokens file's, as every other simulated client) sets up user `root` and user `writer` (role `w`: write on the prefix
// "auth/"), enables auth, then as root alternately takes the writer's access away (revoking the permission, or
// the role) and gives it back. The writer meanwhile puts unique values under "auth/" through whatever member it
// is connected to (followers forward, stamped with the writer as actor).
//
// The check: once a revocation is acknowledged, no put the writer sends afterwards may take effect before the
// access is granted again — none may be applied to the store (seen in the committed stream, in log order) while
// the auth revision is still the revocation's, whatever member forwarded it. Only root changes auth after the
// setup and it alternates revoking and granting, so the revision after a revocation's is the next grant's.

import type { ApplyOutput } from "../src/statemachine/index.js";
import { ClientConnection } from "./client-connection.js";
import { TICK, type SimCluster, type SimContext } from "./cluster.js";
import { valueBytes, valueOf } from "./entry-data.js";
import { InvariantViolation } from "./invariants.js";

const WRITER = { name: "writer", password: "writer-pw" };
const ROOT = { name: "root", password: "root-pw" };
const PERMISSION = { kind: "key", name: "auth/", prefix: true };
const ATTEMPTS = 6;

/** Codes that answer "already so": a retried change whose first attempt took effect. */
const ALREADY = new Set(["USER_EXISTS", "ROLE_EXISTS", "PERMISSION_NOT_GRANTED", "ROLE_NOT_GRANTED"]);

export class AuthClients {
  /** Acknowledged revocations: when, and the auth revision they made. */
  private readonly revoked: { ackedAt: number; revision: number }[] = [];
  /** When each of the writer's values was sent (once: no retries). */
  private readonly sentAt = new Map<number, number>();
  /** The auth revision in force where each of the writer's values was applied. */
  private readonly appliedAt = new Map<number, number>();
  private authRevision = 0;
  private ready = false;
  revocations = 0;
  writesAcked = 0;
  writesRefused = 0;

  constructor(private readonly ctx: SimContext) {}

  start(cluster: SimCluster, stopAt: number): void {
    void this.admin(cluster, stopAt);
    void this.writer(cluster, stopAt);
  }

  /** The committed stream, in log order. */
  committed(output: ApplyOutput): void {
    for (const e of output.events) {
      if (e.type === "extension" && e.section === "auth") this.authRevision = (e.event as { revision: number }).revision;
      else if (e.type === "put" && e.kv.key.startsWith("auth/")) this.appliedAt.set(valueOf(e.kv.value)!, this.authRevision);
    }
  }

  /** Throws an InvariantViolation if a put of the writer took effect where an acknowledged revocation forbids it. */
  check(): void {
    for (const [v, applied] of this.appliedAt) {
      const sent = this.sentAt.get(v)!;
      const r = this.revoked.find((x) => x.revision === applied && sent > x.ackedAt);
      if (r) {
        throw new InvariantViolation(
          "revoked access stays revoked",
          `the writer's put of ${v}, sent at ${sent} after the revocation at auth revision ${r.revision} was acknowledged (at ${r.ackedAt}), was applied before access was granted again`,
        );
      }
    }
  }

  /** Makes a change (retrying until stopAt): its auth revision, null when it was already so, false if never done. */
  private async change(conn: ClientConnection, op: string, args: Record<string, unknown>, stopAt: number): Promise<number | null | false> {
    while (this.ctx.now < stopAt) {
      const r = await conn.retry(op, args, ATTEMPTS);
      if (r.ok) return (r.value as { revision: number }).revision;
      if (ALREADY.has(r.error.code)) return null;
      this.ctx.log(() => `auth: ${op} failed: ${r.error.code} ${r.error.message}`);
      await conn.sleep(this.ctx.rng.int(1, TICK));
    }
    return false;
  }

  private async admin(cluster: SimCluster, stopAt: number): Promise<void> {
    const setup = new ClientConnection(this.ctx, cluster, "auth-setup");
    const steps: [string, Record<string, unknown>][] = [
      ["userAdd", ROOT],
      ["userGrantRole", { name: "root", role: "root" }],
      ["roleAdd", { name: "w" }],
      ["roleGrantPermission", { name: "w", permission: { ...PERMISSION, access: "write" } }],
      ["userAdd", WRITER],
      ["userGrantRole", { name: "writer", role: "w" }],
      ["authEnable", {}],
    ];
    for (const [op, args] of steps) if ((await this.change(setup, op, args, stopAt)) === false) return;
    setup.drop();
    this.ready = true;
    const root = new ClientConnection(this.ctx, cluster, "auth-root", ROOT);
    while (this.ctx.now < stopAt) {
      if (this.ctx.rng.chance(0.3)) root.wander();
      const byRole = this.ctx.rng.chance(0.5);
      const revoked = byRole
        ? await this.change(root, "userRevokeRole", { name: "writer", role: "w" }, stopAt)
        : await this.change(root, "roleRevokePermission", { name: "w", permission: PERMISSION }, stopAt);
      if (revoked === false) return;
      // An "already revoked" answer names no revision: nothing to check against.
      if (revoked !== null) this.revoked.push({ ackedAt: this.ctx.now, revision: revoked });
      this.revocations++;
      await root.sleep(this.ctx.rng.int(TICK, 6 * TICK));
      const granted = byRole
        ? await this.change(root, "userGrantRole", { name: "writer", role: "w" }, stopAt)
        : await this.change(root, "roleGrantPermission", { name: "w", permission: { ...PERMISSION, access: "write" } }, stopAt);
      if (granted === false) return;
      await root.sleep(this.ctx.rng.int(TICK, 6 * TICK));
    }
  }

  private async writer(cluster: SimCluster, stopAt: number): Promise<void> {
    const conn = new ClientConnection(this.ctx, cluster, "auth-writer", WRITER);
    let n = 0;
    while (this.ctx.now < stopAt) {
      if (!this.ready) {
        await conn.sleep(TICK);
        continue;
      }
      if (this.ctx.rng.chance(0.3)) conn.wander();
      const v = 1_000_000 + ++n;
      this.sentAt.set(v, this.ctx.now);
      // One attempt: a put is sent once, so when it was sent is known.
      const r = await conn.call("put", { key: `auth/${n % 3}`, value: valueBytes(v) });
      if (r.ok) this.writesAcked++;
      else if (r.error.code === "PERMISSION_DENIED") this.writesRefused++;
      await conn.sleep(this.ctx.rng.int(1, TICK / 2));
    }
  }
}
