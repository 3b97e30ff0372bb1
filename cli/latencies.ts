// Latency samples of a load run and their percentiles, one definition for `concord bench` and the peer systems'
// load clients under bench/, so every system's p50/p99 is computed the same way.

/** Latencies in a growable Float64Array: no per-sample allocation on the hot path. */
export class Latencies {
  private data = new Float64Array(1 << 16);
  n = 0;
  add(ms: number): void {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = ms;
  }
  sorted(): Float64Array {
    return this.data.subarray(0, this.n).sort();
  }
}

/** The p-th percentile of ascending samples (nearest rank, as etcd's bench.mjs), in ms to 2 decimals; NaN if none. */
export function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0
    ? NaN
    : +sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))].toFixed(2);
}

/** The fields every system's load run reports (concord bench's JSON line, and its peers'), from its samples. */
export function runSummary(lat: Latencies, elapsedS: number, errors: number) {
  const s = lat.sorted();
  return {
    seconds: +elapsedS.toFixed(2),
    ops: s.length,
    errors,
    ops_per_s: Math.round(s.length / elapsedS),
    p50_ms: percentile(s, 50),
    p99_ms: percentile(s, 99),
    max_ms: percentile(s, 100),
  };
}
