// DurableStorage: the Raft core's log kept in memory (a MemoryStorage the core reads synchronously) and made
// durable by a segmented write-ahead log plus snapshot files. The WAL is read whole only on open, for recovery.
// Memory holds the newest `memoryLogBytes` of entries (1 MiB by default) and the terms of all of them: older
// entries are released (MemoryStorage.releaseEntries) and read back from their WAL record when the core asks,
// a record at a time (wal-entry-index.ts) — a follower catching up from behind them, a slow apply. Without it
// the log since the last snapshot, which can be as large as the snapshot, stayed in memory whole.
//
//   const disk = await DurableStorage.open(nodeFileSystem, dir, { segmentBytes, keepSegments, keepSnapshots, repair, logger });
//   if (disk.isNew) await disk.bootstrap(["a", "b", "c"]);   // a brand-new cluster (joiners start empty)
//   const node = new RaftNode(cfg, disk.log);
//   … for each Ready: await disk.save(rd.hardState, rd.entries, rd.snapshot); then send, apply, advance …
//   … after applying up to i: const f = disk.beginSnapshot({ index: i, term, confState }); f.append(…)…; await f.finish() …
//   … a Ready that only moves the commit index: disk.noteCommit(hardState) (no write) …
//   await disk.close();
//
// Durability contract. `save` resolves once its records are written and fdatasync'ed; only then does it
// update `log` (applySnapshot, setHardState, append — in that order), so the core never sees state that a
// crash could take back. Saves issued while a write is in flight are queued and written together: one
// write() and one fdatasync() for the whole group (group commit), in call order. `stats.fsyncs` counts them.
// Within one save the records are ordered snapshot marker, entries, hard state (as etcd's WAL): a torn save
// can lose its hard state but never leave a commit index pointing past the entries it covers. A save of
// entries is preceded by the commit index known so far over the entries already written (see save): a
// membership change is never durable without the commit of the ones before it.
//
// Layout: <dir>/LOCK, <dir>/VERSION, <dir>/wal/*.wal (wal.ts, record.ts), <dir>/snap/*.snap (snapshot-file.ts).
// After a durable snapshot, WAL segments holding no entry that can still be live above it are deleted,
// except the newest `keepSegments` closed ones; snapshot files beyond the newest `keepSnapshots` are deleted.
//
// Failure model. A failed write or fsync poisons the instance (StorageFailedError for that save and every
// later one): after a failed fsync the kernel may have dropped the dirty pages, so retrying could report
// durable what is not. The process should exit; recovery reads what really is on disk.
//
// Every file-system call goes through the injected FileSystem (file-system.ts): the real one in a member, one
// with page-cache semantics and injected faults in the simulator.

import path from "node:path";
import { CompactedError, UnavailableError } from "../raft/errors.js";
import { assert } from "../assert.js";
import { lazySnapshot, type MemoryStorage, type ReleasedEntryReader, type Storage } from "../raft/storage.js";
import {
  emptyConfState,
  entrySize,
  isEmptySnapshot,
  type Entry,
  type HardState,
  type NodeId,
  type Snapshot,
  type SnapshotMetadata,
} from "../raft/types.js";
import { checkVersion } from "./data-dir.js";
import { StorageFailedError, StorageInputError } from "./errors.js";
import type { FileSystem } from "./file-system.js";
import { ensureDirSync } from "./fsutil.js";
import {
  DEFAULT_MAX_RECORD_BYTES,
  HEADER_BYTES,
  encodeEntries,
  encodeHardState,
  encodeSnapshotMarker,
} from "./record.js";
import { recover, type SnapshotFileRef, type StorageLogger } from "./recover.js";
import type { SegmentLiveness } from "./replay.js";
import { DEFAULT_MEMORY_LOG_BYTES } from "./defaults.js";
import { loadSnapshotFile, readSnapshotFile, SnapshotFileWriter, snapshotFileReader, writeSnapshotFile } from "./snapshot-file.js";
import { segmentFileName, WalWriter } from "./wal.js";
import { readEntriesRecord, type EntriesRecordLocation, type WalEntryIndex } from "./wal-entry-index.js";

export type { StorageLogger } from "./recover.js";

/** A snapshot file being handed its bytes (DurableStorage.beginSnapshot). */
export interface LocalSnapshotFile {
  /** The next bytes, in order; the piece must not change until `written` is called (it was written, or dropped). */
  append(piece: Uint8Array, written?: () => void): void;
  /** Durable file, then durable marker, then the log compacted; rejects with StorageFailedError if it failed. */
  finish(): Promise<void>;
  /** Drops the file (the snapshot was abandoned); resolves once it is removed, and never rejects. */
  abort(): Promise<void>;
}

const NO_BYTES = new Uint8Array(0);

export interface DurableStorageOptions {
  /** Roll to a new WAL segment when a batch would take the current one past this size. Default 64 MiB. */
  segmentBytes?: number;
  /** Closed WAL segments kept even when a snapshot covers them (a tail for inspection and slow peers). Default 1. */
  keepSegments?: number;
  /** Snapshot files kept (the newest ones). Default 2. */
  keepSnapshots?: number;
  /** Truncate the WAL at a damaged record instead of refusing to start. Loses that record and all after it. */
  repair?: boolean;
  /** Receives warnings (torn tail truncated, orphan snapshot removed, repair). Default: JSON lines on stderr. */
  logger?: StorageLogger;
  /** Upper bound on one WAL record's payload; a larger length on disk is damage. Default 256 MiB. */
  maxRecordBytes?: number;
  /**
   * Bytes of the newest log entries held in memory (Raft's entry size: data + 24 each). Past it, the oldest half
   * is released: the log keeps their terms and reads them back from the WAL when asked (a follower catching up
   * from behind them, a slow apply). Default DEFAULT_MEMORY_LOG_BYTES; the log since the last snapshot can be as
   * large as the snapshot, hundreds of MB.
   */
  memoryLogBytes?: number;
}

export interface StorageStats {
  /** fdatasync calls on WAL segments (one per group-committed batch). */
  fsyncs: number;
  /** save/saveSnapshot calls whose records were written. */
  saves: number;
  /** Bytes written to WAL segments. */
  bytes: number;
  /** The most saves one fsync has covered. */
  maxSavesPerFsync: number;
  /** Entries records read back from the WAL for entries the log had released from memory. */
  releasedReads: number;
}

interface PendingWrite {
  records: Buffer[];
  /** A snapshot file to make durable before the records that name it (an install from the leader). */
  snapshotFile?: Snapshot;
  /** A snapshot file already durable, named by these records (saveSnapshot wrote it outside the queue). */
  snapshotWritten?: SnapshotFileRef;
  /** The entries record among `records` and the indices it holds (segment liveness, reading entries back). */
  entriesRecord?: { bytes: Buffer; first: number; last: number };
  entriesAt?: EntriesRecordLocation;
  install: boolean;
  marker: boolean;
  hardStateAfter: HardState;
  /** Updates the in-memory log once the batch is durable: `w` says where its snapshot file and entries went. */
  apply: (w: PendingWrite) => void;
  snapshotPath?: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const stderrLogger: StorageLogger = {
  warn(obj, msg) {
    process.stderr.write(`${JSON.stringify({ level: "warn", component: "storage", ...obj, msg })}\n`);
  },
};

export class DurableStorage {
  readonly stats: StorageStats = { fsyncs: 0, saves: 0, bytes: 0, maxSavesPerFsync: 0, releasedReads: 0 };
  private readonly queue: PendingWrite[] = [];
  private flushing: Promise<void> | undefined;
  /** Snapshot files begun and not yet finished or aborted (beginSnapshot). */
  private readonly openSnapshotFiles = new Set<SnapshotFileWriter>();
  /** Snapshot files begun, local or installed: each writer's temporary file is named with its own number. */
  private snapshotFilesBegun = 0;
  /**
   * Work on snapshot files outside the queue that close waits for: files being finished (with their markers) and
   * the removal of files aborted (an aborted writer removes its file only after its queued writes end).
   */
  private readonly snapshotFileWork = new Set<Promise<void>>();
  private failure: Error | undefined;
  private closed = false;
  /**
   * The state the log will have once everything queued is applied: saves are validated and normalised
   * against it, because the in-memory log lags the queue.
   */
  private planned: { snapIndex: number; firstIndex: number; lastIndex: number; hardState: HardState };
  /** The hard state as of the last record written to the WAL; begins every new segment. */
  private walHardState: HardState;
  /** The newest durable snapshot, its bytes in `file` (holdSnapshotOnDisk). */
  private durableSnapshot: { snapshot: Snapshot; file: string } | undefined;
  /** Its bytes as recovery read and checked them, until readSnapshotData takes them (once: a member's start). */
  private recoveredSnapshotData: Uint8Array | undefined;
  /** A commit-only hard state noted while saves were in progress (see noteCommit). */
  private pendingCommit: HardState | undefined;
  /** The highest commit index noted without a write; the next entries written carry it (see save). */
  private notedCommit = 0;

  private constructor(
    private readonly fs: FileSystem,
    readonly dir: string,
    private readonly memory: MemoryStorage,
    readonly isNew: boolean,
    private readonly wal: WalWriter,
    private readonly liveness: SegmentLiveness,
    private readonly entryIndex: WalEntryIndex,
    private readonly snapshotFiles: SnapshotFileRef[],
    private readonly opts: Required<Omit<DurableStorageOptions, "repair" | "logger">> & { logger: StorageLogger },
  ) {
    const hs = memory.initialState().hardState;
    this.walHardState = hs;
    const snapIndex = memory.snapshot().metadata.index;
    this.planned = { snapIndex, firstIndex: memory.firstIndex(), lastIndex: memory.lastIndex(), hardState: hs };
  }

  static async open(fs: FileSystem, dir: string, options: DurableStorageOptions = {}): Promise<DurableStorage> {
    const opts = {
      segmentBytes: intOption("segmentBytes", options.segmentBytes, 64 * 1024 * 1024, 1024),
      keepSegments: intOption("keepSegments", options.keepSegments, 1, 0),
      keepSnapshots: intOption("keepSnapshots", options.keepSnapshots, 2, 1),
      maxRecordBytes: intOption("maxRecordBytes", options.maxRecordBytes, DEFAULT_MAX_RECORD_BYTES, 1024),
      memoryLogBytes: intOption("memoryLogBytes", options.memoryLogBytes, DEFAULT_MEMORY_LOG_BYTES, 0),
      logger: options.logger ?? stderrLogger,
    };
    if (typeof dir !== "string" || dir === "") throw new StorageInputError("data directory must be a non-empty path");
    if (fs.exists(dir) && !fs.isDirectory(dir)) {
      throw new StorageInputError(`data directory ${dir} exists but is not a directory`);
    }
    ensureDirSync(fs, dir);
    fs.lock(dir);
    try {
      const walDir = path.join(dir, "wal");
      const snapDir = path.join(dir, "snap");
      const hasData = fs.exists(walDir) || fs.exists(snapDir);
      checkVersion(fs, dir, hasData);
      ensureDirSync(fs, walDir);
      ensureDirSync(fs, snapDir);
      const r = await recover(fs, walDir, snapDir, {
        repair: options.repair ?? false,
        logger: opts.logger,
        maxRecordBytes: opts.maxRecordBytes,
      });
      const wal = await WalWriter.open(fs, walDir, r.segments, opts.segmentBytes);
      const disk = new DurableStorage(fs, dir, r.log, r.isNew, wal, r.liveness, r.entryIndex, r.snapshotFiles, opts);
      if (r.snapshot) {
        disk.holdSnapshotOnDisk(r.snapshot.metadata, r.snapshot.file);
        disk.recoveredSnapshotData = r.snapshot.data;
      }
      disk.maybeReleaseEntries();
      return disk;
    } catch (err) {
      fs.unlock(dir);
      throw err;
    }
  }

  /**
   * The log the Raft core reads (entries, hard state, snapshot): exactly what is durable, plus the commit
   * index noted without a write. Read-only: only this class writes it, after each save is durable.
   */
  get log(): Storage {
    return this.memory;
  }

  /** The last index in the durable log. */
  get durableLastIndex(): number {
    return this.memory.lastIndex();
  }

  /**
   * Only the commit index moved: nothing is written (after a crash the commit is re-learned from the leader).
   * With no save in progress the log takes it now; otherwise once the saves drain, because a save applied
   * after it would set the older hard state it carries.
   */
  noteCommit(hardState: HardState): void {
    validateHardState(hardState);
    this.notedCommit = Math.max(this.notedCommit, hardState.commit);
    if (this.queue.length === 0 && this.flushing === undefined) this.memory.setHardState(hardState);
    else this.pendingCommit = hardState;
  }

  /** The durable hard state (what the log holds). */
  get hardState(): HardState {
    return this.memory.initialState().hardState;
  }

  /** The newest durable snapshot, if any. */
  get snapshot(): Snapshot | undefined {
    return this.durableSnapshot?.snapshot;
  }

  /**
   * Start a brand-new cluster: a snapshot at (index 1, term 1) holding `voters`, as MemoryStorage.bootstrap.
   * Only on a directory that has never held state. `atIndex` > 1 starts the log after a restored state machine
   * that has applied that many entries (`concord snapshot restore`).
   */
  async bootstrap(voters: NodeId[], data: Uint8Array = new Uint8Array(), atIndex = 1): Promise<void> {
    if (!Number.isSafeInteger(atIndex) || atIndex < 1) throw new StorageInputError(`bootstrap index must be an integer >= 1, got ${atIndex}`);
    if (!Array.isArray(voters) || voters.length === 0 || !voters.every((v) => typeof v === "string" && v !== "")) {
      throw new StorageInputError("bootstrap needs a non-empty list of voter ids (non-empty strings)");
    }
    if (this.planned.lastIndex !== 0 || this.planned.snapIndex !== 0 || this.planned.hardState.term !== 0) {
      throw new StorageInputError(`bootstrap needs an empty data directory; ${this.dir} already holds state`);
    }
    const snap: Snapshot = {
      metadata: { index: atIndex, term: 1, confState: { ...emptyConfState(), voters: [...voters] } },
      data,
    };
    await this.save({ term: 1, vote: null, commit: atIndex }, [], snap);
  }

  /** Persist one Ready (see the header comment for the contract). */
  save(hardState: HardState | undefined, entries: readonly Entry[], snapshot: Snapshot | undefined): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    try {
      if (hardState !== undefined) validateHardState(hardState);
      if (!Array.isArray(entries)) throw new StorageInputError("entries must be an array");
      validateEntries(entries);
      if (snapshot !== undefined) validateSnapshot(snapshot);
    } catch (err) {
      return Promise.reject(err);
    }

    // Work on a copy of the planned state: a rejected save must leave it untouched.
    const p = { ...this.planned };
    const records: Buffer[] = [];
    let entriesRecord: PendingWrite["entriesRecord"];
    const installs = snapshot !== undefined && !isEmptySnapshot(snapshot) && snapshot.metadata.index > p.snapIndex;
    if (installs) {
      const { index, term } = snapshot.metadata;
      records.push(encodeSnapshotMarker({ index, term, install: true }));
      p.snapIndex = index;
      p.firstIndex = index + 1;
      p.lastIndex = index;
      if (p.hardState.commit < index) p.hardState = { ...p.hardState, commit: index };
    }
    // Entries at or below the snapshot are no-ops for the log (MemoryStorage.append drops them); leaving them
    // out keeps every entries record an effective "truncate after first-1, append", which replay relies on.
    const effective =
      entries.length > 0 && entries[0].index < p.firstIndex ? entries.slice(p.firstIndex - entries[0].index) : entries;
    if (effective.length > 0) {
      const first = effective[0].index;
      if (first > p.lastIndex + 1) {
        return Promise.reject(
          new StorageInputError(`entries start at index ${first}, leaving a gap after the last index ${p.lastIndex}`),
        );
      }
      // The commit index known so far, as far as it covers entries already in the log, is made durable BEFORE
      // the new entries: appending a membership change must imply that every earlier one is durably known to be
      // committed (apply-time configuration changes are safe only then: after a restart the member applies them
      // before it may campaign). A commit noted without a write (noteCommit) rides here too.
      const known = Math.min(Math.max(this.notedCommit, hardState?.commit ?? 0), first - 1);
      if (known > p.hardState.commit) {
        p.hardState = { ...p.hardState, commit: known };
        records.push(encodeHardState(p.hardState));
      }
      const record = encodeEntries(effective);
      if (record.length - HEADER_BYTES > this.opts.maxRecordBytes) {
        return Promise.reject(
          new StorageInputError(
            `entries ${first}..${first + effective.length - 1} encode to ${record.length - HEADER_BYTES} bytes, over the ` +
              `record limit maxRecordBytes=${this.opts.maxRecordBytes}; split them across saves or raise the limit`,
          ),
        );
      }
      records.push(record);
      p.lastIndex = first + effective.length - 1;
      entriesRecord = { bytes: record, first, last: p.lastIndex };
    }
    if (hardState !== undefined) {
      records.push(encodeHardState(hardState));
      p.hardState = { ...hardState };
    }
    this.planned = p;
    return this.enqueue({
      records,
      snapshotFile: installs ? snapshot : undefined,
      entriesRecord,
      install: installs,
      marker: installs,
      hardStateAfter: p.hardState,
      apply: (w) => {
        if (installs) {
          this.memory.applySnapshot(snapshot);
          this.entryIndex.onInstall();
          this.lastRead = undefined;
          assert(w.snapshotPath !== undefined, "an installed snapshot's file was not written");
          this.holdSnapshotOnDisk(snapshot.metadata, w.snapshotPath);
        }
        if (hardState !== undefined) this.memory.setHardState(hardState);
        if (effective.length > 0) {
          assert(w.entriesAt !== undefined, "written entries have no location in the WAL");
          this.memory.append(effective as Entry[]);
          this.entryIndex.onEntries(w.entriesAt, entriesRecord!.last);
        }
      },
    });
  }

  /**
   * Make a snapshot of applied state durable (file, then a marker record), then compact the log up to it and
   * delete WAL segments and old snapshot files it covers: beginSnapshot with the whole of `snapshot.data`.
   */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    let file: LocalSnapshotFile;
    try {
      validateSnapshot(snapshot);
      file = this.beginSnapshot(snapshot.metadata);
    } catch (err) {
      return Promise.reject(err);
    }
    file.append(snapshot.data);
    return file.finish();
  }

  /**
   * Starts the file of a snapshot of applied state at `metadata.index` (which must be in the log), to be handed
   * its bytes as they are made (`append`, a member's snapshot job: no buffer of the whole snapshot is ever
   * needed). `finish` makes it durable, then queues its marker record and, once that is durable, compacts the log
   * up to it and deletes WAL segments and old snapshot files it covers; the log reads the bytes back from the
   * file when a follower needs them. `abort` drops the file. Throws StorageInputError for a snapshot not in the
   * log, and refuses (StorageFailedError) once the storage failed or closed.
   *
   * The file is written and fsynced outside the group commit, while saves go on: only its marker joins the
   * queue, once the file is durable. (A file of hundreds of megabytes written inside a batch held every later
   * save — and so every ack and commit — for seconds.) The marker may then follow entries above its index in the
   * WAL, which replay allows: a marker only moves the base, and those entries are above it. If a snapshot
   * installed from the leader overtakes it meanwhile, the file is removed and `finish` resolves without effect.
   * Closing the storage aborts files not yet finished, and waits until every aborted file is removed.
   */
  beginSnapshot(metadata: SnapshotMetadata): LocalSnapshotFile {
    const refused = this.refusal();
    if (refused) throw refused;
    this.validateLocalSnapshot(metadata);
    const { index, term } = metadata;
    const writer = new SnapshotFileWriter(this.fs, path.join(this.dir, "snap"), metadata, ++this.snapshotFilesBegun);
    this.openSnapshotFiles.add(writer);
    return {
      append: (piece, written) => writer.append(piece, written),
      abort: () => {
        this.openSnapshotFiles.delete(writer);
        return this.trackSnapshotFileWork(writer.abort());
      },
      finish: () => {
        this.openSnapshotFiles.delete(writer);
        const done = writer.finish().then(
          (file) => this.enqueueSnapshotMarker(metadata, file),
          (err: unknown) => {
            // As a failed WAL write: the disk may have dropped what it said it wrote.
            this.failure ??= err instanceof Error ? err : new Error(String(err));
            throw new StorageFailedError(`storage ${this.dir} failed to write snapshot ${term}-${index}: ${this.failure.message}`, {
              cause: err,
            });
          },
        );
        return this.trackSnapshotFileWork(done);
      },
    };
  }

  /** `work` until it settles, for close to wait on; returns it. */
  private trackSnapshotFileWork(work: Promise<void>): Promise<void> {
    this.snapshotFileWork.add(work);
    const untrack = () => this.snapshotFileWork.delete(work);
    work.then(untrack, untrack);
    return work;
  }

  /** A local snapshot must be of an index in the log, after the current snapshot, with the log's term there. */
  private validateLocalSnapshot(metadata: SnapshotMetadata): void {
    validateMetadata(metadata);
    const { index, term } = metadata;
    if (index <= this.planned.snapIndex) {
      throw new StorageInputError(`snapshot index ${index} is not after the current snapshot index ${this.planned.snapIndex}`);
    }
    if (index > this.memory.lastIndex() || index > this.planned.lastIndex) {
      throw new StorageInputError(`snapshot index ${index} is past the log's last index ${this.memory.lastIndex()}`);
    }
    let logTerm: number;
    try {
      logTerm = this.memory.term(index);
    } catch (err) {
      if (err instanceof CompactedError || err instanceof UnavailableError) throw new StorageInputError(err.message);
      throw err;
    }
    if (logTerm !== term) throw new StorageInputError(`snapshot term ${term} differs from the log's term ${logTerm} at index ${index}`);
  }

  /** Queue the marker of a snapshot whose file `file` is durable (beginSnapshot). */
  private async enqueueSnapshotMarker(metadata: SnapshotMetadata, file: string): Promise<void> {
    const { index, term, confState } = metadata;
    const refused = this.refusal();
    if (refused) throw refused;
    if (index <= this.planned.snapIndex) {
      // Overtaken by a snapshot installed from the leader while the file was written: the log is past it.
      await this.fs.remove(file).catch(() => {}); // otherwise an orphan, removed on the next open
      return;
    }
    this.planned.snapIndex = index;
    this.planned.firstIndex = Math.max(this.planned.firstIndex, index + 1);
    await this.enqueue({
      records: [encodeSnapshotMarker({ index, term, install: false })],
      snapshotWritten: { index, term, file },
      install: false,
      marker: true,
      hardStateAfter: this.planned.hardState,
      apply: () => {
        // The bytes are in the file alone: the log's snapshot reads them from it (holdSnapshotOnDisk, at once).
        if (this.memory.snapshot().metadata.index < index) this.memory.createSnapshot(index, confState, NO_BYTES);
        this.memory.compact(index);
        this.entryIndex.compact(index);
        this.lastRead = undefined;
        this.holdSnapshotOnDisk(metadata, file);
      },
    });
  }

  /**
   * Makes the snapshot in `file` the durable one. Its bytes stay on disk, not in memory (they can be a large share
   * of the process): the log reads the file back when a follower needs it.
   */
  private holdSnapshotOnDisk(metadata: SnapshotMetadata, file: string): void {
    const load = () => loadSnapshotFile(this.fs, file).data;
    const open = () => snapshotFileReader(this.fs, file);
    this.memory.releaseSnapshotData(metadata.index, load, open);
    this.durableSnapshot = { snapshot: lazySnapshot(metadata, load, open), file };
    this.recoveredSnapshotData = undefined;
  }

  /**
   * The durable snapshot's bytes, what a member restores at its start: those recovery read, the first time (they
   * are then let go), else read from its file again (readSnapshotFile: a chunk at a time off the event loop, and
   * checked against its checksum). Undefined when there is no snapshot.
   */
  async readSnapshotData(): Promise<Uint8Array | undefined> {
    const recovered = this.recoveredSnapshotData;
    this.recoveredSnapshotData = undefined;
    if (recovered) return recovered;
    const durable = this.durableSnapshot;
    return durable && (await readSnapshotFile(this.fs, durable.file)).data;
  }

  /** Wait for queued saves, close the active segment and release the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Snapshot files still being handed their bytes are dropped; those being finished outside the queue finish
    // first (their markers are then refused), and files aborted before are removed first.
    for (const writer of this.openSnapshotFiles) this.trackSnapshotFileWork(writer.abort());
    this.openSnapshotFiles.clear();
    await Promise.allSettled(this.snapshotFileWork);
    while (this.flushing) await this.flushing;
    await this.wal.close();
    this.fs.unlock(this.dir);
  }

  private refusal(): Error | undefined {
    if (this.failure)
      return new StorageFailedError(`storage ${this.dir} failed earlier: ${this.failure.message}`, {
        cause: this.failure,
      });
    if (this.closed) return new StorageFailedError(`storage ${this.dir} is closed`);
    return undefined;
  }

  private enqueue(w: Omit<PendingWrite, "resolve" | "reject">): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...w, resolve, reject });
      if (this.flushing === undefined) this.flushing = this.drain();
    });
  }

  /**
   * Drains the queue: each pass writes everything queued so far as one batch (group commit).
   * Clearing `flushing` must happen in the same synchronous step that finds the queue empty, or a save
   * enqueued in between would wait forever: so the loop returns (never awaits) after its last check.
   */
  private async drain(): Promise<void> {
    for (;;) {
      if (this.queue.length === 0) {
        this.flushing = undefined;
        if (this.pendingCommit !== undefined && this.pendingCommit.commit > this.memory.initialState().hardState.commit) {
          this.memory.setHardState({ ...this.memory.initialState().hardState, commit: this.pendingCommit.commit });
        }
        this.pendingCommit = undefined;
        return;
      }
      const batch = this.queue.splice(0, this.queue.length);
      try {
        await this.writeBatch(batch);
        for (const w of batch) w.apply(w);
        this.maybeReleaseEntries();
        if (this.queue.length === 0) this.assertPlannedReached();
      } catch (err) {
        this.fail(err, batch);
        this.flushing = undefined;
        return;
      }
      // Cleanup before resolving, so a resolved saveSnapshot has also removed what it covers (rare: only
      // batches carrying a snapshot marker pay for it).
      if (batch.some((w) => w.marker)) await this.removeCovered();
      for (const w of batch) w.resolve();
    }
  }

  /** Once everything queued is applied, the in-memory log must be exactly the planned state. */
  private assertPlannedReached(): void {
    const p = this.planned;
    const log = this.memory;
    assert(
      log.lastIndex() === p.lastIndex &&
        log.firstIndex() === p.firstIndex &&
        log.snapshot().metadata.index >= p.snapIndex,
      () =>
        `log [${log.firstIndex()}, ${log.lastIndex()}] with snapshot ${log.snapshot().metadata.index} differs from the ` +
        `planned [${p.firstIndex}, ${p.lastIndex}] with snapshot ${p.snapIndex}`,
    );
  }

  private async writeBatch(batch: PendingWrite[]): Promise<void> {
    for (const w of batch) {
      if (w.snapshotWritten !== undefined) {
        this.snapshotFiles.push(w.snapshotWritten);
        w.snapshotPath = w.snapshotWritten.file;
      }
      if (w.snapshotFile === undefined) continue;
      const { index, term } = w.snapshotFile.metadata;
      const file = await writeSnapshotFile(this.fs, path.join(this.dir, "snap"), w.snapshotFile, ++this.snapshotFilesBegun);
      this.snapshotFiles.push({ index, term, file });
      w.snapshotPath = file;
    }
    const parts = batch.flatMap((w) => w.records);
    if (parts.length === 0) return;
    let bytes = parts.reduce((n, b) => n + b.length, 0);
    let header = 0;
    if (this.wal.needsRoll(bytes)) {
      await this.wal.roll();
      this.liveness.addSegment(this.wal.activeSeq!);
    }
    if (this.wal.activeSize === 0) {
      // Every segment begins with the hard state, so deleting older segments never loses it. (An empty
      // segment can also be left by a crash right after a roll; it is reused, and gets its header here.)
      const hs = encodeHardState(this.walHardState);
      parts.unshift(hs);
      bytes += hs.length;
      header = hs.length;
    }
    // Where each entries record lands: after what the segment holds, the header hard state, the records before it.
    const seq = this.wal.activeSeq!;
    let at = this.wal.activeSize + header;
    for (const w of batch) {
      for (const r of w.records) {
        if (r === w.entriesRecord?.bytes) w.entriesAt = { seq, offset: at, length: r.length, first: w.entriesRecord.first };
        at += r.length;
      }
    }
    await this.wal.writeAndSync(parts, bytes);
    for (const w of batch) {
      if (w.install) this.liveness.onInstall();
      if (w.entriesRecord !== undefined) this.liveness.onEntries(seq, w.entriesRecord.last);
      this.walHardState = w.hardStateAfter;
    }
    this.stats.fsyncs++;
    this.stats.bytes += bytes;
    const saves = batch.filter((w) => w.records.length > 0).length;
    this.stats.saves += saves;
    this.stats.maxSavesPerFsync = Math.max(this.stats.maxSavesPerFsync, saves);
  }

  /**
   * Past `memoryLogBytes` of entries held, release the oldest of them down to half of it: the log keeps their
   * terms and reads them back with readReleased. Every entry the log holds is durable and located in the WAL
   * (applied in the same step as its record's location).
   */
  private maybeReleaseEntries(): void {
    const limit = this.opts.memoryLogBytes;
    if (this.memory.heldBytes() > limit) this.memory.releaseEntries(Math.floor(limit / 2), this.readReleased);
  }

  /**
   * The last entries record read back: a catch-up reads a record's entries a message at a time. One record at most
   * (one save's entries); dropped at the next compaction. Held strongly, so the reads a run makes do not depend
   * on when the collector runs (the simulator replays a seed exactly).
   */
  private lastRead: { record: EntriesRecordLocation; entries: Entry[] } | undefined;

  private readonly readReleased: ReleasedEntryReader = (lo, hi, maxBytes) => {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; ) {
      const run = this.entryIndex.find(i);
      assert(run !== undefined, () => `released log entry ${i} has no location in the WAL`);
      let entries = this.lastRead?.record === run.record ? this.lastRead.entries : undefined;
      if (entries === undefined) {
        entries = readEntriesRecord(this.fs, path.join(this.dir, "wal", segmentFileName(run.record.seq)), run.record);
        this.lastRead = { record: run.record, entries };
        this.stats.releasedReads++;
      }
      for (const end = Math.min(run.last, hi - 1); i <= end; i++) {
        const e = entries[i - run.record.first];
        bytes += entrySize(e);
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(e);
      }
    }
    return out;
  };

  /** Delete WAL segments and snapshot files the newest durable snapshot makes unnecessary. */
  private async removeCovered(): Promise<void> {
    const snapIndex = this.durableSnapshot?.snapshot.metadata.index ?? 0;
    try {
      const removed = await this.wal.removeOldest(
        (seg, newer) => newer > this.opts.keepSegments && this.liveness.bound(seg.seq) <= snapIndex,
      );
      for (const seg of removed) this.liveness.removeSegment(seg.seq);
      this.snapshotFiles.sort((a, b) => a.index - b.index);
      const stale = this.snapshotFiles.splice(0, Math.max(0, this.snapshotFiles.length - this.opts.keepSnapshots));
      for (const s of stale) await this.fs.remove(s.file);
      if (stale.length > 0) await this.fs.syncDir(path.join(this.dir, "snap"));
    } catch (err) {
      // Leftover files cost disk space, not correctness: the next snapshot retries.
      this.opts.logger.warn(
        { dir: this.dir, err: (err as Error).message },
        "could not remove files covered by a snapshot",
      );
    }
  }

  private fail(err: unknown, batch: PendingWrite[]): void {
    this.failure = err instanceof Error ? err : new Error(String(err));
    const wrapped = new StorageFailedError(`storage ${this.dir} failed to persist: ${this.failure.message}`, {
      cause: err,
    });
    for (const w of batch) w.reject(wrapped);
    for (const w of this.queue.splice(0, this.queue.length)) w.reject(wrapped);
  }
}

function intOption(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new StorageInputError(`option ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

function validateHardState(hs: HardState): void {
  if (
    typeof hs !== "object" ||
    hs === null ||
    !isCount(hs.term) ||
    !isCount(hs.commit) ||
    !(hs.vote === null || typeof hs.vote === "string")
  ) {
    throw new StorageInputError(
      `hard state must be { term: integer >= 0, vote: string | null, commit: integer >= 0 }, got ${JSON.stringify(hs)}`,
    );
  }
}

function validateEntries(entries: readonly Entry[]): void {
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (typeof e !== "object" || e === null || !isCount(e.index) || e.index === 0 || !isCount(e.term)) {
      throw new StorageInputError(`entry ${i} needs integer index >= 1 and term >= 0`);
    }
    if (e.type !== 0 && e.type !== 1)
      throw new StorageInputError(`entry ${e.index} has type ${String(e.type)}; accepted: 0 (normal), 1 (conf change)`);
    if (!(e.data instanceof Uint8Array)) throw new StorageInputError(`entry ${e.index} data must be a Uint8Array`);
    if (i > 0 && e.index !== entries[i - 1].index + 1) {
      throw new StorageInputError(`entries must be contiguous: index ${e.index} follows ${entries[i - 1].index}`);
    }
  }
}

function validateSnapshot(s: Snapshot): void {
  if (!(s?.data instanceof Uint8Array)) {
    throw new StorageInputError("snapshot must be { metadata: { index, term, confState }, data: Uint8Array }");
  }
  validateMetadata(s.metadata);
}

function validateMetadata(m: SnapshotMetadata): void {
  if (typeof m !== "object" || m === null || !isCount(m.index) || !isCount(m.term)) {
    throw new StorageInputError("snapshot metadata must be { index, term, confState }");
  }
  const cs = m.confState;
  if (typeof cs !== "object" || cs === null || !Array.isArray(cs.voters) || !Array.isArray(cs.learners)) {
    throw new StorageInputError("snapshot metadata.confState must hold voters and learners arrays");
  }
}
