// Byte helpers for code that must not use node's Buffer (the deterministic core runs in the simulator as well).

/** One fresh array holding `parts` one after another (never a view of them). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.byteLength;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
