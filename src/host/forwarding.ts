// A follower's connection to the leader's client port: writes (and waits for lock grants and leadership)
// proposed through this member go over it, authenticated by the forwarding proof; the leader's answer, error
// codes included, is relayed as it is.

import { ProposalError } from "./proposals.js";
import type { Replica } from "./replica.js";
import type { LeaderLink, World } from "./world.js";
import type { RequestFrame } from "../transport/protocol.js";

export class LeaderForwarder {
  private link: { url: string; socket: Promise<LeaderLink> } | null = null;

  constructor(
    private readonly replica: Replica,
    private readonly dial: World["dialLeader"],
    private readonly timeoutMs: number,
  ) {}

  async forward(req: RequestFrame): Promise<unknown> {
    const url = this.replica.leaderClientUrl();
    if (!url) {
      const leader = this.replica.leaderId;
      throw new ProposalError(leader === null ? "UNAVAILABLE" : "NOT_LEADER", leader === null ? "no leader is known yet; retry shortly" : `the leader ${leader} has no known client URL`);
    }
    if (!this.link || this.link.url !== url) {
      this.link?.socket.then((s) => s.close(), () => {});
      const socket = this.dial(url);
      const link = { url, socket };
      this.link = link;
      socket.catch(() => {
        if (this.link === link) this.link = null;
      });
    }
    const sock = await this.link.socket;
    if (!sock.isOpen) {
      this.link = null;
      throw new ProposalError("UNAVAILABLE", "the connection to the leader was lost; retry");
    }
    const { id: _id, op, ...args } = req;
    return sock.request(op, args, this.timeoutMs);
  }

  close(): void {
    this.link?.socket.then((s) => s.close(), () => {});
    this.link = null;
  }
}
