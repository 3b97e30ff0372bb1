import { describe, expect, it } from "vitest";
import { decodeNodeSnapshot, encodeNodeSnapshot } from "../../src/host/node-snapshot.js";

describe("member snapshot format", () => {
  const members = [
    { id: "n1", peerUrl: "ws://127.0.0.1:7001", clientUrl: "ws://127.0.0.1:7000" },
    { id: "n2", peerUrl: "ws://127.0.0.1:7011", clientUrl: "" },
  ];

  it("round-trips the membership and the state machine bytes unchanged", () => {
    const sm = new Uint8Array(100_000).map((_, i) => i % 251);
    const back = decodeNodeSnapshot(encodeNodeSnapshot({ v: 1, members, sm }));
    expect(back.members).toEqual(members);
    expect(Buffer.from(back.sm).equals(Buffer.from(sm))).toBe(true);
  });

  it("refuses anything else with a clear reason", () => {
    const good = encodeNodeSnapshot({ v: 1, members, sm: new Uint8Array([1, 2, 3]) });
    expect(() => decodeNodeSnapshot(new Uint8Array([1, 2, 3]))).toThrow(/not a Concord snapshot/);
    const future = good.slice();
    future[4] = 9;
    expect(() => decodeNodeSnapshot(future)).toThrow(/version 9 is not supported/);
    expect(() => decodeNodeSnapshot(good.subarray(0, 12))).toThrow(/truncated/);
  });
});

describe("member snapshot position", () => {
  const members = [{ id: "n1", peerUrl: "ws://127.0.0.1:7001", clientUrl: "" }];

  it("carries the log index and term when given (snapshot save) and reads files without them", () => {
    const sm = new Uint8Array([1, 2, 3]);
    expect(decodeNodeSnapshot(encodeNodeSnapshot({ v: 1, members, sm, index: 47, term: 7 }))).toMatchObject({ index: 47, term: 7 });
    const old = decodeNodeSnapshot(encodeNodeSnapshot({ v: 1, members, sm }));
    expect(old.index).toBeUndefined();
    expect(old.term).toBeUndefined();
  });
});
