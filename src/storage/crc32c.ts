// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven "slicing-by-8": eight 256-entry tables
// let the loop consume 8 bytes per step. Node 20 has no zlib.crc32, and CRC-32C is what iSCSI, ext4 and
// TigerBeetle-era storage use; its error-detection properties are better than CRC-32 for short records.

const POLY = 0x82f63b78;

/** TABLES[k * 256 + b]: the CRC of byte b followed by k zero bytes. */
const TABLES = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
}

/**
 * CRC-32C of `buf[start, end)`, continuing from `crc` (the result of a previous call, 0 to start), so a
 * checksum can span several non-contiguous ranges. Returns an unsigned 32-bit integer.
 */
export function crc32c(buf: Uint8Array, crc = 0, start = 0, end = buf.length): number {
  const t = TABLES;
  let c = ~crc;
  let i = start;
  const end8 = end - 8;
  while (i <= end8) {
    c ^= buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24);
    const hi = buf[i + 4] | (buf[i + 5] << 8) | (buf[i + 6] << 16) | (buf[i + 7] << 24);
    c =
      t[1792 + (c & 0xff)] ^
      t[1536 + ((c >>> 8) & 0xff)] ^
      t[1280 + ((c >>> 16) & 0xff)] ^
      t[1024 + (c >>> 24)] ^
      t[768 + (hi & 0xff)] ^
      t[512 + ((hi >>> 8) & 0xff)] ^
      t[256 + ((hi >>> 16) & 0xff)] ^
      t[hi >>> 24];
    i += 8;
  }
  while (i < end) c = t[(c ^ buf[i++]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
