// concord alarm list / disarm (as etcdctl alarm list / disarm)

import type { Command } from "commander";
import { EXIT, clientCommand, printJson, run, type ClientFlags } from "./common.js";

export function registerAlarmCommands(program: Command): void {
  const alarm = program
    .command("alarm")
    .description("list and disarm cluster-wide alarms (NO_SPACE: the state reached the storage quota)")
    .addHelpText(
      "after",
      `
Once the replicated state reaches the storage quota (concord server --quota-bytes, 2GiB by default) the NO_SPACE
alarm is raised: writes that add data fail with NO_SPACE; reads, deletes, compaction and lease revocation still
work. Free space, then disarm it. Deleted values stay in the watch history until it is compacted, so compact too.

Examples:
  concord alarm list
  concord del --prefix cache/ && concord compact && concord alarm disarm`,
    );

  clientCommand(
    alarm
      .command("list")
      .description("print the raised alarms, then the state's size and the quota (exit 0 either way)"),
    { json: true },
  ).action((o: ClientFlags) =>
    run("alarm list", o, async (c) => {
      const r = await c.alarms();
      if (o.json) printJson(r);
      else {
        for (const a of r.alarms) console.log(`${a.alarm} (raised at index ${a.raisedAt})`);
        console.log(`state ${describeSize(r.stateBytes, r.quotaBytes)}${r.alarms.length === 0 ? "; no alarm" : ""}`);
      }
    }),
  );

  clientCommand(
    alarm
      .command("disarm")
      .description("clear the NO_SPACE alarm; refused (exit 1) while the state still holds the quota or more"),
    { json: true },
  ).action((o: ClientFlags) =>
    run("alarm disarm", o, async (c) => {
      const r = await c.disarmAlarms();
      if (o.json) printJson(r);
      else if (r.disarmed.length === 0) console.log("no alarm was raised");
      else for (const a of r.disarmed) console.log(`disarmed ${a.alarm} (raised at index ${a.raisedAt})`);
      return EXIT.OK;
    }),
  );
}

/** "3.2 MiB of the 4 MiB quota (80%)". */
function describeSize(bytes: number, quota: number): string {
  return `${humanBytes(bytes)} of the ${humanBytes(quota)} quota (${Math.floor((bytes / quota) * 100)}%)`;
}

function humanBytes(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${Number(v.toFixed(1))} ${units[i]}`;
}
