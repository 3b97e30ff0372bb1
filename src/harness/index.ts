// The cluster harness: real `concord server` member processes on loopback, for tests, benchmarks, the Jepsen-style
// suite and `concord dev`. One concern per file:
//   ports.ts     the port plan (slot → client and peer ports)
//   command.ts   how `concord` is run (sources through tsx, dist, or as the running CLI was started)
//   member.ts    one member process: process group, log file, stop/kill/pause/restart
//   cluster.ts   LocalCluster: members n1…nN, start, status, membership changes, teardown
//   status.ts    MemberStatus (what GET /status answers) and the HTTP client for it
//   wait.ts      waitUntil, waitForLeader, waitForApplied
//   requests.ts  retryable wire errors and retrying

export * from "./ports.js";
export * from "./command.js";
export * from "./member.js";
export * from "./cluster.js";
export * from "./status.js";
export * from "./wait.js";
export * from "./requests.js";
