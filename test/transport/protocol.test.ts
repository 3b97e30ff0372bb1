// The member's side of the client protocol: decodeClientFrame, the trust boundary for every client frame.

import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { decodeClientFrame, encodeFrame, ProtocolError } from "../../src/transport/protocol.js";

/** msgpackr's BigInt extension carries an integer of any size: what a client other than ours can send. */
const bigIntPackr = new Packr({ useRecords: false, useBigIntExtension: true });

function refusal(frame: Uint8Array): ProtocolError {
  try {
    decodeClientFrame(frame, 1 << 20);
  } catch (e) {
    return e as ProtocolError;
  }
  throw new Error("the frame was accepted");
}

describe("decodeClientFrame", () => {
  // A follower forwards a request to the leader whole, so it must encode it again; the leader checks the fields
  // it knows and ignores the rest. Refusing at decode makes every member answer alike (client-port fuzz seed
  // 1594251344 found a follower answering INTERNAL).
  it.each([
    ["an unknown field", { id: 7, op: "put", key: "k", value: "v", extra: 2n ** 100n }, "put.extra"],
    [
      "a nested field",
      { id: 7, op: "txn", success: [{ put: { key: "k", lease: -(2n ** 70n) } }] },
      "txn.success[0].put.lease",
    ],
  ])("refuses an integer past 64 bits in %s with INVALID_ARGUMENT, naming it and carrying the id", (_, frame, path) => {
    const e = refusal(bigIntPackr.pack(frame));
    expect(e).toBeInstanceOf(ProtocolError);
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.requestId).toBe(7);
    expect(e.message).toMatch(
      new RegExp(`^${path.replace(/[.[\]]/g, "\\$&")} is an integer of \\d+ bits; expected at most 64 bits`),
    );
  });

  it("takes integers that fit msgpack's 64 bits, which a follower can forward", () => {
    for (const n of [2n ** 64n - 1n, -(2n ** 63n)]) {
      const f = decodeClientFrame(bigIntPackr.pack({ id: 1, op: "put", key: "k", value: "v", extra: n }), 1 << 20);
      expect(() => encodeFrame(f)).not.toThrow();
    }
  });

  it("still refuses a string that was not valid UTF-8, and takes U+FFFD sent as itself", () => {
    const bad = Buffer.from(encodeFrame({ id: 3, op: "put", key: "kX", value: "v" }));
    bad[bad.indexOf("kX") + 1] = 0xff; // a byte that cannot start a UTF-8 sequence
    const e = refusal(bad);
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toMatch(/^put\.key is a string that is not valid UTF-8/);
    expect(decodeClientFrame(encodeFrame({ id: 3, op: "put", key: "k\uFFFD", value: "v" }), 1 << 20)).toMatchObject({
      key: "k\uFFFD",
    });
  });
});
