// What a nemesis and a workload may ask of a cluster, whatever runs it (local processes or containers).

import type { MemberStatus } from "../../src/harness/index.js";
import type { LinkMode } from "./fault-proxy.js";

export interface ClockSettings {
  /** Wall clock offset (ms); forward offsets also jump the monotonic clock. */
  offsetMs: number;
  /** Monotonic clock speed (1 = real time). */
  rate: number;
  /** Strobe period (ms, 0 = off): the wall clock alternates between +0 and +strobeDeltaMs. */
  strobeMs: number;
  strobeDeltaMs: number;
}

export const NORMAL_CLOCK: ClockSettings = { offsetMs: 0, rate: 1, strobeMs: 0, strobeDeltaMs: 0 };

export interface MemberView {
  readonly name: string;
  readonly clientUrl: string;
  /** /status, /health base URL. */
  readonly httpBase: string;
  readonly dataDir: string;
  readonly logFile: string;
}

export type DiskFault = "truncate-wal-tail" | "flip-wal-bits";

export interface DiskFaultOutcome {
  readonly fault: DiskFault;
  readonly file: string;
  readonly detail: string;
  /** flip: the member refused to start and its log named the corruption; truncate: it started again. */
  readonly detected: boolean;
  readonly restarted: boolean;
  readonly logExcerpt: string;
}

export interface ClusterDriver {
  readonly kind: "process" | "container";
  /** Current members (voters and learners the driver started), in slot order. */
  members(): MemberView[];
  /** Member names whose process/container runs (paused ones included). */
  running(): string[];
  /** Client URLs of every member (the client library cycles through them). */
  endpoints(): string[];
  /** The leader every running member agrees on, or null. */
  leader(timeoutMs?: number): Promise<string | null>;
  /** The member's GET /status. */
  status(name: string): Promise<MemberStatus>;

  /** Directed link from → to (both peer-port streams of that direction). Names not in the cluster throw. */
  setLink(from: string, to: string, mode: LinkMode, delayMs?: number): void;
  /** Every link back to pass. */
  healLinks(): void;
  /** Directed links the driver can cut (from, to). */
  links(): Array<[string, string]>;
  /** Members stopped by pause() and not resumed. */
  pausedMembers(): string[];

  kill(name: string): Promise<void>;
  /** SIGSTOP / docker pause. */
  pause(name: string): void;
  resume(name: string): void;
  restart(name: string): Promise<void>;
  setClock(name: string, clock: ClockSettings): void;

  /** Damages the member's newest WAL segment while the member is down, restarts it, and reports detection. */
  corruptDisk(name: string, fault: DiskFault, seed: number): Promise<DiskFaultOutcome>;

  /** Adds a new member (learner, catch up, promote) through the client API; returns its name. */
  addMember(): Promise<string>;
  /** Removes a member from the configuration and stops it. */
  removeMember(name: string): Promise<void>;

  teardown(): Promise<void>;
}
