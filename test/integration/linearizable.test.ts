// Linearizability of reads and writes through every member while the leader is SIGKILLed and restarted: six
// clients read (linearizable, on any member) and write unique values to three registers; the recorded history
// is checked with the project's checker (src/check) against the register model.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkLinearizability,
  eventsFromObjects,
  formatOperation,
  pairOperations,
  registerModel,
} from "../../src/check/index.js";
import type { ClientSocket } from "../../src/transport/client-socket.js";
import { LocalCluster, sleep } from "../../src/harness/index.js";

const CLIENTS = 6;
const KEYS = ["lin/a", "lin/b", "lin/c"];
const REQUEST_TIMEOUT_MS = 2000;

interface Event {
  process: number;
  type: "invoke" | "ok" | "fail" | "info";
  f: "read" | "write";
  key: string;
  value: string | null;
}

describe.sequential("linearizable reads and writes through a leader failover", () => {
  let cluster: LocalCluster;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ size: 3, basePort: 9250, tickMs: 50 });
  });
  afterAll(async () => {
    await cluster?.teardown();
  });

  it("the history of every member's reads and writes is linearizable", async () => {
    const history: Event[] = [];
    let stop = false;
    let nextProcess = 0;
    let seed = 1;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };

    // A client is a sequence of logical processes; after an operation with an unknown outcome (a write that
    // timed out or lost its connection) the process is retired and a new one continues (Jepsen's convention).
    const client = async (slot: number) => {
      let process = nextProcess++;
      let sock: ClientSocket | null = null;
      let member = slot;
      let n = 0;
      while (!stop) {
        const names = cluster.running().sort();
        if (!sock?.isOpen) {
          sock = null;
          try {
            sock = await cluster.connect(names[member % names.length], { connectTimeoutMs: 1000 });
          } catch {
            member++;
            await sleep(50);
            continue;
          }
        }
        const key = KEYS[Math.floor(random() * KEYS.length)];
        if (random() < 0.5) {
          history.push({ process, type: "invoke", f: "read", key, value: null });
          try {
            const r = await sock.request<{ kvs: { value: Uint8Array }[] }>("range", { key }, REQUEST_TIMEOUT_MS);
            history.push({
              process,
              type: "ok",
              f: "read",
              key,
              value: r.kvs.length ? Buffer.from(r.kvs[0].value).toString() : null,
            });
          } catch {
            history.push({ process, type: "fail", f: "read", key, value: null }); // a failed read changed nothing
            sock.close();
            member++;
          }
        } else {
          const value = `p${process}-${++n}`;
          history.push({ process, type: "invoke", f: "write", key, value });
          try {
            await sock.request("put", { key, value }, REQUEST_TIMEOUT_MS);
            history.push({ process, type: "ok", f: "write", key, value });
          } catch {
            history.push({ process, type: "info", f: "write", key, value }); // may or may not have happened
            process = nextProcess++;
            sock.close();
            member++;
          }
        }
      }
      sock?.close();
    };

    const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));
    try {
      await sleep(1500);
      const leader = await cluster.waitForLeader();
      await cluster.kill(leader);
      await sleep(2500);
      await cluster.restart(leader);
      await cluster.waitForLeader(20_000);
      await sleep(1500);
    } finally {
      stop = true;
      await Promise.all(clients);
    }

    const paired = pairOperations(eventsFromObjects(history));
    const result = checkLinearizability(paired, { model: registerModel, budget: { timeMs: 30_000 } });
    const counts = { ok: 0, fail: 0, info: 0 };
    for (const e of history) if (e.type !== "invoke") counts[e.type]++;
    console.log(
      `linearizability: ${paired.operations.length} operations ${JSON.stringify(counts)}, verdict ${result.verdict}, ${result.steps} steps`,
    );
    if (result.failure)
      console.log(`blocked: ${formatOperation(result.failure.blocked)} after ${result.failure.stateAfter}`);
    expect(counts.ok).toBeGreaterThan(200);
    expect(result.verdict).toBe("linearizable");
  });
});
