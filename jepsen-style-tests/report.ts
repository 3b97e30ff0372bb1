// The self-contained HTML report of one run: verdicts, then a timeline (SVG) with one lane per process —
// each operation a bar from invoke to completion (green ok, red fail, orange info) — fault intervals as shaded
// bands, and every failing checker's window highlighted. No external assets: one file to attach anywhere.

import type { History, RecordedEvent } from "./history.js";
import type { RunSummary } from "./runner.js";

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

interface Bar {
  process: number;
  f: string;
  key?: string;
  from: number;
  to: number;
  type: RecordedEvent["type"];
  value: unknown;
  token?: number;
  error?: string;
}

function bars(history: History): { bars: Bar[]; end: number } {
  const open = new Map<number, RecordedEvent>();
  const out: Bar[] = [];
  let end = 0;
  for (const e of history.events) {
    end = Math.max(end, e.time);
    if (e.type === "invoke") {
      open.set(e.process, e);
      continue;
    }
    const inv = open.get(e.process);
    open.delete(e.process);
    if (!inv) continue;
    const bar: Bar = { process: e.process, f: e.f, from: inv.time, to: e.time, type: e.type, value: e.type === "ok" ? e.value : inv.value };
    if (e.key !== undefined) bar.key = e.key;
    if (e.token !== undefined) bar.token = e.token;
    if (e.error !== undefined) bar.error = e.error;
    out.push(bar);
  }
  for (const inv of open.values()) out.push({ process: inv.process, f: inv.f, from: inv.time, to: end, type: "info", value: inv.value, error: "never completed" });
  for (const n of history.nemesis) end = Math.max(end, n.time);
  return { bars: out, end: Math.max(end, 1) };
}

export function renderReport(summary: RunSummary, history: History, replay: string): string {
  const { bars: all, end } = bars(history);
  // Lanes: processes in first-seen order, capped so the page stays light (the JSONL has everything).
  const MAX_BARS = 6000;
  const shown = all.slice(0, MAX_BARS);
  const lanes = [...new Set(shown.map((b) => b.process))];
  const laneOf = new Map(lanes.map((p, i) => [p, i]));
  const W = 1400;
  const LANE = 9;
  const TOP = 30;
  const H = TOP + lanes.length * LANE + 20;
  const x = (t: number) => ((t / end) * (W - 20) + 10).toFixed(1);
  const color = { ok: "#2e7d32", fail: "#c62828", info: "#ef6c00", invoke: "#999" } as const;
  const svg: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" style="background:#fff;border:1px solid #ccc">`];
  // Fault bands.
  const starts = new Map<string, number>();
  let band = 0;
  for (const n of history.nemesis) {
    if (n.phase === "start") starts.set(n.nemesis, n.time);
    else if (n.phase === "stop" && starts.has(n.nemesis)) {
      const from = starts.get(n.nemesis)!;
      starts.delete(n.nemesis);
      svg.push(`<rect x="${x(from)}" y="0" width="${Math.max(1, Number(x(n.time)) - Number(x(from))).toFixed(1)}" height="${H}" fill="${band++ % 2 ? "#e3f2fd" : "#ede7f6"}"><title>${esc(n.nemesis)}: ${esc(n.detail)}</title></rect>`);
      svg.push(`<text x="${x(from)}" y="12" font-size="10" fill="#333">${esc(n.nemesis)}</text>`);
    } else if (n.phase === "info") {
      svg.push(`<line x1="${x(n.time)}" x2="${x(n.time)}" y1="0" y2="${H}" stroke="#6a1b9a" stroke-dasharray="3,3"><title>${esc(n.nemesis)}: ${esc(n.detail)}</title></line>`);
    }
  }
  for (const [name, from] of starts) svg.push(`<rect x="${x(from)}" y="0" width="${(W - 10 - Number(x(from))).toFixed(1)}" height="${H}" fill="#ede7f6"><title>${esc(name)} (not stopped)</title></rect>`);
  // Failing windows.
  for (const v of summary.verdicts) {
    if (v.valid === false && v.window) {
      svg.push(`<rect x="${x(v.window.fromNs)}" y="${TOP - 4}" width="${Math.max(3, Number(x(v.window.toNs)) - Number(x(v.window.fromNs))).toFixed(1)}" height="${H - TOP}" fill="none" stroke="#d50000" stroke-width="3"><title>failing window: ${esc(v.checker)}</title></rect>`);
    }
  }
  for (const b of shown) {
    const y = TOP + laneOf.get(b.process)! * LANE;
    const w = Math.max(1.5, Number(x(b.to)) - Number(x(b.from)));
    const label = `p${b.process} ${b.f}${b.key ? " " + b.key : ""} ${JSON.stringify(b.value)}${b.token !== undefined ? " token=" + b.token : ""} → ${b.type}${b.error ? " (" + b.error + ")" : ""} [${(b.from / 1e9).toFixed(3)}s–${(b.to / 1e9).toFixed(3)}s]`;
    svg.push(`<rect x="${x(b.from)}" y="${y}" width="${w.toFixed(1)}" height="${LANE - 2}" fill="${color[b.type]}"><title>${esc(label)}</title></rect>`);
  }
  for (let s = 0; s <= end / 1e9; s += Math.max(1, Math.round(end / 1e9 / 20))) svg.push(`<text x="${x(s * 1e9)}" y="${H - 5}" font-size="9" fill="#555">${s}s</text>`);
  svg.push("</svg>");

  const verdictRows = summary.verdicts
    .map((v) => {
      const cls = v.valid === true ? "ok" : v.valid === false ? "bad" : "unk";
      const details = v.details === undefined ? "" : `<details><summary>details</summary><pre>${esc(JSON.stringify(v.details, null, 1).slice(0, 20_000))}</pre></details>`;
      const win = v.window ? `<br>failing window: ${(v.window.fromNs / 1e9).toFixed(3)}s – ${(v.window.toNs / 1e9).toFixed(3)}s (outlined in red below)` : "";
      return `<tr class="${cls}"><td>${esc(v.checker)}</td><td>${v.valid === true ? "valid" : v.valid === false ? "VIOLATION" : "unknown"}</td><td>${esc(v.summary)}${win}${details}</td></tr>`;
    })
    .join("\n");
  const faults = history.nemesis.map((n) => `<tr><td>${(n.time / 1e9).toFixed(3)}s</td><td>${esc(n.nemesis)}</td><td>${n.phase}</td><td>${esc(n.detail)}</td></tr>`).join("\n");
  const ops = summary.operations;
  const title = `${summary.workload} × ${summary.nemeses.join("+")} (${summary.driver})${summary.label ? " — mutant: " + summary.label : ""}`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>Concord Jepsen: ${esc(title)}</title>
<style>body{font:13px system-ui,sans-serif;margin:20px}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}
tr.ok td:nth-child(2){color:#2e7d32;font-weight:bold}tr.bad td:nth-child(2){color:#c62828;font-weight:bold}tr.unk td:nth-child(2){color:#ef6c00;font-weight:bold}
pre{max-height:300px;overflow:auto;background:#f7f7f7;padding:6px}.legend span{display:inline-block;padding:0 6px;margin-right:6px;color:#fff}</style></head><body>
<h1>${esc(title)}: ${summary.valid === true ? "valid" : summary.valid === false ? "VIOLATION" : "unknown"}</h1>
<p>seed ${summary.seed}; ${ops.total} operations (${ops.ok} ok, ${ops.fail} fail, ${ops.info} info); ${summary.faults} faults; ${summary.durationS}s.<br>
Replay: <code>${esc(replay)}</code><br>Files beside this report: history.jsonl, nemesis.jsonl, verdicts.json, artifacts.json, nodes/*.log.</p>
<h2>Verdicts</h2><table><tr><th>checker</th><th>verdict</th><th>summary</th></tr>${verdictRows}</table>
<h2>Timeline</h2><p class="legend"><span style="background:#2e7d32">ok</span><span style="background:#c62828">fail</span><span style="background:#ef6c00">info / unknown</span>
shaded bands: faults (hover for detail); red outline: failing window. One lane per process${all.length > MAX_BARS ? `; first ${MAX_BARS} of ${all.length} operations shown` : ""}.</p>
<div style="overflow-x:auto">${svg.join("\n")}</div>
<h2>Faults</h2><table><tr><th>time</th><th>nemesis</th><th>phase</th><th>detail</th></tr>${faults}</table>
</body></html>
`;
}
