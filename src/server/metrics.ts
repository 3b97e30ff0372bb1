// A small dependency-free Prometheus registry (text exposition format 0.0.4) and Concord's metric set.
//
// Hot path: `metric.labels(a, b)` finds its child through nested Maps keyed by each label value, so a repeated
// label set costs one Map lookup per label and allocates nothing; callers that can should still keep the child
// (`const putOk = m.clientRequests.labels("put", "OK")`). Label strings for the exposition are rendered once,
// when the child is created, so a scrape costs one string concatenation per sample.

import type { Role } from "../raft/types.js";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export class MetricsError extends Error {
  readonly code = "METRICS_INVALID";
  constructor(message: string) {
    super(message);
    this.name = "MetricsError";
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Label values escape backslash, double quote and newline (exposition format 0.0.4). */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text escapes backslash and newline only. */
function escapeHelp(help: string): string {
  return help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Sample values as Prometheus parses them (Go ParseFloat plus +Inf/-Inf/NaN). */
export function formatValue(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (Number.isNaN(v)) return "NaN";
  return String(v);
}

/** `count` buckets start, start·factor, …, rounded to 6 significant digits so that `le` labels read cleanly. */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  if (!(start > 0) || !(factor > 1) || !Number.isSafeInteger(count) || count < 1) {
    throw new MetricsError(
      `exponentialBuckets: expected start > 0, factor > 1 and a positive integer count, got ${start}, ${factor}, ${count}`,
    );
  }
  const buckets: number[] = [];
  for (let i = 0; i < count; i++) buckets.push(Number((start * factor ** i).toPrecision(6)));
  return buckets;
}

export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type MetricType = "counter" | "gauge" | "histogram";

/** Holds the children of one metric family, one per distinct label value tuple. */
abstract class Metric<Child> {
  /** Nested Maps, one level per label; the last level maps to the child. Unused without labels. */
  private readonly tree = new Map<string, unknown>();
  /** Children in creation order with their rendered label pairs (`a="x",b="y"`), for exposition. */
  protected readonly rendered = new Map<Child, string>();
  /** The single child of a metric without labels, created on first use (subclass fields are set by then). */
  private unlabeled: Child | undefined;

  constructor(
    readonly type: MetricType,
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!METRIC_NAME.test(name)) throw new MetricsError(`metric name '${name}': expected [a-zA-Z_:][a-zA-Z0-9_:]*`);
    const seen = new Set<string>();
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith("__")) {
        throw new MetricsError(
          `metric ${name}: label name '${label}': expected [a-zA-Z_][a-zA-Z0-9_]* not starting with __`,
        );
      }
      if (seen.has(label)) throw new MetricsError(`metric ${name}: label name '${label}' appears twice`);
      seen.add(label);
    }
  }

  protected abstract newChild(): Child;
  protected abstract exposeChild(out: string[], child: Child, labels: string): void;

  /** The child for these label values (one per label name, in declaration order), created on first use. */
  labels(...values: string[]): Child {
    if (values.length !== this.labelNames.length) {
      throw new MetricsError(
        `metric ${this.name}: expected ${this.labelNames.length} label values (${this.labelNames.join(", ")}), got ${values.length}`,
      );
    }
    // Constant indices for the common arities let V8 keep the rest array out of the heap (measured: a loop
    // over `values` made each two-label call allocate); the general loop serves four labels and more.
    let found: unknown;
    switch (values.length) {
      case 0:
        return this.only;
      case 1:
        found = this.tree.get(values[0]!);
        break;
      case 2:
        found = (this.tree.get(values[0]!) as Map<string, unknown> | undefined)?.get(values[1]!);
        break;
      case 3:
        found = (
          (this.tree.get(values[0]!) as Map<string, unknown> | undefined)?.get(values[1]!) as
            Map<string, unknown> | undefined
        )?.get(values[2]!);
        break;
      default: {
        found = this.tree;
        for (let i = 0; i < values.length && found !== undefined; i++)
          found = (found as Map<string, unknown>).get(values[i]!);
        break;
      }
    }
    return found === undefined ? this.create([...values]) : (found as Child);
  }

  /** Removes the child for these label values (a peer left the cluster); true when it existed. */
  remove(...values: string[]): boolean {
    if (values.length !== this.labelNames.length || values.length === 0) return false;
    const path: Map<string, unknown>[] = [this.tree];
    for (let i = 0; i < values.length - 1; i++) {
      const next = path[i]!.get(values[i]!) as Map<string, unknown> | undefined;
      if (next === undefined) return false;
      path.push(next);
    }
    const leaf = path[path.length - 1]!;
    const child = leaf.get(values[values.length - 1]!) as Child | undefined;
    if (child === undefined) return false;
    leaf.delete(values[values.length - 1]!);
    // Prune emptied levels so that churning label values (peers, ops) do not leave empty Maps behind.
    for (let i = path.length - 1; i > 0 && path[i]!.size === 0; i--) path[i - 1]!.delete(values[i - 1]!);
    this.rendered.delete(child);
    return true;
  }

  protected get only(): Child {
    if (this.labelNames.length > 0) {
      throw new MetricsError(`metric ${this.name} has labels (${this.labelNames.join(", ")}); use .labels(…) first`);
    }
    return (this.unlabeled ??= this.create([]));
  }

  private create(values: readonly string[]): Child {
    for (let i = 0; i < values.length; i++) {
      if (typeof values[i] !== "string") {
        throw new MetricsError(
          `metric ${this.name}: label ${this.labelNames[i]} must be a string, got ${typeof values[i]}`,
        );
      }
    }
    const child = this.newChild();
    if (values.length > 0) {
      let node = this.tree;
      for (let i = 0; i < values.length - 1; i++) {
        let next = node.get(values[i]!) as Map<string, unknown> | undefined;
        if (next === undefined) {
          next = new Map();
          node.set(values[i]!, next);
        }
        node = next;
      }
      node.set(values[values.length - 1]!, child);
    }
    this.rendered.set(child, values.map((v, i) => `${this.labelNames[i]}="${escapeLabelValue(v)}"`).join(","));
    return child;
  }

  expose(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    // A metric without labels always has a sample, 0 until first used; a labeled one only has used series.
    if (this.labelNames.length === 0) void this.only;
    for (const [child, labels] of this.rendered) this.exposeChild(out, child, labels);
  }
}

export class CounterChild {
  value = 0;
  /** The source total last seen by follow(). */
  private followed = 0;
  inc(by = 1): void {
    // A counter only goes up; NaN fails this comparison too.
    if (!(by >= 0) || by === Infinity)
      throw new MetricsError(`counter increment: expected a finite number >= 0, got ${by}`);
    this.value += by;
  }
  /**
   * Counts what a cumulative total kept elsewhere (a peer link's or the WAL's counter, read at scrape time) gained
   * since the last call. A total below the last one means its source started again from 0 (a peer link was
   * replaced): all of it is new.
   */
  follow(total: number): void {
    if (!(total >= 0) || total === Infinity)
      throw new MetricsError(`counter follow: expected a finite total >= 0, got ${total}`);
    this.inc(total >= this.followed ? total - this.followed : total);
    this.followed = total;
  }
}

export class Counter extends Metric<CounterChild> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    if (!name.endsWith("_total")) throw new MetricsError(`counter name '${name}': expected a name ending in _total`);
    super("counter", name, help, labelNames);
  }
  protected newChild(): CounterChild {
    return new CounterChild();
  }
  protected exposeChild(out: string[], child: CounterChild, labels: string): void {
    out.push(`${this.name}${labels === "" ? "" : `{${labels}}`} ${formatValue(child.value)}`);
  }
  inc(by = 1): void {
    this.only.inc(by);
  }
  follow(total: number): void {
    this.only.follow(total);
  }
  get value(): number {
    return this.only.value;
  }
}

export class GaugeChild {
  value = 0;
  set(v: number): void {
    if (Number.isNaN(v)) throw new MetricsError("gauge set: got NaN");
    this.value = v;
  }
  inc(by = 1): void {
    this.set(this.value + by);
  }
  dec(by = 1): void {
    this.set(this.value - by);
  }
}

export class Gauge extends Metric<GaugeChild> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super("gauge", name, help, labelNames);
  }
  protected newChild(): GaugeChild {
    return new GaugeChild();
  }
  protected exposeChild(out: string[], child: GaugeChild, labels: string): void {
    out.push(`${this.name}${labels === "" ? "" : `{${labels}}`} ${formatValue(child.value)}`);
  }
  set(v: number): void {
    this.only.set(v);
  }
  inc(by = 1): void {
    this.only.inc(by);
  }
  dec(by = 1): void {
    this.only.dec(by);
  }
  get value(): number {
    return this.only.value;
  }
}

export class HistogramChild {
  /** counts[i] observations fell in (bounds[i-1], bounds[i]]; the last slot is (bounds[n-1], +Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    if (Number.isNaN(v)) throw new MetricsError("histogram observe: got NaN");
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && v > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

export class Histogram extends Metric<HistogramChild> {
  readonly buckets: readonly number[];
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {
    if (labelNames.includes("le")) throw new MetricsError(`histogram ${name}: 'le' is reserved for bucket bounds`);
    if (buckets.length === 0) throw new MetricsError(`histogram ${name}: expected at least one bucket bound`);
    for (let i = 0; i < buckets.length; i++) {
      if (!Number.isFinite(buckets[i]!) || (i > 0 && buckets[i]! <= buckets[i - 1]!)) {
        throw new MetricsError(
          `histogram ${name}: bucket bounds must be finite and strictly increasing, got [${buckets.join(", ")}] (+Inf is implicit)`,
        );
      }
    }
    super("histogram", name, help, labelNames);
    this.buckets = Object.freeze([...buckets]);
  }
  protected newChild(): HistogramChild {
    return new HistogramChild(this.buckets);
  }
  protected exposeChild(out: string[], child: HistogramChild, labels: string): void {
    const prefix = labels === "" ? "" : labels + ",";
    let cumulative = 0;
    for (let i = 0; i < child.bounds.length; i++) {
      cumulative += child.counts[i]!;
      out.push(`${this.name}_bucket{${prefix}le="${formatValue(child.bounds[i]!)}"} ${cumulative}`);
    }
    cumulative += child.counts[child.bounds.length]!;
    out.push(`${this.name}_bucket{${prefix}le="+Inf"} ${cumulative}`);
    const braces = labels === "" ? "" : `{${labels}}`;
    out.push(`${this.name}_sum${braces} ${formatValue(child.sum)}`, `${this.name}_count${braces} ${child.count}`);
  }
  observe(v: number): void {
    this.only.observe(v);
  }
}

export class Registry {
  private readonly metrics = new Map<string, Counter | Gauge | Histogram>();
  private readonly collectors: (() => void)[] = [];

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = DEFAULT_BUCKETS,
  ): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  /** `fn` runs before every exposition, to refresh gauges that are cheaper to read than to track. */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  get(name: string): Counter | Gauge | Histogram | undefined {
    return this.metrics.get(name);
  }

  /** Every registered family, in registration order. */
  families(): readonly { name: string; type: MetricType; labelNames: readonly string[] }[] {
    return [...this.metrics.values()];
  }

  /** The text exposition, metrics in registration order, ending with a newline. */
  expose(): string {
    for (const collect of this.collectors) collect();
    const out: string[] = [];
    for (const metric of this.metrics.values()) metric.expose(out);
    return out.length === 0 ? "" : out.join("\n") + "\n";
  }

  private add<M extends Counter | Gauge | Histogram>(metric: M): M {
    const clash = [...this.metrics.values()].find((m) => exposedNames(m).some((n) => exposedNames(metric).includes(n)));
    if (clash !== undefined)
      throw new MetricsError(`metric ${metric.name}: clashes with the already registered ${clash.type} ${clash.name}`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
}

/** The sample names a metric family writes, to refuse families whose series would collide. */
function exposedNames(m: { type: MetricType; name: string }): string[] {
  return m.type === "histogram" ? [m.name, `${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name];
}

// ---------------------------------------------------------------------------------------------------------
// Concord's metrics.

const ROLES: readonly Role[] = ["follower", "pre-candidate", "candidate", "leader"];

/** 50µs … 3.3s: an NVMe fdatasync is tens of µs, a saturated disk seconds. */
export const FSYNC_BUCKETS = exponentialBuckets(0.00005, 2, 17);
/** 100µs … 1.6s: loopback round trips to cross-region ones. */
export const RTT_BUCKETS = exponentialBuckets(0.0001, 2, 15);
/** 100µs … 3.3s for client requests (a lock wait is not a request: it returns when queued). */
export const REQUEST_BUCKETS = exponentialBuckets(0.0001, 2, 16);

export interface ConcordMetrics {
  registry: Registry;
  raftTerm: Gauge;
  /** One series per role; exactly one is 1. Set with `setRole`. */
  raftRole: Gauge;
  raftHasLeader: Gauge;
  raftLeaderChanges: Counter;
  raftCommitIndex: Gauge;
  raftAppliedIndex: Gauge;
  proposals: Counter;
  /** {reason}: the ProposalError code in lower case */
  proposalsFailed: Counter;
  proposalsPending: Gauge;
  fsyncSeconds: Histogram;
  walBytes: Counter;
  snapshots: Counter;
  snapshotSeconds: Histogram;
  /** {peer} */
  peerRttSeconds: Histogram;
  peerConnected: Gauge;
  peerDroppedMessages: Counter;
  /** {op, code}: code is OK or the error code answered. */
  clientRequests: Counter;
  /** {op} */
  clientRequestSeconds: Histogram;
  clientConnections: Gauge;
  /** {reason}: limit, auth, protocol, tls */
  clientConnectionsRefused: Counter;
  leases: Gauge;
  locksHeld: Gauge;
  lockWaiters: Gauge;
  elections: Gauge;
  watchers: Gauge;
  kvKeys: Gauge;
  kvRevision: Gauge;
  /** Bytes of replicated state (as the state machine counts them against the quota), and the quota. */
  stateBytes: Gauge;
  quotaBytes: Gauge;
  /** {alarm}: 1 while the cluster-wide alarm is raised (NO_SPACE), else 0. */
  alarm: Gauge;
  setRole(role: Role): void;
}

export function createConcordMetrics(registry: Registry = new Registry()): ConcordMetrics {
  const raftRole = registry.gauge("concord_raft_role", "1 for the role this member is in, 0 for the others.", ["role"]);
  // Every role series exists from the start, so a dashboard sees 0 rather than no data.
  const roleChildren = new Map(ROLES.map((r) => [r, raftRole.labels(r)]));
  roleChildren.get("follower")!.set(1);
  const metrics: ConcordMetrics = {
    registry,
    raftTerm: registry.gauge("concord_raft_term", "Current Raft term."),
    raftRole,
    raftHasLeader: registry.gauge("concord_raft_has_leader", "1 when this member knows a leader, else 0."),
    raftLeaderChanges: registry.counter(
      "concord_raft_leader_changes_total",
      "Times the leader known to this member changed.",
    ),
    raftCommitIndex: registry.gauge("concord_raft_commit_index", "Highest log index known to be committed."),
    raftAppliedIndex: registry.gauge("concord_raft_applied_index", "Highest log index applied to the state machine."),
    proposals: registry.counter("concord_proposals_total", "Commands proposed to Raft by this member."),
    proposalsFailed: registry.counter(
      "concord_proposals_failed_total",
      "Proposals refused or failed while waiting, by reason: not_leader, unavailable (no leader, a leadership transfer under way, the member failed), proposal_lost (replaced by a new leader's entry), shutting_down.",
      ["reason"],
    ),
    proposalsPending: registry.gauge("concord_proposals_pending", "Proposals waiting to be committed and applied."),
    fsyncSeconds: registry.histogram(
      "concord_fsync_seconds",
      "Latency of WAL fdatasync calls (one per batch).",
      [],
      FSYNC_BUCKETS,
    ),
    walBytes: registry.counter("concord_wal_written_bytes_total", "Bytes appended to the WAL."),
    snapshots: registry.counter("concord_snapshots_total", "Snapshots this member took and saved durably."),
    snapshotSeconds: registry.histogram(
      "concord_snapshot_seconds",
      "Time to write a snapshot durably (the state encoded, its save to the fsync).",
      [],
      exponentialBuckets(0.001, 2, 16),
    ),
    peerRttSeconds: registry.histogram(
      "concord_peer_rtt_seconds",
      "Round-trip time to each peer (heartbeat to response).",
      ["peer"],
      RTT_BUCKETS,
    ),
    peerConnected: registry.gauge(
      "concord_peer_connected",
      "1 while the outbound connection to the peer (a member of the configuration) is open, else 0.",
      ["peer"],
    ),
    peerDroppedMessages: registry.counter(
      "concord_peer_dropped_messages_total",
      "Raft messages to the peer dropped because its connection was down or its send queue full (Raft re-sends).",
      ["peer"],
    ),
    clientRequests: registry.counter(
      "concord_client_requests_total",
      "Client requests answered, by operation and result code.",
      ["op", "code"],
    ),
    clientRequestSeconds: registry.histogram(
      "concord_client_request_seconds",
      "Client request latency, receipt to answer.",
      ["op"],
      REQUEST_BUCKETS,
    ),
    clientConnections: registry.gauge("concord_client_connections", "Open client connections."),
    clientConnectionsRefused: registry.counter(
      "concord_client_connections_refused_total",
      "Client connections refused, by reason: limit (--max-connections), auth (hello refused: token or forwarding proof), protocol (unsupported protocol version), tls (TLS handshake failed).",
      ["reason"],
    ),
    leases: registry.gauge("concord_leases", "Live leases."),
    locksHeld: registry.gauge("concord_locks_held", "Locks (or semaphore slots) currently held."),
    lockWaiters: registry.gauge("concord_lock_waiters", "Lock waiters queued."),
    elections: registry.gauge(
      "concord_election_candidates",
      "Candidates over every election (the coordination recipe), leaders included.",
    ),
    watchers: registry.gauge("concord_watchers", "Active watch streams on this member."),
    kvKeys: registry.gauge("concord_kv_keys", "Keys in the store."),
    kvRevision: registry.gauge("concord_kv_revision", "Current store revision."),
    stateBytes: registry.gauge(
      "concord_state_bytes",
      "Bytes the replicated state holds, as counted against the storage quota (--quota-bytes).",
    ),
    quotaBytes: registry.gauge("concord_quota_bytes", "The storage quota in force (replicated: the leader's --quota-bytes)."),
    alarm: registry.gauge(
      "concord_alarm",
      "1 while a cluster-wide alarm is raised (NO_SPACE: the state reached the quota; writes that add data fail).",
      ["alarm"],
    ),
    setRole(role: Role): void {
      for (const [r, child] of roleChildren) child.set(r === role ? 1 : 0);
    },
  };
  const startSeconds = Math.floor(Date.now() / 1000);
  const processStart = registry.gauge(
    "concord_process_start_time_seconds",
    "Start time of the process since the Unix epoch, in seconds.",
  );
  const residentMemory = registry.gauge("concord_process_resident_memory_bytes", "Resident memory size in bytes.");
  const heapUsed = registry.gauge("concord_process_heap_used_bytes", "V8 heap in use, in bytes.");
  const arrayBuffers = registry.gauge(
    "concord_process_array_buffers_bytes",
    "Memory held by ArrayBuffers and Buffers (outside the V8 heap), in bytes.",
  );
  processStart.set(startSeconds);
  registry.onCollect(() => {
    const usage = process.memoryUsage();
    residentMemory.set(usage.rss);
    heapUsed.set(usage.heapUsed);
    arrayBuffers.set(usage.arrayBuffers);
  });
  return metrics;
}
