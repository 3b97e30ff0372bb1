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
  kvOpsChecked: number;
  linearizableKeys: number;
  unknownKeys: number;
  lockGrants: number;
  lockReleases: number;
  electionChanges: number;
  fencedAccepted: number;
  fencedRefused: number;
  resourceAccepted: number;
  resourceRefused: number;
  leaseExpiries: number;
  outputsCompared: number;
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
    kvOpsChecked: 0,
    linearizableKeys: 0,
    unknownKeys: 0,
    lockGrants: 0,
    lockReleases: 0,
    electionChanges: 0,
    fencedAccepted: 0,
    fencedRefused: 0,
    resourceAccepted: 0,
    resourceRefused: 0,
    leaseExpiries: 0,
    outputsCompared: 0,
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
    s.kvOpsChecked += r.kvOpsChecked;
    s.linearizableKeys += r.linearizableKeys;
    s.unknownKeys += r.unknownKeys;
    s.lockGrants += r.lockGrants;
    s.lockReleases += r.lockReleases;
    s.electionChanges += r.electionChanges;
    s.fencedAccepted += r.fencedAccepted;
    s.fencedRefused += r.fencedRefused;
    s.resourceAccepted += r.resourceAccepted;
    s.resourceRefused += r.resourceRefused;
    s.leaseExpiries += r.leaseExpiries;
    s.outputsCompared += r.outputsCompared;
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
    `raft elections: ${s.elections}   entries committed: ${s.committed}   outputs compared across nodes: ${s.outputsCompared}`,
    `kv: ${s.kvOpsChecked} ops checked (writes/cas acked ${s.writesAcked}, reads ${s.readsCompleted}), ` +
      `linearizable keys: ${s.linearizableKeys}${s.unknownKeys > 0 ? ` (${s.unknownKeys} unknown: search budget)` : ""}`,
    `locks: ${s.lockGrants} grants, ${s.lockReleases} releases, lease expiries proposed ${s.leaseExpiries}; ` +
      `fenced puts accepted ${s.fencedAccepted}, refused ${s.fencedRefused}; resource writes accepted ` +
      `${s.resourceAccepted}, refused ${s.resourceRefused}`,
    `elections (client): ${s.electionChanges} leadership changes`,
    `invariant checks: ${s.invariantChecks}   violations: ${s.violations}`,
  ];
  if (wallMs > 0)
    lines.push(`wall time: ${(wallMs / 1000).toFixed(2)} s (${(wallMs / Math.max(1, s.seeds)).toFixed(1)} ms/seed)`);
  return lines.join("\n");
}
