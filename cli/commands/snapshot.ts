// concord snapshot save FILE / concord snapshot restore FILE --data DIR

import type { Command } from "commander";
import { mebibytes, progressBar } from "../progress.js";
import { EXIT, addWriteOut, clientCommand, exit, printJson, printTable, reportError, run, type ClientFlags } from "./common.js";

export function registerSnapshotCommands(program: Command): void {
  const snapshot = program
    .command("snapshot")
    .description("save a member's snapshot to a file, or verify one for restore")
    .addHelpText(
      "after",
      "\nExamples:\n  concord snapshot save backup.snap\n  concord snapshot status backup.snap\n  concord snapshot restore backup.snap --data /var/lib/concord/n1",
    );

  addWriteOut(
    snapshot
      .command("status")
      .description("verify a saved snapshot and print its index, term, revision, keys, hash and size (as etcdctl snapshot status)"),
  )
    .argument("<file>", "a file written by `concord snapshot save`")
    .addHelpText(
      "after",
      `
Reads the whole file and rebuilds the state from it, so a damaged file fails here (INVALID_ARGUMENT, exit 2), not at restore. HASH
is the state's content hash, the one \`snapshot save\` printed and members log. TERM is "-" for files saved by a
version that did not record it.

Example:
  concord snapshot status backup.snap -w json`,
    )
    .action(async (file: string, o: { json?: boolean }) => {
      try {
        const { snapshotStatus } = await import("./snapshot-files.js");
        const info = snapshotStatus(file);
        if (o.json) printJson(info);
        else
          printTable(
            ["HASH", "INDEX", "TERM", "REVISION", "KEYS", "SIZE", "MEMBERS"],
            [[info.hash, info.index, info.term ?? "-", info.revision, info.keys, info.bytes, info.members.map((m) => m.id).join(",")]],
          );
        exit(EXIT.OK);
      } catch (e) {
        exit(reportError("snapshot status", e));
      }
    });

  clientCommand(
    snapshot
      .command("save")
      .description("stream the connected member's snapshot to FILE (atomic: temp file, fsync, rename)"),
    { json: true },
  )
    .argument("<file>", "where to write the snapshot")
    .action((file: string, o: ClientFlags) =>
      run("snapshot save", o, async (c) => {
        const bar = progressBar("snapshot [{bar}] {percentage}% {value}/{total} MiB", mebibytes);
        bar.start(0, 0);
        let info;
        try {
          info = await c.snapshot(file, {
            onProgress: (p) => {
              bar.setTotal(p.total);
              bar.update(p.bytes);
            },
          });
          bar.setTotal(info.bytes);
          bar.update(info.bytes);
        } finally {
          bar.stop();
        }
        if (o.json) printJson(info);
        else
          console.log(
            `saved ${info.file}: ${info.bytes} bytes, index ${info.index}, term ${info.term}, hash ${info.hash}`,
          );
      }),
    );

  addWriteOut(snapshot.command("restore"))
    .description("create a new member's data directory from a saved snapshot, for a new cluster (as etcdctl snapshot restore)")
    .argument("<file>", "a file written by `concord snapshot save`")
    .requiredOption("--data <dir>", "the new member's data directory (must not exist or be empty)")
    .requiredOption("--name <name>", "this member's name in the new cluster")
    .requiredOption("--initial-cluster <members>", "the new cluster: n1=ws://host:port,n2=… (peer URLs)")
    .option("--initial-cluster-clients <members>", "client URLs of the new members: n1=ws://host:port,…")
    .addHelpText(
      "after",
      `
Run it once per member with the same file and --initial-cluster, then start each member with the same
--name/--data-dir/--initial-cluster flags. The new cluster starts from the snapshot's state and index.

Example:
  concord snapshot restore backup.snap --data /var/lib/concord/n1 --name n1 \\
    --initial-cluster n1=ws://10.0.0.1:7001,n2=ws://10.0.0.2:7001,n3=ws://10.0.0.3:7001`,
    )
    .action(async (file: string, o: { data: string; name: string; initialCluster: string; initialClusterClients?: string; json?: boolean }) => {
      try {
        const { restore } = await import("./snapshot-files.js");
        exit(await restore(file, o));
      } catch (e) {
        exit(reportError("snapshot restore", e));
      }
    });
}
