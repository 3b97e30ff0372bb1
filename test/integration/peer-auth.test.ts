// Peer authentication on real member processes (ports 9800-9821): a 3-member cluster with neither a peer secret
// nor peer TLS refuses to start (exit 2, the flags that fix it named) unless --insecure-peers, and then every
// member says at start that its peers are insecure; with a secret it starts, says so without showing the secret,
// and a client cannot pass for a forwarding member with a proof keyed by the cluster id.

import { createHmac } from "node:crypto";
import fs from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { ClusterStartError, LocalCluster, retrying, type MemberExit } from "../../src/harness/index.js";
import { RequestError } from "../../src/transport/client-socket.js";

const BASE_PORT = 9800;
const SECRET = "peer-auth-test-secret-0123456789";

/** The JSON lines of a member's log. */
function logLines(cluster: LocalCluster, name: string): Record<string, unknown>[] {
  return fs
    .readFileSync(cluster.member(name).logFile, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function startupLines(cluster: LocalCluster, name: string): { config: Record<string, unknown>; mode: unknown; warnings: string[] } {
  const lines = logLines(cluster, name);
  const starting = lines.find((l) => l.msg === "starting");
  const mode = lines.find((l) => typeof l.msg === "string" && l.msg.startsWith("peer authentication: "));
  expect(starting, `${name} logs its config at start`).toBeDefined();
  expect(mode, `${name} logs its peer authentication mode at start`).toBeDefined();
  return {
    config: starting!.config as Record<string, unknown>,
    mode: mode!.peerAuth,
    warnings: lines.filter((l) => l.level === 40).map((l) => String(l.msg)),
  };
}

/** A write through a follower, which forwards it to the leader with the forwarding proof. */
async function writeThroughFollower(cluster: LocalCluster): Promise<void> {
  const leader = await cluster.waitForLeader();
  const follower = cluster.running().find((n) => n !== leader)!;
  const sock = await cluster.connect(follower);
  try {
    await retrying(() => sock.request("put", { key: "peer-auth/k", value: "v" }, 5000));
  } finally {
    sock.close();
  }
}

describe.sequential("peer authentication on real members", () => {
  let cluster: LocalCluster | undefined;
  afterEach(async () => {
    await cluster?.teardown();
    cluster = undefined;
  });

  it("refuses to start a 3-member cluster with neither a secret nor peer TLS, naming the flags that fix it (exit 2)", async () => {
    const exits: MemberExit[] = [];
    cluster = new LocalCluster({
      size: 3,
      basePort: BASE_PORT,
      tickMs: 50,
      insecurePeers: false,
      onExit: (_m, e) => exits.push(e),
    });
    const err = await cluster.start(30_000).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ClusterStartError);
    const message = (err as Error).message;
    expect(message).toMatch(/exited \(exit code 2\) before the cluster was up/);
    expect(message).toContain("concord server: peer authentication: this member of a 3-member cluster has neither a peer secret nor mutual TLS");
    for (const fix of ["--peer-secret", "CONCORD_PEER_SECRET", "--peer-cert-file", "--peer-key-file", "--peer-ca-file", "--insecure-peers"])
      expect(message).toContain(fix);
    // The members exited by themselves, with the usage-error code (the start then tore down any still running).
    expect(exits.some((e) => e.code === 2 && !e.requested)).toBe(true);
    expect(exits.every((e) => e.code === 2 || e.requested)).toBe(true);
  });

  it("starts with --insecure-peers, and every member says its peers use the cluster id as key", async () => {
    cluster = await LocalCluster.start({ size: 3, basePort: BASE_PORT, tickMs: 50 }); // the harness's default
    await writeThroughFollower(cluster);
    for (const m of cluster.members()) {
      const s = startupLines(cluster, m.name);
      expect(s.mode).toBe("INSECURE: cluster id as key (--insecure-peers)");
      expect(s.config.peerAuth).toBe("INSECURE: cluster id as key (--insecure-peers)");
      expect(s.config.insecurePeers).toBe(true);
      expect("peerSecret" in s.config).toBe(false); // no "<redacted>" for a secret that does not exist
      expect(s.warnings.some((w) => /peer authentication is OFF \(--insecure-peers\)/.test(w))).toBe(true);
    }
  });

  it("starts with a secret, says so without showing it, and refuses a forwarding proof keyed by the cluster id", async () => {
    cluster = await LocalCluster.start({ size: 3, basePort: BASE_PORT, tickMs: 50, peerSecret: SECRET });
    await writeThroughFollower(cluster);
    for (const m of cluster.members()) {
      const s = startupLines(cluster, m.name);
      expect(s.mode).toBe("peer secret");
      expect(s.config).toMatchObject({ peerAuth: "peer secret", peerSecret: "<redacted>", insecurePeers: false });
      expect(s.warnings.filter((w) => /peer authentication|insecure/i.test(w))).toEqual([]);
      expect(fs.readFileSync(m.logFile, "utf8")).not.toContain(SECRET);
    }
    const clusterId = await cluster.clusterId();
    const forged = createHmac("sha256", clusterId).update(`concord-forward:${clusterId}`).digest("hex");
    for (const m of cluster.members()) {
      const refused = await cluster.connect(m.name, { hello: { forwardedBy: forged } }).then(
        (sock) => {
          sock.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(RequestError);
      expect((refused as RequestError).code).toBe("UNAUTHENTICATED");
    }
  });
});
