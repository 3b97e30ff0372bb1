// Endpoint lists: `--endpoints a,b,c`, CONCORD_ENDPOINTS, or an array. Each is a member's client URL.

import { invalidArgument } from "./errors.js";

/**
 * Normalizes endpoints to `ws://host:port` / `wss://host:port` URLs without a trailing slash. A bare
 * `host:port` means ws://. Throws INVALID_ARGUMENT naming the bad entry and the accepted forms.
 */
export function parseEndpoints(endpoints: string | readonly string[]): string[] {
  const list = (typeof endpoints === "string" ? endpoints.split(",") : [...endpoints]).map((e) =>
    typeof e === "string" ? e.trim() : e,
  );
  const out: string[] = [];
  for (const raw of list) {
    if (typeof raw !== "string") throw invalidArgument("endpoints[]", "a string such as ws://127.0.0.1:7100", raw);
    if (raw === "") continue;
    const url = /^[a-z]+:\/\//i.test(raw) ? raw : `ws://${raw}`;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalidArgument("endpoints[]", "ws://host:port, wss://host:port or host:port", raw);
    }
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
      throw invalidArgument("endpoints[]", "a ws:// or wss:// URL (or host:port)", raw);
    }
    if (parsed.port === "")
      throw invalidArgument("endpoints[]", "a URL with an explicit port, e.g. ws://127.0.0.1:7100", raw);
    const normalized = `${parsed.protocol}//${parsed.host}`;
    if (!out.includes(normalized)) out.push(normalized);
  }
  if (out.length === 0) {
    throw invalidArgument(
      "endpoints",
      "at least one member client URL (e.g. ws://127.0.0.1:7100; CLI: --endpoints or CONCORD_ENDPOINTS)",
      endpoints,
    );
  }
  return out;
}
