// Requests to members that may fail while the cluster changes (elections, restarts): which wire errors mean
// "try again", and retrying on them.

import { RequestError } from "../transport/client-socket.js";
import { RETRYABLE } from "../transport/protocol.js";
import { sleep } from "./wait.js";

export function isRetryable(code: string): boolean {
  return RETRYABLE.has(code);
}

/** Retry `fn` while it fails with a retryable wire error, for up to `timeoutMs`. */
export async function retrying<T>(fn: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof RequestError) || !isRetryable(e.code) || performance.now() > deadline) throw e;
      await sleep(100);
    }
  }
}
