// `npm run build` leaves a runnable package: dist/cli/concord.js is executable and runs through its shebang,
// as `npm install -g` or `npx concord` would run it.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "./cli.js";

describe("npm run build", () => {
  it("leaves dist/cli/concord.js executable, and it runs as the package's bin", () => {
    execFileSync("npm", ["run", "build"], { cwd: REPO, stdio: ["ignore", "ignore", "pipe"], timeout: 120_000 });
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as {
      version: string;
      bin: { concord: string };
    };
    const bin = path.join(REPO, pkg.bin.concord);
    expect(pkg.bin.concord).toBe("dist/cli/concord.js");
    expect(fs.statSync(bin).mode & 0o111).toBe(0o111);
    expect(execFileSync(bin, ["--version"], { encoding: "utf8" })).toBe(`${pkg.version}\n`);
  });
});
