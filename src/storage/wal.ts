// WAL segment files: wal/<seq:16 hex>.wal, append-only, numbered consecutively from 1. Only the newest
// ("active") segment is written; a segment is rolled (closed, the next one created) when a batch would take
// it past the size limit, and every new segment begins with the current hard state so that deleting older
// segments never loses it. A batch is never split across segments.

import path from "node:path";
import { assert } from "../assert.js";
import type { FileHandle, FileSystem } from "./file-system.js";

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
  private active: { seg: SegmentFile; handle: FileHandle } | undefined;

  private constructor(
    private readonly fs: FileSystem,
    private readonly walDir: string,
    /** Retained segments, oldest first; the last is the active one once a handle is open. */
    readonly segments: SegmentFile[],
    private readonly segmentBytes: number,
  ) {}

  static async open(fs: FileSystem, walDir: string, segments: SegmentFile[], segmentBytes: number): Promise<WalWriter> {
    const w = new WalWriter(fs, walDir, segments, segmentBytes);
    const last = segments.at(-1);
    if (last) w.active = { seg: last, handle: await fs.open(last.file, "readWrite") };
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
    const handle = await this.fs.open(file, "createNew");
    await this.fs.syncDir(this.walDir);
    if (this.active) await this.active.handle.close();
    const seg = { seq, file, size: 0 };
    this.segments.push(seg);
    this.active = { seg, handle };
  }

  /** One write of `parts` at the end of the active segment, then one fdatasync. */
  async writeAndSync(parts: readonly Uint8Array[], bytes: number): Promise<void> {
    const a = this.active;
    assert(a !== undefined, "WAL write without an active segment");
    await a.handle.write(parts, a.seg.size);
    a.seg.size += bytes;
    await a.handle.datasync();
  }

  /** Delete the oldest segments for which `removable` holds, stopping at the first that does not. */
  async removeOldest(removable: (seg: SegmentFile, positionFromNewest: number) => boolean): Promise<SegmentFile[]> {
    const removed: SegmentFile[] = [];
    while (this.segments.length > 1) {
      const seg = this.segments[0];
      if (seg.seq === this.activeSeq || !removable(seg, this.segments.length - 1)) break;
      await this.fs.remove(seg.file);
      this.segments.shift();
      removed.push(seg);
    }
    if (removed.length > 0) await this.fs.syncDir(this.walDir);
    return removed;
  }

  async close(): Promise<void> {
    if (this.active) await this.active.handle.close();
    this.active = undefined;
  }
}
