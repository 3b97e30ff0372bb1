// The simulated replicated state machine: an append-only list of client values. Trivial on purpose: its
// history makes linearizability easy to check (a read is a prefix of the final list and must contain every
// value whose append was acknowledged before the read began).

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Every entry's data as a string, decoded once per Uint8Array (entries are shared, never mutated). */
const decoded = new WeakMap<Uint8Array, string>();

export function dataString(data: Uint8Array): string {
  let s = decoded.get(data);
  if (s === undefined) {
    s = decoder.decode(data);
    decoded.set(data, s);
  }
  return s;
}

export function encodeValue(value: string): Uint8Array {
  const data = encoder.encode(value);
  decoded.set(data, value);
  return data;
}

export class ListMachine {
  values: string[] = [];
  /** Index of the last log entry reflected in `values`. */
  appliedIndex = 0;

  apply(index: number, value: string | null): void {
    if (index !== this.appliedIndex + 1) {
      throw new Error(
        `list machine: applying index ${index} after ${this.appliedIndex} (entries must be applied in order)`,
      );
    }
    this.appliedIndex = index;
    if (value !== null) this.values.push(value);
  }

  snapshotData(): Uint8Array {
    return encoder.encode(JSON.stringify(this.values));
  }

  restore(index: number, data: Uint8Array): void {
    const parsed: unknown = data.byteLength === 0 ? [] : JSON.parse(decoder.decode(data));
    if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === "string")) {
      throw new Error(`list machine: snapshot at ${index} is not a JSON array of strings`);
    }
    this.values = parsed as string[];
    this.appliedIndex = index;
  }
}
