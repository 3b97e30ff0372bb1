// The dashboard in a real browser: Debian's headless Chromium driven by playwright-core against a real 3-member
// cluster with bearer tokens (ports 11200-11221). Run by `npm run test:ui` (not `npm test`); .ci/run installs
// chromium when it is missing. With CONCORD_UI_SCREENSHOTS=<dir> it also saves the screenshots docs/ shows
// (`npm run ui:screenshots` writes docs/img/).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCluster, waitUntil } from "../../src/harness/index.js";
import { connect, type Client } from "../../src/index.js";
import { runCli, type CliProcess } from "../client/cli.js";

const CHROMIUM = process.env.CONCORD_CHROMIUM ?? "/usr/bin/chromium";
const SCREENSHOTS = process.env.CONCORD_UI_SCREENSHOTS;
const TOKEN = "dashboard-test-ops-token-0123456789";
const KEYS_ONLY_TOKEN = "dashboard-test-keys-only-token-01234";

let dir: string;
let cluster: LocalCluster;
let client: Client;
let browser: BrowserContext;
let page: Page;
const clis: CliProcess[] = [];

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CONCORD_CHROMIUM)`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "concord-ui-"));
  const tokensFile = path.join(dir, "tokens.json");
  fs.writeFileSync(
    tokensFile,
    JSON.stringify([
      {
        token: TOKEN,
        name: "ops",
        permissions: [
          { prefix: "", access: "admin" },
          { lock: "", access: "admin" },
          { election: "", access: "admin" },
          { cluster: true, access: "admin" },
        ],
      },
      { token: KEYS_ONLY_TOKEN, name: "keys-only", permissions: [{ prefix: "", access: "read" }] },
    ]),
  );
  cluster = await LocalCluster.start({
    size: 3,
    basePort: 11200,
    logLevel: "warn",
    authTokensFile: tokensFile,
    httpToken: TOKEN,
    peerSecret: "dashboard-test-peer-secret-0123456789",
  });
  client = await connect(cluster.endpoints(), { token: TOKEN });
  browser = await chromium.launchPersistentContext(path.join(dir, "chromium-profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
  });
  page = browser.pages()[0] ?? (await browser.newPage());
});

afterAll(async () => {
  for (const c of clis) c.kill();
  await browser?.close();
  await client?.close();
  await cluster?.teardown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function screenshot(name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `dashboard-${name}.png`), fullPage: true });
}

const leaderShown = () => page.getByTestId("leader").innerText();

/** Waits until `cond` holds, polling (the page refreshes once a second). */
function until(what: string, timeoutMs: number, cond: () => Promise<boolean> | boolean): Promise<true> {
  return waitUntil(what, timeoutMs, async () => ((await cond()) ? true : undefined), { everyMs: 100 });
}

describe("the dashboard in headless Chromium", () => {
  let leader: string;

  it("asks for a token, then shows every member and the leader", async () => {
    leader = await cluster.waitForLeader();
    // A follower serves the page, so that it outlives the leader's death below.
    const follower = cluster.members().find((m) => m.name !== leader)!;
    // Anything that went wrong in the page: an uncaught error, a console error, a file that did not load (CSP,
    // 404). The API's 401 and 403 before a good token are expected, and show as "Failed to load resource".
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(m.text());
    });
    page.on("requestfailed", (r) => problems.push(`${r.url()}: ${r.failure()?.errorText}`));
    page.on("response", (r) => {
      if (r.status() >= 400 && !new URL(r.url()).pathname.startsWith("/ui/api/")) problems.push(`${r.url()}: ${r.status()}`);
    });
    await page.goto(`${follower.httpBase}/ui`);

    // Tokens are configured: without one the API refuses and the page says why.
    await page.getByText(/needs "Authorization: Bearer <token>"/).waitFor();
    // A token without cluster read is refused too.
    await page.getByTestId("token").fill(KEYS_ONLY_TOKEN);
    await page.getByRole("button", { name: "Use token" }).click();
    await page.getByText(/token keys-only may not read the cluster/).waitFor();

    await page.getByTestId("token").fill(TOKEN);
    await page.getByRole("button", { name: "Use token" }).click();
    await until("the page names the leader", 15_000, async () => (await leaderShown()) === leader);
    const rows = page.getByTestId("members").locator("tbody tr");
    await until("three members listed", 10_000, async () => (await rows.count()) === 3);
    for (const m of cluster.members()) {
      const row = page.locator(`tr[data-member="${m.name}"]`);
      await until(`${m.name} healthy`, 10_000, async () => (await row.locator("td").nth(6).innerText()) === "ok");
      expect(await row.locator("td").nth(1).innerText()).toBe(m.name === leader ? "leader" : "follower");
    }
    expect(await page.getByTestId("leader-history").innerText()).toContain(leader);
    expect(problems).toEqual([]);
    expect(await page.getByText("Loading the dashboard").count()).toBe(0);
  });

  it("shows a lock taken with the CLI, with its token and lease time left, until it is released", async () => {
    // Some keys and an election, so the page (and its screenshot) has something in every section.
    for (const [k, v] of [
      ["config/db/url", "postgres://db.internal:5432/app"],
      ["config/db/pool", "20"],
      ["config/feature/dark-mode", "on"],
    ])
      await client.put(k, v);
    const leadership = await client.election("scheduler").campaign("worker-7 at 10.0.0.7");

    const held = path.join(dir, "hold");
    fs.writeFileSync(held, "");
    const cli = runCli(
      ["lock", "reports/nightly", "--", "sh", "-c", `echo "token=$CONCORD_LOCK_TOKEN"; while [ -e ${held} ]; do sleep 0.1; done`],
      { CONCORD_ENDPOINTS: cluster.endpoints().join(","), CONCORD_TOKEN: TOKEN },
    );
    clis.push(cli);
    await until("the CLI to hold the lock", 20_000, () => /token=\d+/.test(cli.stdout())).catch((e: Error) => {
      throw new Error(`${e.message}; its stderr: ${cli.stderr()}`);
    });
    const token = cli.stdout().match(/token=(\d+)/)![1];

    const row = page.locator('tr[data-lock="reports/nightly"]');
    await row.waitFor({ timeout: 10_000 });
    expect(await row.getByTestId("lock-token").innerText()).toBe(token);
    // The follower serving the page shows the leader's view, where lease deadlines are known.
    expect(await row.locator("td").nth(3).innerText()).toMatch(/^\d+(\.\d)? s$/);
    expect(await page.getByTestId("source").innerText()).toContain("(the leader)");
    await page.locator('tr[data-election="scheduler"]').getByText("worker-7 at 10.0.0.7").waitFor();
    await page.getByTestId("keys").getByText("postgres://db.internal:5432/app").waitFor();
    await screenshot("lock");
    // The key browser by prefix.
    await page.getByTestId("prefix").fill("config/db/");
    await until("the keys under config/db/", 10_000, async () => (await page.getByTestId("keys").locator("tbody tr").count()) === 2);

    fs.rmSync(held);
    expect((await cli.exited).code).toBe(0);
    await row.waitFor({ state: "detached", timeout: 10_000 });
    await leadership.resign();
  });

  it("shows the new leader after the leader is killed", async () => {
    await cluster.kill(leader);
    const next = await cluster.waitForLeader(20_000, { exclude: [leader] });
    await until(`the page names the new leader ${next}`, 20_000, async () => (await leaderShown()) === next);
    const dead = page.locator(`tr[data-member="${leader}"]`);
    await until("the old leader unreachable", 10_000, async () => (await dead.locator("td").nth(6).innerText()).startsWith("unreachable"));
    const history = await page.getByTestId("leader-history").innerText();
    expect(history).toContain(next);
    await screenshot("failover");
  });
});
