// `concord server`: one member process. The deterministic host (src/host) does the work; this file gives it the
// real world — files (node:fs), timers and the monotonic clock, the peer transport, the leader dialer, the
// client port's WebSockets — and adds what only a process has: HTTP endpoints, metrics, logging, idle memory
// collection.

import { createHmac, randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import { rootCertificates } from "node:tls";
import { Host } from "../host/host.js";
import { DEFAULT_READIES_IN_FLIGHT, type HostConfig } from "../host/host-config.js";
import type { Clock, World } from "../host/world.js";
import type { FileSystem } from "../storage/file-system.js";
import { nodeFileSystem } from "../storage/node-file-system.js";
import { ClientSocket } from "../transport/client-socket.js";
import { PeerTransport } from "../transport/peer.js";
import { WsGateway } from "../transport/ws-gateway.js";
import { configWarnings, redactConfig, type ServerConfig } from "./config.js";
import { loadTokens } from "./tokens.js";
import { loadDashboardAssets, type DashboardAssets } from "./dashboard/assets.js";
import { LeaderHistory } from "./dashboard/leader-history.js";
import { Dashboard } from "./dashboard/routes.js";
import { createHttpHandler } from "./http.js";
import { fixMmapThreshold } from "./c-heap.js";
import { IdleCollector, shrinkPackBuffer } from "./idle-gc.js";
import { createLogger, type Logger } from "./logger.js";
import { createConcordMetrics, type ConcordMetrics } from "./metrics.js";
import { peerAuthInput, peerAuthMode, peerKeys } from "./peer-auth.js";
import { createServerStateMachine } from "./state-machine.js";
import { nodeAuthCrypto } from "./auth-crypto.js";
import { MEMBER_NODE_FLAGS, hasMemberNodeFlags } from "./member-node-flags.js";

export interface RunningServer {
  host: Host;
  metrics: ConcordMetrics;
  logger: Logger;
  /** Graceful: hand off leadership, flush, close. */
  stop(opts?: { transfer?: boolean }): Promise<void>;
}

/** Real time: the monotonic clock, timers, and setImmediate for "once this turn's work is done" and for the next run of a long job. */
export const realClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  defer: (fn) => void setImmediate(fn),
  continueLater: (fn) => void setImmediate(fn),
};

/** --no-fsync (tests and benchmarks only): every sync succeeds at once, so nothing is durable. */
function withoutSync(fs: FileSystem): FileSystem {
  const none = () => Promise.resolve();
  return {
    ...fs,
    syncDirSync: () => {},
    syncDir: none,
    // Each method named: a handle is a class instance, whose methods a spread would drop.
    open: async (path, mode) => {
      const h = await fs.open(path, mode);
      return { write: (parts, position) => h.write(parts, position), writeAndSync: (parts, position) => h.write(parts, position), sync: none, close: () => h.close() };
    },
  };
}

/** mulberry32, seeded from the OS: the host's randomness (election timeouts) in a member. */
function seededRandom(): () => number {
  let a = randomBytes(4).readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The host's part of a member's configuration; `forwardKey` keys the forwarding proof (peer-auth.ts). */
export function hostConfig(config: ServerConfig, forwardKey: string): HostConfig {
  return {
    name: config.name,
    clusterId: config.clusterId,
    dataDir: config.dataDir,
    initialCluster: config.initialCluster,
    clientUrls: config.clientUrls,
    join: config.join,
    tickMs: config.tickMs,
    electionTicks: config.electionTicks,
    heartbeatTicks: config.heartbeatTicks,
    snapshotEntries: config.snapshotEntries,
    snapshotBytes: config.snapshotBytes,
    quotaBytes: config.quotaBytes,
    ...(config.autoCompaction ? { autoCompaction: config.autoCompaction } : {}),
    readiesInFlight: DEFAULT_READIES_IN_FLIGHT,
    storage: { repair: config.repair, memoryLogBytes: config.memoryLogBytes },
    requestTimeoutMs: 10_000,
    maxRequestBytes: config.maxRequestBytes,
    maxInflightPerConnection: config.maxInflightPerConnection,
    maxConnections: config.maxConnections,
    maxBufferedBytes: 8 << 20,
    forwardProof: createHmac("sha256", forwardKey).update(`concord-forward:${config.clusterId}`).digest("hex"),
    tokens: config.authTokensFile ? loadTokens(config.authTokensFile) : undefined,
    ...(forwardKey === config.clusterId
      ? {
          runtimeAuthRefusal:
            "this member's forwarding key is the cluster id, which any client can learn (no --peer-secret): user tokens could be forged and auth bypassed; give every member --peer-secret (CONCORD_PEER_SECRET), then enable auth",
        }
      : {}),
  };
}

export async function startServer(config: ServerConfig, opts: { logger?: Logger } = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, format: config.logFormat, name: config.name });
  for (const w of configWarnings(config)) logger.warn(w);
  const peerAuth = peerAuthInput(config);
  logger.info({ config: redactConfig(config) }, "starting");
  if (!hasMemberNodeFlags()) {
    logger.info(
      { flags: MEMBER_NODE_FLAGS, execArgv: process.execArgv },
      `node runs without ${MEMBER_NODE_FLAGS.join(" ")}: V8's collections use helper threads, which pause longer and hold more memory where members share cores (docs/operations.md, "Container image")`,
    );
  }
  if (!fixMmapThreshold())
    logger.info(
      "large buffers share glibc's heap (the C-heap addon is not built, or the C library is not glibc): freed value chunks and snapshot pieces may stay resident",
    );
  logger.info({ peerAuth: peerAuthMode(peerAuth) }, `peer authentication: ${peerAuthMode(peerAuth)}`);
  const keys = peerKeys(peerAuth, config.clusterId, () => randomBytes(32).toString("hex"));
  const metrics = createConcordMetrics();

  // Members share the client-port TLS setup. A follower forwarding to the leader's wss port trusts the client
  // CA (--client-ca-file) and, as the leader then requires, shows its own certificate; without a client CA it
  // trusts the system's CAs plus the certificates in its own --client-cert-file (a shared self-signed
  // certificate, or a chain that includes its CA).
  const clientTls = config.tls.client;
  const forwardTls = clientTls?.ca
    ? { ca: [fs.readFileSync(clientTls.ca)], cert: fs.readFileSync(clientTls.cert), key: fs.readFileSync(clientTls.key) }
    : clientTls
      ? { ca: [...rootCertificates, fs.readFileSync(clientTls.cert)] }
      : undefined;
  const peerTls = config.tls.peer;
  const hc = hostConfig(config, keys.forward);
  let progress = (): number => 0;
  let keyCount = (): number => 0;
  let tightenValues = (): number => 0;
  const idleGc = new IdleCollector(() => progress(), {
    keys: () => keyCount(),
    pack: () => tightenValues(),
    onCollected: (ms, { gcMs, trimMs, compacted, packMs, packedBytes }) =>
      logger.info(
        {
          ms: Math.round(ms),
          packMs: Math.round(packMs),
          valueBytesFreed: packedBytes,
          gcMs: Math.round(gcMs),
          trimMs: Math.round(trimMs),
          compacted,
          rss: process.memoryUsage.rss(),
        },
        "idle: returned garbage to the OS",
      ),
    onYoungDone: (steps, fromBytes, toBytes) =>
      logger.info(
        { steps, fromBytes, toBytes, rss: process.memoryUsage.rss() },
        toBytes < fromBytes ? "idle: returned the young generation to the OS" : "idle: V8 kept the young generation",
      ),
    onLeftToV8: (held) =>
      logger.info(
        { keys: held, rss: process.memoryUsage.rss() },
        "idle: too many keys to collect in one pause; the garbage is left to V8's incremental collections",
      ),
  });
  const world: World = {
    clock: realClock,
    fs: config.fsync ? nodeFileSystem : withoutSync(nodeFileSystem),
    random: seededRandom(),
    logger,
    network: async (handlers) => {
      const transport = new PeerTransport({
        id: config.name,
        clusterId: config.clusterId,
        secret: keys.handshake,
        listen: config.peerListen,
        advertiseUrl: config.peerUrl,
        peers: new Map(),
        // --peer-cert-file/--peer-key-file/--peer-ca-file: wss with mutual TLS between members.
        ...(peerTls
          ? { tls: { cert: fs.readFileSync(peerTls.cert), key: fs.readFileSync(peerTls.key), ...(peerTls.ca ? { ca: fs.readFileSync(peerTls.ca) } : {}) } }
          : {}),
        logger: logger.child({ component: "peer" }),
        onMessages: handlers.onMessages,
        onSnapshotStatus: handlers.onSnapshotStatus,
      });
      await transport.start();
      return transport;
    },
    authCrypto: nodeAuthCrypto(keys.forward, config.clusterId),
    dialLeader: (url) => ClientSocket.connect(url, { hello: { forwardedBy: hc.forwardProof }, connectTimeoutMs: 2000, ...(forwardTls ? { tls: forwardTls } : {}) }),
  };

  const host = await Host.open({
    config: hc,
    world,
    createStateMachine: () => createServerStateMachine(config),
    observer: {
      proposed: () => metrics.proposals.inc(),
      proposalFailed: (code) => metrics.proposalsFailed.labels(code.toLowerCase()).inc(),
      fsync: (seconds) => metrics.fsyncSeconds.observe(seconds),
      snapshotTaken: () => shrinkPackBuffer(), // the snapshot's meta grew msgpackr's scratch buffer
      snapshotSaved: (_index, seconds) => {
        metrics.snapshots.inc();
        metrics.snapshotSeconds.observe(seconds);
        idleGc.arm();
      },
    },
    onRequest: (op, code, seconds) => metrics.requestAnswered(op, code, seconds),
    onConnectionRefused: (reason) => metrics.clientConnectionsRefused.labels(reason).inc(),
  });
  const replica = host.replica;
  progress = () => replica.progress;
  keyCount = () => replica.sm.keyCount;
  tightenValues = () => replica.sm.tightenValues();
  idleGc.watchBursts();
  const leaderHistory = new LeaderHistory();
  leaderHistory.observe(replica.term, replica.leaderId, Date.now());
  let dashboardAssets: DashboardAssets | undefined;

  const httpHandler = createHttpHandler({
    ready: () => replica.readiness(),
    metrics: () => metrics.expose(),
    status: () => replica.status(),
    tokens: hc.tokens,
    ui: new Dashboard({
      replica,
      history: leaderHistory,
      assets: () => (dashboardAssets ??= loadDashboardAssets()),
      wallNow: () => Date.now(),
      // Asking a fellow member's https client port: as when forwarding to the leader.
      ...(forwardTls ? { tls: forwardTls } : {}),
    }),
  });
  const server = clientTls
    ? https.createServer(
        {
          cert: fs.readFileSync(clientTls.cert),
          key: fs.readFileSync(clientTls.key),
          // --client-ca-file: clients must present a certificate signed by it (mutual TLS).
          ...(clientTls.ca ? { ca: fs.readFileSync(clientTls.ca), requestCert: true, rejectUnauthorized: true } : {}),
        },
        httpHandler,
      )
    : http.createServer(httpHandler);
  // A client that fails the TLS handshake (no certificate under --client-ca-file, one its CA did not sign) never
  // reaches the gateway.
  server.on("tlsClientError", () => metrics.clientConnectionsRefused.labels("tls").inc());
  const ws = new WsGateway({ server, gateway: host.gateway, maxFrameBytes: config.maxRequestBytes, logger: logger.child({ component: "gateway" }) });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.clientListen.port, config.clientListen.host, () => resolve());
  });
  logger.info({ clientUrl: config.clientUrl, peerUrl: config.peerUrl }, "serving clients");

  metrics.onCollect(() => {
    const s = replica.status();
    metrics.raftTerm.set(s.term);
    metrics.setRole(s.role);
    metrics.raftHasLeader.set(s.leader === null ? 0 : 1);
    metrics.raftCommitIndex.set(s.commit);
    metrics.raftAppliedIndex.set(s.applied);
    metrics.clientConnections.set(host.gateway.connectionCount);
    metrics.kvKeys.set(s.keys);
    metrics.kvRevision.set(s.revision);
    metrics.stateBytes.set(s.stateBytes);
    metrics.quotaBytes.set(s.quotaBytes);
    // Set at every scrape, 0 or 1: a dashboard or an alert rule sees 0 rather than no data.
    metrics.alarm.labels("NO_SPACE").set(s.alarms.some((a) => a.alarm === "NO_SPACE") ? 1 : 0);
    metrics.leases.set(replica.sm.leases().length);
    metrics.watchers.set(host.service.streams.open);
    const locks = replica.coord.lockTotals();
    metrics.locksHeld.set(locks.holders);
    metrics.lockWaiters.set(locks.waiters);
    metrics.elections.set(replica.coord.electionTotals().candidates);
    metrics.proposalsPending.set(replica.pendingProposals);
    metrics.walBytes.follow(s.storage.bytes);
    metrics.walReleasedReads.follow(s.storage.releasedReads);
    // Per peer: every other member of the configuration has series; a member that left loses them.
    const peers = new Set(s.members.map((m) => m.id).filter((id) => id !== config.name));
    for (const peer of [...metrics.peers()]) if (!peers.has(peer)) metrics.removePeer(peer);
    for (const peer of peers) {
      const p = s.transport.peers[peer];
      const series = metrics.peer(peer);
      series.connected.set(p?.connected ? 1 : 0);
      series.dropped.follow(p === undefined ? 0 : p.droppedDisconnected + p.droppedOverflow);
      // Round trips as measured by the transport's pings: one sample per peer per scrape.
      if (p !== undefined && p.rttMs !== null) series.rtt.observe(p.rttMs / 1000);
    }
  });
  replica.roleChanged.add((s) => {
    leaderHistory.observe(replica.term, s.leader, Date.now());
    metrics.raftLeaderChanges.inc();
    metrics.raftHasLeader.set(s.leader === null ? 0 : 1);
  });

  let stopping: Promise<void> | null = null;
  return {
    host,
    metrics,
    logger,
    stop(o = {}) {
      stopping ??= (async () => {
        idleGc.stop();
        await host.stop({ transfer: o.transfer });
        await ws.close();
        await new Promise<void>((r) => server.close(() => r()));
      })();
      return stopping;
    },
  };
}
