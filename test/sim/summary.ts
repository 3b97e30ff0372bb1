// Aggregates seed results into the CLI's summary. Deterministic: keys are sorted, no wall time unless given.

import type { SeedResult } from "./simulation.js";

export interface Summary {
  seeds: number;
  steps: number;
  virtualTicks: number;
  faults: Record<string, number>;
  elections: number;
  committed: number;
  writesAcked: number;
  readsCompleted: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  tornWrites: number;
  invariantChecks: number;
  membershipSeeds: number;
  violations: number;
}

export function summarize(results: readonly SeedResult[]): Summary {
  const faults: Record<string, number> = {};
  const s: Summary = {
    seeds: results.length,
    steps: 0,
    virtualTicks: 0,
    faults,
    elections: 0,
    committed: 0,
    writesAcked: 0,
    readsCompleted: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    tornWrites: 0,
    invariantChecks: 0,
    membershipSeeds: 0,
    violations: 0,
  };
  for (const r of results) {
    s.steps += r.steps;
    s.virtualTicks += r.virtualTicks;
    s.elections += r.elections;
    s.committed += r.committed;
    s.writesAcked += r.writesAcked;
    s.readsCompleted += r.readsCompleted;
    s.snapshotsTaken += r.snapshotsTaken;
    s.snapshotsInstalled += r.snapshotsInstalled;
    s.tornWrites += r.tornWrites;
    s.invariantChecks += r.invariantChecks;
    if (r.membership) s.membershipSeeds++;
    if (r.violation) s.violations++;
    for (const [k, v] of Object.entries(r.faults)) faults[k] = (faults[k] ?? 0) + v;
  }
  s.faults = Object.fromEntries(Object.entries(faults).sort(([a], [b]) => a.localeCompare(b)));
  return s;
}

export function formatSummary(s: Summary, wallMs: number): string {
  const faultList =
    Object.entries(s.faults)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ") || "none";
  const lines = [
    `seeds run: ${s.seeds} (${s.membershipSeeds} with membership changes)   steps: ${s.steps}   virtual ticks: ${s.virtualTicks}`,
    `faults injected: ${faultList}`,
    `torn writes: ${s.tornWrites}   snapshots taken: ${s.snapshotsTaken}, installed: ${s.snapshotsInstalled}`,
    `elections: ${s.elections}   entries committed: ${s.committed}   client writes acked: ${s.writesAcked}, reads: ${s.readsCompleted}`,
    `invariant checks: ${s.invariantChecks}   violations: ${s.violations}`,
  ];
  if (wallMs > 0)
    lines.push(`wall time: ${(wallMs / 1000).toFixed(2)} s (${(wallMs / Math.max(1, s.seeds)).toFixed(1)} ms/seed)`);
  return lines.join("\n");
}
