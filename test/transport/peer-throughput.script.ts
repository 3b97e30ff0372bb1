// Loopback throughput of the peer transport: "app" messages with one 256-byte entry, 64 per send() (so 64
// per frame), both transports in this one process. Closed loop: at most WINDOW messages in flight, so the
// figure is delivered throughput, not drops. Usage: npx tsx test/transport/peer-throughput.script.ts [seconds]

import type { Message } from "../../src/raft/types.js";
import { PeerTransport } from "../../src/transport/peer.js";

const seconds = Number(process.argv[2] ?? 3);
const BATCH = 64;
const WINDOW = BATCH * Number(process.env.WINDOW_FRAMES ?? 32);
let received = 0;
const make = (id: string, onMessages: (b: Message[]) => void): PeerTransport =>
  new PeerTransport({ id, clusterId: "bench", secret: "s", listen: { host: "127.0.0.1", port: 0 }, onMessages });
const a = make("a", () => {});
const b = make("b", (batch) => (received += batch.length));
await a.start();
await b.start();
a.addPeer("b", b.url);
while (!a.stats().peers.b?.connected) await new Promise((r) => setTimeout(r, 5));

const data = new Uint8Array(256).fill(1);
let index = 1;
let sent = 0;
const deadline = performance.now() + seconds * 1000;
const t0 = performance.now();
await new Promise<void>((resolve) => {
  const turn = (): void => {
    if (performance.now() >= deadline) return resolve();
    if (sent - received < WINDOW) {
      const batch: Message[] = [];
      for (let i = 0; i < BATCH; i++, index++) {
        batch.push({
          type: "app",
          from: "a",
          to: "b",
          term: 1,
          logTerm: 1,
          index,
          commit: index,
          entries: [{ term: 1, index: index + 1, type: 0, data }],
        });
      }
      a.send(batch);
      sent += BATCH;
    }
    setImmediate(turn);
  };
  turn();
});
while (received < a.stats().peers.b.messagesSent) await new Promise((r) => setTimeout(r, 1));
const secs = (performance.now() - t0) / 1000;
const s = a.stats().peers.b;
console.log(
  JSON.stringify({
    seconds: +secs.toFixed(2),
    messagesPerSec: Math.round(received / secs),
    payloadMBPerSec: +((received * 256) / secs / 1e6).toFixed(1),
    wireMBPerSec: +(s.bytesSent / secs / 1e6).toFixed(1),
    framesPerSec: Math.round(s.framesSent / secs),
    bytesPerMessage: +(s.bytesSent / s.messagesSent).toFixed(1),
    dropped: s.droppedOverflow + s.droppedDisconnected,
  }),
);
await a.stop();
await b.stop();
