// The CLI's progress bars (cli-progress): drawn on a terminal, silent on a pipe or a file.

import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { mebibytes, progressBar } from "../../cli/progress.js";

/** A stream that collects what is written to it, a terminal or not as `isTTY` says. */
function collector(isTTY: boolean): Writable & { text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return Object.assign(stream, { isTTY, columns: 120, text: () => text });
}

const stripAnsi = (s: string) => s.replace(/\x1b(?:\[[0-9;?]*[A-Za-z]|[78])/g, ""); // eslint-disable-line no-control-regex

describe("progressBar", () => {
  it("on a terminal, draws the bar in place and ends its line when stopped", () => {
    const tty = collector(true);
    const bar = progressBar("snapshot [{bar}] {percentage}% {value}/{total} MiB", mebibytes, tty);
    bar.start(0, 0);
    expect(stripAnsi(tty.text())).toBe(`snapshot [${".".repeat(30)}] 0% 0.0/0.0 MiB`); // an unknown total is 0%, not done
    bar.setTotal(4 << 20);
    bar.update(4 << 20);
    bar.stop();
    expect(tty.text()).toContain("\x1b["); // redrawn in place
    expect(stripAnsi(tty.text()).endsWith(`snapshot [${"#".repeat(30)}] 100% 4.0/4.0 MiB\n`)).toBe(true);
  });

  it("renders payload fields and the value in the given unit", () => {
    const tty = collector(true);
    const bar = progressBar("put c=4 [{bar}] {value}/{total} s, {ops} ops", (s) => s.toFixed(0), tty);
    bar.start(10, 0, { ops: 0 });
    bar.update(5, { ops: 1234 });
    bar.stop();
    expect(stripAnsi(tty.text())).toContain(`put c=4 [${"#".repeat(15)}${".".repeat(15)}] 5/10 s, 1234 ops`);
  });

  it("writes nothing at all when the stream is not a terminal", async () => {
    const pipe = collector(false);
    const bar = progressBar("restore [{bar}] {percentage}% {value}/{total} MiB", mebibytes, pipe);
    bar.start(1 << 20, 0);
    bar.update(1 << 19);
    await new Promise((r) => setTimeout(r, 250)); // past cli-progress's redraw interval
    bar.update(1 << 20);
    bar.stop();
    expect(pipe.text()).toBe("");
  });
});
