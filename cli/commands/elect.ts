// concord elect NAME VALUE [-- CMD…], concord elect NAME --observe, concord elect status NAME, concord elect list

import { Option, type Command } from "commander";
import type { Client } from "../../src/client/client.js";
import { ConcordError } from "../../src/client/errors.js";
import type { ElectionStatus, LeaderChange } from "../../src/client/election.js";
import { displayValue, textArg, valueJson } from "./bytes.js";
import {
  EXIT,
  clientCommand,
  durationArg,
  intArg,
  printJson,
  printTable,
  run,
  ttlArg,
  withInspectionSubcommands,
  type ClientFlags,
} from "./common.js";
import { holdWhile } from "./supervise.js";

interface ElectFlags extends ClientFlags {
  observe?: boolean;
  /** Milliseconds, parsed by commander. */
  ttl: number;
  grace: number;
  count?: number;
}

export function registerElectCommand(program: Command): void {
  const elect = program.command("elect");
  clientCommand(
    elect
      .description("campaign to lead an election (and run a command as leader), or --observe its leaders"),
    { json: true },
  )
    .argument("<name>", "the election's name")
    .argument("[value]", "this candidate's value, published while it leads (e.g. its address)")
    .argument("[command...]", "the command to run while leading (after --)")
    .option("--observe", "print every leadership change (one JSON line each with --json) until interrupted")
    .option("--count <n>", "with --observe: exit after n changes", intArg(1))
    .addOption(new Option("--ttl <duration>", "lease TTL of the candidacy").argParser(ttlArg()).default(10_000, "10s"))
    .addOption(
      new Option("--grace <duration>", "after lost leadership: time between SIGTERM and SIGKILL of the command, cut short so that the SIGKILL comes before the lease could expire")
        .argParser(durationArg())
        .default(5000, "5s"),
    )
    .addHelpText(
      "after",
      `
Waits until this candidate leads (candidates queue in order), then prints the leadership token or runs the
command with CONCORD_ELECTION_NAME, CONCORD_ELECTION_TOKEN and CONCORD_ELECTION_VALUE in its environment
(process group, stdin and signals as for \`concord lock\`). Leadership ends — and the command is stopped — when
its lease is lost; as for \`concord lock\`, the command's group is SIGKILLed before the lease could expire on the
servers, also if this process is frozen or killed. Resigns on exit, so the next candidate takes over at once.

Examples:
  concord elect scheduler n1.example:8080 -- ./run-scheduler.sh
  concord elect scheduler "$(hostname)"          # prints the token, leads until Ctrl-C
  concord elect scheduler --observe --json`,
    )
    .action((name: string, value: string | undefined, command: string[], o: ElectFlags) =>
      run("elect", o, (c) =>
        o.observe
          ? observeCommand(c, textArg("NAME", name), o)
          : electCommand(
              c,
              textArg("NAME", name),
              value === undefined ? undefined : textArg("VALUE", value),
              command,
              o,
            ),
      ),
    );  registerElectionInspection(elect);
}

/** An election for JSON output: the leader's value as text or marked base64 (valueJson). */
function electionJson(e: ElectionStatus) {
  const leader = e.leader && { lease: e.leader.lease, token: e.leader.token, ...valueJson(e.leader.value) };
  return { name: e.name, leader, candidates: e.candidates };
}

/** `concord elect status NAME` and `concord elect list`: who leads, with what value and token, and who waits. */
function registerElectionInspection(elect: Command): void {
  withInspectionSubcommands(elect);
  clientCommand(
    elect.command("status").description("who leads election NAME (lease, value, token) and the candidates in order"),
    { json: true },
  )
    .argument("<name>", "the election's name")
    .addHelpText(
      "after",
      `
Candidates in the order they campaigned; the first leads, the next one leads when it resigns or its lease ends.
An election named "status" or "list" is joined with the library.

Examples:
  concord elect status scheduler
  concord elect status scheduler -w json`,
    )
    .action((name: string, o: ClientFlags) =>
      run("elect status", o, async (c) => {
        const e = await c.election(textArg("NAME", name)).status();
        if (o.json) return printJson(electionJson(e));
        if (!e.leader) return console.log(`election ${JSON.stringify(e.name)} has no leader and no candidates`);
        console.log(`election ${JSON.stringify(e.name)}: leader lease ${e.leader.lease}, token ${e.leader.token}, value ${displayValue(e.leader.value)}`);
        printTable(
          ["POSITION", "LEASE", "ROLE"],
          e.candidates.map((lease, i) => [i + 1, lease, i === 0 ? "leader" : "candidate"]),
        );
      }),
    );

  clientCommand(elect.command("list").description("every election with candidates (or idle, with history), in name order"), {
    json: true,
  })
    .option("--prefix <prefix>", "only elections whose name starts with this", "")
    .addHelpText(
      "after",
      `
With tokens configured this needs election read permission on the prefix (all elections without --prefix).

Examples:
  concord elect list
  concord elect list --prefix services/ -w json`,
    )
    .action((o: ClientFlags & { prefix: string }) =>
      run("elect list", o, async (c) => {
        const list = await c.electionList(textArg("--prefix", o.prefix));
        if (o.json) return printJson(list.map(electionJson));
        printTable(
          ["NAME", "LEADER", "TOKEN", "VALUE", "CANDIDATES"],
          list.map((e) => [
            e.name,
            e.leader?.lease ?? "-",
            e.leader?.token ?? "-",
            e.leader ? displayValue(e.leader.value) : "-",
            e.candidates.join(",") || "-",
          ]),
        );
      }),
    );
}

async function electCommand(
  c: Client,
  name: string,
  value: string | undefined,
  command: string[],
  o: ElectFlags,
): Promise<number> {
  if (value === undefined) {
    throw new ConcordError({
      code: "INVALID_ARGUMENT",
      message: "VALUE is missing; expected `concord elect NAME VALUE [-- CMD…]` or `concord elect NAME --observe`",
      field: "value",
    });
  }
  const { ttl: ttlMs } = o;
  return holdWhile({
    label: "elect",
    command,
    graceMs: o.grace,
    take: (signal) => c.election(name).campaign(value, { ttlMs, signal }),
    announce: (lead) => (o.json ? printJson({ name, value, token: lead.token }) : console.log(lead.token)),
    what: `leadership of ${JSON.stringify(name)}`,
    env: (lead) => ({ CONCORD_ELECTION_NAME: name, CONCORD_ELECTION_TOKEN: String(lead.token), CONCORD_ELECTION_VALUE: value }),
    giveUp: (lead) => lead.resign(),
  });
}

async function observeCommand(c: Client, name: string, o: ElectFlags): Promise<number> {
  const count = o.count ?? Infinity;
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.once("SIGTERM", () => stop.abort());
  let seen = 0;
  for await (const ch of c.election(name).observe({ signal: stop.signal })) {
    print(ch, !!o.json);
    if (++seen >= count) break;
  }
  return EXIT.OK;
}

function print(ch: LeaderChange, json: boolean): void {
  if (json) {
    printJson({
      leader: ch.leader ? ch.leader.lease : null,
      ...(ch.leader ? valueJson(ch.leader.value) : { value: null }),
      token: ch.leader ? ch.leader.token : null,
      index: ch.index,
      cause: ch.cause,
    });
  } else if (ch.leader) {
    console.log(
      `leader ${displayValue(ch.leader.value)} token ${ch.leader.token} (lease ${ch.leader.lease}, ${ch.cause})`,
    );
  } else {
    console.log(`no leader (${ch.cause})`);
  }
}
