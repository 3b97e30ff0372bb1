// concord lease grant / revoke / keepalive / ttl / list

import type { Command } from "commander";
import { EXIT, clientCommand, intArg, printJson, printTable, run, ttlArg, type ClientFlags } from "./common.js";

export function registerLeaseCommands(program: Command): void {
  const lease = program
    .command("lease")
    .description("grant, keep alive, inspect and revoke leases")
    .addHelpText(
      "after",
      "\nExamples:\n  id=$(concord lease grant 30s)\n  concord put --lease $id services/api/n1 10.0.0.1:8080\n  concord lease keepalive $id &\n  concord lease ttl $id\n  concord lease revoke $id",
    );

  clientCommand(
    lease
      .command("grant")
      .description("grant a lease and print its id (it is NOT kept alive after this command exits)"),
    { json: true },
  )
    .argument("<ttl>", "time to live: 1500 (ms), 500ms, 10s, 2m, 1h", ttlArg())
    .action((ttl: number, o: ClientFlags) =>
      run("lease grant", o, async (c) => {
        const l = await c.grantLease(ttl);
        l.stop();
        if (o.json) printJson({ id: l.id, ttlMs: l.ttlMs });
        else console.log(l.id);
      }),
    );

  clientCommand(lease.command("revoke").description("revoke a lease: its keys, locks and candidacies end now"))
    .argument("<id>", "lease id", intArg(1))
    .action((id: number, o: ClientFlags) =>
      run("lease revoke", o, async (c) => {
        await c.revokeLease(id);
        console.log(`revoked ${id}`);
      }),
    );

  clientCommand(lease.command("keepalive").description("keep a lease alive (every ttl/3) until interrupted"), {
    json: true,
  })
    .argument("<id>", "lease id", intArg(1))
    .option("--once", "send one keep-alive and exit")
    .action((lease: number, o: ClientFlags & { once?: boolean }) =>
      run("lease keepalive", o, async (c) => {
        const stop = new AbortController();
        process.once("SIGINT", () => stop.abort());
        process.once("SIGTERM", () => stop.abort());
        for (;;) {
          const ttl = await c.keepAliveLease(lease);
          if (o.json) printJson({ id: lease, ttlMs: ttl });
          else console.log(`lease ${lease} kept alive, ttl ${ttl} ms`);
          if (o.once) return EXIT.OK;
          await new Promise<void>((r) => {
            const t = setTimeout(r, Math.max(50, ttl / 3));
            stop.signal.addEventListener("abort", () => (clearTimeout(t), r()), { once: true });
          });
          if (stop.signal.aborted) return EXIT.OK;
        }
      }),
    );

  clientCommand(lease.command("ttl").description("show a lease's TTL, time left and key count (--keys: its keys)"), {
    json: true,
  })
    .argument("<id>", "lease id", intArg(1))
    .option("--keys", "list the lease's keys too (as etcdctl lease timetolive --keys)")
    .action((id: number, o: ClientFlags & { keys?: boolean }) =>
      run("lease ttl", o, async (c) => {
        const info = await c.leaseTimeToLive(id, { keys: !!o.keys });
        if (o.json) printJson(info);
        else if (!info) {
          console.error(`concord lease ttl: lease ${id} not found (expired or revoked)`);
          return EXIT.FAILED;
        } else {
          const keys = info.keys === undefined ? `${info.keyCount} keys` : `keys: ${info.keys.length ? info.keys.join(", ") : "none"}`;
          console.log(`lease ${info.id}: ttl ${info.ttlMs} ms, remaining ${info.remainingMs} ms, ${keys}`);
        }
      }),
    );

  clientCommand(
    lease.command("list").description("list live leases in id order: TTL, time left (as the leader sees it) and keys"),
    { json: true },
  )
    .option("--keys", "list each lease's keys, not only how many")
    .action((o: ClientFlags & { keys?: boolean }) =>
      run("lease list", o, async (c) => {
        const leases = await c.leases({ keys: !!o.keys });
        if (o.json) printJson(leases);
        else
          printTable(
            ["ID", "TTL_MS", "REMAINING_MS", "KEYS"],
            leases.map((l) => [l.id, l.ttlMs, l.remainingMs, l.keys === undefined ? l.keyCount : l.keys.join(",") || "-"]),
          );
      }),
    );
}
