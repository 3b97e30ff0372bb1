// Client pieces that need no cluster: endpoint parsing, CLI argument parsing, the txn JSON format, and the
// client side of snapshot streaming (against a minimal protocol server, so chunk order and the temp file can be
// checked exactly; the end-to-end case with real members is in kv-cli.test.ts).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { connect, ConcordError, parseEndpoints, type Client } from "../../src/index.js";
import { buildTxn } from "../../cli/commands/kv.js";
import { TxnBuilder } from "../../src/client/txn.js";
import { durationArg, intArg, parseDuration, ttlArg } from "../../cli/commands/common.js";
import { decodeClientFrame, encodeFrame } from "../../src/transport/protocol.js";

describe("parseEndpoints", () => {
  it("normalizes URLs and host:port, drops duplicates and blanks", () => {
    expect(parseEndpoints("127.0.0.1:7100, ws://127.0.0.1:7110/ ,,wss://a.example:7000")).toEqual([
      "ws://127.0.0.1:7100",
      "ws://127.0.0.1:7110",
      "wss://a.example:7000",
    ]);
    expect(parseEndpoints(["ws://h:1", "ws://h:1"])).toEqual(["ws://h:1"]);
  });
  it("refuses what it cannot use, naming the entry and the accepted forms", () => {
    for (const bad of ["", "http://h:1", "ws://nohost", "::::"]) {
      const e = (() => {
        try {
          parseEndpoints(bad);
        } catch (err) {
          return err;
        }
      })();
      expect(e, bad).toBeInstanceOf(ConcordError);
      expect((e as ConcordError).code).toBe("INVALID_ARGUMENT");
      expect((e as ConcordError).message).toMatch(/expected/);
    }
  });
});

describe("CLI argument parsing", () => {
  it("durations accept ms, s, m, h and plain milliseconds", () => {
    expect(["1500", "500ms", "10s", "2m", "1.5s", "10h"].map(parseDuration)).toEqual([
      1500, 500, 10000, 120000, 1500, 36_000_000,
    ]);
    expect(parseDuration("10 sec")).toBeUndefined();
    expect(() => durationArg()("10 sec")).toThrow(
      /^expected a duration such as 1500 \(milliseconds\), 500ms, 10s, 2m or 1h$/,
    );
    expect(() => ttlArg()("50ms")).toThrow(/at least 100ms/);
    expect(() => intArg(1)("0")).toThrow(/expected an integer >= 1/);
  });

  it("txn JSON: builds compares and branches; refuses malformed specs with the field named", async () => {
    const sent: Record<string, unknown>[] = [];
    const fake = {
      txn: () =>
        new TxnBuilder({
          write: async (_op: string, args: Record<string, unknown>) => (
            sent.push(args),
            { revision: 5, succeeded: true, responses: [] }
          ),
        } as never),
    } as unknown as Client;
    await buildTxn(
      fake,
      JSON.stringify({
        if: [{ key: "k", target: "version", op: ">", value: 2 }],
        then: [{ put: "k", value: "v" }],
        else: [{ get: "k" }],
      }),
    ).commit();
    expect(sent[0]).toMatchObject({
      compare: [{ key: "k", target: "version", result: ">", value: 2 }],
      success: [{ op: "put", key: "k" }],
      failure: [{ op: "range", key: "k" }],
    });
    expect(() => buildTxn(fake, "[]")).toThrow(/must be a JSON object/);
    expect(() => buildTxn(fake, JSON.stringify({ when: [] }))).toThrow(/unknown field "when"/);
    expect(() => buildTxn(fake, JSON.stringify({ then: [{ rename: "k" }] }))).toThrow(
      /txn.then\[0\] must have one of "put", "delete" or "get"/,
    );
    expect(() => buildTxn(fake, JSON.stringify({ if: [{ key: "k", target: "size", op: "=", value: 1 }] }))).toThrow(
      /compare.target/,
    );
  });
});

describe("snapshot streaming (client side)", () => {
  let wss: WebSocketServer;
  let port = 0;
  const data = Buffer.alloc(300_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;

  beforeAll(async () => {
    wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/concord/v1" });
    await new Promise<void>((r) => wss.once("listening", () => r()));
    port = (wss.address() as { port: number }).port;
    wss.on("connection", (ws: WebSocket) => {
      ws.on("message", (raw: Buffer) => {
        const f = decodeClientFrame(raw, 1 << 20) as Record<string, unknown>;
        if (f.type === "hello")
          return ws.send(encodeFrame({ type: "welcome", protocol: 1, node: "n1", clusterId: "c", leader: null }));
        if (f.op === "leaseGrant") return ws.send(encodeFrame({ id: f.id, ok: { id: 1, ttlMs: 30000 } }));
        if (f.op === "snapshot") {
          ws.send(encodeFrame({ id: f.id, ok: { stream: 9 } }));
          for (let off = 0; off < data.length; off += 65536) {
            ws.send(
              encodeFrame({
                type: "push",
                stream: 9,
                event: {
                  kind: "snapshotChunk",
                  offset: off,
                  data: data.subarray(off, off + 65536),
                  total: data.length,
                },
              }),
            );
          }
          ws.send(
            encodeFrame({ type: "push", stream: 9, event: { kind: "snapshotEnd", index: 42, term: 3, hash: "abc" } }),
          );
        }
      });
    });
  });
  afterAll(() => new Promise<void>((r) => wss.close(() => r())));

  it("writes every chunk in order to the file, reports progress, and leaves no temp file", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-snap-"));
    const c = await connect(`ws://127.0.0.1:${port}`);
    try {
      const progress: number[] = [];
      const info = await c.snapshot(path.join(dir, "s.snap"), { onProgress: (p) => progress.push(p.bytes) });
      expect(info).toMatchObject({ bytes: data.length, index: 42, term: 3, hash: "abc" });
      expect(Buffer.compare(fs.readFileSync(path.join(dir, "s.snap")), data)).toBe(0);
      expect(progress[progress.length - 1]).toBe(data.length);
      expect(fs.readdirSync(dir)).toEqual(["s.snap"]);
    } finally {
      c.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
