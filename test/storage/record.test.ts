import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { crc32c } from "../../src/storage/crc32c.js";
import {
  HEADER_BYTES,
  RecordKind,
  decodeRecord,
  encodeEntries,
  encodeHardState,
  encodeSnapshotMarker,
} from "../../src/storage/record.js";
import { scanSegment, scanWholeRecords } from "../../src/storage/segment-scan.js";
import { entry, prng } from "./helpers.js";

/** Bitwise reference CRC-32C, to check the table-driven one against. */
function crc32cReference(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe("crc32c", () => {
  it("matches the standard check value and a bitwise reference, also when continued across ranges", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
    const rnd = prng(1);
    for (let n = 0; n < 200; n += 7) {
      const buf = Uint8Array.from({ length: n }, () => rnd.int(0, 255));
      expect(crc32c(buf)).toBe(crc32cReference(buf));
      const cut = Math.floor(n / 3);
      expect(crc32c(buf, crc32c(buf, 0, 0, cut), cut, n)).toBe(crc32cReference(buf));
    }
  });
});

describe("records", () => {
  it("round-trips entries across every msgpack width, and the payload is plain msgpack", () => {
    const big = new Uint8Array(70_000).fill(9);
    const cases = [
      [entry(1, 0, [])],
      [entry(127, 127, [1]), entry(128, 128, new Uint8Array(255))],
      Array.from({ length: 30 }, (_, k) => entry(70_000 + k, 65_536, new Uint8Array(256).fill(k))),
      [entry(2 ** 33, 2 ** 40, big), { ...entry(2 ** 33 + 1, 2 ** 40), type: 1 as const }],
    ];
    const packr = new Packr({ useRecords: false });
    for (const entries of cases) {
      const rec = encodeEntries(entries);
      expect(rec.readUInt32LE(0)).toBe(rec.length - HEADER_BYTES);
      const decoded = decodeRecord(rec[8], rec.subarray(HEADER_BYTES));
      expect(decoded).toMatchObject({ kind: RecordKind.Entries });
      const got = (decoded as { entries: typeof entries }).entries;
      expect(got.map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString("hex")])).toEqual(
        entries.map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString("hex")]),
      );
      const generic = packr.unpack(rec.subarray(HEADER_BYTES)) as unknown[];
      expect(generic.length).toBe(1 + entries.length * 3);
      expect(Number(generic[0])).toBe(entries[0].index); // msgpackr reads uint64 as a BigInt
    }
  });

  it("round-trips hard states and snapshot markers", () => {
    const hs = encodeHardState({ term: 5, vote: "n2", commit: 9 });
    expect(decodeRecord(hs[8], hs.subarray(HEADER_BYTES))).toEqual({
      kind: RecordKind.HardState,
      hardState: { term: 5, vote: "n2", commit: 9 },
    });
    const m = encodeSnapshotMarker({ index: 10, term: 3, install: true });
    expect(decodeRecord(m[8], m.subarray(HEADER_BYTES))).toEqual({
      kind: RecordKind.Snapshot,
      marker: { index: 10, term: 3, install: true },
    });
  });

  it("describes malformed payloads instead of throwing", () => {
    expect(decodeRecord(RecordKind.Entries, Uint8Array.from([0x93, 1, 1, 1]))).toMatch(/malformed entries payload/);
    expect(decodeRecord(RecordKind.HardState, Uint8Array.from([0xc1]))).toMatch(/undecodable|not an array|malformed/);
    expect(decodeRecord(9, Uint8Array.from([0x90]))).toMatch(/unknown record kind 9/);
  });
});

describe("scanSegment", () => {
  const segment = Buffer.concat([
    encodeHardState({ term: 1, vote: null, commit: 0 }),
    encodeEntries([entry(1, 1), entry(2, 1)]),
    encodeEntries([entry(3, 1, new Uint8Array(40).fill(7))]),
  ]);
  const lastStart = segment.length - encodeEntries([entry(3, 1, new Uint8Array(40).fill(7))]).length;

  it("reads a clean segment", () => {
    const r = scanSegment(segment, true);
    expect(r.status).toBe("ok");
    expect(r.records.map((x) => x.kind)).toEqual([RecordKind.HardState, RecordKind.Entries, RecordKind.Entries]);
  });

  it("calls a cut-short final record torn in the last segment, and corruption in an older one", () => {
    for (let cut = lastStart + 1; cut < segment.length; cut++) {
      const torn = scanSegment(segment.subarray(0, cut), true);
      expect(torn).toMatchObject({ status: "torn", validBytes: lastStart });
      expect(scanSegment(segment.subarray(0, cut), false)).toMatchObject({ status: "corrupt", validBytes: lastStart });
    }
  });

  it("reads zeros after the last record as the end of any segment (the writer preallocates them)", () => {
    const zeros = Buffer.concat([segment, Buffer.alloc(100)]);
    expect(scanSegment(zeros, true)).toEqual(scanSegment(segment, true));
    expect(scanSegment(zeros, false)).toEqual(scanSegment(segment, false));
    expect(scanSegment(zeros, true)).toMatchObject({ status: "ok", validBytes: segment.length });
  });

  it("calls a record that never fully reached the disk (zeros inside it and after it) torn", () => {
    const lost = Buffer.concat([segment, Buffer.alloc(64)]);
    lost.fill(0, segment.length - 10, segment.length);
    expect(scanSegment(lost, true)).toMatchObject({ status: "torn", validBytes: lastStart });
    expect(scanSegment(lost, false)).toMatchObject({ status: "corrupt", validBytes: lastStart });
  });

  it("calls a record torn at a sector boundary (whole sectors unwritten, reading as zeros, to the end) torn", () => {
    const big = encodeEntries([entry(4, 1, new Uint8Array(900).fill(9))]); // spans the boundary at 512
    const seg = Buffer.concat([segment, big]);
    const tornAtSector = Buffer.from(seg);
    tornAtSector.fill(0, 512);
    expect(scanSegment(tornAtSector, true)).toMatchObject({ status: "torn", validBytes: segment.length });
    // Zeros that do not start at a sector boundary are not what an interrupted write leaves: damage.
    const zeroedMidSector = Buffer.from(seg);
    zeroedMidSector.fill(0, 600);
    expect(seg.length).toBeLessThan(1024); // no later boundary inside the record
    expect(scanSegment(zeroedMidSector, true)).toMatchObject({ status: "corrupt", validBytes: segment.length });
  });

  it("calls a record torn at a later sector boundary (the write reached some sectors, not all) torn", () => {
    const big = encodeEntries([entry(4, 1, new Uint8Array(2000).fill(9))]); // spans the boundaries at 512, 1024, 1536
    const seg = Buffer.concat([segment, big]);
    for (const boundary of [512, 1024, 1536]) {
      const torn = Buffer.from(seg);
      torn.fill(0, boundary);
      expect(scanSegment(torn, true)).toMatchObject({ status: "torn", validBytes: segment.length });
    }
    // The record whole but one bit flipped, zeros after it: damage, not an interrupted write.
    const flipped = Buffer.concat([seg, Buffer.alloc(600)]);
    flipped[segment.length + 100] ^= 1;
    expect(scanSegment(flipped, true)).toMatchObject({ status: "corrupt", validBytes: segment.length });
  });

  it("calls a checksum mismatch corruption even at the end of the last segment", () => {
    const bad = Buffer.from(segment);
    bad[bad.length - 1] ^= 1;
    expect(scanSegment(bad, true)).toMatchObject({ status: "corrupt", validBytes: lastStart });
  });

  it("does not mistake a damaged length pointing past the end for a torn tail when valid records follow", () => {
    const bad = Buffer.from(segment);
    bad.writeUInt32LE(10_000, 0); // the first record now claims to run past the end of the file
    const r = scanSegment(bad, true);
    expect(r.status).toBe("corrupt");
    expect(r.status === "corrupt" && r.reason).toMatch(/valid records follow/);
  });
});

describe("scanWholeRecords (a segment scanned as it is read)", () => {
  it("then scanSegment from where it stopped gives what one scan of the whole segment gives, damaged or not", () => {
    const rnd = prng(5);
    for (let round = 0; round < 300; round++) {
      const parts: Buffer[] = [];
      for (let i = 0, n = rnd.int(1, 12); i < n; i++) {
        parts.push(encodeEntries([entry(i + 1, 1, new Uint8Array(rnd.int(1, 700)).fill(i + 1))]));
      }
      let seg = Buffer.concat([...parts, Buffer.alloc(rnd.int(0, 2000))]);
      const damage = rnd.int(0, 3);
      if (damage === 1) seg = seg.subarray(0, rnd.int(1, seg.length)); // cut short
      if (damage === 2) seg[rnd.int(0, seg.length - 1)] ^= 1 << rnd.int(0, 7); // a bit flipped
      if (damage === 3) seg.fill(0, rnd.int(0, seg.length - 1)); // zeros from anywhere on
      const isLast = rnd.int(0, 1) === 1;
      const want = scanSegment(seg, isLast);
      let scanned = 0;
      const taken = [];
      for (let read = 0; read < seg.length; ) {
        read = Math.min(seg.length, read + rnd.int(1, 900));
        const whole = scanWholeRecords(seg, scanned, read);
        expect(whole.next).toBeLessThanOrEqual(read);
        scanned = whole.next;
        taken.push(...whole.records);
      }
      const rest = scanSegment(seg, isLast, undefined, scanned);
      expect({ ...rest, records: [...taken, ...rest.records] }, `round ${round}`).toEqual(want);
    }
  });
});
