// Cluster administration: status, membership, leadership transfer, alarms, and streaming a snapshot to a file.

import type { MemberStatus } from "../host/status.js";
import fs from "node:fs";
import path from "node:path";
import type { Connection } from "./connection.js";
import { ConcordError, clientError, toConcordError } from "./errors.js";
import { checkKey } from "./values.js";

export interface Member {
  id: string;
  peerUrl: string;
  clientUrl: string;
  role: "voter" | "learner" | string;
}

/** A member's view of itself and the cluster (Raft term, role, indexes, members, storage and transport). */
export type { MemberStatus } from "../host/status.js";

/** A cluster-wide alarm. NO_SPACE: the state reached the storage quota; writes that add data are refused. */
export interface Alarm {
  alarm: "NO_SPACE";
  /** Log index of the entry that raised it. */
  raisedAt: number;
}

export interface AlarmList {
  alarms: Alarm[];
  /** Bytes the replicated state holds, as counted against the quota, and the quota (--quota-bytes). */
  stateBytes: number;
  quotaBytes: number;
}

export interface SnapshotProgress {
  bytes: number;
  total: number;
}

export interface SnapshotInfo {
  file: string;
  bytes: number;
  index: number;
  term: number;
  hash: string;
}

export class ClusterApi {
  constructor(private readonly conn: Connection) {}

  /** Status of the member this client is connected to. */
  status(): Promise<MemberStatus> {
    return this.conn.call<MemberStatus>("status", {});
  }

  async members(): Promise<{ members: Member[]; leader: string | null }> {
    return this.conn.call("members", {});
  }

  /** Adds a member as a learner (promote it once it has caught up). */
  addMember(id: string, peerUrl: string, clientUrl?: string): Promise<{ confState: unknown }> {
    const args: Record<string, unknown> = { member: checkKey("id", id), peerUrl: checkKey("peerUrl", peerUrl) };
    if (clientUrl !== undefined) args.clientUrl = checkKey("clientUrl", clientUrl);
    // Not retried: a membership change answered TIMEOUT may have happened; the caller checks members().
    return this.conn.call("memberAdd", args, { retry: false });
  }

  promoteMember(id: string): Promise<{ confState: unknown }> {
    return this.conn.call("memberPromote", { member: checkKey("id", id) }, { retry: false });
  }

  removeMember(id: string): Promise<{ confState: unknown }> {
    return this.conn.call("memberRemove", { member: checkKey("id", id) }, { retry: false });
  }

  /** A member's new peer URL (and client URL); not retried, as the other membership changes. */
  updateMember(id: string, peerUrl: string, clientUrl?: string): Promise<{ confState: unknown; member: Member }> {
    const args: Record<string, unknown> = { member: checkKey("id", id), peerUrl: checkKey("peerUrl", peerUrl) };
    if (clientUrl !== undefined) args.clientUrl = checkKey("clientUrl", clientUrl);
    return this.conn.call("memberUpdate", args, { retry: false });
  }

  transferLeader(to: string): Promise<{ ok: true; from: string; leader: string }> {
    return this.conn.call("transferLeader", { to: checkKey("to", to) }, { retry: false });
  }

  /** The raised alarms (linearizable), with the state's size and the quota. */
  alarms(): Promise<AlarmList> {
    return this.conn.call<AlarmList>("alarmList", {});
  }

  /**
   * Clears the NO_SPACE alarm (safe to retry: disarming twice is disarming once). Fails with NO_SPACE while the
   * state still holds the quota or more: delete keys, compact, then disarm.
   */
  disarmAlarms(): Promise<{ disarmed: Alarm[] }> {
    return this.conn.call<{ disarmed: Alarm[] }>("alarmDisarm", {});
  }

  /**
   * Streams the member's snapshot to `file` (written to a temp file, fsynced, renamed, directory fsynced).
   * The member streams `{ kind: "snapshotChunk", offset, data, total }` pushes and ends with
   * `{ kind: "snapshotEnd", index, term, hash }`.
   */
  async snapshot(
    file: string,
    opts: { onProgress?: (p: SnapshotProgress) => void; timeoutMs?: number } = {},
  ): Promise<SnapshotInfo> {
    checkKey("file", file);
    const target = path.resolve(file);
    const tmp = `${target}.part-${process.pid}`;
    const fd = fs.openSync(tmp, "w");
    let bytes = 0;
    let finished = false;
    try {
      const info = await new Promise<Omit<SnapshotInfo, "file" | "bytes">>((resolve, reject) => {
        const timeoutMs = opts.timeoutMs ?? this.conn.timeoutMs * 6;
        const timer = setTimeout(
          () => reject(clientError("WATCH_BROKEN", `snapshot did not complete within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const off = this.conn.onReconnect(() =>
          reject(
            new ConcordError({ code: "UNAVAILABLE", message: "connection lost during the snapshot; run it again" }),
          ),
        );
        const finish = (f: () => void) => {
          clearTimeout(timer);
          off();
          f();
        };
        this.conn.callOnSocket<{ stream: number }>("snapshot", {}, { retry: true }).then(
          ({ result, socketId }) => {
            this.conn.registerStream(socketId, result.stream, (raw) => {
              const ev = raw as {
                kind?: string;
                offset?: number;
                data?: Uint8Array;
                total?: number;
                index?: number;
                term?: number;
                hash?: string;
                error?: { code: string; message: string };
              };
              try {
                if (ev.error) return finish(() => reject(toConcordError(ev.error)));
                if (ev.kind === "snapshotChunk" && ev.data instanceof Uint8Array) {
                  if (ev.offset !== bytes)
                    throw clientError("WATCH_BROKEN", `snapshot chunk at offset ${ev.offset}, expected ${bytes}`);
                  fs.writeSync(fd, ev.data);
                  bytes += ev.data.byteLength;
                  opts.onProgress?.({ bytes, total: ev.total ?? 0 });
                } else if (ev.kind === "snapshotEnd") {
                  finish(() => resolve({ index: ev.index ?? 0, term: ev.term ?? 0, hash: String(ev.hash ?? "") }));
                }
              } catch (e) {
                finish(() => reject(toConcordError(e)));
              }
            });
          },
          (e) => finish(() => reject(toConcordError(e))),
        );
      });
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(tmp, target);
      const dir = fs.openSync(path.dirname(target), "r");
      try {
        fs.fsyncSync(dir);
      } finally {
        fs.closeSync(dir);
      }
      finished = true;
      return { file: target, bytes, ...info };
    } finally {
      if (!finished) {
        try {
          fs.closeSync(fd);
        } catch {
          // already closed
        }
        fs.rmSync(tmp, { force: true });
      }
    }
  }
}
