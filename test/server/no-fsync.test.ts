// Ports 9020-9021. `concord server --no-fsync` (tests and benchmarks only): a member that makes nothing durable still serves.
// Its file system wraps every handle; a handle is a class instance, and a spread of one dropped its methods, so
// such a member stopped at its first write ("fh.close is not a function").

import fs from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { LocalCluster } from "../../src/harness/index.js";
import { connect } from "../../src/index.js";

let cluster: LocalCluster | undefined;
afterAll(async () => {
  await cluster?.teardown();
});

describe("a member with --no-fsync", () => {
  it("starts, takes writes and reads them back, and warns that nothing is durable", async () => {
    cluster = await LocalCluster.start({ size: 1, basePort: 9020, logLevel: "info", extraArgs: ["--no-fsync"] });
    const client = await connect(cluster.endpoints());
    try {
      for (let i = 0; i < 50; i++) await client.put(`k${i}`, `v${i}`);
      expect((await client.get("k49"))?.value.toString()).toBe("v49");
    } finally {
      await client.close();
    }
    const log = fs.readFileSync(cluster.member("n1").logFile, "utf8");
    expect(log).toContain("fsync is OFF");
  });
});
