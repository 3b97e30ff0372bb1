// The port plan of a local cluster: member slot s listens for clients on basePort + stride·s and for peers on the
// next port. The stride leaves room between members for other listeners (the Jepsen-style suite puts its fault
// proxies there); every user of the harness picks a base port of its own so suites never collide.

export const DEFAULT_PORT_STRIDE = 10;

export interface MemberPorts {
  client: number;
  peer: number;
}

export function memberPorts(basePort: number, slot: number, stride = DEFAULT_PORT_STRIDE): MemberPorts {
  if (!Number.isInteger(basePort) || basePort < 1024)
    throw new RangeError(`base port ${basePort}: expected an integer from 1024 (unprivileged) to 65535`);
  if (!Number.isInteger(stride) || stride < 2) throw new RangeError(`port stride ${stride}: expected an integer >= 2`);
  if (!Number.isInteger(slot) || slot < 0) throw new RangeError(`member slot ${slot}: expected an integer >= 0`);
  const client = basePort + stride * slot;
  if (client + 1 > 65535)
    throw new RangeError(
      `member slot ${slot} from base port ${basePort} needs ports ${client}–${client + 1}, past 65535`,
    );
  return { client, peer: client + 1 };
}
