// Values are bytes, end to end through the real CLI and library against real member processes (ports
// 8850-8871): what `put` reads from stdin or --file is what `get --raw` prints; --hex and the JSON outputs
// (get, range, watch) mark values that are not UTF-8 instead of printing replacement characters; keys that are
// not valid UTF-8 are refused by the CLI, the library and the server instead of being stored changed.

import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Client } from "../../src/index.js";
import { ClientSocket } from "../../src/transport/client-socket.js";
import { LocalCluster } from "../../src/harness/index.js";
import { NODE_ARGS, REPO } from "./cli.js";

/** Not UTF-8: 0xff and 0xfe never occur in UTF-8; a NUL and some ASCII around them. */
const BINARY = Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x61, 0x62, 0x63]);

let cluster: LocalCluster;
let client: Client;
let dir: string;

beforeAll(async () => {
  cluster = await LocalCluster.start({ size: 3, basePort: 8850, logLevel: "warn" });
  client = await connect(cluster.endpoints().join(","));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-binary-"));
});

afterAll(async () => {
  await client?.close();
  await cluster?.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  out: Buffer;
  err: string;
}

/** Runs a command line in sh (so arguments can hold arbitrary bytes), `concord` being the real CLI. */
function sh(script: string, stdin?: Buffer): Promise<Result> {
  const concord = [process.execPath, ...NODE_ARGS].map((a) => `'${a}'`).join(" ");
  const child = spawn("sh", ["-c", `concord() { ${concord} "$@"; }\n${script}`], {
    cwd: REPO,
    env: { ...process.env, CONCORD_ENDPOINTS: cluster.endpoints().join(",") },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const out: Buffer[] = [];
  let err = "";
  child.stdout!.on("data", (d: Buffer) => out.push(d));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  child.stdin!.end(stdin ?? Buffer.alloc(0));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  return new Promise((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out: Buffer.concat(out), err });
    }),
  );
}

describe("values are bytes", () => {
  it("put from stdin stores the bytes; get --raw prints them unchanged, --hex and --json mark them", async () => {
    const put = await sh("concord put bin/stdin -", BINARY);
    expect(put.code, put.err).toBe(0);
    const [raw, hex, json, human] = await Promise.all([
      sh("concord get bin/stdin --raw"),
      sh("concord get bin/stdin --hex"),
      sh("concord get bin/stdin --json"),
      sh("concord get bin/stdin"),
    ]);
    expect(raw.code, raw.err).toBe(0);
    expect(raw.out.equals(BINARY)).toBe(true);
    expect(hex.out.toString()).toBe("fffe0001616263\n");
    const j = JSON.parse(json.out.toString());
    expect(j).toMatchObject({ key: "bin/stdin", encoding: "base64" });
    expect(Buffer.from(j.value, "base64").equals(BINARY)).toBe(true);
    expect(human.out.toString()).toBe("<7 bytes, not UTF-8: fffe0001616263>\n");
    expect(human.out.toString()).not.toContain("\uFFFD");
    // The library sees the same bytes.
    expect(Buffer.from((await client.get("bin/stdin"))!.value).equals(BINARY)).toBe(true);
  });

  it("put --file stores a file byte for byte (NUL, CR LF, trailing newline) and get --raw gives it back", async () => {
    const content = Buffer.concat([BINARY, Buffer.from("line one\r\nline two\n\n")]);
    const file = path.join(dir, "value.bin");
    fs.writeFileSync(file, content);
    const put = await sh(`concord put bin/file --file '${file}'`);
    expect(put.code, put.err).toBe(0);
    const raw = await sh("concord get bin/file --raw");
    expect(raw.out.equals(content)).toBe(true);
    // Text stays text: no encoding field, nothing added by --raw.
    await sh("concord put bin/text 'héllo'");
    const [textJson, textRaw, both] = await Promise.all([
      sh("concord get bin/text --json"),
      sh("concord get bin/text --raw"),
      // VALUE and --file together (or neither) is a usage error.
      sh(`concord put bin/x v --file '${file}'`),
    ]);
    expect(JSON.parse(textJson.out.toString())).toEqual(expect.objectContaining({ value: "héllo" }));
    expect(JSON.parse(textJson.out.toString()).encoding).toBeUndefined();
    expect(textRaw.out.toString()).toBe("héllo");
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/^concord put: INVALID_ARGUMENT: give the value once/);
  });

  it("range --json and watch --json mark values that are not UTF-8; the range table shows them in hex", async () => {
    const first = await client.put("bin/w", BINARY);
    await client.put("bin/w", "text again");
    const [range, table, watch] = await Promise.all([
      sh("concord range bin/ --json"),
      sh("concord range bin/"),
      sh(`concord watch bin/w --from-revision ${first.revision} --count 2 --json`),
    ]);
    const kvs = JSON.parse(range.out.toString()).kvs as { key: string; value: string; encoding?: string }[];
    const stdin = kvs.find((k) => k.key === "bin/stdin")!;
    expect(stdin.encoding).toBe("base64");
    expect(Buffer.from(stdin.value, "base64").equals(BINARY)).toBe(true);
    expect(table.out.toString()).toMatch(/bin\/stdin\s+<7 bytes, not UTF-8: fffe0001616263>/);
    expect(table.out.toString()).not.toContain("\uFFFD");
    expect(watch.code, watch.err).toBe(0);
    const evs = watch.out
      .toString()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(evs[0]).toMatchObject({ type: "put", key: "bin/w", encoding: "base64", value: BINARY.toString("base64") });
    expect(evs[1]).toMatchObject({ type: "put", key: "bin/w", value: "text again" });
    expect(evs[1].encoding).toBeUndefined();
  });

  it("keys that are not valid UTF-8 are refused by the CLI, the library and the server, and nothing is stored", async () => {
    const cli = await sh(`concord put "$(printf 'bad/\\377key')" v`);
    expect(cli.code).toBe(2);
    expect(cli.err).toMatch(/^concord put: INVALID_ARGUMENT: KEY is not valid UTF-8/);
    const cliValue = await sh(`concord put bad/value "$(printf 'v\\377')"`);
    expect(cliValue.code).toBe(2);
    expect(cliValue.err).toMatch(/VALUE is not valid UTF-8 .*"-" \(stdin\) or --file/);

    const lib = await client.put("bad/\ud800key", "v").catch((e: { code: string; message: string }) => e);
    expect(lib).toMatchObject({ code: "INVALID_ARGUMENT", field: "key" });
    expect((lib as { message: string }).message).toMatch(/lone UTF-16 surrogate at index 4/);

    // A client that sends a key that is not valid UTF-8 anyway (msgpack encodes the lone surrogate as the
    // invalid bytes ED A0 80): the member refuses it instead of storing a key changed to U+FFFD.
    const sock = await ClientSocket.connect(cluster.members()[0].clientUrl);
    try {
      const r = await sock.request("put", { key: "bad/\ud800key", value: "v" }, 10_000).catch((e: Error) => e);
      expect(r).toMatchObject({ code: "INVALID_ARGUMENT" });
      expect((r as Error).message).toMatch(/^put\.key is a string that is not valid UTF-8/);
      // A key that really holds U+FFFD is valid UTF-8 and accepted.
      await sock.request("put", { key: "ok/\uFFFD", value: "v" }, 10_000);
    } finally {
      sock.close();
    }
    const stored = await client.range("bad/");
    expect(stored.kvs).toEqual([]);
    expect((await client.get("ok/\uFFFD"))?.text).toBe("v");
  });
});
