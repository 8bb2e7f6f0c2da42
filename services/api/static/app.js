/* tonewatch dashboard: watchlist, drill-down, live alert feed, routing, model status. */
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);
  const state = {
    stream: localStorage.getItem("tw.stream") || "news",
    granularity: localStorage.getItem("tw.granularity") || "hour",
    entity: "_all",
    names: { _all: "All messages" },
    alerts: new Map(),
    selectedAlert: null,
    trend: null,
  };
  const POINTS = { minute: { spark: 60, drill: 180 }, hour: { spark: 48, drill: 168 } };
  const REFRESH_MS = 10000;

  async function api(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  }

  function h(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`);
  const shareClass = (v) => (v === null || v === undefined ? "muted" : v >= 0.6 ? "bad" : v >= 0.4 ? "warn" : "good");
  const num = (v) => (v >= 10000 ? `${(v / 1000).toFixed(1)}k` : String(v));

  function when(iso) {
    const d = new Date(iso), age = (Date.now() - d.getTime()) / 1000;
    if (age >= 0 && age < 60) return "just now";
    if (age >= 0 && age < 3600) return `${Math.floor(age / 60)} min ago`;
    if (age >= 0 && age < 86400) return `${Math.floor(age / 3600)} h ago`;
    return `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  }

  /* ---- status bar ---------------------------------------------------------- */
  async function loadStatus() {
    const box = $("#models");
    try {
      const st = await api("/v1/status");
      box.textContent = "";
      for (const m of st.models) {
        const chip = h("span", `chip ${m.promoted ? "" : "chip-bad"}`);
        chip.append(h("b", null, m.task), ` ${m.promoted ? m.version : "not promoted"}`);
        chip.title = m.promoted ? `${m.name || m.task} ${m.version} · variants ${(m.variants || []).join(", ")}` : m.error;
        box.append(chip);
      }
      const c = st.classifier;
      const dev = h("span", "chip chip-device");
      dev.dataset.testid = "device";
      if (c && !c.error) {
        const provider = (c.provider || c.providers || "?").toString().replace("ExecutionProvider", "");
        dev.append(h("b", null, "device"), ` ${c.device || provider}`);
        if (c.device && provider && !String(c.device).includes(provider)) dev.append(h("span", "muted", ` · ${provider}`));
        if (c.variant) dev.append(h("span", "muted", ` · ${c.variant}`));
      } else {
        dev.append(h("b", null, "device"), " classifier not reporting");
        dev.classList.add("chip-dim");
      }
      box.append(dev);
    } catch (e) {
      box.textContent = "status unavailable";
    }
  }

  /* ---- watchlist ----------------------------------------------------------- */
  function entityRow(key, name, stats) {
    const tr = h("tr", key === state.entity ? "selected" : "");
    tr.dataset.entity = key;
    const nameCell = h("td", "name");
    nameCell.append(h("div", "ent-name", name), h("div", "ent-key", key));
    const share = h("td", `num ${shareClass(stats.negative_share_total)}`, pct(stats.negative_share_total));
    const spark1 = h("td", "sparkcell");
    spark1.append(TWChart.sparkline(stats.negative_share, { threshold: 0.5 }));
    const spark2 = h("td", "sparkcell");
    spark2.append(TWChart.sparkline(stats.volume, { kind: "bars" }));
    const alerts = h("td", "num");
    if (stats.open_alerts) alerts.append(h("span", "badge", stats.open_alerts));
    tr.append(nameCell, h("td", "num", num(stats.total)), share, spark1, spark2, alerts);
    tr.addEventListener("click", () => selectEntity(key));
    return tr;
  }

  async function loadWatchlist() {
    const p = POINTS[state.granularity];
    const data = await api(`/v1/entities?stream=${state.stream}&granularity=${state.granularity}&points=${p.spark}`);
    const body = $("#watchlist tbody");
    const rows = [entityRow("_all", `All ${state.stream}`, data.overall)];
    const sorted = data.entities.slice().sort((a, b) => (b.stats.total - a.stats.total) || a.key.localeCompare(b.key));
    for (const e of sorted) {
      state.names[e.key] = e.name;
      rows.push(entityRow(e.key, e.name, e.stats));
    }
    body.replaceChildren(...rows);
    const to = new Date(data.window.to);
    $("#asof").textContent = `data to ${to.toISOString().slice(0, 16).replace("T", " ")} UTC`;
    $("#spark-span").textContent = `last ${p.spark} ${state.granularity}s`;
  }

  /* ---- drill-down ---------------------------------------------------------- */
  async function loadDrill() {
    const p = POINTS[state.granularity];
    const key = encodeURIComponent(state.entity);
    const [trend, alerts] = await Promise.all([
      api(`/v1/trends?entity=${key}&stream=${state.stream}&granularity=${state.granularity}&points=${p.drill}&fill=true`),
      api(`/v1/alerts?entity=${key}&stream=${state.stream}&limit=100`),
    ]);
    const firstData = trend.buckets.findIndex((b) => b.count > 0);
    const keep = Math.min(trend.buckets.length - p.spark, Math.max(0, firstData - 2));
    if (keep > 0) trend.buckets = trend.buckets.slice(keep);
    state.trend = trend;
    const inWindow = alerts.filter((a) => a.window_end >= trend.from && a.window_start < trend.to);
    for (const a of alerts) state.alerts.set(a.id, a);
    if (!state.selectedAlert || !inWindow.some((a) => a.id === state.selectedAlert)) {
      state.selectedAlert = inWindow.length ? inWindow[0].id : null;
    }
    $("#drill-title").textContent = state.names[state.entity] || state.entity;
    const total = trend.buckets.reduce((s, b) => s + b.count, 0);
    const neg = trend.buckets.reduce((s, b) => s + b.negative, 0);
    $("#drill-summary").textContent = `${num(total)} msgs · ${pct(total ? neg / total : null)} negative · ` +
      `${inWindow.length} alert${inWindow.length === 1 ? "" : "s"}`;
    drawDrill(inWindow);
    await renderExplanation();
  }

  function drawDrill(alerts) {
    if (!state.trend) return;
    TWChart.trendChart($("#drill-chart"), state.trend.buckets, {
      alerts: alerts || [...state.alerts.values()].filter((a) => a.entity === state.entity && a.stream === state.stream),
      selectedAlert: state.selectedAlert,
      fitTo: $(".drill"),
      granularity: state.granularity,
      onAlert: (a) => { state.selectedAlert = a.id; drawDrill(); renderExplanation(); },
    });
  }

  function termLabel(t) {
    if (typeof t === "string") return t;
    if (Array.isArray(t)) return `${t[0]}${typeof t[1] === "number" ? ` ×${t[1].toFixed(1)}` : ""}`;
    const name = t.term || t.text || t.token || "?";
    if (typeof t.window === "number") return `${name} ×${t.window}`;  // the alerter's terms: mentions in the window
    const score = t.lift ?? t.score ?? t.weight ?? t.count;
    return typeof score === "number" ? `${name} ×${score.toFixed(1)}` : name;
  }

  function termChip(t) {
    const chip = h("span", "term", termLabel(t));
    if (t && typeof t === "object" && !Array.isArray(t) && typeof t.window === "number") {
      chip.title = `in ${t.window} of the window's negative messages; in ${t.baseline ?? "?"} messages of the ` +
        `baseline period${typeof t.z === "number" ? `; z ${t.z.toFixed(1)}` : ""}`;
    }
    return chip;
  }

  function messageItem(text, prob, meta) {
    const li = h("li", "msg");
    const bar = h("span", "probbar");
    const fill = h("span", "probfill");
    fill.style.width = `${Math.round((prob || 0) * 100)}%`;
    bar.append(fill);
    li.append(h("span", `prob ${shareClass(prob)}`, pct(prob)), bar, h("span", "msg-text", text));
    if (meta) li.append(h("span", "msg-meta", meta));
    return li;
  }

  async function renderExplanation() {
    const box = $("#explain");
    const a = state.selectedAlert ? state.alerts.get(state.selectedAlert) : null;
    box.textContent = "";
    if (a) {
      const ex = a.explanation || {};
      const head = h("div", "ex-head");
      head.append(h("span", `sev sev-${a.severity}`, a.severity), h("b", null, a.rule_name || `rule ${a.rule_id}`),
        h("span", `status status-${a.status}`, a.status),
        h("span", "muted", `window ${a.window_start.slice(0, 16).replace("T", " ")} → ${a.window_end.slice(11, 16)} UTC`));
      box.append(head);
      const facts = h("div", "facts");
      for (const [k, v] of Object.entries(ex)) {
        if (typeof v === "number") facts.append(h("span", "fact", `${k.replace(/_/g, " ")} ${Number.isInteger(v) ? v : v.toFixed(2)}`));
      }
      if (Array.isArray(ex.top_terms)) {
        for (const t of ex.top_terms.slice(0, 10)) facts.append(termChip(t));
      }
      if (facts.childElementCount) box.append(facts);
      const list = h("ul", "msgs");
      for (const msg of (ex.top_messages || []).slice(0, 6)) list.append(messageItem(msg.text, msg.negative_prob));
      if (!list.childElementCount) list.append(h("li", "muted", "no messages recorded for this alert"));
      box.append(list);
      return;
    }
    const t = state.trend;
    const q = t ? `&from=${encodeURIComponent(t.from)}&to=${encodeURIComponent(t.to)}` : "";
    const msgs = await api(`/v1/entities/${encodeURIComponent(state.entity)}/messages?stream=${state.stream}&limit=6${q}`);
    box.append(h("div", "ex-head muted", "No alert in this window · most negative messages"));
    const list = h("ul", "msgs");
    for (const m of msgs) list.append(messageItem(m.text, m.negative_prob, when(m.event_time)));
    if (!msgs.length) list.append(h("li", "muted", "no messages in this window"));
    box.append(list);
  }

  function selectEntity(key) {
    state.entity = key;
    state.selectedAlert = null;
    for (const tr of document.querySelectorAll("#watchlist tbody tr")) tr.classList.toggle("selected", tr.dataset.entity === key);
    loadDrill().catch(showError);
  }

  /* ---- live alert feed ----------------------------------------------------- */
  function feedItem(a) {
    const li = h("li", `alert sev-${a.severity} status-${a.status}`);
    li.dataset.alertId = a.id;
    const top = h("div", "alert-top");
    top.append(h("span", `sev sev-${a.severity}`, a.severity), h("b", "alert-entity", state.names[a.entity] || a.entity),
      h("span", `status status-${a.status}`, a.status));
    const share = a.explanation && typeof a.explanation.negative_share === "number" ? ` · ${pct(a.explanation.negative_share)} negative` : "";
    li.append(top, h("div", "alert-meta", `${a.rule_name || "rule " + a.rule_id} · ${a.stream}${share} · ${when(a.fired_at)}`));
    li.addEventListener("click", () => {
      state.entity = a.entity; state.selectedAlert = a.id;
      if (a.stream !== state.stream) { state.stream = a.stream; $("#stream").value = a.stream; loadWatchlist().catch(showError); }
      for (const tr of document.querySelectorAll("#watchlist tbody tr")) tr.classList.toggle("selected", tr.dataset.entity === a.entity);
      loadDrill().catch(showError);
    });
    return li;
  }

  function renderFeed(flashId) {
    const items = [...state.alerts.values()].sort((x, y) => (y.fired_at > x.fired_at ? 1 : -1)).slice(0, 60);
    const list = $("#feed");
    list.replaceChildren(...items.map(feedItem));
    const open = items.filter((a) => a.status !== "resolved").length;
    $("#feed-count").textContent = `${open} open`;
    if (flashId) {
      const li = list.querySelector(`[data-alert-id="${CSS.escape(flashId)}"]`);
      if (li) li.classList.add("flash");
    }
    if (!items.length) list.append(h("li", "muted empty", "No alerts yet. New ones appear here live."));
  }

  function connectFeed() {
    const conn = $("#conn");
    const es = new EventSource("/v1/alerts/stream");
    es.addEventListener("open", () => { conn.className = "conn live"; conn.title = "live"; conn.textContent = "● live"; });
    es.addEventListener("error", () => { conn.className = "conn down"; conn.title = "reconnecting"; conn.textContent = "● reconnecting"; });
    es.addEventListener("snapshot", (ev) => {
      for (const a of JSON.parse(ev.data).alerts) state.alerts.set(a.id, a);
      renderFeed();
    });
    es.addEventListener("alert", (ev) => {
      const a = JSON.parse(ev.data);
      const isNew = !state.alerts.has(a.id);
      state.alerts.set(a.id, a);
      renderFeed(isNew ? a.id : null);
      if (a.entity === state.entity) drawDrill();
      loadWatchlist().catch(showError);
    });
  }

  /* ---- routing ------------------------------------------------------------- */
  async function loadRouting() {
    const r = await api("/v1/routing?points=60");
    const items = r.queues.map((q) => ({ label: q.queue, value: q.count, extra: q.priority ? `${q.count} · ${q.priority} prio` : String(q.count),
      cls: q.queue === "escalations" ? "hbar-hot" : q.queue === "human" ? "hbar-warm" : "" }));
    TWChart.hbars($("#routing"), items);
    $("#routing-span").textContent = `60 min to ${r.to.slice(11, 16)} UTC`;
  }

  function showError(e) {
    const bar = $("#error");
    bar.textContent = `⚠ ${e.message || e}`;
    bar.classList.remove("hidden");
    setTimeout(() => bar.classList.add("hidden"), 8000);
  }

  async function refresh() {
    await Promise.all([loadWatchlist(), loadRouting(), loadStatus()]).catch(showError);
    await loadDrill().catch(showError);
  }

  function init() {
    $("#stream").value = state.stream;
    $("#granularity").value = state.granularity;
    for (const id of ["stream", "granularity"]) {
      $(`#${id}`).addEventListener("change", (ev) => {
        state[id] = ev.target.value;
        localStorage.setItem(`tw.${id}`, ev.target.value);
        state.selectedAlert = null;
        refresh();
      });
    }
    let resizeTimer = null;
    window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { drawDrill(); loadRouting().catch(showError); }, 150); });
    refresh().then(() => document.body.classList.add("ready"));
    connectFeed();
    setInterval(refresh, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
