/* tonewatch dashboard: watchlist, drill-down, live alert feed, routing, model status. */
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);
  const state = {
    stream: localStorage.getItem("tw.stream") || "news",
    granularity: localStorage.getItem("tw.granularity") || "hour",
    entity: "_all",
    names: { _all: "All messages" },
    live: new Map(),        // the live feed: the stream's snapshot and events, the newest LIVE_MAX kept
    liveAt: new Map(),      // when each live copy arrived (a stamp())
    drillAlerts: [],        // the alerts of the drill-down's window (its own fetch, not in the feed)
    drillAt: 0,             // when their fetch began (a stamp())
    pinned: null,           // an alert chosen in the feed: kept selected, the trend range moved to its window
    selectedAlert: null,
    trend: null,
  };
  const POINTS = { minute: { spark: 60, drill: 180 }, hour: { spark: 48, drill: 168 } };
  const STEP_MS = { minute: 60000, hour: 3600000 };
  const REFRESH_MS = 10000;
  const LIVE_MAX = 200, FEED_SHOWN = 60;
  const WATCHLIST_DEBOUNCE_MS = 500;
  const FEED_RETRY_MS = 1000, FEED_RETRY_MAX_MS = 30000;
  const DRILL_ALERTS_MAX = 1000;  // the API's largest page: in practice every alert of the chart's window

  /* Each view's newest request: a reply to an older one (its view has changed since) is dropped. */
  const latest = { watchlist: 0, drill: 0, explain: 0, routing: 0, status: 0, live: 0 };
  const ticket = (view) => ++latest[view];
  const stale = (view, t) => latest[view] !== t;

  /* The order of live arrivals and REST requests, to tell which copy of an alert is newer. */
  let stamps = 0;
  const stamp = () => ++stamps;

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
    const t = ticket("status");
    try {
      const st = await api("/v1/status");
      if (stale("status", t)) return;
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
      if (!stale("status", t)) box.textContent = "status unavailable";
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
    const t = ticket("watchlist");
    const data = await api(`/v1/entities?stream=${state.stream}&granularity=${state.granularity}&points=${p.spark}`);
    if (stale("watchlist", t)) return;
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

  /* New alerts change the watchlist's badges: one reload per WATCHLIST_DEBOUNCE_MS however many arrive. */
  let watchlistTimer = null;
  function scheduleWatchlist() {
    if (watchlistTimer) return;
    watchlistTimer = setTimeout(() => { watchlistTimer = null; loadWatchlist().catch(showError); }, WATCHLIST_DEBOUNCE_MS);
  }

  /* ---- drill-down ---------------------------------------------------------- */
  const ms = (x) => new Date(x).getTime();
  const inRange = (a, from, to) => ms(a.window_end) >= ms(from) && ms(a.window_start) < ms(to);
  const iso = (t) => new Date(t).toISOString();
  const windowQuery = (tr) => `&from=${encodeURIComponent(tr.from)}&to=${encodeURIComponent(tr.to)}`;

  /* The trend range around an alert's window: as many buckets as the default range, centred on it. */
  function rangeAround(a, granularity, points) {
    const step = STEP_MS[granularity];
    const mid = (ms(a.window_start) + ms(a.window_end)) / 2;
    const from = Math.floor((mid - (points / 2) * step) / step) * step;
    return `&from=${encodeURIComponent(iso(from))}&to=${encodeURIComponent(iso(from + points * step))}`;
  }

  async function loadDrill() {
    const t = ticket("drill");
    const at = stamp();
    const view = { entity: state.entity, stream: state.stream, granularity: state.granularity };
    const p = POINTS[view.granularity];
    const key = encodeURIComponent(view.entity);
    const pin = state.pinned && state.pinned.entity === view.entity && state.pinned.stream === view.stream ? state.pinned : null;
    const trendUrl = `/v1/trends?entity=${key}&stream=${view.stream}&granularity=${view.granularity}&points=${p.drill}&fill=true`;
    let [trend, pinned] = await Promise.all([
      api(trendUrl),
      pin ? api(`/v1/alerts/${encodeURIComponent(pin.id)}`).catch(() => pin) : null,
    ]);
    if (stale("drill", t)) return;
    if (pinned && !inRange(pinned, trend.from, trend.to)) {
      trend = await api(trendUrl + rangeAround(pinned, view.granularity, p.drill));
      if (stale("drill", t)) return;
    }
    // the alerts of the chart's window, not the entity's newest: the window may be a chosen older alert's
    let alerts = await api(`/v1/alerts?entity=${key}&stream=${view.stream}${windowQuery(trend)}&limit=${DRILL_ALERTS_MAX}`);
    if (stale("drill", t)) return;
    const firstData = trend.buckets.findIndex((b) => b.count > 0);
    let keep = Math.min(trend.buckets.length - p.spark, Math.max(0, firstData - 2));
    if (pinned) {  // never trim the chosen alert's window away
      const at = trend.buckets.findIndex((b) => ms(b.bucket) + STEP_MS[view.granularity] > ms(pinned.window_start));
      if (at >= 0) keep = Math.min(keep, Math.max(0, at - 2));
    }
    if (keep > 0) trend.buckets = trend.buckets.slice(keep);
    if (pinned) {
      state.pinned = pinned;
      alerts = [pinned, ...alerts.filter((a) => a.id !== pinned.id)];
    }
    state.trend = trend;
    state.drillAlerts = alerts;
    state.drillAt = at;
    const inWindow = alerts.filter((a) => inRange(a, trend.from, trend.to));
    if (pinned) state.selectedAlert = pinned.id;
    else if (!state.selectedAlert || !inWindow.some((a) => a.id === state.selectedAlert)) {
      state.selectedAlert = inWindow.length ? inWindow[0].id : null;
    }
    const title = $("#drill-title");
    title.textContent = state.names[view.entity] || view.entity;
    title.title = title.textContent;  // a long name is cut to the panel's width
    const total = trend.buckets.reduce((s, b) => s + b.count, 0);
    const neg = trend.buckets.reduce((s, b) => s + b.negative, 0);
    $("#drill-summary").textContent = `${num(total)} msgs · ${pct(total ? neg / total : null)} negative · ` +
      `${inWindow.length} alert${inWindow.length === 1 ? "" : "s"}`;
    drawDrill();
    await renderExplanation();
  }

  /* Which of two copies of an alert is newer: a REST reply requested (at restAt) after the live copy arrived (at
     liveAt) read the database after the poll that sent that copy. Otherwise either may be; statuses only move
     forward (open → acknowledged → resolved), so the further one is, and at the same status the live copy. */
  const STATUS_ORDER = ["open", "acknowledged", "resolved"];
  function newer(rest, restAt, live, liveAt) {
    if (restAt > liveAt) return rest;
    return STATUS_ORDER.indexOf(rest.status) > STATUS_ORDER.indexOf(live.status) ? rest : live;
  }

  /* The drill-down's alerts, with the live feed's copies where newer (status changes) and the alerts it brought
     since the fetch began (new ones). A live alert the fetch lacks though it arrived before was deleted. */
  function drillAlerts() {
    const byId = new Map(state.drillAlerts.map((a) => [a.id, a]));
    for (const a of state.live.values()) {
      if (a.entity !== state.entity || a.stream !== state.stream) continue;
      const rest = byId.get(a.id);
      if (rest) byId.set(a.id, newer(rest, state.drillAt, a, state.liveAt.get(a.id)));
      else if (state.liveAt.get(a.id) > state.drillAt) byId.set(a.id, a);
    }
    const t = state.trend;
    return [...byId.values()].filter((a) => !t || inRange(a, t.from, t.to) || a.id === state.selectedAlert);
  }

  function findAlert(id) {
    if (!id) return null;
    const rest = state.drillAlerts.find((a) => a.id === id) || (state.pinned && state.pinned.id === id ? state.pinned : null);
    const live = state.live.get(id);
    return rest && live ? newer(rest, state.drillAt, live, state.liveAt.get(id)) : rest || live || null;
  }

  function drawDrill() {
    if (!state.trend) return;
    TWChart.trendChart($("#drill-chart"), state.trend.buckets, {
      alerts: drillAlerts(),
      selectedAlert: state.selectedAlert,
      fitTo: $(".drill"),
      granularity: state.granularity,
      onAlert: (a) => { state.selectedAlert = a.id; state.pinned = a; drawDrill(); renderExplanation().catch(showError); },
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

  /* One message: its text cut to the line, the whole of it in the tooltip; eventTime (ISO), when it was written. */
  function messageItem(text, prob, eventTime) {
    const li = h("li", "msg");
    const bar = h("span", "probbar");
    const fill = h("span", "probfill");
    fill.style.width = `${Math.round((prob || 0) * 100)}%`;
    bar.append(fill);
    const body = h("span", "msg-text", text);
    body.title = String(text ?? "");
    li.append(h("span", `prob ${shareClass(prob)}`, pct(prob)), bar, body);
    if (eventTime && !Number.isNaN(ms(eventTime))) {
      const meta = h("span", "msg-meta", when(eventTime));
      meta.title = `${iso(eventTime).slice(0, 19).replace("T", " ")} UTC`;
      li.append(meta);
    }
    return li;
  }

  /* Why an alert fired, where the alerter stored its rule's thresholds (alerts before it did have none): each
     measure against its threshold, and the baseline with the spread the z-score used. The facts shown. */
  const CROSSING = ["share", "z", "volume", "min_volume", "abs_threshold", "z_threshold", "baseline_mean",
    "baseline_center", "baseline_std", "baseline_std_used", "baseline_method"];
  function crossingFacts(ex) {
    const n = (k) => typeof ex[k] === "number";
    if (!n("abs_threshold") || !n("z_threshold")) return null;
    const parts = [];
    if (n("share")) parts.push(`share ${pct(ex.share)} ≥ ${pct(ex.abs_threshold)}`);
    if (n("z")) parts.push(`z ${ex.z.toFixed(1)} ≥ ${ex.z_threshold.toFixed(1)}`);
    if (n("volume") && n("min_volume")) parts.push(`volume ${ex.volume} ≥ ${ex.min_volume}`);
    const facts = [h("span", "fact fact-crossing", parts.join(" · "))];
    const center = n("baseline_center") ? ex.baseline_center : ex.baseline_mean;
    const spread = n("baseline_std_used") ? ex.baseline_std_used : ex.baseline_std;
    if (typeof center === "number") {
      // cold start: the entity's longer history, or the whole stream's (no history of its own)
      const stream = ex.baseline_method === "stream", history = stream || ex.baseline_method === "history";
      const kind = stream ? "stream share" : history ? "history share" : ex.baseline_method === "mad" ? "median" : "mean";
      const base = h("span", "fact", `baseline ${kind} ${pct(center)}${typeof spread === "number" ? ` ± ${pct(spread)}` : ""}`);
      if (history) {
        base.title = `${stream ? "no history of its own" : "too few recent windows had data"}: judged against `
          + `${n("history_volume") ? ex.history_volume : "the"} ${stream ? "messages of the whole stream" : "messages"} since ${typeof ex.history_start === "string" ? ex.history_start.slice(0, 16).replace("T", " ") + " UTC" : "the history's start"}`;
      } else if (n("baseline_std") && typeof spread === "number" && spread > ex.baseline_std) {
        base.title = `the baseline's spread (${pct(ex.baseline_std)}) was below the floor the z-score uses`;
      }
      facts.push(base);
    }
    return facts;
  }

  /* "2024-05-01 23:57 → 2024-05-02 00:02" across midnight, else "2024-05-01 10:00 → 10:05". */
  function windowText(start, end) {
    const s = new Date(start).toISOString(), e = new Date(end).toISOString();
    const day = (x) => x.slice(0, 10), hm = (x) => x.slice(11, 16);
    return `${day(s)} ${hm(s)} → ${day(e) === day(s) ? "" : day(e) + " "}${hm(e)}`;
  }

  async function renderExplanation() {
    const box = $("#explain");
    const t = ticket("explain");
    const a = findAlert(state.selectedAlert);
    if (a) {
      box.textContent = "";
      const ex = a.explanation || {};
      const head = h("div", "ex-head");
      head.append(h("span", `sev sev-${a.severity}`, a.severity), h("b", null, a.rule_name || `rule ${a.rule_id}`),
        h("span", `status status-${a.status}`, a.status),
        h("span", "muted", `window ${windowText(a.window_start, a.window_end)} UTC`));
      box.append(head);
      const facts = h("div", "facts");
      const crossing = crossingFacts(ex);
      if (crossing) facts.append(...crossing);
      for (const [k, v] of Object.entries(ex)) {
        if (crossing && CROSSING.includes(k)) continue;
        if (typeof v === "number") facts.append(h("span", "fact", `${k.replace(/_/g, " ")} ${Number.isInteger(v) ? v : v.toFixed(2)}`));
      }
      if (Array.isArray(ex.top_terms)) {
        for (const t of ex.top_terms.slice(0, 10)) facts.append(termChip(t));
      }
      if (facts.childElementCount) box.append(facts);
      const list = h("ul", "msgs");
      // Retention replaced the texts (explanation.texts_removed): say so, not the placeholder as if quoted.
      const removed = ex.texts_removed ? `text removed by ${ex.texts_removed}` : null;
      for (const msg of (ex.top_messages || []).slice(0, 6)) {
        const item = messageItem(removed || msg.text, msg.negative_prob, msg.event_time);
        if (removed) item.querySelector(".msg-text").classList.add("muted");
        list.append(item);
      }
      if (!list.childElementCount) list.append(h("li", "muted", "no messages recorded for this alert"));
      box.append(list);
      return;
    }
    const q = state.trend ? windowQuery(state.trend) : "";
    const msgs = await api(`/v1/entities/${encodeURIComponent(state.entity)}/messages?stream=${state.stream}&limit=6${q}`);
    if (stale("explain", t)) return;
    box.textContent = "";
    box.append(h("div", "ex-head muted", "No alert in this window · most negative messages"));
    const list = h("ul", "msgs");
    for (const m of msgs) list.append(messageItem(m.text, m.negative_prob, m.event_time));
    if (!msgs.length) list.append(h("li", "muted", "no messages in this window"));
    box.append(list);
  }

  function selectEntity(key) {
    state.entity = key;
    state.selectedAlert = null;
    state.pinned = null;
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
    const ex = a.explanation || {};
    const shareValue = typeof ex.share === "number" ? ex.share : ex.negative_share;  // the alerter writes "share"
    const share = typeof shareValue === "number" ? ` · ${pct(shareValue)} negative` : "";
    // the spike's window beside when the alert fired: a catch-up fires "just now" for a window hours ago
    const spike = a.window_start && a.window_end ? ` · window ${windowText(a.window_start, a.window_end)} UTC` : "";
    li.append(top, h("div", "alert-meta", `${a.rule_name || "rule " + a.rule_id} · ${a.stream}${share} · ${when(a.fired_at)}${spike}`));
    li.addEventListener("click", () => {
      state.entity = a.entity; state.selectedAlert = a.id; state.pinned = a;
      if (a.stream !== state.stream) { state.stream = a.stream; $("#stream").value = a.stream; loadWatchlist().catch(showError); }
      for (const tr of document.querySelectorAll("#watchlist tbody tr")) tr.classList.toggle("selected", tr.dataset.entity === a.entity);
      loadDrill().catch(showError);
    });
    return li;
  }

  /* Keep the newest LIVE_MAX alerts of the feed, each with when its copy arrived. */
  function keepLive(a, at = stamp()) {
    state.live.set(a.id, a);
    state.liveAt.set(a.id, at);
    if (state.live.size <= LIVE_MAX) return;
    const byAge = [...state.live.values()].sort((x, y) => (y.fired_at > x.fired_at ? 1 : -1));
    for (const old of byAge.slice(LIVE_MAX)) { state.live.delete(old.id); state.liveAt.delete(old.id); }
  }

  /* A new EventSource starts with a snapshot of the newest alerts; one the browser reopens by itself sends
     Last-Event-ID and resumes with the alerts changed since, and no snapshot (takeSnapshot([]) then). After a gap
     what the feed held may have changed or been deleted, and a snapshot holds only the newest few, a resumption
     none: the feed is rebuilt from it, and the alerts it held beyond it are fetched again (those no longer among
     the newest LIVE_MAX, or deleted, leave). Events that arrive meanwhile are applied on top. */
  async function takeSnapshot(alerts) {
    const t = ticket("live");
    const at = stamp();
    const inSnapshot = new Set(alerts.map((a) => a.id));
    const beyond = new Set([...state.live.keys()].filter((id) => !inSnapshot.has(id)));
    const fresh = beyond.size ? await api(`/v1/alerts?limit=${LIVE_MAX}`).catch((e) => { showError(e); return []; }) : [];
    if (stale("live", t)) return;
    const since = [...state.live.values()].filter((a) => state.liveAt.get(a.id) > at).map((a) => [a, state.liveAt.get(a.id)]);
    state.live = new Map();
    state.liveAt = new Map();
    for (const a of alerts) keepLive(a, at);
    for (const a of fresh) if (beyond.has(a.id)) keepLive(a, at);
    for (const [a, arrived] of since) {
      const prior = state.live.get(a.id);
      if (!prior || newer(prior, at, a, arrived) === a) keepLive(a, arrived);
    }
    renderFeed();
    drawDrill();
    if (state.selectedAlert) renderExplanation().catch(showError);
  }

  function renderFeed(flashId) {
    const all = [...state.live.values()].sort((x, y) => (y.fired_at > x.fired_at ? 1 : -1));
    const items = all.slice(0, FEED_SHOWN);
    const list = $("#feed");
    list.replaceChildren(...items.map(feedItem));
    const open = all.filter((a) => a.status !== "resolved").length;
    $("#feed-count").textContent = all.length >= LIVE_MAX ? `${open} open of the latest ${all.length}` : `${open} open`;
    if (flashId) {
      const li = list.querySelector(`[data-alert-id="${CSS.escape(flashId)}"]`);
      if (li) li.classList.add("flash");
    }
    if (!items.length) list.append(h("li", "muted empty", "No alerts yet. New ones appear here live."));
  }

  /* The live feed. A non-200 reply (503 while PostgreSQL is down, 502 from a proxy, 401) makes the
     browser close an EventSource for good: reopen it after a backoff; each new one starts with a snapshot. */
  let feedRetryMs = FEED_RETRY_MS, feedTimer = null;
  function connectFeed() {
    const conn = $("#conn");
    feedTimer = null;
    const es = new EventSource("/v1/alerts/stream");
    let opened = false;
    es.addEventListener("open", () => {
      feedRetryMs = FEED_RETRY_MS;
      conn.className = "conn live"; conn.title = "live"; conn.textContent = "● live";
      // The browser reopened the stream by itself (a dropped connection), with Last-Event-ID: the alerts changed
      // since come, but no deletion (a rule's cascades to its alerts), renamed rule or text removed by retention.
      if (opened) takeSnapshot([]).catch(showError);
      opened = true;
    });
    es.addEventListener("error", () => {
      conn.className = "conn down"; conn.title = "reconnecting"; conn.textContent = "● reconnecting";
      if (es.readyState !== EventSource.CLOSED || feedTimer) return;  // CONNECTING: the browser retries itself
      es.close();
      feedTimer = setTimeout(connectFeed, feedRetryMs);
      feedRetryMs = Math.min(FEED_RETRY_MAX_MS, feedRetryMs * 2);
    });
    es.addEventListener("snapshot", (ev) => { takeSnapshot(JSON.parse(ev.data).alerts).catch(showError); });
    es.addEventListener("resync", () => {  // the server dropped this subscriber (it fell behind): a fresh snapshot
      es.close();
      connectFeed();
    });
    es.addEventListener("alert", (ev) => {
      const a = JSON.parse(ev.data);
      const isNew = !state.live.has(a.id);
      keepLive(a);
      if (state.pinned && state.pinned.id === a.id) state.pinned = a;
      renderFeed(isNew ? a.id : null);
      if (a.entity === state.entity && a.stream === state.stream) {
        drawDrill();
        if (a.id === state.selectedAlert) renderExplanation().catch(showError);
      }
      scheduleWatchlist();
    });
  }

  /* ---- routing ------------------------------------------------------------- */
  async function loadRouting() {
    const t = ticket("routing");
    const r = await api("/v1/routing?points=60");
    if (stale("routing", t)) return;
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
    renderFeed();  // relative times ("just now", "3 min ago") move on without stream events
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
        state.pinned = null;
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
