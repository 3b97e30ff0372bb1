// The Concord dashboard (docs/dashboard.md): polls the member that served it once a second — /ui/api/cluster for
// every member's status and leader history, /ui/api/coordination for locks, elections, leases and keys — and
// renders with preact + htm, both served by the member. With tokens configured the API needs a bearer token with
// cluster read permission: it is entered in the page and kept in this tab's sessionStorage only.
/* global document, fetch, sessionStorage, setTimeout, clearTimeout, URLSearchParams -- the browser's */

import { h, render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";

const html = htm.bind(h);
const POLL_MS = 1000;
const TOKEN_KEY = "concord-dashboard-token";

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function getJson(path, token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const res = await fetch(path, { headers, cache: "no-store" });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, body.message ?? `${path} answered ${res.status}`);
  return body;
}

/** Polls both endpoints, one round at a time; returns the latest answers and the last error. */
function usePoll(token, keys) {
  const [state, setState] = useState({ cluster: null, coordination: null, error: null, updated: null });
  const latest = useRef({ token, keys });
  latest.current = { token, keys };
  useEffect(() => {
    let stopped = false;
    let timer;
    const round = async () => {
      const { token, keys } = latest.current;
      const q = new URLSearchParams({ prefix: keys.prefix, limit: "50" });
      try {
        const [cluster, coordination] = await Promise.all([
          getJson("/ui/api/cluster", token),
          getJson(`/ui/api/coordination?${q}`, token),
        ]);
        if (!stopped) setState({ cluster, coordination, error: null, updated: new Date() });
      } catch (e) {
        if (!stopped) setState((s) => ({ ...s, error: e, updated: new Date() }));
      }
      if (!stopped) timer = setTimeout(round, POLL_MS);
    };
    round();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);
  return state;
}

/** The leader as the members that answered see it: the one named in the highest term. */
function currentLeader(members) {
  let best = null;
  for (const m of members) {
    const s = m.view?.status;
    if (!s || s.leader === null) continue;
    if (best === null || s.term > best.term) best = { id: s.leader, term: s.term };
  }
  return best;
}

function health(m, leaderStatus) {
  if (m.error) return { text: `unreachable: ${m.error}`, bad: true };
  const s = m.view.status;
  if (s.fatal) return { text: `stopped: ${s.fatal}`, bad: true };
  if (s.alarms.length > 0) return { text: `alarm ${s.alarms.map((a) => a.alarm).join(", ")}`, bad: true };
  if (s.leader === null) return { text: "no leader known", bad: true };
  const progress = leaderStatus?.progress?.[m.id];
  if (progress && progress.state !== "replicate" && m.id !== leaderStatus.id) return { text: `catching up (${progress.state})`, bad: true };
  return { text: "ok", bad: false };
}

const ms = (v) => (v === null || v === undefined ? "—" : v < 10_000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v / 1000)} s`);
const ago = (at, now) => {
  const s = Math.max(0, Math.round((now - at) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};
const shown = (v) =>
  html`<span class=${v.encoding === "hex" ? "hex" : ""} title=${`${v.bytes} bytes${v.encoding === "hex" ? ", not UTF-8: hex" : ""}`}
    >${v.text}${v.truncated ? "…" : ""}</span
  >`;

function Members({ members, self }) {
  const leader = currentLeader(members);
  const leaderStatus = members.find((m) => m.id === leader?.id)?.view?.status;
  const leaderCommit = leaderStatus?.commit ?? Math.max(0, ...members.map((m) => m.view?.status.commit ?? 0));
  return html`<section>
    <h2>Members</h2>
    <table data-testid="members">
      <thead>
        <tr><th>member</th><th>role</th><th>term</th><th>commit</th><th>applied</th><th>lag</th><th>health</th><th>client URL</th></tr>
      </thead>
      <tbody>
        ${members.map((m) => {
          const s = m.view?.status;
          const hl = health(m, leaderStatus);
          return html`<tr key=${m.id} data-member=${m.id} class=${s?.role === "leader" ? "leader" : ""}>
            <td>${m.id}${m.id === self ? html` <span class="muted">(this page)</span>` : ""}</td>
            <td>${s ? s.role : "—"}${m.role === "learner" ? " (learner)" : ""}</td>
            <td>${s?.term ?? "—"}</td>
            <td>${s?.commit ?? "—"}</td>
            <td>${s?.applied ?? "—"}</td>
            <td>${s ? Math.max(0, leaderCommit - s.applied) : "—"}</td>
            <td class=${hl.bad ? "bad" : "good"}>${hl.text}</td>
            <td class="muted">${m.clientUrl || "unknown"}</td>
          </tr>`;
        })}
      </tbody>
    </table>
    <p class="muted">Lag: entries the member has yet to apply up to the leader's commit index.</p>
  </section>`;
}

function LeaderHistory({ members, now }) {
  // Every member's own list, merged: one row per (term, leader) with who saw it and when it was first seen.
  const rows = new Map();
  for (const m of members) {
    for (const c of m.view?.leaderHistory ?? []) {
      const key = `${c.term}/${c.leader}`;
      const row = rows.get(key) ?? { term: c.term, leader: c.leader, at: c.at, seenBy: [] };
      row.at = Math.min(row.at, c.at);
      row.seenBy.push(m.id);
      rows.set(key, row);
    }
  }
  const list = [...rows.values()].sort((a, b) => b.at - a.at || b.term - a.term).slice(0, 30);
  return html`<section>
    <h2>Leader history</h2>
    <table data-testid="leader-history">
      <thead><tr><th>term</th><th>leader</th><th>when</th><th>seen by</th></tr></thead>
      <tbody>
        ${list.map(
          (r) => html`<tr key=${`${r.term}/${r.leader}`}>
            <td>${r.term}</td>
            <td>${r.leader ?? html`<span class="muted">none (election)</span>`}</td>
            <td title=${new Date(r.at).toISOString()}>${new Date(r.at).toLocaleTimeString()} (${ago(r.at, now)})</td>
            <td class="muted">${r.seenBy.sort().join(", ")}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}

function Locks({ view }) {
  return html`<section>
    <h2>Locks <span class="muted">(${view.counts.locks}${view.counts.hiddenLocks ? `, ${view.counts.hiddenLocks} not readable with this token` : ""})</span></h2>
    ${view.locks.length === 0
      ? html`<p class="muted" data-testid="no-locks">No lock is held or waited for.</p>`
      : html`<table data-testid="locks">
          <thead><tr><th>lock</th><th>holder lease</th><th>token</th><th>lease left</th><th>waiters in order (lease: left)</th></tr></thead>
          <tbody>
            ${view.locks.map((l) =>
              l.holders.map(
                (hd, i) => html`<tr key=${`${l.name}/${hd.lease}`} data-lock=${l.name}>
                  <td>${i === 0 ? l.name : ""}${i === 0 && l.limit > 1 ? html` <span class="muted">(limit ${l.limit})</span>` : ""}</td>
                  <td>${hd.lease}</td>
                  <td data-testid="lock-token">${hd.token}</td>
                  <td>${ms(hd.remainingMs)}</td>
                  <td>${i === 0 ? l.waiters.map((w) => `${w.lease}: ${ms(w.remainingMs)}`).join(" → ") || html`<span class="muted">none</span>` : ""}</td>
                </tr>`,
              ),
            )}
          </tbody>
        </table>`}
  </section>`;
}

function Elections({ view }) {
  return html`<section>
    <h2>Elections <span class="muted">(${view.counts.elections}${view.counts.hiddenElections ? `, ${view.counts.hiddenElections} not readable with this token` : ""})</span></h2>
    ${view.elections.length === 0
      ? html`<p class="muted">No election.</p>`
      : html`<table data-testid="elections">
          <thead><tr><th>election</th><th>leader lease</th><th>value</th><th>token</th><th>lease left</th><th>candidates in order</th></tr></thead>
          <tbody>
            ${view.elections.map(
              (e) => html`<tr key=${e.name} data-election=${e.name}>
                <td>${e.name}</td>
                <td>${e.leader?.lease ?? html`<span class="muted">none</span>`}</td>
                <td>${e.leader ? shown(e.leader.value) : ""}</td>
                <td>${e.leader?.token ?? ""}</td>
                <td>${e.leader ? ms(e.leader.remainingMs) : ""}</td>
                <td>${e.candidates.join(" → ")}</td>
              </tr>`,
            )}
          </tbody>
        </table>`}
  </section>`;
}

function Leases({ view }) {
  return html`<section>
    <h2>Leases <span class="muted">(${view.counts.leases})</span></h2>
    ${view.leases.length === 0
      ? html`<p class="muted">No lease.</p>`
      : html`<table data-testid="leases">
          <thead><tr><th>lease</th><th>TTL</th><th>left</th></tr></thead>
          <tbody>
            ${view.leases.map((l) => html`<tr key=${l.lease}><td>${l.lease}</td><td>${ms(l.ttlMs)}</td><td>${ms(l.remainingMs)}</td></tr>`)}
          </tbody>
        </table>`}
  </section>`;
}

function Keys({ keys, prefix, setPrefix }) {
  return html`<section>
    <h2>Keys</h2>
    <label>Prefix <input data-testid="prefix" value=${prefix} onInput=${(e) => setPrefix(e.currentTarget.value)} placeholder="(every key)" /></label>
    ${"error" in keys
      ? html`<p class="bad">${keys.error}</p>`
      : html`<span class="muted"> revision ${keys.revision}</span>
          ${keys.kvs.length === 0
            ? html`<p class="muted">No key under this prefix.</p>`
            : html`<table data-testid="keys">
                <thead><tr><th>key</th><th>value</th><th>created</th><th>modified</th><th>version</th><th>lease</th></tr></thead>
                <tbody>
                  ${keys.kvs.map(
                    (kv) => html`<tr key=${kv.key}>
                      <td>${kv.key}</td>
                      <td>${shown(kv.value)}</td>
                      <td>${kv.createRevision}</td>
                      <td>${kv.modRevision}</td>
                      <td>${kv.version}</td>
                      <td>${kv.lease || ""}</td>
                    </tr>`,
                  )}
                </tbody>
              </table>`}
          ${keys.more ? html`<p class="muted">More keys match; narrow the prefix to see them.</p>` : ""}`}
  </section>`;
}

function TokenForm({ token, setToken, error }) {
  const [draft, setDraft] = useState(token);
  const submit = (e) => {
    e.preventDefault();
    setToken(draft.trim());
  };
  return html`<form class="token" onSubmit=${submit}>
    <input type="password" data-testid="token" placeholder="bearer token" autocomplete="off" value=${draft} onInput=${(e) => setDraft(e.currentTarget.value)} />
    <button type="submit">Use token</button>
    ${error ? html`<span class="bad">${error}</span>` : ""}
  </form>`;
}

const source = ({ view, note }) =>
  `Locks, elections, leases and keys as applied on ${view.member}${view.leader ? " (the leader)" : ""} at index ${view.applied}.` +
  (note ? ` ${note}.` : "");

function App() {
  const [token, setTokenState] = useState(() => sessionStorage.getItem(TOKEN_KEY) ?? "");
  const [prefix, setPrefix] = useState("");
  const setToken = (t) => {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
    setTokenState(t);
  };
  const { cluster, coordination, error, updated } = usePoll(token, { prefix });
  const authError = error instanceof ApiError && (error.status === 401 || error.status === 403) ? error.message : null;
  const leader = cluster ? currentLeader(cluster.members) : null;
  const now = Date.now();
  return html`
    <header>
      <h1>Concord</h1>
      <div class="leader">
        leader: <strong data-testid="leader">${leader ? leader.id : "none"}</strong>
        ${leader ? html`<span class="muted"> term ${leader.term}</span>` : ""}
      </div>
      <div class="muted">
        served by ${cluster?.self ?? "…"}; ${updated ? `updated ${updated.toLocaleTimeString()}` : "loading"}
      </div>
      <${TokenForm} token=${token} setToken=${setToken} error=${authError} />
    </header>
    ${error && !authError ? html`<p class="bad banner" data-testid="error">${error.message} (showing the last answer)</p>` : ""}
    ${cluster ? html`<${Members} members=${cluster.members} self=${cluster.self} />` : ""}
    ${coordination
      ? html`<p class="muted source" data-testid="source">${source(coordination)}</p>
          <div class="grid">
            <${Locks} view=${coordination.view} />
            <${Elections} view=${coordination.view} />
            <${Leases} view=${coordination.view} />
          </div>
          <${Keys} keys=${coordination.view.keys} prefix=${prefix} setPrefix=${setPrefix} />`
      : ""}
    ${cluster ? html`<${LeaderHistory} members=${cluster.members} now=${now} />` : ""}
  `;
}

const root = document.getElementById("app");
root.replaceChildren(); // the "Loading" placeholder: render() adds to what is there
render(html`<${App} />`, root);
