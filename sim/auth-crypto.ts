// The simulator's AuthCrypto: deterministic and instant (a seeded salt, one SHA-256 instead of scrypt), so a seed
// replays exactly and no hash waits on the thread pool. What it keeps of the real one: a password verifies only
// against its own record, and only the cluster's key makes a valid token MAC.

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { AuthCrypto } from "../src/host/world.js";
import type { PasswordRecord } from "../src/statemachine/auth.js";

const digest = (salt: Uint8Array, password: string) => new Uint8Array(createHash("sha256").update(salt).update(password, "utf8").digest());

export function simAuthCrypto(key: string, random: () => number): AuthCrypto {
  const mac = (data: string) => createHmac("sha256", key).update(data, "utf8").digest("base64url");
  return {
    hashPassword: (password) => {
      const salt = new Uint8Array(16).map(() => Math.floor(random() * 256));
      return Promise.resolve({ salt, hash: digest(salt, password), N: 2, r: 1, p: 1 });
    },
    verifyPassword: (password: string, record: PasswordRecord) => {
      const hash = digest(record.salt, password);
      return Promise.resolve(hash.length === record.hash.length && timingSafeEqual(hash, record.hash));
    },
    sign: mac,
    verify: (data, given) => mac(data) === given,
  };
}
