// Preloaded into each member by `npm run bench:latency` (NODE_OPTIONS=--import): timestamps as a write passes the
// stages of one member, written to CONCORD_TRACE_DIR/<pid>.txt when the member exits ("<ns> <stage>" per line,
// process.hrtime, one clock for every process on the machine). It wraps the real classes' methods of the build
// the member runs (CONCORD_TRACE_ROOT/dist); nothing in src/ changes for it. Plain JavaScript: node loads it as is.
import fs from "node:fs";
import process from "node:process";

const root = process.env.CONCORD_TRACE_ROOT;
const dir = process.env.CONCORD_TRACE_DIR;
const MAX_EVENTS = 2_000_000;
const times = [];
const stages = [];

function mark(stage) {
  if (times.length >= MAX_EVENTS) return;
  times.push(process.hrtime.bigint());
  stages.push(stage);
}

/** Replace `owner[name]` by a wrapper that marks `stage` (a string, or a function of the arguments) on entry. */
function wrap(owner, name, stage, markReturn) {
  const original = owner[name];
  if (typeof original !== "function") throw new Error(`member-trace: ${name} is not a function of its owner`);
  owner[name] = function (...args) {
    mark(typeof stage === "function" ? stage(...args) : stage);
    const r = original.apply(this, args);
    if (markReturn) mark(markReturn);
    return r;
  };
}

const types = (messages) => messages.map((m) => (m.type === "app" && m.commitOnly ? "commit" : m.type)).join(",");
const { Replica } = await import(`${root}/dist/src/host/replica.js`);
const { ClientGateway } = await import(`${root}/dist/src/host/gateway.js`);
const { PeerTransport } = await import(`${root}/dist/src/transport/peer.js`);
const { InboundConnection } = await import(`${root}/dist/src/transport/peer-inbound.js`);
wrap(ClientGateway.prototype, "onFrame", "client request in");
wrap(Replica.prototype, "propose", "proposed");
wrap(
  Replica.prototype,
  "startReady",
  (rd) => `Ready taken (${rd.entries.length} new, ${rd.committed.length} to apply)`,
);
wrap(PeerTransport.prototype, "send", (messages) => `to peers: ${types(messages)}`);
wrap(PeerTransport.prototype, "flush", "peer frames written", "peer frames written: done");
wrap(InboundConnection.prototype, "onMessage", "peer frame in");
wrap(Replica.prototype, "onPeerMessages", (batch) => `peer frame decoded: ${types(batch)}`);
wrap(fs, "writevSync", "WAL write");
wrap(fs, "fdatasyncSync", "fdatasync", "fdatasync: done");
wrap(Replica.prototype, "onWritten", "save resolved");
wrap(Replica.prototype, "applyEntry", "applied");
wrap(ClientGateway.prototype, "reply", "reply sent");

process.on("exit", () => {
  const lines = times.map((t, i) => `${t} ${stages[i]}`);
  fs.writeFileSync(`${dir}/${process.pid}.txt`, lines.join("\n"));
});
