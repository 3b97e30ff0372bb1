// concord status / endpoint health / move-leader / member list|add|update|remove|promote

import type { Command } from "commander";
import { performance } from "node:perf_hooks";
import { connect, type Client } from "../../src/client/client.js";
import type { MemberStatus } from "../../src/client/cluster.js";
import { parseEndpoints } from "../../src/client/endpoints.js";
import { ConcordError, toConcordError } from "../../src/client/errors.js";
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
    .option("--cluster", "also ask every member the endpoints know of, by its client URL (the default, as etcdctl spells it)")
    .option("--no-cluster", "ask only the given endpoints")
    .addHelpText(
      "after",
      "\nAsks each endpoint separately (each row is that member's own view), then every other member they report, so\none endpoint is enough and unreachable members show as such (--no-cluster: only the given endpoints).\nExit code 1 if any is unreachable.\n\nExamples:\n  concord status\n  concord status --endpoints ws://10.0.0.1:7000 -w json",
    )
    .action((o: ClientFlags & { cluster?: boolean }) => runStandalone("status", () => statusCommand(o)));

  const endpoint = program.command("endpoint").description("check the members' health (as etcdctl endpoint)");
  clientCommand(
    endpoint
      .command("health")
      .description("whether each member serves: answers, has not failed, passes a linearizable read, no alarm"),
    { json: true },
  )
    .option("--cluster", "also check every member the endpoints know of (by its client URL): one endpoint is enough")
    .addHelpText(
      "after",
      "\nThe read goes through the leader (ReadIndex), so a member cut off from the leader or the quorum is unhealthy.\nTOOK is how long that read took. Exit code 1 if any member is unhealthy.\n\nExamples:\n  concord endpoint health --cluster\n  concord endpoint health --endpoints ws://10.0.0.1:7000 --cluster -w json",
    )
    .action((o: ClientFlags & { cluster?: boolean }) => runStandalone("endpoint health", () => healthCommand(o)));

  clientCommand(
    program.command("move-leader").description("hand leadership to another voter (as etcdctl move-leader)"),
    { json: true },
  )
    .argument("<id>", "the voter to lead")
    .addHelpText(
      "after",
      "\nThe leader brings the voter up to date and tells it to campaign at once (Raft leadership transfer); answers\nonce the voter leads. Writes pause for that moment. Exit 1 (TIMEOUT) if it did not happen in time.\n\nExample:\n  concord move-leader n2",
    )
    .action((id: string, o: ClientFlags) =>
      run("move-leader", o, async (c) => {
        const r = await c.transferLeader(id);
        if (o.json) printJson(r);
        else console.log(r.from === r.leader ? `${r.leader} already leads` : `leadership moved from ${r.from} to ${r.leader}`);
      }),
    );

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

  clientCommand(member.command("update").description("change a member's peer URL (and client URL); it keeps its role"), {
    json: true,
  })
    .argument("<id>", "the member")
    .requiredOption("--peer-urls <url>", "its new peer URL (ws://host:port; one URL)")
    .option("--client-urls <url>", "its new client URL (default: unchanged)")
    .addHelpText(
      "after",
      `
A membership change that keeps the member a voter (or learner), so the quorum stays as it is; every member then
dials it at the new peer URL. Until it listens there (restart it with --peer-url), the others cannot reach it,
as if it were down: change one member at a time, and only while the others are up.

Example:
  concord member update n2 --peer-urls ws://10.0.0.12:7001`,
    )
    .action((id: string, o: ClientFlags & { peerUrls: string; clientUrls?: string }) =>
      run("member update", o, async (c) => {
        const r = await c.updateMember(id, singleUrl("--peer-urls", o.peerUrls), o.clientUrls === undefined ? undefined : singleUrl("--client-urls", o.clientUrls));
        if (o.json) printJson(r);
        else console.log(`updated ${id}: peer URL ${r.member.peerUrl}, client URL ${r.member.clientUrl || "-"}`);
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

/** A member has one URL of each kind: `--peer-urls a,b` is refused rather than half taken. */
function singleUrl(flag: string, v: string): string {
  const urls = v.split(",").map((u) => u.trim()).filter((u) => u !== "");
  if (urls.length !== 1) {
    throw new ConcordError({ code: "INVALID_ARGUMENT", message: `${flag} takes one URL (a member has one), got ${JSON.stringify(v)}`, field: flag });
  }
  return urls[0];
}

/** Runs a command that opens its own connections; reports errors and exits with its code. */
async function runStandalone(command: string, body: () => Promise<number>): Promise<void> {
  let code: number = EXIT.OK;
  try {
    code = await body();
  } catch (e) {
    code = reportError(command, e);
  }
  exit(code);
}

/** The HEALTH column: failed, no leader or ok, and any cluster-wide alarm this member sees raised. */
function health(s: MemberStatus): string {
  const state = s.fatal ? `FAILED: ${s.fatal}` : s.leader ? "ok" : "no leader";
  // Members running a version without alarms report none.
  const alarms = (s.alarms ?? []).map((a) => `alarm ${a.alarm}`);
  return [state, ...alarms].join(", ");
}

/** One member as asked at one endpoint: its status and what `probe` found, or why it could not be asked. */
interface MemberRow<T> {
  endpoint: string;
  status?: MemberStatus;
  probe?: T;
  /** Why the member could not be asked: its error code and message. */
  code?: string;
  error?: string;
}

/**
 * Asks every endpoint for its own status (pinned: no move to the leader), so each row is that member's view, then
 * runs `probe` on the same connection. With `cluster`, the members they report (by their client URLs) are asked
 * too, so one endpoint is enough to see the whole cluster; members without a known client URL come back in
 * `unknown`.
 */
async function askMembers<T>(
  o: ClientFlags,
  cluster: boolean,
  probe: (c: Client) => Promise<T>,
): Promise<{ rows: MemberRow<T>[]; unknown: string[] }> {
  const given = parseEndpoints(o.endpoints ?? DEFAULT_ENDPOINT);
  const opts = { ...clientOptions(o), timeoutMs: Math.min(o.requestTimeout, 3000), followLeader: false };
  const ask = async (endpoint: string): Promise<MemberRow<T>> => {
    const row: MemberRow<T> = { endpoint };
    try {
      const one = await connect([endpoint], opts);
      try {
        row.status = await one.status();
        row.probe = await probe(one);
      } finally {
        await one.close();
      }
    } catch (e) {
      const err = toConcordError(e);
      Object.assign(row, { code: err.code, error: err.message });
    }
    return row;
  };
  const rows = await Promise.all(given.map(ask));
  if (!cluster) return { rows, unknown: [] };
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
  return { rows, unknown: [...noUrl].filter((id) => !seen.has(id)) };
}

/** A row's failure for the table: unreachable (with why), or the error's code. */
function whyNot(r: MemberRow<unknown>): string {
  const why = r.code === "UNAVAILABLE" || r.code === "TIMEOUT" ? "unreachable" : r.code;
  return `${why}: ${r.error}`;
}

async function statusCommand(o: ClientFlags & { cluster?: boolean }): Promise<number> {
  // Discovery is the default (undefined unless --no-cluster), as `concord status` has always done.
  const { rows, unknown } = await askMembers(o, o.cluster !== false, async () => undefined);
  if (o.json) {
    printJson([
      ...rows.map(({ probe: _p, ...r }) => r),
      ...unknown.map((member) => ({ endpoint: null, member, error: NO_URL })),
    ]);
  } else {
    printTable(
      ["ENDPOINT", "MEMBER", "ROLE", "LEADER", "TERM", "COMMIT", "APPLIED", "LAST", "REVISION", "HEALTH"],
      [
        ...rows.map((r) => {
          const s = r.status;
          if (!s) return [r.endpoint, "-", "-", "-", "-", "-", "-", "-", "-", whyNot(r)];
          return [r.endpoint, s.id, s.role, s.leader ?? "none", s.term, s.commit, s.applied, s.lastIndex, s.revision, health(s)];
        }),
        ...unknown.map((id) => ["-", id, "-", "-", "-", "-", "-", "-", "-", NO_URL]),
      ],
    );
  }
  return rows.every((r) => r.status) ? EXIT.OK : EXIT.FAILED;
}

/**
 * Each member healthy or not, as `etcdctl endpoint health`: it answers, has not failed, can serve a linearizable
 * read (the alarm list, after a ReadIndex round through the leader) and has no alarm raised.
 */
async function healthCommand(o: ClientFlags & { cluster?: boolean }): Promise<number> {
  const { rows, unknown } = await askMembers(o, !!o.cluster, async (c) => {
    const started = performance.now();
    const { alarms } = await c.alarms();
    return { tookMs: Math.round(performance.now() - started), alarms };
  });
  const results = [
    ...rows.map((r) => {
      const problem = !r.status
        ? whyNot(r)
        : r.status.fatal
          ? `FAILED: ${r.status.fatal}`
          : r.probe!.alarms.length > 0
            ? `alarm ${r.probe!.alarms.map((a) => a.alarm).join(", ")}`
            : undefined;
      return {
        endpoint: r.endpoint,
        member: r.status?.id ?? null,
        health: problem === undefined,
        tookMs: r.probe?.tookMs ?? null,
        ...(problem === undefined ? {} : { error: problem }),
      };
    }),
    ...unknown.map((member) => ({ endpoint: null, member, health: false, tookMs: null, error: NO_URL })),
  ];
  if (o.json) printJson(results);
  else
    printTable(
      ["ENDPOINT", "MEMBER", "HEALTH", "TOOK", "ERROR"],
      results.map((r) => [r.endpoint ?? "-", r.member ?? "-", String(r.health), r.tookMs === null ? "-" : `${r.tookMs}ms`, r.error ?? ""]),
    );
  return results.every((r) => r.health) ? EXIT.OK : EXIT.FAILED;
}
