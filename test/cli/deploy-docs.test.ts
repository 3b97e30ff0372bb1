// docs/deploy.md's systemd unit and Kubernetes StatefulSet pass flags to `concord server`; each must be one the
// server accepts, as `concord server --help` lists them (so this holds whatever defines the options).

import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO, runCli } from "../client/cli.js";

/**
 * The flags of every `concord server` command in the markdown's fenced code blocks: shell and systemd commands
 * (with `\` continuations), YAML sequences (`- concord`, `- server`, `- --flag=value`, one item a line), and a
 * container's YAML `args:` sequence, which the member image's entrypoint (`concord server`) receives.
 */
export function serverCommandFlags(markdown: string): string[][] {
  const commands: string[][] = [];
  for (const [, block] of markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)) {
    const lines = block
      .split("\n")
      .filter((l) => !/^\s*#/.test(l)) // comments, also between the items of a YAML sequence
      .join("\n")
      .replace(/\\\n/g, " ")
      .split("\n");
    // A run of YAML sequence items at one indentation is one command line.
    const joined: string[] = [];
    let itemIndent: string | undefined;
    for (const [i, line] of lines.entries()) {
      const item = /^(\s*)- (.*)$/.exec(line);
      if (item && item[1] === itemIndent) joined[joined.length - 1] += " " + item[2];
      else if (item) joined.push((/^\s*args:\s*$/.test(lines[i - 1] ?? "") ? "concord server " : "") + item[2]);
      else joined.push(line);
      itemIndent = item?.[1];
    }
    for (const line of joined) {
      const words = line.split(/\s+/).map((w) => w.replace(/^["'[]+|["',\]]+$/g, ""));
      const at = words.findIndex((w, i) => path.basename(w) === "concord" && words[i + 1] === "server");
      if (at < 0) continue;
      commands.push(words.slice(at + 2).filter((w) => w.startsWith("--")).map((w) => w.split("=")[0]));
    }
  }
  return commands;
}

/** The long options in commander's help output (option lines are indented two spaces; wrapped text further). */
function helpFlags(help: string): Set<string> {
  return new Set([...help.matchAll(/^ {2}(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1]));
}

describe("docs/deploy.md", () => {
  it("finds the flags of shell, systemd and YAML server commands, and only theirs", () => {
    const sample = [
      "```sh",
      "npm install --omit=dev x.tgz",
      "concord server --name n1 \\",
      "  --no-such-flag x",
      "```",
      "```yaml",
      "command:",
      "  - concord",
      "  # a comment",
      "  - server",
      "  - --data-dir=/d",
      "env:",
      "  - --not-an-argument",
      "args:",
      "  - --peer-url=ws://h:7001",
      "```",
    ].join("\n");
    expect(serverCommandFlags(sample)).toEqual([["--name", "--no-such-flag"], ["--data-dir"], ["--peer-url"]]);
  });

  it("passes `concord server` only flags that `concord server --help` lists", async () => {
    const cli = runCli(["server", "--help"]);
    const { code } = await cli.exited;
    expect(code, cli.stderr()).toBe(0);
    const known = helpFlags(cli.stdout());
    expect(known).toContain("--initial-cluster");

    const commands = serverCommandFlags(fs.readFileSync(path.join(REPO, "docs/deploy.md"), "utf8"));
    expect(commands.length, "the systemd unit and the StatefulSet").toBeGreaterThanOrEqual(2);
    for (const flags of commands) expect(flags).toContain("--initial-cluster");
    const unknown = commands.flat().filter((f) => !known.has(f));
    expect(unknown, `known: ${[...known].join(" ")}`).toEqual([]);
  });
});
