// A TCP proxy for one directed peer link (A→B): member A dials the proxy instead of B's peer port, and the
// nemesis decides per direction what happens to the bytes.
//
// Modes:
// - pass:  bytes flow both ways unchanged;
// - drop:  the link stays open but bytes are swallowed silently (a black hole, like an iptables DROP): the
//          sender's TCP writes succeed and nothing arrives. New connections are accepted and also black-holed.
// - delay: bytes are forwarded after `delayMs` (order kept per connection);
// - reset: every open connection is destroyed (RST) and new ones are refused.
// A directed link carries A's outbound stream to B and B's replies on the same socket, so "drop A→B" must
// drop both halves of that TCP connection; B→A traffic travels on B's own outbound connection (another proxy).
//
// Invariant: after a mode change no byte is forwarded under the old mode (pending delayed chunks are
// discarded on drop/reset), so a heal never releases a flood of stale frames as if the partition never was.

import net from "node:net";

export type LinkMode = "pass" | "drop" | "delay" | "reset";
export const LINK_MODES: readonly LinkMode[] = ["pass", "drop", "delay", "reset"];

interface Pair {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** Timers of delayed chunks not yet forwarded. */
  readonly pending: Set<NodeJS.Timeout>;
}

export class FaultProxy {
  private server: net.Server | null = null;
  private readonly pairs = new Set<Pair>();
  private modeValue: LinkMode = "pass";
  private delayMsValue = 0;
  /** Bytes forwarded and swallowed, both directions, for the report. */
  forwardedBytes = 0;
  droppedBytes = 0;

  constructor(
    /** "n1->n2": for logs and errors. */
    readonly name: string,
    readonly listenPort: number,
    readonly targetPort: number,
    readonly host = "127.0.0.1",
  ) {}

  get mode(): LinkMode {
    return this.modeValue;
  }

  async start(): Promise<void> {
    if (this.server !== null) throw new Error(`proxy ${this.name} already started`);
    const server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.listenPort, this.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", () => {});
    this.server = server;
  }

  setMode(mode: LinkMode, delayMs = 0): void {
    if (!LINK_MODES.includes(mode)) throw new TypeError(`link mode ${JSON.stringify(mode)}; expected one of ${LINK_MODES.join(", ")}`);
    if (mode === "delay" && !(Number.isFinite(delayMs) && delayMs >= 0 && delayMs <= 60_000))
      throw new RangeError(`delayMs ${delayMs}; expected 0..60000`);
    this.modeValue = mode;
    this.delayMsValue = delayMs;
    if (mode === "drop" || mode === "reset") for (const p of this.pairs) this.clearPending(p);
    if (mode === "reset") for (const p of [...this.pairs]) this.destroy(p, true);
  }

  async close(): Promise<void> {
    for (const p of [...this.pairs]) this.destroy(p, false);
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private accept(client: net.Socket): void {
    if (this.modeValue === "reset") {
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = net.connect(this.targetPort, this.host);
    upstream.setNoDelay(true);
    const pair: Pair = { client, upstream, pending: new Set() };
    this.pairs.add(pair);
    const forward = (to: net.Socket) => (chunk: Buffer) => {
      switch (this.modeValue) {
        case "pass":
          this.forwardedBytes += chunk.length;
          to.write(chunk);
          return;
        case "delay": {
          const timer = setTimeout(() => {
            pair.pending.delete(timer);
            this.forwardedBytes += chunk.length;
            if (!to.destroyed) to.write(chunk);
          }, this.delayMsValue);
          pair.pending.add(timer);
          return;
        }
        default:
          this.droppedBytes += chunk.length;
      }
    };
    client.on("data", forward(upstream));
    upstream.on("data", forward(client));
    const end = () => this.destroy(pair, false);
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
  }

  private clearPending(p: Pair): void {
    for (const t of p.pending) clearTimeout(t);
    p.pending.clear();
  }

  private destroy(p: Pair, reset: boolean): void {
    if (!this.pairs.delete(p)) return;
    this.clearPending(p);
    if (reset) {
      p.client.resetAndDestroy();
      p.upstream.resetAndDestroy();
    } else {
      p.client.destroy();
      p.upstream.destroy();
    }
  }
}
