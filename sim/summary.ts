// Aggregates seed results into the CLI's summary. Deterministic: keys are sorted, no wall time unless given.

import { SEED_COUNTERS, type SeedCounters, type SeedResult } from "./simulation.js";

export interface Summary extends SeedCounters {
  seeds: number;
  faults: Record<string, number>;
  membershipSeeds: number;
  violations: number;
}

export function summarize(results: readonly SeedResult[]): Summary {
  const faults: Record<string, number> = {};
  const counters = Object.fromEntries(SEED_COUNTERS.map((k) => [k, 0])) as SeedCounters;
  const s: Summary = { seeds: results.length, ...counters, faults, membershipSeeds: 0, violations: 0 };
  for (const r of results) {
    for (const k of SEED_COUNTERS) s[k] += r[k];
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
    `seeds run: ${s.seeds} (${s.membershipSeeds} with membership changes)   events: ${s.events}   peer deliveries: ${s.steps}   virtual ticks: ${s.virtualTicks}`,
    `faults injected: ${faultList}`,
    `restarts: ${s.restarts}   stops after a failed fsync: ${s.fatalStops} (fsyncs failed: ${s.failedSyncs})   torn writes: ${s.tornWrites}   WAL reads of released entries: ${s.walReadsBack}   snapshots taken: ${s.snapshotsTaken} (over several turns: ${s.snapshotsAcrossTurns}, with entries applied meanwhile: ${s.snapshotsAppliedMeanwhile}), abandoned: ${s.snapshotsAbandoned}, installed: ${s.snapshotsInstalled} (over several turns: ${s.installsAcrossTurns})`,
    `raft elections: ${s.elections}   entries committed: ${s.committed}   outputs compared across nodes: ${s.outputsCompared}`,
    `kv: ${s.kvOpsChecked} ops checked (writes/cas acked ${s.writesAcked}, reads ${s.readsCompleted}), ` +
      `linearizable keys: ${s.linearizableKeys}${s.unknownKeys > 0 ? ` (${s.unknownKeys} unknown: search budget)` : ""}`,
    `locks: ${s.lockGrants} grants, ${s.lockReleases} releases; leases: ${s.keepAlives} keep-alives, ${s.leaseExpiriesChecked} expiries checked against their holders; ` +
      `fenced puts accepted ${s.fencedAccepted}, refused ${s.fencedRefused}; resource writes accepted ` +
      `${s.resourceAccepted}, refused ${s.resourceRefused}`,
    `elections (client): ${s.electionChanges} leadership changes   watches: ${s.watchEvents} events received, ${s.watchResumes} resumes`,
    `auth: ${s.authRevocations} revocations acknowledged, ${s.authWritesRefused} writes refused`,
    `invariant checks: ${s.invariantChecks}   violations: ${s.violations}`,
  ];
  if (wallMs > 0)
    lines.push(`wall time: ${(wallMs / 1000).toFixed(2)} s (${(wallMs / Math.max(1, s.seeds)).toFixed(1)} ms/seed)`);
  return lines.join("\n");
}
