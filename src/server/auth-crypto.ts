// A member's AuthCrypto (src/host/world.ts): scrypt password hashes with fresh random salts, and token MACs
// keyed by a key derived from the forwarding key — the peer secret, which every member shares and no client knows
// (peer-auth.ts; where it is guessable the host refuses to enable runtime auth).

import { createHmac, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";
import type { AuthCrypto } from "../host/world.js";
import type { PasswordRecord } from "../statemachine/auth.js";

/** scrypt's parameters for interactive logins (N=2^14, r=8, p=1: 16 MiB and tens of milliseconds per hash). */
export const SCRYPT_PARAMS = { N: 1 << 14, r: 8, p: 1 } as const;
const HASH_BYTES = 32;

function scryptAsync(password: string, salt: Uint8Array, params: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize("NFC"), salt, HASH_BYTES, { ...params, maxmem: 256 * params.N! * params.r! + (1 << 20) }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export function nodeAuthCrypto(forwardKey: string, clusterId: string): AuthCrypto {
  const macKey = createHmac("sha256", forwardKey).update(`concord-user-token:${clusterId}`).digest();
  const mac = (data: string) => createHmac("sha256", macKey).update(data, "utf8").digest("base64url");
  return {
    async hashPassword(password) {
      const salt = randomBytes(16);
      const hash = await scryptAsync(password, salt, SCRYPT_PARAMS);
      return { salt: new Uint8Array(salt), hash: new Uint8Array(hash), ...SCRYPT_PARAMS };
    },
    async verifyPassword(password: string, record: PasswordRecord) {
      const hash = await scryptAsync(password, record.salt, { N: record.N, r: record.r, p: record.p });
      return hash.length === record.hash.length && timingSafeEqual(hash, record.hash);
    },
    sign: mac,
    verify(data, given) {
      const expected = Buffer.from(mac(data));
      const got = Buffer.from(given);
      return expected.length === got.length && timingSafeEqual(expected, got);
    },
  };
}
