// `concord server`: one member process — storage, Raft, peer transport, client gateway and HTTP endpoints.

import http from "node:http";
import https from "node:https";
import fs from "node:fs";
import { ClientGateway } from "../transport/gateway.js";
import { configWarnings, loadTokens, redactConfig, type ServerConfig } from "./config.js";
import { createHttpHandler } from "./http.js";
import { createLogger, type Logger } from "./logger.js";
import { createConcordMetrics, type ConcordMetrics } from "./metrics.js";
import { ConcordNode, type NodeOptions } from "./node.js";
import { ClientService } from "./service.js";
import { createServerStateMachine } from "./state-machine.js";

export interface RunningServer {
  node: ConcordNode;
  metrics: ConcordMetrics;
  logger: Logger;
  /** Graceful: hand off leadership, flush, close. */
  stop(opts?: { transfer?: boolean }): Promise<void>;
}

export async function startServer(config: ServerConfig, opts: { logger?: Logger; now?: NodeOptions["now"] } = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, format: config.logFormat, name: config.name });
  for (const w of configWarnings(config)) logger.warn(w);
  logger.info({ config: redactConfig(config) }, "starting");
  const metrics = createConcordMetrics();
  const tokens = config.authTokensFile ? loadTokens(config.authTokensFile) : undefined;

  const node = await ConcordNode.start({
    config,
    logger,
    now: opts.now,
    createStateMachine: (snapshot) => createServerStateMachine(config, snapshot),
    observer: { proposed: () => metrics.proposals.inc(), fsync: (seconds) => metrics.fsyncSeconds.observe(seconds) },
  });
  const service = new ClientService({ node, logger: logger.child({ component: "gateway" }), tokens });

  const tls = config.tls.client;
  const httpHandler = createHttpHandler({
    ready: () => node.readiness(),
    metrics: () => metrics.registry.expose(),
    status: () => node.status(),
    tokens,
  });
  const server = tls
    ? https.createServer(
        {
          cert: fs.readFileSync(tls.cert),
          key: fs.readFileSync(tls.key),
          // --client-ca-file: clients must present a certificate signed by it (mutual TLS).
          ...(tls.ca ? { ca: fs.readFileSync(tls.ca), requestCert: true, rejectUnauthorized: true } : {}),
        },
        httpHandler,
      )
    : http.createServer(httpHandler);
  const gateway = new ClientGateway({
    server,
    handler: service,
    logger: logger.child({ component: "gateway" }),
    maxFrameBytes: config.maxRequestBytes,
    maxInflightPerConnection: config.maxInflightPerConnection,
    maxConnections: config.maxConnections,
    onRequest: (op, code, seconds) => {
      metrics.clientRequests.labels(op, code).inc();
      metrics.clientRequestSeconds.labels(op).observe(seconds);
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.clientListen.port, config.clientListen.host, () => resolve());
  });
  logger.info({ clientUrl: config.clientUrl, peerUrl: config.peerUrl }, "serving clients");

  metrics.registry.onCollect(() => {
    const s = node.status();
    metrics.raftTerm.set(s.term);
    metrics.setRole(s.role);
    metrics.raftHasLeader.set(s.leader === null ? 0 : 1);
    metrics.raftCommitIndex.set(s.commit);
    metrics.raftAppliedIndex.set(s.applied);
    metrics.clientConnections.set(gateway.connectionCount);
    metrics.kvKeys.set(s.keys);
    metrics.kvRevision.set(s.revision);
    metrics.leases.set(node.sm.leases().length);
    metrics.watchers.set(service.openStreams);
    const locks = node.coord.lockTotals();
    metrics.locksHeld.set(locks.holders);
    metrics.lockWaiters.set(locks.waiters);
    // Round trips as measured by the transport's pings: one sample per peer per scrape.
    for (const [peer, p] of Object.entries(s.transport.peers)) {
      if (p.rttMs !== null) metrics.peerRttSeconds.labels(peer).observe(p.rttMs / 1000);
    }
  });
  node.on("role", (s: { leader: string | null }) => {
    metrics.raftLeaderChanges.inc();
    metrics.raftHasLeader.set(s.leader === null ? 0 : 1);
  });

  let stopping: Promise<void> | null = null;
  return {
    node,
    metrics,
    logger,
    stop(o = {}) {
      stopping ??= (async () => {
        await node.stop({ transfer: o.transfer });
        service.close();
        await gateway.close();
        await new Promise<void>((r) => server.close(() => r()));
      })();
      return stopping;
    },
  };
}
