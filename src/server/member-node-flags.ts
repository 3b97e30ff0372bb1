// The node flags Concord's own launchers start a member with: the harness (behind `concord dev`, the tests, the
// benchmarks and the Jepsen-style suite), the container image (image/build.ts, Dockerfile) and docs/deploy.md's
// systemd unit. One list, so they cannot drift apart.
//
// --single-threaded-gc: V8 collects on the member's own thread, with no helper threads. Where members share
// cores with each other or with clients (three members and the load on this 2-core machine), a collection that
// waits on helper threads the other processes starve pauses longer than one done alone, and its helpers take CPU
// the others need. Measured (2026-12-02, docs/benchmarks.md, "One thread for V8's collections"): members settle
// at 137–145 MiB after 100,000 puts instead of 160–224, at the same or better throughput. It is a V8 startup flag
// (setting it at run time aborts), so it must be on node's command line.
export const MEMBER_NODE_FLAGS: readonly string[] = ["--single-threaded-gc"];

/** Whether this process runs with MEMBER_NODE_FLAGS (the server logs a hint when it does not). */
export const hasMemberNodeFlags = (): boolean => MEMBER_NODE_FLAGS.every((f) => process.execArgv.includes(f));
