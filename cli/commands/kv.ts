// concord put / get / del / compact / range / watch / txn / cas

import { isUtf8 } from "node:buffer";
import fs from "node:fs";
import { Option, type Command } from "commander";
import type { Client } from "../../src/client/client.js";
import { ConcordError } from "../../src/client/errors.js";
import type { KeyValue } from "../../src/client/kv.js";
import type { TxnBuilder, CompareOp, CompareTarget } from "../../src/client/txn.js";
import { displayValue, textArg, utf8Text, valueJson } from "./bytes.js";
import { EXIT, clientCommand, intArg, printJson, printTable, readStdin, run, type ClientFlags } from "./common.js";

function kvJson(kv: KeyValue) {
  return {
    key: kv.key,
    ...valueJson(kv.value),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

/** The value to put: the argument, stdin for "-", or the file's exact bytes with --file. */
async function valueArg(v: string | undefined, file: string | undefined): Promise<string | Buffer> {
  if ((v === undefined) === (file === undefined)) {
    throw new ConcordError({
      code: "INVALID_ARGUMENT",
      message: `give the value once: as VALUE, as "-" (read stdin) or with --file PATH${v !== undefined ? `; got VALUE and --file` : ""}`,
      field: "value",
    });
  }
  if (file !== undefined) {
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw new ConcordError({
        code: "INVALID_ARGUMENT",
        message: `--file ${file}: ${(e as Error).message}`,
        field: "file",
      });
    }
  }
  if (v === "-") return readStdin();
  return textArg("VALUE", v!, 'give bytes that are not UTF-8 with "-" (stdin) or --file');
}

export function registerKvCommands(program: Command): void {
  clientCommand(program.command("put").description("write a key (exactly once, even across a failover)"), {
    json: true,
  })
    .argument("<key>", "the key")
    .argument("[value]", 'the value ("-" reads it from stdin; or --file)')
    .option("--file <path>", "read the value from a file, byte for byte")
    .option("--lease <id>", "bind the key to a lease: it is deleted when the lease ends", intArg(1))
    .option("--prev-kv", "print the previous value")
    .addHelpText(
      "after",
      '\nValues are bytes: "-" and --file store exactly what they read.\n\nExamples:\n  concord put config/mode blue\n  concord put config/cert - < cert.pem\n  concord put config/logo --file logo.png\n  concord put --lease 42 services/api/n1 10.0.0.1:8080',
    )
    .action(
      (key: string, value: string | undefined, o: ClientFlags & { file?: string; lease?: number; prevKv?: boolean }) =>
        run("put", o, async (c) => {
          const r = await c.put(textArg("KEY", key), await valueArg(value, o.file), {
            lease: o.lease,
            prevKv: o.prevKv,
          });
          if (o.json) printJson({ revision: r.revision, prevKv: r.prevKv ? kvJson(r.prevKv) : undefined });
          else console.log(o.prevKv ? (r.prevKv ? displayValue(r.prevKv.value) : "") : `OK revision ${r.revision}`);
        }),
    );

  clientCommand(program.command("get").description("read a key's value (linearizable unless --serializable)"), {
    json: true,
  })
    .argument("<key>", "the key")
    .option("--serializable", "read the member's local state at once (may be stale)")
    .option("--rev <revision>", "read the key as it was at this revision (still in the history)", intArg(1))
    .addOption(
      new Option("--raw", "print the stored bytes exactly, with nothing added (no newline)").conflicts(["hex", "json", "writeOut"]),
    )
    .addOption(new Option("--hex", "print the value in hexadecimal").conflicts(["json", "writeOut"]))
    .addHelpText(
      "after",
      `
Prints the value and a newline; a value that is not UTF-8 text prints as <N bytes, not UTF-8: HEX>. With --json a
value that is not UTF-8 is base64, marked "encoding": "base64". Exit code 1 if the key does not exist.

Examples:
  concord get config/mode
  concord get config/logo --raw > logo.png
  concord get config/mode --json
  concord get config/mode --rev 1200     # the value at revision 1200 (COMPACTED names the oldest still readable)`,
    )
    .action((key: string, o: ClientFlags & { serializable?: boolean; rev?: number; raw?: boolean; hex?: boolean }) =>
      run("get", o, async (c) => {
        const kv = await c.get(textArg("KEY", key), {
          consistency: o.serializable ? "serializable" : "linearizable",
          revision: o.rev,
        });
        if (!kv) {
          if (o.json) printJson(null);
          else console.error(`concord get: key ${JSON.stringify(key)} not found${o.rev ? ` at revision ${o.rev}` : ""}`);
          return EXIT.FAILED;
        }
        if (o.json) printJson(kvJson(kv));
        else if (o.raw) process.stdout.write(kv.value);
        else if (o.hex) process.stdout.write(Buffer.from(kv.value).toString("hex") + "\n");
        else process.stdout.write(displayValue(kv.value) + "\n");
      }),
    );

  clientCommand(program.command("del").description("delete a key, or every key with a prefix"), { json: true })
    .argument("<key>", "the key (or prefix with --prefix)")
    .option("--prefix", "delete every key starting with <key>")
    .addHelpText("after", "\nExamples:\n  concord del config/mode\n  concord del --prefix jobs/")
    .action((key: string, o: ClientFlags & { prefix?: boolean }) =>
      run("del", o, async (c) => {
        const r = await c.delete(textArg("KEY", key), { prefix: o.prefix });
        if (o.json) printJson(r);
        else console.log(`deleted ${r.deleted} revision ${r.revision}`);
      }),
    );

  clientCommand(
    program
      .command("compact")
      .description(
        "forget the watch history at and below a revision (frees the values deletes and overwrites left in it)",
      ),
    { json: true },
  )
    .argument("[revision]", "compact up to this revision (default: the connected member's current revision)", intArg(1))
    .addHelpText(
      "after",
      "\nWatchers can no longer resume from a compacted revision (they get COMPACTED). Needs cluster admin permission.\n\nExamples:\n  concord compact\n  concord compact 1200",
    )
    .action((revision: number | undefined, o: ClientFlags) =>
      run("compact", o, async (c) => {
        if (revision === undefined) {
          const s = await c.status();
          if (s.revision <= s.compactRevision) {
            if (o.json) printJson({ revision: s.revision, compactRevision: s.compactRevision });
            else console.log(`nothing to compact: the history is compacted at revision ${s.compactRevision}`);
            return EXIT.OK;
          }
          revision = s.revision;
        }
        const r = await c.compact(revision);
        if (o.json) printJson(r);
        else console.log(`compacted at revision ${r.compactRevision}`);
      }),
    );

  clientCommand(
    program.command("range").description("list keys with a prefix, in key order (a table; --json for JSON)"),
    { json: true },
  )
    .argument("[prefix]", 'key prefix ("" or omitted: every key)', "")
    .option("--limit <n>", "at most this many keys (one page)", intArg(1))
    .option("--after <key>", "start after this key (the cursor of the previous page)")
    .option("--serializable", "read the member's local state (may be stale)")
    .option("--rev <revision>", "list the keys as they were at this revision (still in the history)", intArg(1))
    .option("--keys-only", "print only the keys")
    .addHelpText(
      "after",
      "\nExamples:\n  concord range config/\n  concord range jobs/ --limit 100 --json\n  concord range jobs/ --limit 100 --after jobs/0099\n  concord range config/ --rev 1200",
    )
    .action(
      (
        prefix: string,
        o: ClientFlags & { limit?: number; after?: string; serializable?: boolean; rev?: number; keysOnly?: boolean },
      ) =>
        run("range", o, async (c) => {
          const consistency = o.serializable ? "serializable" : "linearizable";
          let kvs: KeyValue[] = [];
          let more = false;
          let cursor: string | undefined;
          if (o.limit !== undefined) {
            const page = await c.range(textArg("PREFIX", prefix), {
              limit: o.limit,
              after: o.after,
              consistency,
              revision: o.rev,
            });
            ({ kvs, more, cursor } = page);
          } else {
            for await (const kv of c.list(textArg("PREFIX", prefix), { consistency, revision: o.rev }))
              if (o.after === undefined || kv.key > o.after) kvs.push(kv);
          }
          if (o.json) printJson({ kvs: kvs.map(kvJson), more, cursor });
          else if (o.keysOnly) for (const kv of kvs) console.log(kv.key);
          else {
            printTable(
              ["KEY", "VALUE", "MOD_REV", "VERSION", "LEASE"],
              kvs.map((kv) => [kv.key, shorten(displayValue(kv.value)), kv.modRevision, kv.version, kv.lease || "-"]),
            );
            if (more) console.error(`(more keys follow: --after ${cursor})`);
          }
        }),
    );

  clientCommand(
    program
      .command("watch")
      .description("print changes to a key or prefix until interrupted; resumes across failovers"),
    { json: true },
  )
    .argument("<key>", "the key (or prefix with --prefix)")
    .option("--prefix", "watch every key starting with <key>")
    .option("--from-revision <rev>", "replay history from this revision first", intArg(1))
    .option("--count <n>", "exit after this many events", intArg(1))
    .option("--prev-kv", "print each event's previous value too")
    .addHelpText(
      "after",
      "\nOutput: one line per event (PUT key value / DELETE key; with --prev-kv the previous value follows on a line\nPREV value, or PREV - when a put created the key), or one JSON object per line with --json (\"prevKv\").\n\nExamples:\n  concord watch config/ --prefix\n  concord watch config/mode --from-revision 1 --json --count 10\n  concord watch config/mode --prev-kv",
    )
    .action((key: string, o: ClientFlags & { prefix?: boolean; fromRevision?: number; count?: number; prevKv?: boolean }) =>
      run("watch", o, async (c) => {
        const count = o.count ?? Infinity;
        const stop = new AbortController();
        process.once("SIGINT", () => stop.abort());
        process.once("SIGTERM", () => stop.abort());
        const w = c.watch(textArg("KEY", key), {
          prefix: o.prefix,
          fromRevision: o.fromRevision,
          prevKv: o.prevKv,
          signal: stop.signal,
        });
        let seen = 0;
        for await (const ev of w) {
          const prev = o.prevKv ? { prevKv: ev.prevKv ? kvJson(ev.prevKv) : null } : {};
          if (o.json)
            printJson(
              ev.type === "put"
                ? { type: "put", key: ev.key, ...valueJson(ev.kv.value), revision: ev.revision, ...prev }
                : { type: "delete", key: ev.key, revision: ev.revision, ...prev },
            );
          else {
            console.log(ev.type === "put" ? `PUT ${ev.key} ${displayValue(ev.kv.value)}` : `DELETE ${ev.key}`);
            if (o.prevKv) console.log(`PREV ${ev.prevKv ? displayValue(ev.prevKv.value) : "-"}`);
          }
          if (++seen >= count) break;
        }
      }),
    );

  clientCommand(
    program
      .command("txn")
      .description("run a transaction given as JSON (argument or stdin): compares, then ops, else ops"),
    { json: true },
  )
    .argument("[json]", 'the transaction ("-" or omitted: read stdin)')
    .addHelpText(
      "after",
      `
Format:
  { "if":   [ { "key": "k", "target": "value|version|createRevision|modRevision|lease", "op": "=|!=|<|>", "value": … } ],
    "then": [ { "put": "k", "value": "v", "lease"?: 1 } | { "delete": "k", "prefix"?: true } | { "get": "k", "prefix"?: true, "rev"?: 12 } ],
    "else": [ … same as then … ] }

Prints SUCCEEDED or FAILED and the responses; exit code 0 either way (--json for details).

Examples:
  concord txn '{"if":[{"key":"cfg/v","target":"version","op":"=","value":0}],"then":[{"put":"cfg/v","value":"1"}],"else":[{"get":"cfg/v"}]}'
  concord txn < txn.json`,
    )
    .action((json: string | undefined, o: ClientFlags) =>
      run("txn", o, async (c) => {
        const text =
          json === undefined || json === "-" ? utf8Text("txn JSON (stdin)", await readStdin()) : textArg("JSON", json);
        const t = buildTxn(c, text);
        const r = await t.commit();
        if (o.json) {
          printJson({
            succeeded: r.succeeded,
            revision: r.revision,
            responses: r.responses.map((x) => (x.op === "range" ? { op: "range", kvs: x.kvs.map(kvJson) } : x)),
          });
        } else {
          console.log(r.succeeded ? "SUCCEEDED" : "FAILED");
          for (const x of r.responses) {
            if (x.op === "range") for (const kv of x.kvs) console.log(`${kv.key} ${displayValue(kv.value)}`);
            else if (x.op === "put") console.log(`OK revision ${x.revision}`);
            else console.log(`deleted ${x.deleted}`);
          }
        }
      }),
    );

  clientCommand(program.command("cas").description("compare-and-swap: set KEY to NEW only if its value is EXPECTED"), {
    json: true,
  })
    .argument("<key>", "the key")
    .argument("<expected>", "the value it must have now (ignored with --absent)")
    .argument("<new>", "the value to write")
    .option("--absent", "write only if the key does not exist")
    .addHelpText(
      "after",
      "\nExit code 0 if written, 1 if the current value differs (printed on stderr).\n\nExamples:\n  concord cas config/mode blue green\n  concord cas --absent config/owner '' me",
    )
    .action((key: string, expected: string, next: string, o: ClientFlags & { absent?: boolean }) =>
      run("cas", o, async (c) => {
        const hint = 'a value that is not UTF-8 cannot be given as an argument; use `concord txn` with "value" text';
        const r = await c.cas(
          textArg("KEY", key),
          o.absent ? null : textArg("EXPECTED", expected, hint),
          textArg("NEW", next, hint),
        );
        if (o.json)
          printJson({ succeeded: r.succeeded, revision: r.revision, current: r.current ? kvJson(r.current) : null });
        else if (r.succeeded) console.log(`OK revision ${r.revision}`);
        else
          console.error(
            `concord cas: not swapped: ${key} is ${r.current ? (isUtf8(r.current.value) ? JSON.stringify(r.current.text) : displayValue(r.current.value)) : "absent"}`,
          );
        return r.succeeded ? EXIT.OK : EXIT.FAILED;
      }),
    );
}

function shorten(s: string): string {
  const oneLine = s.replace(/\n/g, "\\n");
  return oneLine.length > 60 ? oneLine.slice(0, 59) + "…" : oneLine;
}

function bad(message: string, field: string): ConcordError {
  return new ConcordError({ code: "INVALID_ARGUMENT", message, field });
}

/** Builds a TxnBuilder from the JSON format documented in the txn command's help. */
export function buildTxn(c: Client, text: string): TxnBuilder {
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (e) {
    throw bad(`txn is not valid JSON (${(e as Error).message}); see \`concord txn --help\` for the format`, "txn");
  }
  if (typeof spec !== "object" || spec === null || Array.isArray(spec))
    throw bad('txn must be a JSON object with "if", "then" and "else" arrays', "txn");
  const s = spec as Record<string, unknown>;
  for (const k of Object.keys(s))
    if (!["if", "then", "else"].includes(k))
      throw bad(`txn has an unknown field ${JSON.stringify(k)}; accepted: if, then, else`, k);
  const t = c.txn();
  const list = (name: string): Record<string, unknown>[] => {
    const v = s[name];
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "object" || x === null))
      throw bad(`txn.${name} must be an array of objects`, name);
    return v as Record<string, unknown>[];
  };
  list("if").forEach((cmp, i) => {
    const value = cmp.value;
    if (typeof value !== "string" && typeof value !== "number")
      throw bad(`txn.if[${i}].value must be a string or a number`, `if[${i}].value`);
    t.if(cmp.key as string, cmp.target as CompareTarget, cmp.op as CompareOp, value);
  });
  for (const branch of ["then", "else"] as const) {
    list(branch).forEach((op, i) => {
      const where = `txn.${branch}[${i}]`;
      if (typeof op.put === "string") {
        if (typeof op.value !== "string") throw bad(`${where}.value must be a string`, `${branch}[${i}].value`);
        const opts = { lease: typeof op.lease === "number" ? op.lease : undefined };
        if (branch === "then") t.thenPut(op.put, op.value, opts);
        else t.elsePut(op.put, op.value, opts);
      } else if (typeof op.delete === "string") {
        if (branch === "then") t.thenDelete(op.delete, { prefix: op.prefix === true });
        else t.elseDelete(op.delete, { prefix: op.prefix === true });
      } else if (typeof op.get === "string") {
        if (op.rev !== undefined && !(Number.isSafeInteger(op.rev) && (op.rev as number) >= 1))
          throw bad(`${where}.rev must be a revision (an integer >= 1)`, `${branch}[${i}].rev`);
        const opts = { prefix: op.prefix === true, revision: op.rev as number | undefined };
        if (branch === "then") t.thenGet(op.get, opts);
        else t.elseGet(op.get, opts);
      } else {
        throw bad(`${where} must have one of "put", "delete" or "get" naming a key`, `${branch}[${i}]`);
      }
    });
  }
  return t;
}
