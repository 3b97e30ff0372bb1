// Counters of the peer transport, per peer. Plain mutable records: the link and the inbound connection
// increment them, PeerTransport.stats() hands out copies.

export interface PeerSendStats {
  framesSent: number;
  messagesSent: number;
  bytesSent: number;
  /** Messages dropped because the link was not connected (Raft retries them). */
  droppedDisconnected: number;
  /** Messages dropped because the queue (pending + socket buffer) was over maxQueueBytes. */
  droppedOverflow: number;
  /** Connections established (handshake completed). */
  connects: number;
  /** Reconnect attempts scheduled after a failed or lost connection. */
  reconnects: number;
  connected: boolean;
  /** Smoothed round-trip time of ws pings (ms), null before the first pong. */
  rttMs: number | null;
  snapshotsSent: number;
  snapshotsFailed: number;
}

export interface PeerReceiveStats {
  framesReceived: number;
  messagesReceived: number;
  bytesReceived: number;
  snapshotsReceived: number;
}

export type PeerStats = PeerSendStats & PeerReceiveStats;

export interface TransportStats {
  peers: Record<string, PeerStats>;
  /** Messages addressed to a node that is not (or no longer) a configured peer. */
  droppedUnknownPeer: number;
  /** Inbound frames that failed validation (the connection was closed). */
  decodeErrors: number;
  /** Inbound connections refused during the handshake. */
  refusedConnections: number;
}

export const newSendStats = (): PeerSendStats => ({
  framesSent: 0,
  messagesSent: 0,
  bytesSent: 0,
  droppedDisconnected: 0,
  droppedOverflow: 0,
  connects: 0,
  reconnects: 0,
  connected: false,
  rttMs: null,
  snapshotsSent: 0,
  snapshotsFailed: 0,
});

export const newReceiveStats = (): PeerReceiveStats => ({
  framesReceived: 0,
  messagesReceived: 0,
  bytesReceived: 0,
  snapshotsReceived: 0,
});
