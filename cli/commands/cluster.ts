// concord status / member list|add|remove|promote

import type { Command } from "commander";
import { connect } from "../../src/client/client.js";
import type { MemberStatus } from "../../src/client/cluster.js";
import { parseEndpoints } from "../../src/client/endpoints.js";
import { toConcordError } from "../../src/client/errors.js";
import {
  DEFAULT_ENDPOINT,
  EXIT,
  clientCommand,
  clientOptions,
  exit,
  printJson,
  printTable,
  reportError,
  run,
  type ClientFlags,
} from "./common.js";

export function registerClusterCommands(program: Command): void {
  clientCommand(
    program.command("status").description("a table of every endpoint: member, role, leader, term, indexes, health"),
    { json: true },
  )
    .addHelpText(
      "after",
      "\nAsks each endpoint separately, and every other member they know of (by its client URL), so one endpoint is\nenough and unreachable members show as such. Exit code 1 if any is unreachable.\n\nExamples:\n  concord status\n  concord status --endpoints ws://10.0.0.1:7000 --json",
    )
    .action(async (o: ClientFlags) => {
      let code: number = EXIT.OK;
      try {
        code = await statusCommand(o);
      } catch (e) {
        code = reportError("status", e);
      }
      exit(code);
    });

  const member = program
    .command("member")
    .description("list and change cluster membership")
    .addHelpText(
      "after",
      "\nAdd a member in two steps: `member add` makes it a learner; start it; `member promote` once it has caught up.\n\nExamples:\n  concord member list\n  concord member add n4 ws://10.0.0.4:7001 --client-url ws://10.0.0.4:7000\n  concord member promote n4\n  concord member remove n2",
    );

  clientCommand(member.command("list").description("list members (id, role, URLs) and the leader"), {
    json: true,
  }).action((o: ClientFlags) =>
    run("member list", o, async (c) => {
      const r = await c.members();
      if (o.json) printJson(r);
      else
        printTable(
          ["ID", "ROLE", "LEADER", "PEER_URL", "CLIENT_URL"],
          r.members.map((m) => [m.id, m.role, m.id === r.leader ? "*" : "", m.peerUrl, m.clientUrl || "-"]),
        );
    }),
  );

  clientCommand(member.command("add").description("add a member as a learner"), { json: true })
    .argument("<id>", "the new member's name")
    .argument("<peer-url>", "its peer URL (ws://host:port)")
    .option("--client-url <url>", "its client URL")
    .action((id: string, peerUrl: string, o: ClientFlags & { clientUrl?: string }) =>
      run("member add", o, async (c) => {
        const r = await c.addMember(id, peerUrl, o.clientUrl);
        if (o.json) printJson(r);
        else console.log(`added ${id} as a learner; promote it with: concord member promote ${id}`);
      }),
    );

  clientCommand(member.command("promote").description("promote a learner to a voter"), { json: true })
    .argument("<id>", "the member")
    .action((id: string, o: ClientFlags) =>
      run("member promote", o, async (c) => {
        const r = await c.promoteMember(id);
        if (o.json) printJson(r);
        else console.log(`promoted ${id}`);
      }),
    );

  clientCommand(member.command("remove").description("remove a member"), { json: true })
    .argument("<id>", "the member")
    .action((id: string, o: ClientFlags) =>
      run("member remove", o, async (c) => {
        const r = await c.removeMember(id);
        if (o.json) printJson(r);
        else console.log(`removed ${id}`);
      }),
    );
}

const NO_URL = "no client URL known (--initial-cluster-clients)";

/** The HEALTH column: failed, no leader or ok, and any cluster-wide alarm this member sees raised. */
function health(s: MemberStatus): string {
  const state = s.fatal ? `FAILED: ${s.fatal}` : s.leader ? "ok" : "no leader";
  // Members running a version without alarms report none.
  const alarms = (s.alarms ?? []).map((a) => `alarm ${a.alarm}`);
  return [state, ...alarms].join(", ");
}

interface StatusRow {
  endpoint: string;
  status?: MemberStatus;
  /** Why the member could not be asked: its error code and message. */
  code?: string;
  error?: string;
}

/**
 * Asks every endpoint for its own status (pinned: no move to the leader), so each row is that member's view. The
 * members they report (with their client URLs) are asked too, so one endpoint is enough to see the whole cluster.
 */
async function statusCommand(o: ClientFlags): Promise<number> {
  const given = parseEndpoints(o.endpoints ?? DEFAULT_ENDPOINT);
  const opts = { ...clientOptions(o), timeoutMs: Math.min(o.requestTimeout, 3000), followLeader: false };
  const ask = async (endpoint: string): Promise<StatusRow> => {
    try {
      const one = await connect([endpoint], opts);
      try {
        return { endpoint, status: await one.status() };
      } finally {
        await one.close();
      }
    } catch (e) {
      const err = toConcordError(e);
      return { endpoint, code: err.code, error: err.message };
    }
  };
  const rows = await Promise.all(given.map(ask));
  const asked = new Set(given);
  const seen = new Set(rows.flatMap((r) => (r.status ? [r.status.id] : [])));
  const discovered = new Set<string>();
  const noUrl = new Set<string>();
  for (const r of rows) {
    for (const m of r.status?.members ?? []) {
      if (seen.has(m.id)) continue;
      if (!m.clientUrl) noUrl.add(m.id);
      else for (const url of parseEndpoints(m.clientUrl)) if (!asked.has(url)) discovered.add(url);
    }
  }
  for (const r of await Promise.all([...discovered].map(ask))) {
    // The same member under another URL than the one given: shown once.
    if (r.status && seen.has(r.status.id)) continue;
    if (r.status) seen.add(r.status.id);
    rows.push(r);
  }
  const unknown = [...noUrl].filter((id) => !seen.has(id));
  if (o.json) printJson([...rows, ...unknown.map((member) => ({ endpoint: null, member, error: NO_URL }))]);
  else {
    printTable(
      ["ENDPOINT", "MEMBER", "ROLE", "LEADER", "TERM", "COMMIT", "APPLIED", "LAST", "REVISION", "HEALTH"],
      [
        ...rows.map((r) => {
          const s = r.status;
          if (!s) {
            const why = r.code === "UNAVAILABLE" || r.code === "TIMEOUT" ? "unreachable" : r.code;
            return [r.endpoint, "-", "-", "-", "-", "-", "-", "-", "-", `${why}: ${r.error}`];
          }
          return [
            r.endpoint,
            s.id,
            s.role,
            s.leader ?? "none",
            s.term,
            s.commit,
            s.applied,
            s.lastIndex,
            s.revision,
            health(s),
          ];
        }),
        ...unknown.map((id) => [
          "-",
          id,
          "-",
          "-",
          "-",
          "-",
          "-",
          "-",
          "-",
          "no client URL known (--initial-cluster-clients)",
        ]),
      ],
    );
  }
  return rows.every((r) => r.status) ? EXIT.OK : EXIT.FAILED;
}
