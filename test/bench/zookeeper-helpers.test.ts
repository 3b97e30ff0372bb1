// The pure parts of the ZooKeeper peer in npm run bench:compare: the lock recipe's choice of whom to wait for,
// the ensemble's configuration, reading a server's mode, and the chart on the generated page.
import { describe, expect, it } from "vitest";
import { barChart } from "../../bench/chart.js";
import { mntrValue, modeOf, portsOf, zooCfg } from "../../bench/zookeeper/cluster.js";
import zookeeper from "node-zookeeper-client";
import { predecessorOf, retryOnConnectionLoss } from "../../bench/zookeeper/session.js";

describe("lock recipe: predecessorOf", () => {
  it("the lowest sequence number holds the lock, whatever order getChildren returns", () => {
    expect(predecessorOf(["lock-0000000012", "lock-0000000003", "lock-0000000007"], "lock-0000000003")).toBeUndefined();
  });

  it("a waiter watches only the node just below its own, by number, not by string order", () => {
    const children = ["lock-0000000100", "lock-0000000009", "lock-0000000099", "lock-0000000010"];
    expect(predecessorOf(children, "lock-0000000100")).toBe("lock-0000000099");
    expect(predecessorOf(children, "lock-0000000010")).toBe("lock-0000000009");
  });

  it("a node missing from the children is an error, not a silent grant", () => {
    expect(() => predecessorOf(["lock-0000000001"], "lock-0000000002")).toThrow(/lock-0000000002 is not among/);
  });
});

describe("setup calls: retryOnConnectionLoss", () => {
  // As the client makes them (its Exception.create is not in the types).
  const error = (code: number, name: string) => new zookeeper.Exception(code, name, retryOnConnectionLoss);
  const loss = () => error(zookeeper.Exception.CONNECTION_LOSS, "CONNECTION_LOSS");
  const failingTimes = (n: number, thrown: () => unknown) => {
    let calls = 0;
    const op = async () => {
      calls++;
      if (calls <= n) throw thrown();
      return "done";
    };
    return { op, calls: () => calls };
  };

  it("calls again after a lost connection, up to its attempts, then gives up with that error", async () => {
    const twice = failingTimes(2, loss);
    await expect(retryOnConnectionLoss(twice.op, 3)).resolves.toBe("done");
    expect(twice.calls()).toBe(3);
    const always = failingTimes(Infinity, loss);
    await expect(retryOnConnectionLoss(always.op, 2)).rejects.toThrow(/CONNECTION_LOSS/);
    expect(always.calls()).toBe(2);
  });

  it("any other error fails at once", async () => {
    const other = failingTimes(1, () => error(zookeeper.Exception.NO_NODE, "NO_NODE"));
    await expect(retryOnConnectionLoss(other.op)).rejects.toThrow(/NO_NODE/);
    expect(other.calls()).toBe(1);
  });
});

describe("ensemble", () => {
  it("each server's zoo.cfg lists all three on loopback with its own client port and data dir, fsync left on", () => {
    const cfg = zooCfg(2, "/d/n2/data");
    expect(cfg).toContain("dataDir=/d/n2/data\n");
    expect(cfg).toContain(`clientPort=${portsOf(2).client}\n`);
    expect(cfg).toContain(
      "server.1=127.0.0.1:12888:13888\nserver.2=127.0.0.1:22888:23888\nserver.3=127.0.0.1:32888:33888\n",
    );
    expect(cfg).toContain("4lw.commands.whitelist=srvr,ruok,mntr");
    expect(cfg).not.toMatch(/forceSync/);
  });

  it("modeOf reads the Mode line of a srvr reply, and nothing from a server not yet serving", () => {
    expect(modeOf("Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n")).toBe(
      "follower",
    );
    expect(modeOf("This ZooKeeper instance is not currently serving requests\n")).toBeUndefined();
    expect(modeOf("")).toBeUndefined();
  });
});

describe("mntrValue", () => {
  it("reads one metric by name, not a longer name that contains it", () => {
    const reply = "zk_version\t3.8.0\nzk_max_fsynctime\t12\nzk_cnt_fsynctime\t301\nzk_sum_fsynctime\t900\n";
    expect(mntrValue(reply, "cnt_fsynctime")).toBe(301);
    expect(mntrValue(reply, "fsynctime")).toBeUndefined();
  });
});

describe("barChart", () => {
  it("scales each group to its fastest system and leaves out skipped ones", () => {
    const chart = barChart(
      [
        {
          label: "put c=64",
          bars: [
            { name: "Concord", value: 100 },
            { name: "etcd", value: 25 },
            { name: "ZooKeeper", value: NaN },
          ],
        },
      ],
      8,
    );
    expect(chart).toBe("put c=64\n  Concord   ████████ 100\n  etcd      ██ 25");
  });
});
