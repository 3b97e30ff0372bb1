// What a supervisor (cli/commands/supervise.ts) tells its watchdog process (./main.ts): one message a line on the
// watchdog's stdin. Times are milliseconds on the system's monotonic clock (process.hrtime), which every process
// on the machine shares, so a deadline names the same instant on both sides however late the line is read.

export type WatchdogMessage =
  /** The hold is vouched for until `at`: SIGKILL the group then, unless a later `hold` arrives first. */
  | { kind: "hold"; at: number }
  /** The hold is over: SIGKILL the group at `at` at the latest; no `hold` extends it any more. */
  | { kind: "final"; at: number }
  /** The process group to guard (the supervised command's pid: it leads its own group). */
  | { kind: "group"; pgid: number }
  /** The command and its group are gone: exit without signalling anything. */
  | { kind: "done" };

/** Now, on the clock the deadlines use. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function encodeMessage(m: WatchdogMessage): string {
  switch (m.kind) {
    case "hold":
    case "final":
      return `${m.kind} ${m.at}\n`;
    case "group":
      return `group ${m.pgid}\n`;
    case "done":
      return "done\n";
  }
}

/** Parses one line; throws on anything else (both ends are this program, so that is a bug, not input). */
export function decodeMessage(line: string): WatchdogMessage {
  const [kind, arg, ...rest] = line.trim().split(" ");
  const n = Number(arg);
  if (kind === "done" && arg === undefined) return { kind };
  if (rest.length === 0 && arg !== undefined && arg !== "" && Number.isFinite(n)) {
    if (kind === "hold" || kind === "final") return { kind, at: n };
    if (kind === "group" && Number.isSafeInteger(n) && n > 1) return { kind, pgid: n };
  }
  throw new Error(`unreadable message ${JSON.stringify(line)}; expected "hold|final <ms>", "group <pgid>" or "done"`);
}
