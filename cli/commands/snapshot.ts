// concord snapshot save FILE / concord snapshot restore FILE --data DIR

import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { ConcordError } from "../../src/client/errors.js";
import { DurableStorage } from "../../src/storage/durable-storage.js";
import { nodeFileSystem } from "../../src/storage/node-file-system.js";
import { decodeNodeSnapshot, encodeNodeSnapshot, type NodeSnapshot } from "../../src/host/node-snapshot.js";
import type { StateMachine } from "../../src/statemachine/state-machine.js";
import { parseInitialCluster } from "../../src/server/config.js";
import { restoreCoordinationStateMachine } from "../../src/locks/index.js";
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
    .action((file: string, o: { json?: boolean }) => {
      try {
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
        exit(await restore(file, o));
      } catch (e) {
        exit(reportError("snapshot restore", e));
      }
    });
}

const invalid = (field: string, message: string) => new ConcordError({ code: "INVALID_ARGUMENT", message, field });

/** A saved snapshot, verified by rebuilding its state machine (deterministic format, every section). */
function readSnapshotFile(file: string): { snap: NodeSnapshot; sm: StateMachine; index: number; hash: string } {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new ConcordError({ code: "INVALID_ARGUMENT", message: `cannot read ${file}: ${(e as Error).message}`, field: "file" });
  }
  try {
    const snap = decodeNodeSnapshot(bytes);
    const sm = restoreCoordinationStateMachine(snap.sm).stateMachine;
    return { snap, sm, index: sm.lastApplied, hash: sm.hash() };
  } catch (e) {
    throw new ConcordError({ code: "INVALID_ARGUMENT", message: `${file} is not a valid Concord snapshot: ${(e as Error).message}`, field: "file" });
  }
}

/** What `concord snapshot status` prints. */
function snapshotStatus(file: string) {
  const { snap, sm, index, hash } = readSnapshotFile(file);
  return {
    file: path.resolve(file),
    hash,
    // The log index when the file has it (snapshot save writes it), else the state machine's last applied entry.
    index: snap.index ?? index,
    term: snap.term ?? null,
    revision: sm.revision,
    compactRevision: sm.compactRevision,
    keys: sm.keyCount,
    leases: sm.leases().length,
    stateBytes: sm.sizeBytes,
    bytes: fs.statSync(file).size,
    members: snap.members,
  };
}

async function restore(
  file: string,
  o: { data: string; name: string; initialCluster: string; initialClusterClients?: string; json?: boolean },
): Promise<number> {
  if (!fs.existsSync(file)) throw invalid("file", `snapshot file ${file} does not exist`);
  const dir = path.resolve(o.data);
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
    throw invalid("data", `--data ${dir} is not empty; restore only into a new, empty directory`);
  }
  let members: Map<string, string>;
  let clients = new Map<string, string>();
  try {
    members = parseInitialCluster(o.initialCluster, "--initial-cluster");
    if (o.initialClusterClients) clients = parseInitialCluster(o.initialClusterClients, "--initial-cluster-clients");
  } catch (e) {
    throw invalid("initialCluster", (e as Error).message);
  }
  if (!members.has(o.name)) throw invalid("name", `--name ${o.name} is not in --initial-cluster (${[...members.keys()].join(", ")})`);
  const size = fs.statSync(file).size;
  const bar = progressBar("restore [{bar}] {percentage}% {value}/{total} MiB", mebibytes);
  bar.start(size, 0);
  let restored: { index: number; hash: string };
  try {
    restored = await writeDataDir(file, dir, members, clients);
    bar.update(size);
  } finally {
    bar.stop();
  }
  const { index, hash } = restored;
  if (o.json) printJson({ file, bytes: size, index, hash, dataDir: dir, members: [...members.keys()], restored: true });
  else console.error(`restored ${file} (index ${index}, hash ${hash}) into ${dir} for ${o.name} of ${[...members.keys()].join(", ")}`);
  return EXIT.OK;
}

/** Verifies the snapshot in `file` (by rebuilding its state) and bootstraps the data directory `dir` from it. */
async function writeDataDir(
  file: string,
  dir: string,
  members: Map<string, string>,
  clients: Map<string, string>,
): Promise<{ index: number; hash: string }> {
  const { snap, index, hash } = readSnapshotFile(file);
  if (index < 1) throw invalid("file", `${file} holds an empty state (index ${index}); nothing to restore`);
  const data = encodeNodeSnapshot({
    v: 1,
    members: [...members].map(([id, peerUrl]) => ({ id, peerUrl, clientUrl: clients.get(id) ?? "" })),
    sm: snap.sm,
  });
  const disk = await DurableStorage.open(nodeFileSystem, dir);
  try {
    await disk.bootstrap([...members.keys()].sort(), data, index);
  } finally {
    await disk.close();
  }
  return { index, hash };
}
