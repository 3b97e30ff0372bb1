// The bounded CI mix (every workload, every nemesis at least once, the container driver when Docker is
// reachable), the blindness mix (each mutant against the workload that should catch it), and the note that
// lists every combination run with its operation count and verdicts.

import fs from "node:fs";
import path from "node:path";
import type { RunSummary } from "./runner.js";
import { MUTANTS } from "./mutants.js";

export interface MixItem {
  workload: string;
  nemeses: string[];
  timeS: number;
  driver: "process" | "container";
  mutant?: string;
  nodes?: number;
}

export const CI_MIX: readonly MixItem[] = [
  { workload: "register", nemeses: ["partition"], timeS: 25, driver: "process" },
  { workload: "register", nemeses: ["kill", "pause"], timeS: 25, driver: "process" },
  { workload: "set", nemeses: ["kill", "disk"], timeS: 25, driver: "process" },
  { workload: "lock", nemeses: ["clock", "pause"], timeS: 25, driver: "process" },
  { workload: "lock", nemeses: ["partition", "kill"], timeS: 25, driver: "process" },
  { workload: "election", nemeses: ["kill", "transfer"], timeS: 25, driver: "process" },
  { workload: "watch", nemeses: ["partition", "kill"], timeS: 25, driver: "process" },
  { workload: "register", nemeses: ["member", "transfer"], timeS: 25, driver: "process" },
  { workload: "set", nemeses: ["clock", "links"], timeS: 20, driver: "process" },
  { workload: "register", nemeses: ["partition", "kill", "pause"], timeS: 25, driver: "container" },
];

export const MUTANT_MIX: readonly MixItem[] = [
  { workload: "register", nemeses: ["partition"], timeS: 20, driver: "process", mutant: "local-reads" },
  { workload: "lock", nemeses: ["none"], timeS: 12, driver: "process", mutant: "lock-no-exclusion" },
  { workload: "lock", nemeses: ["clock", "pause"], timeS: 25, driver: "process", mutant: "fence-ignored" },
  { workload: "watch", nemeses: ["kill"], timeS: 15, driver: "process", mutant: "watch-resume-off-by-one" },
  { workload: "election", nemeses: ["none"], timeS: 12, driver: "process", mutant: "election-two-leaders" },
];

const verdictWord = (v: boolean | "unknown") => (v === true ? "valid" : v === false ? "VIOLATION" : "unknown");

export function writeMixNote(resultsRoot: string, runs: readonly RunSummary[], kind: string): string {
  const file = path.join(resultsRoot, `${kind}-note.md`);
  const lines = [
    `# Jepsen-style ${kind} mix — ${new Date().toISOString()}`,
    "",
    "| workload | nemeses | driver | mutant | ops (ok/fail/info) | faults fired | verdict | checkers | s | results |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of runs) {
    const ops = `${r.operations.total} (${r.operations.ok}/${r.operations.fail}/${r.operations.info})`;
    const checkers = r.skipped ? `skipped: ${r.skipped}` : r.verdicts.map((v) => `${verdictWord(v.valid)}: ${v.summary}`).join("<br>").replace(/\|/g, "/");
    const mutant = r.label ? `${r.label} (${MUTANTS[r.label]?.description ?? ""})` : "";
    const faults = `${r.faults} (${Object.entries(r.faultKinds ?? {}).map(([k, n]) => `${k}×${n}`).join(" ") || "none"})`;
    lines.push(`| ${r.workload} | ${r.nemeses.join("+")} | ${r.driver} | ${mutant} | ${ops} | ${faults} | ${r.skipped ? "skipped" : verdictWord(r.valid)} | ${checkers} | ${r.durationS} | ${path.basename(r.dir)} |`);
  }
  fs.writeFileSync(file, lines.join("\n") + "\n");
  return file;
}
