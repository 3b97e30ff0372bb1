// Starts a one-member cluster with the harness, prints the member's pid, then crashes (an uncaught exception):
// the harness must take its member down with it. Run by harness.test.ts: owner-crash.script.ts <basePort> <root>.
import { LocalCluster } from "../../src/harness/index.js";

const [basePort, root] = process.argv.slice(2);
const cluster = await LocalCluster.start({ size: 1, basePort: Number(basePort), root, logLevel: "warn" });
console.log(JSON.stringify({ pid: cluster.pid("n1") }));
throw new Error("the owner crashes with its member running");
