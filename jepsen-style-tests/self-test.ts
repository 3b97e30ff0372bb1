// The suite's own checks (no cluster needed, a few seconds): `npx tsx jepsen-style-tests/self-test.ts`.
// - the fault proxy really passes, black-holes, delays and resets bytes on real sockets;
// - partition shapes cut what they claim (majorities ring: everyone sees a majority, no two the same);
// - the clock preload skews a real child process's clocks;
// - recorded histories parse with src/check exactly as the vectors' README describes;
// - every mutant's patch still applies exactly once to the current sources.
// Exits non-zero on the first failed check, naming it.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { readHistory } from "../src/check/index.js";
import { FaultProxy } from "./drivers/fault-proxy.js";
import { History } from "./history.js";
import { MUTANTS, prepareMutant } from "./mutants.js";
import { grudgeFor, PARTITION_SHAPES } from "./nemesis/partition.js";
import { Rng, sleep } from "./util.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..");
const PORT = 10980; // Self-test ports: 10980 (echo server) and 10981 (proxy).

async function check(name: string, fn: () => Promise<void> | void): Promise<void> {
  const t = performance.now();
  await fn();
  console.log(`ok  ${name} (${Math.round(performance.now() - t)} ms)`);
}

async function proxyChecks(): Promise<void> {
  const echo = net.createServer((s) => {
    s.on("error", () => {});
    s.on("data", (d) => s.write(d));
  });
  await new Promise<void>((r) => echo.listen(PORT, "127.0.0.1", r));
  const proxy = new FaultProxy("self->echo", PORT + 1, PORT);
  await proxy.start();
  try {
    const sock = net.connect(PORT + 1, "127.0.0.1");
    await new Promise<void>((r) => sock.once("connect", () => r()));
    let received = "";
    sock.on("data", (d) => (received += d.toString()));
    sock.on("error", () => {});
    const roundTrip = async (msg: string, waitMs: number) => {
      received = "";
      sock.write(msg);
      await sleep(waitMs);
      return received;
    };
    await check("proxy pass forwards both ways", async () => assert.equal(await roundTrip("a", 100), "a"));
    await check("proxy drop black-holes bytes silently", async () => {
      proxy.setMode("drop");
      assert.equal(await roundTrip("b", 200), "");
      assert.equal(sock.destroyed, false, "a dropped link stays open");
      assert.ok(proxy.droppedBytes >= 1);
    });
    await check("proxy delay holds bytes for the delay", async () => {
      proxy.setMode("delay", 300);
      assert.equal(await roundTrip("c", 100), "", "nothing before the delay");
      await sleep(700);
      assert.equal(received, "c");
    });
    await check("proxy reset destroys connections and refuses new ones", async () => {
      const closed = new Promise<void>((r) => sock.once("close", () => r()));
      proxy.setMode("reset");
      await Promise.race([closed, sleep(1000).then(() => assert.fail("connection not reset"))]);
      const again = net.connect(PORT + 1, "127.0.0.1");
      const outcome = await new Promise<string>((r) => {
        again.once("error", () => r("error"));
        again.once("close", () => r("closed"));
        setTimeout(() => r("open"), 1000);
      });
      assert.notEqual(outcome, "open");
      again.destroy();
    });
    await check("proxy rejects unknown modes with a clear error", () => {
      assert.throws(() => proxy.setMode("sideways" as never), /expected one of pass, drop, delay, reset/);
    });
  } finally {
    await proxy.close();
    await new Promise<void>((r) => echo.close(() => r()));
  }
}

function reaches(grudge: Map<string, Set<string>>, a: string, b: string): boolean {
  return !(grudge.get(a)?.has(b) ?? false);
}

await proxyChecks();

await check("partition shapes", () => {
  const nodes = ["n1", "n2", "n3", "n4", "n5"];
  const rng = new Rng(42);
  for (let i = 0; i < 50; i++) {
    for (const shape of PARTITION_SHAPES) {
      const g = grudgeFor(shape, nodes, (n) => rng.int(n), "n3");
      const sees = (a: string) => nodes.filter((b) => b === a || (reaches(g, a, b) && reaches(g, b, a)));
      if (shape === "majorities-ring") {
        const views = nodes.map((n) => sees(n).sort().join(","));
        for (const v of views) assert.equal(v.split(",").length, 3, `ring view ${v} is not a bare majority`);
        assert.equal(new Set(views).size, 5, "every node sees a different majority");
      } else if (shape === "isolate-leader") {
        assert.deepEqual(sees("n3"), ["n3"]);
      } else if (shape === "halves") {
        const sizes = nodes.map((n) => sees(n).length).sort();
        assert.deepEqual(sizes, [2, 2, 3, 3, 3]);
      } else if (shape === "bridge") {
        const bridge = nodes.filter((n) => sees(n).length === 5);
        assert.equal(bridge.length, 1, "exactly one bridge sees everyone");
      } else {
        const victims = nodes.filter((v) => nodes.every((o) => o === v || (!reaches(g, o, v) && reaches(g, v, o))));
        assert.equal(victims.length, 1, "one-way: exactly one node is unreachable but still sends");
      }
    }
  }
});

await check("clock preload skews a real process", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "jepsen-clock-"));
  try {
    const file = path.join(dir, "clock.json");
    fs.writeFileSync(file, JSON.stringify({ offsetMs: 60_000, rate: 2, strobeMs: 0, strobeDeltaMs: 0 }));
    const out = execFileSync(process.execPath, ["--import", path.join(HERE, "clock-skew.mjs"), "-e",
      "const a=performance.now(),d=Date.now()-Number(process.argv[1]);setTimeout(()=>console.log(JSON.stringify({perf:performance.now()-a,skew:d})),400)", String(Date.now())],
      { env: { ...process.env, CONCORD_JEPSEN_CLOCK_FILE: file }, encoding: "utf8" });
    const r = JSON.parse(out) as { perf: number; skew: number };
    assert.ok(r.skew > 55_000 && r.skew < 65_000, `wall clock skew ${r.skew} ms, expected ≈ 60 000`);
    assert.ok(r.perf > 700 && r.perf < 1300, `monotonic clock advanced ${r.perf} ms in 400 ms at rate 2`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

await check("recorded histories parse as the vectors' JSONL format", () => {
  const h = new History();
  const w = h.invoke(0, "write", 3, "k");
  w.ok();
  const c = h.invoke(1, "cas", [3, 4], "k");
  c.fail([3, 4], "did not swap");
  const r = h.invoke(0, "read", null, "k");
  r.ok(3);
  const a = h.invoke(2, "acquire", null);
  a.ok(null, 17);
  const i = h.invoke(3, "write", 5, "k");
  i.info("TIMEOUT");
  const paired = readHistory(h.toJsonl());
  assert.equal(paired.operations.length, 4);
  assert.equal(paired.failed, 1);
  assert.equal(paired.operations.find((o) => o.f === "acquire")?.token, 17);
  assert.ok(!h.toJsonl().includes("TIMEOUT"), "diagnostics stay out of history.jsonl");
  h.invoke(5, "read", null, "k");
  assert.throws(() => h.invoke(5, "read", null, "k"), /already has an open operation/);
});

await check("every mutant's patch applies exactly once to the current sources", () => {
  for (const name of Object.keys(MUTANTS)) {
    const root = prepareMutant(REPO, name);
    assert.ok(fs.readFileSync(path.join(root, MUTANTS[name]!.file), "utf8").includes("MUTANT"));
    fs.rmSync(root, { recursive: true, force: true });
  }
});

console.log("self-test passed");
