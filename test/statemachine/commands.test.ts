import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  COMMAND_FORMAT_VERSION,
  decodeCommand,
  encodeCommand,
  isCommandError,
  type Command,
} from "../../src/statemachine/commands.js";
import { StateMachine } from "../../src/statemachine/state-machine.js";
import { normalize, resolve, templateArb, TEST_LIMITS } from "./arbitraries.js";
import { Model } from "./model.js";

const packr = new Packr({ useRecords: false });
const raw = (body: unknown) => {
  const packed = packr.pack(body);
  const bytes = new Uint8Array(packed.length + 1);
  bytes[0] = COMMAND_FORMAT_VERSION;
  bytes.set(packed, 1);
  return bytes;
};
const v = (s: string) => new TextEncoder().encode(s);

describe("command encoding", () => {
  it("round-trips every generated command", () => {
    fc.assert(
      fc.property(templateArb, (t) => {
        const command = resolve(t, new Model(TEST_LIMITS));
        const decoded = decodeCommand(encodeCommand(command));
        expect(isCommandError(decoded)).toBe(false);
        expect(normalize(decoded)).toEqual(normalize(command));
      }),
      { numRuns: 500 },
    );
  });

  it("never throws on random bytes, and a refused entry changes nothing", () => {
    const sm = new StateMachine();
    sm.applyCommand(1, { op: "put", key: "k", value: v("v") });
    let index = 1;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc.uint8Array({ maxLength: 64 }).map((b) => Uint8Array.of(COMMAND_FORMAT_VERSION, ...b)),
          fc.anything().map((x) => raw(x)),
          fc.dictionary(fc.constantFrom("op", "key", "value", "session", "fence", "compare"), fc.anything()).map(raw),
        ),
        (bytes) => {
          const { result } = sm.apply(++index, bytes);
          if (!result.ok) expect(typeof result.error.message).toBe("string");
        },
      ),
      { numRuns: 2000 },
    );
    // Random input may legitimately be a valid read; it must never have written anything.
    expect(sm.revision).toBe(1);
    expect(sm.get("k")?.version).toBe(1);
  });

  it.each([
    [{ op: "put", key: "k" }, "INVALID_ARGUMENT", "value"],
    [{ op: "put", key: "", value: v("x") }, "INVALID_ARGUMENT", "key"],
    [{ op: "put", key: "k", value: "text" }, "INVALID_ARGUMENT", "value"],
    [{ op: "put", key: "k", value: v("x"), lease: -1 }, "INVALID_ARGUMENT", "lease"],
    [{ op: "put", key: "k", value: v("x"), fence: { lock: "l" } }, "INVALID_ARGUMENT", "fence.token"],
    [{ op: "range", key: "k", limit: 1.5 }, "INVALID_ARGUMENT", "limit"],
    [
      {
        op: "txn",
        success: [
          { op: "put", key: "a", value: v("") },
          { op: "put", value: v("") },
        ],
      },
      "INVALID_ARGUMENT",
      "success[1].key",
    ],
    [
      { op: "txn", compare: [{ key: "a", target: "size", result: "=", value: 1 }] },
      "INVALID_ARGUMENT",
      "compare[0].target",
    ],
    [
      { op: "txn", compare: [{ key: "a", target: "value", result: "=", value: 1 }] },
      "INVALID_ARGUMENT",
      "compare[0].value",
    ],
    [{ op: "txn", failure: [{ op: "txn" }] }, "INVALID_ARGUMENT", "failure[0].op"],
    [{ op: "leaseGrant", ttlMs: 1000 }, "INVALID_ARGUMENT", "grantedAt"],
    [{ op: "leaseExpire", ids: [1, "2"] }, "INVALID_ARGUMENT", "ids[1].id"],
    [
      { op: "put", key: "k", value: v("x"), session: { clientId: 1, seq: 2, lowestUnacked: 3 } },
      "INVALID_ARGUMENT",
      "session.lowestUnacked",
    ],
    [{ op: "frobnicate" }, "MALFORMED_COMMAND", "op"],
  ])("refuses %j with %s naming %s", (body, code, field) => {
    const decoded = decodeCommand(raw(body));
    expect(isCommandError(decoded)).toBe(true);
    expect(decoded).toMatchObject({ code, field });
    expect((decoded as { message: string }).message).toMatch(/expected/);
  });

  it("refuses an unknown format version and a body that is not msgpack", () => {
    const wrongVersion = encodeCommand({ op: "leaseList" } as Command);
    wrongVersion[0] = 7;
    expect(decodeCommand(wrongVersion)).toMatchObject({
      code: "MALFORMED_COMMAND",
      message: expect.stringMatching(/version 7/),
    });
    expect(decodeCommand(Uint8Array.of(COMMAND_FORMAT_VERSION, 0xc1))).toMatchObject({ code: "MALFORMED_COMMAND" });
    expect(decodeCommand(new Uint8Array())).toMatchObject({ code: "MALFORMED_COMMAND" });
  });

  it("decodes bytes as views of the entry, and the state keeps copies: rewriting an applied entry changes nothing", () => {
    const bytes = encodeCommand({ op: "put", key: "k", value: v("abc") });
    const decoded = decodeCommand(bytes) as { value: Uint8Array };
    expect(decoded.value.buffer).toBe(bytes.buffer); // a view, not a copy (see decodeCommand)
    const sm = new StateMachine();
    expect(sm.apply(1, bytes).result.ok).toBe(true);
    bytes.fill(0);
    expect(Array.from(sm.get("k")!.value)).toEqual(Array.from(v("abc")));
  });
});
