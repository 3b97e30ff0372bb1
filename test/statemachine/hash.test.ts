import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { contentHash, xxh32 } from "../../src/statemachine/hash.js";

const text = (s: string) => new TextEncoder().encode(s);

describe("content hash", () => {
  it("matches the xxHash32 reference vectors", () => {
    expect(xxh32(text(""), 0)).toBe(0x02cc5d05);
    expect(xxh32(text("a"), 0)).toBe(0x550d7456);
    expect(xxh32(text("abc"), 0)).toBe(0x32d153ff);
    expect(xxh32(text("Nobody inspects the spammish repetition"), 0)).toBe(0xe2293b2f);
  });

  it("is 16 hex digits and changes when any bit flips", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), fc.nat({ max: 7 }), (bytes, at, bit) => {
        const h = contentHash(bytes);
        expect(h).toMatch(/^[0-9a-f]{16}$/);
        expect(contentHash(bytes.slice())).toBe(h);
        const flipped = bytes.slice();
        flipped[at % bytes.length] ^= 1 << bit;
        expect(contentHash(flipped)).not.toBe(h);
      }),
      { numRuns: 500 },
    );
  });
});
