// WAL segment files: wal/<seq:16 hex>.wal, append-only, numbered consecutively from 1. Only the newest
// ("active") segment is written; a segment is rolled (closed, the next one created) when a batch would take
// it past the size limit, and every new segment begins with the current hard state so that deleting older
// segments never loses it. A batch is never split across segments.

import fs, { promises as fsp } from "node:fs";
import path from "node:path";
import { assert } from "../assert.js";
import { fsyncDir } from "./fsutil.js";

export interface SegmentFile {
  seq: number;
  file: string;
  /** Bytes of valid records (the file is truncated to this during recovery). */
  size: number;
}

export const segmentFileName = (seq: number): string => `${seq.toString(16).padStart(16, "0")}.wal`;

export function parseSegmentFileName(name: string): number | undefined {
  const m = /^([0-9a-f]{16})\.wal$/.exec(name);
  return m ? Number.parseInt(m[1], 16) : undefined;
}

export class WalWriter {
  private active: { seg: SegmentFile; fd: number } | undefined;

  private constructor(
    private readonly walDir: string,
    /** Retained segments, oldest first; the last is the active one once a handle is open. */
    readonly segments: SegmentFile[],
    private readonly segmentBytes: number,
  ) {}

  static async open(walDir: string, segments: SegmentFile[], segmentBytes: number): Promise<WalWriter> {
    const w = new WalWriter(walDir, segments, segmentBytes);
    const last = segments.at(-1);
    if (last) w.active = { seg: last, fd: await openFd(last.file, "r+") };
    return w;
  }

  get activeSeq(): number | undefined {
    return this.active?.seg.seq;
  }

  get activeSize(): number {
    return this.active?.seg.size ?? 0;
  }

  /** Whether `bytes` more must go to a fresh segment (never for an empty active segment). */
  needsRoll(bytes: number): boolean {
    return this.active === undefined || (this.active.seg.size > 0 && this.active.seg.size + bytes > this.segmentBytes);
  }

  /** Close the active segment (already synced by the last batch) and create the next, durably named. */
  async roll(): Promise<void> {
    const seq = (this.segments.at(-1)?.seq ?? 0) + 1;
    const file = path.join(this.walDir, segmentFileName(seq));
    const fd = await openFd(file, "wx");
    await fsyncDir(this.walDir);
    if (this.active) await closeFd(this.active.fd);
    const seg = { seq, file, size: 0 };
    this.segments.push(seg);
    this.active = { seg, fd };
  }

  /**
   * One write of `buf` at the end of the active segment, then one fdatasync. Plain fd callbacks rather than
   * FileHandle promises: the fdatasync is issued straight from the write's completion, which is measurably
   * faster at thousands of fsyncs per second.
   */
  writeAndSync(buf: Buffer): Promise<void> {
    const a = this.active;
    assert(a !== undefined, "WAL write without an active segment");
    return new Promise<void>((resolve, reject) => {
      const writeFrom = (done: number): void => {
        fs.write(a.fd, buf, done, buf.length - done, a.seg.size + done, (err, written) => {
          if (err) return reject(err);
          if (written <= 0) return reject(new Error(`WAL write to ${a.seg.file} made no progress`));
          if (done + written < buf.length) return writeFrom(done + written);
          a.seg.size += buf.length;
          fs.fdatasync(a.fd, (syncErr) => (syncErr ? reject(syncErr) : resolve()));
        });
      };
      writeFrom(0);
    });
  }

  /** Delete the oldest segments for which `removable` holds, stopping at the first that does not. */
  async removeOldest(removable: (seg: SegmentFile, positionFromNewest: number) => boolean): Promise<SegmentFile[]> {
    const removed: SegmentFile[] = [];
    while (this.segments.length > 1) {
      const seg = this.segments[0];
      if (seg.seq === this.activeSeq || !removable(seg, this.segments.length - 1)) break;
      await fsp.rm(seg.file, { force: true });
      this.segments.shift();
      removed.push(seg);
    }
    if (removed.length > 0) await fsyncDir(this.walDir);
    return removed;
  }

  async close(): Promise<void> {
    if (this.active) await closeFd(this.active.fd);
    this.active = undefined;
  }
}

const openFd = (file: string, flags: string): Promise<number> =>
  new Promise((resolve, reject) => fs.open(file, flags, (err, fd) => (err ? reject(err) : resolve(fd))));

const closeFd = (fd: number): Promise<void> =>
  new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
