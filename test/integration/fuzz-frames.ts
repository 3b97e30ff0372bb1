// Seeded generators of hostile client frames for the client-port fuzz test: random bytes, valid msgpack of
// random shapes, requests with random and wrong-typed arguments, mutations of valid requests (bit flips,
// truncation, insertion, splices), msgpack headers claiming huge lengths, deep nesting, unknown and
// prototype-named ops. A frame either expects exactly one reply, or may close the connection (a hello with a
// wrong protocol, a frame above the transport's size limit).

import { Packr } from "msgpackr";
import { OPS } from "../../src/host/ops.js";

export interface FuzzFrame {
  kind: string;
  data: Buffer | string;
  /** The server may close the connection after this frame (so its reply may be missing). */
  mayClose?: boolean;
}

/** mulberry32: a small seeded PRNG, so a failing run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/**
 * Ops a random request may name. Excluded: ops that legitimately wait without bound (a lockAcquire that
 * waits, campaign) and cluster administration that would dismantle the cluster under test (covered by the
 * explicit admin-abuse test instead).
 */
const SAFE_OPS = Object.keys(OPS).filter(
  (op) =>
    ![
      "campaign",
      "lockAcquire",
      "memberAdd",
      "memberRemove",
      "memberPromote",
      "memberUpdate",
      "transferLeader",
      "snapshot",
    ].includes(op),
);
const WEIRD_OPS = [
  "",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "PUT",
  "put ",
  "rangeX",
  "x".repeat(300),
  "\u0000",
  "💥",
];
const ARG_NAMES = [
  "key",
  "value",
  "prefix",
  "limit",
  "after",
  "consistency",
  "lease",
  "ttlMs",
  "name",
  "token",
  "stream",
  "fromRevision",
  "revision",
  "compare",
  "success",
  "failure",
  "session",
  "fence",
  "wait",
  "limit",
  "prevKv",
  "member",
  "fromToken",
  "to",
];

export class FrameFuzzer {
  private readonly rnd: () => number;
  private nextId = 1;

  constructor(readonly seed: number) {
    this.rnd = prng(seed);
  }

  private int(n: number): number {
    return Math.floor(this.rnd() * n);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  private bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  private scalar(): unknown {
    switch (this.int(14)) {
      case 0:
        return null;
      case 1:
        return this.rnd() < 0.5;
      case 2:
        return this.int(100);
      case 3:
        return -this.int(1 << 30);
      case 4:
        return this.pick([
          Number.MAX_SAFE_INTEGER,
          2 ** 53 + 2,
          2 ** 64,
          -(2 ** 63),
          1.5,
          -0.0,
          NaN,
          Infinity,
          -Infinity,
        ]);
      case 5:
        return this.rnd() * 1e6;
      case 6:
        return "";
      case 7:
        return `fz/${this.int(50)}`;
      case 8:
        return this.bytes(this.int(32)).toString("latin1");
      case 9:
        return this.bytes(this.int(64));
      case 10:
        return this.pick(["linearizable", "serializable", "value", "version", "=", ">", "put", "range", "delete"]);
      case 11:
        return BigInt(this.int(1000)) * 10n ** 18n;
      case 12:
        return "k".repeat(this.int(6000));
      default:
        return this.int(5);
    }
  }

  /** A random value tree of bounded size. */
  value(depth = 0): unknown {
    const r = this.rnd();
    if (depth > 4 || r < 0.55) return this.scalar();
    if (r < 0.78) return Array.from({ length: this.int(6) }, () => this.value(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = this.int(6); i > 0; i--)
      o[this.rnd() < 0.7 ? this.pick(ARG_NAMES) : String(this.scalar())] = this.value(depth + 1);
    return o;
  }

  /** A plausible request: a real op with arguments that are sometimes right and often wrong. */
  request(): Record<string, unknown> {
    const op = this.rnd() < 0.9 ? this.pick(SAFE_OPS) : this.pick(WEIRD_OPS);
    const req: Record<string, unknown> = { id: this.nextId++, op };
    switch (this.int(4)) {
      case 0: // well-formed common requests
        if (op === "put") Object.assign(req, { key: `fz/${this.int(200)}`, value: this.bytes(this.int(256)) });
        else if (op === "range")
          Object.assign(req, {
            key: "fz/",
            prefix: this.rnd() < 0.5,
            limit: this.int(20),
            consistency: this.pick(["linearizable", "serializable"]),
          });
        else if (op === "txn")
          Object.assign(req, {
            compare: [
              {
                key: `fz/${this.int(200)}`,
                target: "version",
                result: this.pick(["=", ">", "<", "!="]),
                value: this.int(3),
              },
            ],
            success: [{ op: "put", key: `fz/${this.int(200)}`, value: "t" }],
            failure: [{ op: "range", key: `fz/${this.int(200)}` }],
          });
        else
          Object.assign(req, {
            key: `fz/${this.int(200)}`,
            name: `fz-${this.int(10)}`,
            lease: this.int(20),
            ttlMs: this.int(100_000),
          });
        break;
      case 1: // random arguments
        for (let i = this.int(6); i > 0; i--) req[this.pick(ARG_NAMES)] = this.value(1);
        break;
      case 2: // wrong types on every usual argument
        for (const a of ["key", "value", "prefix", "limit", "lease", "session", "fence", "compare", "success"])
          if (this.rnd() < 0.4) req[a] = this.value(2);
        break;
      default:
        break;
    }
    if (op === "lockAcquire") req.wait = false;
    if (this.rnd() < 0.05) req.id = this.pick([-1, 1.5, "7", null, 2 ** 60, [1]]); // a bad id
    return req;
  }

  private encode(v: unknown): Buffer {
    try {
      return packr.pack(v);
    } catch {
      return packr.pack(String(v)); // e.g. a BigInt too large for int64
    }
  }

  private mutate(b: Buffer): Buffer {
    const out = Buffer.from(b);
    switch (this.int(6)) {
      case 0: // bit flips
        for (let i = 1 + this.int(8); i > 0 && out.length > 0; i--) out[this.int(out.length)] ^= 1 << this.int(8);
        return out;
      case 1: // truncation
        return out.subarray(0, this.int(out.length));
      case 2: {
        // insert random bytes
        const at = this.int(out.length + 1);
        return Buffer.concat([out.subarray(0, at), this.bytes(1 + this.int(8)), out.subarray(at)]);
      }
      case 3: {
        // delete a range
        const at = this.int(out.length + 1);
        return Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + this.int(8))]);
      }
      case 4: {
        // splice in a huge-length header
        const at = this.int(out.length + 1);
        return Buffer.concat([out.subarray(0, at), this.hugeHeader(), out.subarray(at)]);
      }
      default: // overwrite one byte with a msgpack type byte
        if (out.length > 0)
          out[this.int(out.length)] = this.pick([
            0xc1, 0xc4, 0xc5, 0xc6, 0xc7, 0xc9, 0xd4, 0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff, 0x80, 0x90,
          ]);
        return out;
    }
  }

  private hugeHeader(): Buffer {
    const h = this.pick([
      [0xdb, 0xff, 0xff, 0xff, 0xff], // str32 of 4 GiB
      [0xc6, 0xff, 0xff, 0xff, 0xf0], // bin32
      [0xdd, 0x7f, 0xff, 0xff, 0xff], // array32 of 2^31 elements
      [0xdf, 0xff, 0xff, 0xff, 0xff], // map32
      [0xc9, 0xff, 0xff, 0xff, 0xff, 0x01], // ext32
      [0xdc, 0xff, 0xff], // array16
      [0xde, 0xff, 0xff], // map16
      [0xda, 0xff, 0xff], // str16
      [0xd7, 0xff], // fixext8 timestamp
      [0xc7, 0xff, 0x05], // ext8 of an unknown type
    ]);
    return Buffer.from(h);
  }

  private deepNesting(): Buffer {
    const depth = this.pick([100, 1000, 10_000, 100_000]);
    if (this.rnd() < 0.5) return Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0xc0])]); // [[[…nil…]]]
    const level = Buffer.from([0x81, 0xa1, 0x61]); // { a: … }
    return Buffer.concat([Buffer.concat(Array.from({ length: depth }, () => level)), Buffer.from([0xc0])]);
  }

  /** The next hostile frame. */
  next(): FuzzFrame {
    const r = this.int(100);
    if (r < 18) return { kind: "random-bytes", data: this.bytes(this.rnd() < 0.9 ? this.int(64) : this.int(4096)) };
    if (r < 33) return { kind: "random-msgpack", data: this.encode(this.value()) };
    if (r < 58) return { kind: "request", data: this.encode(this.request()) };
    if (r < 83) return { kind: "mutated-request", data: this.mutate(this.encode(this.request())) };
    if (r < 88) return { kind: "huge-length", data: Buffer.concat([this.hugeHeader(), this.bytes(this.int(16))]) };
    if (r < 91) return { kind: "deep-nesting", data: this.deepNesting() };
    if (r < 94) return { kind: "text-frame", data: this.bytes(this.int(64)).toString("latin1") };
    if (r < 96)
      return {
        kind: "proto-pollution",
        data: Buffer.concat([
          Buffer.from([0x83, 0xa9]),
          Buffer.from("__proto__"),
          this.encode({ op: "admin" }),
          this.encode("id").subarray(0),
          this.encode(this.nextId++),
          this.encode("op"),
          this.encode("put"),
        ]),
      };
    if (r < 98)
      return {
        kind: "hello-again",
        data: this.encode({ type: "hello", protocol: 1, token: this.rnd() < 0.5 ? undefined : "x" }),
      };
    return {
      kind: "request-wrong-id",
      data: this.encode({ ...this.request(), id: this.pick([-5, "abc", null, 1e300, 0.5]) }),
    };
  }

  /** With probability `p`, a frame that may end the connection. */
  maybeClosing(p: number, maxRequestBytes: number): FuzzFrame | undefined {
    return this.rnd() < p ? this.closing(maxRequestBytes) : undefined;
  }

  /** A frame that may end the connection: a wrong protocol, or an oversized frame. */
  closing(maxRequestBytes: number): FuzzFrame {
    switch (this.int(3)) {
      case 0:
        return {
          kind: "hello-bad-protocol",
          data: this.encode({ type: "hello", protocol: this.pick([0, 2, 99, -1, 1.5]) }),
          mayClose: true,
        };
      case 1: // above the server's limit, below ws's maxPayload: FRAME_TOO_LARGE
        return {
          kind: "oversized",
          data: Buffer.concat([
            this.encode({ id: this.nextId++, op: "put", key: "fz/big" }),
            Buffer.alloc(maxRequestBytes + 100),
          ]),
          mayClose: true,
        };
      default: // above ws's maxPayload: the transport closes with 1009
        return { kind: "oversized-transport", data: Buffer.alloc(maxRequestBytes + 64 * 1024, 0x91), mayClose: true };
    }
  }
}
