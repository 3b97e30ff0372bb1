// Crash-during-write with real processes: a child appends and fsyncs (several saves in flight), reporting
// every save it issues and every save that became durable; the parent SIGKILLs it at a random moment, then
// recovers the directory itself. Everything reported durable must be there, and the log must equal the
// child's log after some prefix of its issued saves — nothing reordered, nothing corrupt.

import { nodeFileSystem } from "../../src/storage/node-file-system.js";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { DurableStorage } from "../../src/storage/durable-storage.js";
import { entryData } from "./fixtures/entry-data.js";
import { captureLogger, prng, removeDir, tempDir } from "./helpers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, "fixtures", "wal-child.ts");
const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

interface Issued {
  seq: number;
  first: number;
  count: number;
  term: number;
}

function runAndKill(
  dir: string,
  seed: number,
  killAfterMs: number,
): Promise<{ lines: string[]; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", child, dir, String(seed)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let timer: NodeJS.Timeout | undefined;
    const deadline = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    proc.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (timer === undefined && out.includes("ready ")) timer = setTimeout(() => proc.kill("SIGKILL"), killAfterMs);
    });
    proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
    proc.on("error", reject);
    proc.on("exit", (_code, signal) => {
      clearTimeout(deadline);
      clearTimeout(timer);
      if (!out.includes("ready ")) reject(new Error(`child never became ready: ${err}`));
      // A last line without its newline was cut by the kill: ignore it.
      const lines = out.split("\n");
      lines.pop();
      resolve({ lines, signal });
    });
  });
}

describe("SIGKILL during writes (real child processes)", () => {
  it("keeps everything the child reported fsynced, across 10 kills at random moments", async () => {
    const dir = tempDir("sigkill");
    dirs.push(dir);
    const boot = await DurableStorage.open(nodeFileSystem, dir, { logger: captureLogger() });
    await boot.bootstrap(["n1"]);
    await boot.close();

    const rnd = prng(31337);
    let totalDurable = 0;
    let beyondDurable = 0;
    let tornTails = 0;
    for (let round = 0; round < 10; round++) {
      // The state the child starts from: what the parent recovers now.
      const before = await DurableStorage.open(nodeFileSystem, dir, { logger: captureLogger() });
      const baseTerms = new Map<number, number>();
      for (let i = before.log.firstIndex(); i <= before.log.lastIndex(); i++) baseTerms.set(i, before.log.term(i));
      const baseLast = before.log.lastIndex();
      await before.close();

      const { lines, signal } = await runAndKill(dir, 1000 + round, rnd.int(20, 400));
      expect(signal).toBe("SIGKILL");
      const issued: Issued[] = [];
      let durable = 0;
      for (const line of lines) {
        const [kind, ...rest] = line.split(" ");
        if (kind === "issue") {
          const [seq, first, count, term] = rest.map(Number);
          issued.push({ seq, first, count, term });
        } else if (kind === "durable") {
          const seq = Number(rest[0]);
          expect(seq).toBe(durable + 1); // saves resolve in the order they were issued
          durable = seq;
        }
      }
      totalDurable += durable;

      const logger = captureLogger();
      const after = await DurableStorage.open(nodeFileSystem, dir, { logger });
      const log = after.log;
      // Every recovered entry holds exactly the bytes written for its (index, term).
      for (let i = log.firstIndex(); i <= log.lastIndex(); i++) {
        const [e] = log.entries(i, i + 1);
        expect(e.index).toBe(i);
        expect(Buffer.from(e.data).equals(Buffer.from(entryData(i, e.term)))).toBe(true);
      }
      // The child's log after k issued saves (k = 0…issued), against the recovered one: its last index, and the
      // first index where the terms differ.
      const model = new Map(baseTerms);
      let modelLast = baseLast;
      const against = (k: number) => {
        let differs = -1;
        for (let i = log.firstIndex(); i <= Math.min(modelLast, log.lastIndex()) && differs < 0; i++) if (model.get(i) !== log.term(i)) differs = i;
        const at = differs < 0 ? "" : `, first differing index ${differs}: model term ${model.get(differs)}, recovered ${log.term(differs)}`;
        return { k, same: differs < 0 && modelLast === log.lastIndex(), says: `after save ${k}: model last ${modelLast}${at}` };
      };
      const prefixes = [against(0)];
      for (const op of issued) {
        for (let i = op.first; i <= modelLast; i++) model.delete(i);
        for (let j = 0; j < op.count; j++) model.set(op.first + j, op.term);
        modelLast = op.first + op.count - 1;
        prefixes.push(against(prefixes.length));
      }
      // The recovered log is the child's log after k issued saves, for some k >= the durable count.
      const matchedAt = prefixes.find((p) => p.k >= durable && p.same)?.k ?? -1;
      if (matchedAt < durable) {
        // Keep the directory, and say how the recovered log differs from the model after each candidate prefix.
        dirs.splice(dirs.indexOf(dir), 1);
        const tail: string[] = [];
        for (let i = Math.max(log.firstIndex(), log.lastIndex() - 12); i <= log.lastIndex(); i++) tail.push(`${i}:${log.term(i)}`);
        expect.fail(
          `round ${round}: recovered [${log.firstIndex()}, ${log.lastIndex()}] (snapshot ${log.snapshot().metadata.index}, ` +
            `tail ${tail.join(" ")}), durable ${durable} of ${issued.length} issued, matching no prefix from ${durable}; ` +
            `directory kept: ${dir}; warnings: ${JSON.stringify(logger.warnings)}\n` +
            `${prefixes.filter((p) => p.k >= durable - 3).map((p) => p.says).join("\n")}\n` +
            `child's last lines:\n${lines.slice(-30).join("\n")}`,
        );
      }
      if (matchedAt > durable) beyondDurable++;
      if (logger.warnings.some((w) => /torn/.test(w.msg))) tornTails++;
      await after.close();
    }
    console.log(
      `sigkill: ${totalDurable} saves reported durable over 10 kills; ${beyondDurable} rounds recovered unreported saves too; ${tornTails} torn tails truncated`,
    );
    expect(totalDurable).toBeGreaterThan(50); // the kills really landed while writes were flowing
  }, 60_000);
});
