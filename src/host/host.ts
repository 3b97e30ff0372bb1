// A host: one member's whole deterministic program — the replica (Raft, storage, state machine, ready loop)
// and the client side (gateway, op registry, forwarding, streams) — over an injected World. A member
// (src/server) runs it on real sockets, files and timers; the simulator (sim/) runs this same code on a
// virtual clock, a simulated network and a simulated disk.

import type { Coordination } from "../locks/index.js";
import { ClientGateway, type RefusalReason } from "./gateway.js";
import type { HostConfig } from "./host-config.js";
import { Replica, type ReplicaObserver } from "./replica.js";
import { ClientService } from "./service.js";
import type { World } from "./world.js";

export interface HostOptions {
  config: HostConfig;
  world: World;
  /** Builds an empty state machine (locks and elections installed); a snapshot is restored into it (beginRestore). */
  createStateMachine(): Coordination;
  observer?: ReplicaObserver;
  /** Told of every answered client request: its op, result code ("OK") and duration. */
  onRequest?(op: string, code: string, seconds: number): void;
  /** Told of every client connection refused, and why. */
  onConnectionRefused?(reason: RefusalReason): void;
}

export class Host {
  private constructor(
    readonly replica: Replica,
    readonly service: ClientService,
    readonly gateway: ClientGateway,
  ) {}

  static async open(opts: HostOptions): Promise<Host> {
    const { config, world } = opts;
    const replica = await Replica.open({ config, world, createStateMachine: opts.createStateMachine, observer: opts.observer });
    const log = world.logger.child({ component: "gateway" });
    const service = new ClientService(replica, config, { dialLeader: (url) => world.dialLeader(url), authCrypto: world.authCrypto }, log);
    const gateway = new ClientGateway({
      handler: service,
      logger: log,
      clock: world.clock,
      maxFrameBytes: config.maxRequestBytes,
      maxInflightPerConnection: config.maxInflightPerConnection,
      maxConnections: config.maxConnections,
      maxBufferedBytes: config.maxBufferedBytes,
      onRequest: opts.onRequest,
      onRefused: opts.onConnectionRefused,
    });
    return new Host(replica, service, gateway);
  }

  /** Graceful: hand off leadership (unless `transfer: false`), flush, close every connection. */
  async stop(opts: { transfer?: boolean } = {}): Promise<void> {
    await this.replica.stop(opts);
    this.service.close();
    this.gateway.closeAll();
  }
}
