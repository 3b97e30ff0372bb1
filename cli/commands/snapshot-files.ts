// The file side of `concord snapshot status` and `restore`: verifying a saved snapshot by rebuilding its state, and
// bootstrapping a data directory from it. Loaded only by those two commands (snapshot.ts imports it when one
// runs): the state machine, storage and config modules would otherwise slow the start of every `concord` command.

import fs from "node:fs";
import path from "node:path";
import { ConcordError } from "../../src/client/errors.js";
import { decodeNodeSnapshot, encodeNodeSnapshot, type NodeSnapshot } from "../../src/host/node-snapshot.js";
import { restoreCoordinationStateMachine } from "../../src/locks/index.js";
import { parseInitialCluster } from "../../src/server/config.js";
import type { StateMachine } from "../../src/statemachine/state-machine.js";
import { DurableStorage } from "../../src/storage/durable-storage.js";
import { nodeFileSystem } from "../../src/storage/node-file-system.js";
import { mebibytes, progressBar } from "../progress.js";
import { EXIT, printJson } from "./common.js";

const invalid = (field: string, message: string) => new ConcordError({ code: "INVALID_ARGUMENT", message, field });

/** A saved snapshot, verified by rebuilding its state machine (deterministic format, every section). */
function readSnapshotFile(file: string): { snap: NodeSnapshot; sm: StateMachine; index: number; hash: string } {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw invalid("file", `cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const snap = decodeNodeSnapshot(bytes);
    const sm = restoreCoordinationStateMachine(snap.sm).stateMachine;
    return { snap, sm, index: sm.lastApplied, hash: sm.hash() };
  } catch (e) {
    throw invalid("file", `${file} is not a valid Concord snapshot: ${(e as Error).message}`);
  }
}

/** What `concord snapshot status` prints. */
export function snapshotStatus(file: string) {
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

export async function restore(
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
  if (!members.has(o.name))
    throw invalid("name", `--name ${o.name} is not in --initial-cluster (${[...members.keys()].join(", ")})`);
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
  else
    console.error(
      `restored ${file} (index ${index}, hash ${hash}) into ${dir} for ${o.name} of ${[...members.keys()].join(", ")}`,
    );
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
