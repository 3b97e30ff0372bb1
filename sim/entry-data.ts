// Entry data as the simulator's checkers see it: an exact, cached string form of the bytes (one char per byte,
// so two entries compare equal exactly when their bytes do), and the value encoding of the simulated clients.

/** Every entry's data as a string, computed once per Uint8Array (entries are shared, never mutated). */
const keys = new WeakMap<Uint8Array, string>();

export function dataKey(data: Uint8Array): string {
  let s = keys.get(data);
  if (s === undefined) {
    s = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("latin1");
    keys.set(data, s);
  }
  return s;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a === b || dataKey(a) === dataKey(b);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Client values are decimal strings of unique integers (JSON numbers in the history). */
export const valueBytes = (n: number): Uint8Array => encoder.encode(String(n));
export const valueOf = (bytes: Uint8Array): number => Number(decoder.decode(bytes));
/** Raw bytes that are not a command (tests corrupt entries with them). */
export const rawBytes = (s: string): Uint8Array => encoder.encode(s);
