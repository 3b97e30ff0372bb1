// The one place the suite imports the client library from: workloads go through the real client
// (connect(), put/get/txn/cas, watch, leases, locks, elections), never through raw sockets.

export { connect as connectClient, Client } from "../src/client/client.js";
export { ConcordError } from "../src/client/errors.js";
export type { LockHandle } from "../src/client/locks.js";
export type { Leadership, LeaderChange } from "../src/client/election.js";
export type { WatchEvent } from "../src/client/watch.js";
