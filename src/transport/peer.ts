// PeerTransport: how a node exchanges Raft messages with the other members.
//
// - Serving: inbound connections on the peer port (own http(s) server, or a shared one under PEER_PATH), each
//   authenticated and then delivering batches and reassembled snapshots to onMessages.
// - Sending: one outbound PeerLink per peer. send() is called once per Ready; messages are grouped per
//   destination and written at the end of the current event-loop turn (a microtask), so everything produced
//   in one turn leaves as ONE frame per peer. Queues are bounded; overflow and disconnection drop (Raft
//   retries: heartbeats, probes and snapshots are all re-sent by the core).
//
// Lifecycle: new → start() → (send/addPeer/removePeer)* → stop(). After stop() no timer, socket or server
// handle remains, and no callback fires.

import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { assert } from "../assert.js";
import type { Message, NodeId } from "../raft/types.js";
import type { FrameDecodeError } from "./codec.js";
import { PeerCloseCode } from "./peer-handshake.js";
import { InboundConnection, type InboundHost } from "./peer-inbound.js";
import { PeerLink, closeGracefully } from "./peer-link.js";
import {
  PEER_PATH,
  peerDialUrl,
  resolvePeerOptions,
  type PeerTransportOptions,
  type ResolvedPeerOptions,
} from "./peer-options.js";
import { newReceiveStats, newSendStats, type PeerReceiveStats, type TransportStats } from "./peer-stats.js";

export { PEER_PATH, PeerConfigError, type PeerLogger, type PeerTransportOptions } from "./peer-options.js";
export type { PeerStats, TransportStats } from "./peer-stats.js";

type State = "new" | "started" | "stopped";

const MAX_REMEMBERED_REFUSALS = 1024;

export class PeerTransport implements InboundHost {
  readonly options: ResolvedPeerOptions;
  private state: State = "new";
  private server: HttpServer | HttpsServer | null = null;
  private ownsServer = false;
  private wss: WebSocketServer | null = null;
  private readonly links = new Map<NodeId, PeerLink>();
  /**
   * Members that dialed us, authenticated, without being among our peers, by the URL their hello gave: a member
   * that missed the change adding a new one still answers it (acks and votes to a new leader it has not heard
   * of would otherwise go nowhere, and it could never catch up). Used only while no configured link exists.
   */
  private readonly learned = new Map<NodeId, { url: string; link: PeerLink | null }>();
  private readonly dirtyLinks = new Set<PeerLink>();
  /** A flush is queued: in a microtask (flushNow) or, for commit-only appends alone, after the turn (flushAfterTurn). */
  private flushNow = false;
  private flushAfterTurn = false;
  private readonly inbound = new Set<InboundConnection>();
  private readonly inboundByPeer = new Map<NodeId, InboundConnection>();
  private readonly received = new Map<NodeId, PeerReceiveStats>();
  /** (who, close code) pairs already logged at warn: a misconfigured peer is reported once, not every retry. */
  private readonly loggedRefusals = new Set<string>();
  private droppedUnknownPeer = 0;
  private decodeErrors = 0;
  private refusedConnections = 0;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void =>
    this.handleUpgrade(req, socket, head);

  constructor(options: PeerTransportOptions) {
    this.options = resolvePeerOptions(options);
  }

  get id(): NodeId {
    return this.options.id;
  }

  /** Listens (when given `listen`) and starts dialing every configured peer. */
  async start(): Promise<void> {
    assert(this.state === "new", `PeerTransport.start() called in state ${this.state}`);
    this.state = "started";
    const o = this.options;
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: o.maxFrameBytes });
    if (o.server !== undefined) {
      this.server = o.server;
    } else {
      const tls = o.tls;
      this.server =
        tls !== undefined
          ? createHttpsServer({
              cert: tls.cert,
              key: tls.key,
              ca: tls.ca,
              requestCert: tls.ca !== undefined,
              rejectUnauthorized: tls.ca !== undefined,
            })
          : createHttpServer();
      this.server.on("request", (_req, res) => {
        res.writeHead(426, { "content-type": "text/plain" }).end("peer port: WebSocket upgrade required\n");
      });
      this.ownsServer = true;
      const server = this.server;
      const listen = o.listen!;
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(listen.port, listen.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
    }
    this.server.on("upgrade", this.onUpgrade);
    for (const [id, url] of o.peers) this.addPeer(id, url);
  }

  /** The bound address of our own server (listen mode). */
  address(): { host: string; port: number } {
    const a = this.server?.address() as AddressInfo | null | undefined;
    assert(a !== null && a !== undefined && typeof a === "object", "PeerTransport is not listening");
    return { host: a.address, port: a.port };
  }

  /** The base URL peers dial to reach this node (listen mode). */
  get url(): string {
    const { host, port } = this.address();
    const h = host.includes(":") ? `[${host}]` : host;
    return `${this.options.tls !== undefined ? "wss" : "ws"}://${h}:${port}`;
  }

  /**
   * Sends a Ready's messages: grouped per peer, one frame per peer at the end of this turn. Commit-only appends
   * alone wait until after the turn (setImmediate): nothing waits on them (a leader sends them as it applies the
   * entries it answers clients for), so the turn's replies go out first, and on a machine whose cores the members
   * share, the followers' wake-ups to apply come after the leader's answer rather than before it. Any other message
   * queued in the meantime takes them along.
   */
  send(messages: readonly Message[]): void {
    if (this.state !== "started") return;
    let urgent = false;
    for (const m of messages) {
      assert(m.from === this.options.id, () => `send(): message from "${m.from}" on node "${this.options.id}"`);
      const link = this.links.get(m.to) ?? this.learnedLink(m.to);
      if (link === undefined) {
        this.droppedUnknownPeer++;
        this.options.logger.debug({ to: m.to, type: m.type }, "message to an unknown peer dropped");
        continue;
      }
      if (m.type === "snap") {
        link.sendSnapshot(m);
        continue;
      }
      if (!link.enqueue(m)) continue;
      this.dirtyLinks.add(link);
      if (m.type !== "app" || m.commitOnly !== true) urgent = true;
    }
    if (this.dirtyLinks.size === 0) return;
    if (urgent && !this.flushNow) {
      this.flushNow = true;
      queueMicrotask(() => this.flush());
    } else if (!this.flushNow && !this.flushAfterTurn) {
      this.flushAfterTurn = true;
      setImmediate(() => this.flush());
    }
  }

  /** The link to a member known only from its own handshake (dialed on first use), if any. */
  private learnedLink(id: NodeId): PeerLink | undefined {
    const l = this.learned.get(id);
    if (l === undefined || this.state !== "started") return undefined;
    if (l.link === null) {
      l.link = new PeerLink(id, l.url, this.options);
      l.link.start();
      this.options.logger.info({ peer: id, url: l.url }, "answering a member known only from its handshake");
    }
    return l.link;
  }

  /** Adds (or re-points) an outbound link; before start() it only records the peer for start() to dial. */
  addPeer(id: NodeId, url: string): void {
    if (id === this.options.id || this.state === "stopped") return;
    if (this.state === "new") {
      peerDialUrl(id, url);
      this.options.peers.set(id, url);
      return;
    }
    const existing = this.links.get(id);
    if (existing !== undefined) {
      if (existing.url === url) return;
      this.removePeer(id);
    }
    const link = new PeerLink(id, url, this.options);
    this.links.set(id, link);
    link.start();
    // A configured link replaces one learned from a handshake.
    const learned = this.learned.get(id)?.link;
    if (learned) void learned.close();
    this.learned.delete(id);
  }

  /** Closes the outbound link and any inbound connection of a removed member. */
  removePeer(id: NodeId): void {
    if (this.state === "new") this.options.peers.delete(id);
    const link = this.links.get(id);
    if (link !== undefined) {
      this.links.delete(id);
      this.dirtyLinks.delete(link);
      void link.close();
    }
    this.inboundByPeer.get(id)?.close(PeerCloseCode.GoingAway, "removed from the cluster");
  }

  stats(): TransportStats {
    const peers: TransportStats["peers"] = {};
    const ids = new Set<NodeId>([...this.links.keys(), ...this.received.keys()]);
    for (const id of ids) {
      peers[id] = { ...(this.links.get(id)?.stats ?? newSendStats()), ...(this.received.get(id) ?? newReceiveStats()) };
    }
    return {
      peers,
      droppedUnknownPeer: this.droppedUnknownPeer,
      decodeErrors: this.decodeErrors,
      refusedConnections: this.refusedConnections,
    };
  }

  async stop(): Promise<void> {
    if (this.state === "stopped") return;
    const wasStarted = this.state === "started";
    this.state = "stopped";
    if (!wasStarted) return;
    this.dirtyLinks.clear();
    const closing: Promise<void>[] = [...this.links.values()].map((l) => l.close());
    this.links.clear();
    for (const l of this.learned.values()) if (l.link) closing.push(l.link.close());
    this.learned.clear();
    for (const c of this.inbound) closing.push(closeGracefully(c.ws, PeerCloseCode.GoingAway, "node stopping"));
    await Promise.all(closing);
    this.server?.off("upgrade", this.onUpgrade);
    this.wss?.close();
    if (this.ownsServer && this.server !== null) {
      const server = this.server;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
  }

  // ------------------------------------------------------------------------------------------ InboundHost

  authenticated(conn: InboundConnection): void {
    const peer = conn.peer!;
    const previous = this.inboundByPeer.get(peer);
    // A peer has one outbound connection to us; a second one means it redialed (restart or lost socket).
    if (previous !== undefined && previous !== conn)
      previous.close(PeerCloseCode.Replaced, "replaced by a newer connection");
    this.inboundByPeer.set(peer, conn);
    if (conn.peerUrl !== null && !this.links.has(peer) && this.learned.get(peer)?.url !== conn.peerUrl) {
      try {
        peerDialUrl(peer, conn.peerUrl);
        void this.learned.get(peer)?.link?.close();
        this.learned.set(peer, { url: conn.peerUrl, link: null });
      } catch {
        this.options.logger.warn({ peer, url: conn.peerUrl }, "a member's handshake gave an unusable peer URL; not answering it there");
      }
    }
    this.loggedRefusals.forEach((k) => k.startsWith(`${peer}\0`) && this.loggedRefusals.delete(k));
    this.options.logger.debug({ peer, remote: conn.remoteAddress }, "peer connected");
  }

  closed(conn: InboundConnection): void {
    this.inbound.delete(conn);
    const peer = conn.peer;
    if (peer !== null && this.inboundByPeer.get(peer) === conn) this.inboundByPeer.delete(peer);
  }

  receiveStats(peer: NodeId): PeerReceiveStats {
    let s = this.received.get(peer);
    if (s === undefined) this.received.set(peer, (s = newReceiveStats()));
    return s;
  }

  refused(who: string, code: number, reason: string): void {
    this.refusedConnections++;
    const key = `${who}\0${code}`;
    if (this.loggedRefusals.has(key)) {
      this.options.logger.debug({ peer: who, code, reason }, "peer connection refused (repeated)");
      return;
    }
    // Claimed ids are chosen by unauthenticated dialers: bound the memory they can make us spend.
    if (this.loggedRefusals.size >= MAX_REMEMBERED_REFUSALS) this.loggedRefusals.clear();
    this.loggedRefusals.add(key);
    this.options.logger.warn({ peer: who, code, reason }, "peer connection refused");
  }

  decodeFailed(peer: string, err: FrameDecodeError): void {
    this.decodeErrors++;
    this.options.logger.warn(
      { peer, field: err.field, reason: err.message },
      "malformed peer frame; connection closed",
    );
  }

  deliver(batch: Message[]): void {
    if (this.state !== "started") return;
    this.options.onMessages(batch);
  }

  // ------------------------------------------------------------------------------------------------------

  private flush(): void {
    this.flushNow = false;
    this.flushAfterTurn = false;
    if (this.state !== "started") return;
    for (const link of this.dirtyLinks) link.flush();
    this.dirtyLinks.clear();
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path !== PEER_PATH) {
      // On a shared server another endpoint (the client gateway) owns other paths.
      if (this.ownsServer) socket.destroy();
      return;
    }
    if (this.state !== "started") {
      socket.destroy();
      return;
    }
    this.wss!.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      if (this.state !== "started") {
        ws.terminate();
        return;
      }
      const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
      this.inbound.add(new InboundConnection(ws, remote, this));
    });
  }
}
