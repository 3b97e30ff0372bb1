// The client side of the client protocol (client-protocol.ts), without a socket.

import { describe, expect, it } from "vitest";
import { ClientProtocol } from "../../src/transport/client-protocol.js";
import { encodeFrame, PROTOCOL_VERSION } from "../../src/transport/protocol.js";

describe("ClientProtocol", () => {
  it("refuses a request msgpack cannot carry with INVALID_ARGUMENT, sending nothing", async () => {
    const sent: Uint8Array[] = [];
    const p = new ClientProtocol({ send: (f) => sent.push(f), setTimer: () => ({ cancel() {} }), peer: "ws://x" });
    p.receive(encodeFrame({ type: "welcome", protocol: PROTOCOL_VERSION, node: "n1" }));
    expect(p.welcome).not.toBeNull();
    // A BigInt past 64 bits: a member's decoder yields one from a client's frame, and a follower forwards it (the
    // client-port fuzz test's seed 1594251344 found it answered INTERNAL).
    await expect(p.request("put", { key: "k", value: 2n ** 100n })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringContaining("put request cannot be encoded"),
    });
    expect(sent).toHaveLength(0);
  });
});
