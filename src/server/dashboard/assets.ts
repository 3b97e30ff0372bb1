// The dashboard's files, all served by the member itself (no CDN): the page, its script and style from ui/ at the
// package root, and the front-end library (preact, its hooks, htm) from node_modules. Read once, on first use.

import { createHash } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface Asset {
  contentType: string;
  body: Buffer;
}

export interface DashboardAssets {
  /** The page (index.html) and the Content-Security-Policy that lets exactly its inline import map run. */
  page: Asset & { csp: string };
  /** By file name under /ui/assets/. */
  files: ReadonlyMap<string, Asset>;
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";
const HTML = "text/html; charset=utf-8";

/** The ui/ directory: beside src/ from the sources (tsx) and beside dist/ from a build or an installed package. */
function uiDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 6; up++) {
    if (fs.existsSync(path.join(dir, "ui", "index.html"))) return path.join(dir, "ui");
    dir = path.dirname(dir);
  }
  throw new Error(`the dashboard's files (ui/index.html) were not found above ${fileURLToPath(import.meta.url)}`);
}

export function loadDashboardAssets(): DashboardAssets {
  const ui = uiDir();
  const require = createRequire(import.meta.url);
  const files = new Map<string, Asset>([
    ["app.js", { contentType: JS, body: fs.readFileSync(path.join(ui, "app.js")) }],
    ["style.css", { contentType: CSS, body: fs.readFileSync(path.join(ui, "style.css")) }],
    ["preact.mjs", { contentType: JS, body: fs.readFileSync(require.resolve("preact")) }],
    ["hooks.mjs", { contentType: JS, body: fs.readFileSync(require.resolve("preact/hooks")) }],
    // htm's exports name its ES module only under the "import" condition, which require.resolve does not take.
    ["htm.mjs", { contentType: JS, body: fs.readFileSync(path.join(path.dirname(require.resolve("htm")), "htm.mjs")) }],
  ]);
  const html = fs.readFileSync(path.join(ui, "index.html"));
  return { page: { contentType: HTML, body: html, csp: contentSecurityPolicy(html.toString("utf8")) }, files };
}

/**
 * Scripts only from the member and the page's inline import map (allowed by its hash); data only from the member;
 * never framed. The import map is inline because browsers do not load one from a file.
 */
function contentSecurityPolicy(html: string): string {
  const hashes = [...html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)].map(
    (m) => `'sha256-${createHash("sha256").update(m[1], "utf8").digest("base64")}'`,
  );
  return [
    "default-src 'self'",
    `script-src 'self' ${hashes.join(" ")}`.trim(),
    "connect-src 'self'",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
}
