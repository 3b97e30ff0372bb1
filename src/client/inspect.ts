// Inspection: every lock with its holders and waiters, every election with its leader and candidates, every
// lease with its keys and time left — fetched page by page (docs/protocol.md "Inspection"), linearizable.

import type { Connection } from "./connection.js";
import { decodeElectionStatus, type ElectionStatus, type WireElectionStatus } from "./election.js";
import type { LockStatus } from "./locks.js";
import { checkPositiveInt } from "./values.js";
import type { LeaseListing } from "../host/inspect.js";

export type { LeaseListing } from "../host/inspect.js";

/** Every item of a paged listing, page after page; `cursor` names the item the next page starts after. */
async function all<T, C>(
  fetchPage: (after: C | undefined) => Promise<{ items: T[]; more: boolean }>,
  cursor: (item: T) => C,
): Promise<T[]> {
  const out: T[] = [];
  let after: C | undefined;
  for (;;) {
    const { items, more } = await fetchPage(after);
    out.push(...items);
    if (!more || items.length === 0) return out;
    after = cursor(items[items.length - 1]);
  }
}

export class InspectApi {
  constructor(private readonly conn: Connection) {}

  /** Locks with a holder or a waiter whose name starts with `prefix`, in name order. */
  locks(prefix = ""): Promise<LockStatus[]> {
    return all(
      async (after) => {
        const r = await this.conn.call<{ locks: LockStatus[]; more: boolean }>("lockList", {
          prefix,
          ...(after === undefined ? {} : { after }),
        });
        return { items: r.locks, more: r.more };
      },
      (l) => l.name,
    );
  }

  /** Elections remembered (with candidates, or idle with history) whose name starts with `prefix`, in name order. */
  elections(prefix = ""): Promise<ElectionStatus[]> {
    return all(
      async (after) => {
        const r = await this.conn.call<{ elections: WireElectionStatus[]; more: boolean }>("electionList", {
          prefix,
          ...(after === undefined ? {} : { after }),
        });
        return { items: r.elections.map(decodeElectionStatus), more: r.more };
      },
      (e) => e.name,
    );
  }

  /** Live leases in id order, with their keys when `keys` is true. */
  leases(opts: { keys?: boolean } = {}): Promise<LeaseListing[]> {
    return all(
      async (after) => {
        const r = await this.conn.call<{ leases: LeaseListing[]; more: boolean }>("leaseList", {
          keys: !!opts.keys,
          ...(after === undefined ? {} : { after: checkPositiveInt("after", after) }),
        });
        return { items: r.leases, more: r.more };
      },
      (l) => l.id,
    );
  }
}
