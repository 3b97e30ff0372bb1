// Run as a child process by peer-lifecycle.test.ts: exercises every kind of handle the transport creates
// (server, inbound and outbound sockets, a link in backoff, ping and handshake timers, a snapshot stream),
// stops everything and then simply returns. If any handle survived stop(), this process would not exit.

import type { Message } from "../../src/raft/types.js";
import { PeerTransport } from "../../src/transport/peer.js";

const received: Message[] = [];
const make = (id: string): PeerTransport =>
  new PeerTransport({
    id,
    clusterId: "c",
    secret: "s",
    listen: { host: "127.0.0.1", port: 0 },
    pingIntervalMs: 20,
    onMessages: (batch) => received.push(...batch),
  });

const a = make("a");
const b = make("b");
await a.start();
await b.start();
a.addPeer("b", b.url);
b.addPeer("a", a.url);
a.addPeer("ghost", "ws://127.0.0.1:1"); // stays in backoff
while (!a.stats().peers.b?.connected || !b.stats().peers.a?.connected) await new Promise((r) => setTimeout(r, 5));
a.send([
  { type: "heartbeat", from: "a", to: "b", term: 1, commit: 0, ctx: "" },
  {
    type: "snap",
    from: "a",
    to: "b",
    term: 1,
    snapshot: {
      metadata: {
        index: 3,
        term: 1,
        confState: { voters: ["a", "b"], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
      },
      data: new Uint8Array(3 << 20),
    },
  },
]);
await new Promise((r) => setTimeout(r, 60)); // pings flow; the snapshot may still be streaming
await a.stop();
await b.stop();
console.log(`stopped after receiving ${received.length} messages`);
