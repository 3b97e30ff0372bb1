// Watch order: every watcher sees every committed change in its range, in revision order, once.
//
// Inputs: the committed changes (revision + key; one transaction may change several keys at one revision) and,
// per watcher, where it started (`fromRevision`), the key range it watched (`prefix`, "" = everything), the
// events it received in arrival order, and optionally `throughRevision`, the revision up to which it is known to
// have caught up (default: the last revision it received, so a watcher still lagging at the end is not blamed).
//
// Violations per watcher:
// - out-of-order: an event's revision is below the previous event's;
// - duplicate:    the same (revision, key) delivered twice;
// - phantom:      an event for a change that was never committed (or outside the range / before the start);
// - gap:          a committed change in range with fromRevision ≤ revision ≤ throughRevision never delivered.
// Within one revision the order of keys is not constrained.

import { CheckerInputError } from "./errors.js";

export interface WatchEvent {
  readonly revision: number;
  readonly key: string;
}

export interface WatcherRecord {
  readonly id: string;
  readonly fromRevision: number;
  readonly prefix?: string;
  readonly received: readonly WatchEvent[];
  readonly throughRevision?: number;
}

export interface WatchViolation {
  readonly watcher: string;
  readonly kind: "out-of-order" | "duplicate" | "phantom" | "gap";
  readonly event: WatchEvent;
  readonly message: string;
}

export interface WatchOrderResult {
  readonly valid: boolean;
  readonly violations: WatchViolation[];
}

const eventId = (e: WatchEvent): string => `${e.revision}\u0000${e.key}`;

function validEvent(e: unknown): e is WatchEvent {
  if (e === null || typeof e !== "object") return false;
  const { revision, key } = e as Record<string, unknown>;
  return Number.isSafeInteger(revision) && (revision as number) > 0 && typeof key === "string";
}

export function checkWatchOrder(input: {
  readonly committed: readonly WatchEvent[];
  readonly watchers: readonly WatcherRecord[];
}): WatchOrderResult {
  if (!Array.isArray(input.committed) || !Array.isArray(input.watchers))
    throw new CheckerInputError("watch-order", `"committed" and "watchers" must be arrays`);
  input.committed.forEach((e, i) => {
    if (!validEvent(e))
      throw new CheckerInputError("watch-order", `committed[${i}] must be {revision: positive integer, key: string}`);
  });
  const committed = new Set(input.committed.map(eventId));
  const violations: WatchViolation[] = [];

  for (const [w, watcher] of input.watchers.entries()) {
    if (
      typeof watcher.id !== "string" ||
      !Number.isSafeInteger(watcher.fromRevision) ||
      !Array.isArray(watcher.received)
    ) {
      throw new CheckerInputError(
        "watch-order",
        `watchers[${w}] must be {id: string, fromRevision: integer, received: [...]}`,
      );
    }
    const prefix = watcher.prefix ?? "";
    const inRange = (e: WatchEvent): boolean => e.key.startsWith(prefix) && e.revision >= watcher.fromRevision;
    const seen = new Set<string>();
    let previous = -Infinity;
    (watcher.received as readonly unknown[]).forEach((event: unknown, i: number) => {
      if (!validEvent(event))
        throw new CheckerInputError(
          "watch-order",
          `watchers[${w}].received[${i}] must be {revision: positive integer, key: string}`,
        );
      const add = (kind: WatchViolation["kind"], message: string): void => {
        violations.push({ watcher: watcher.id, kind, event, message: `watcher ${watcher.id}: ${message}` });
      };
      const id = eventId(event);
      if (seen.has(id)) add("duplicate", `revision ${event.revision} key ${event.key} delivered twice`);
      else if (!committed.has(id) || !inRange(event))
        add("phantom", `revision ${event.revision} key ${event.key} was not a committed change in its range`);
      if (event.revision < previous)
        add("out-of-order", `revision ${event.revision} arrived after revision ${previous}`);
      seen.add(id);
      previous = Math.max(previous, event.revision);
    });
    const through = watcher.throughRevision ?? previous;
    for (const change of input.committed) {
      if (inRange(change) && change.revision <= through && !seen.has(eventId(change))) {
        violations.push({
          watcher: watcher.id,
          kind: "gap",
          event: change,
          message: `watcher ${watcher.id}: never received revision ${change.revision} key ${change.key} (it saw through revision ${through})`,
        });
      }
    }
  }
  return { valid: violations.length === 0, violations };
}
