/* tonewatch charts: small inline-SVG helpers, no dependencies. */
"use strict";

const TWChart = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function svg(width, height, cls) {
    return el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: cls || "", role: "img" });
  }

  /* Polyline segments over non-null values; gaps break the line. */
  function linePath(values, x, y) {
    let d = "", open = false;
    values.forEach((v, i) => {
      if (v === null || v === undefined || Number.isNaN(v)) { open = false; return; }
      d += `${open ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      open = true;
    });
    return d;
  }

  /* Sparkline of shares in [0, 1] (line + dots for isolated points) or of counts (bars). */
  function sparkline(values, opts) {
    const o = Object.assign({ width: 120, height: 26, kind: "line", cls: "spark" }, opts);
    const s = svg(o.width, o.height, `${o.cls} ${o.kind}`);
    const n = Math.max(values.length, 2), pad = 2;
    const x = (i) => pad + (i * (o.width - 2 * pad)) / (n - 1);
    if (o.kind === "bars") {
      const max = Math.max(1, ...values);
      const bw = Math.max(1, (o.width - 2 * pad) / values.length - 1);
      values.forEach((v, i) => {
        if (!v) return;
        const h = Math.max(1.5, (v / max) * (o.height - 2 * pad));
        el("rect", { x: pad + i * ((o.width - 2 * pad) / values.length), y: o.height - pad - h, width: bw, height: h,
          class: "spark-bar" }, s);
      });
      el("title", {}, s).textContent = `volume per bucket (max ${max})`;
      return s;
    }
    const y = (v) => o.height - pad - v * (o.height - 2 * pad);
    if (o.threshold !== undefined) {
      el("line", { x1: pad, x2: o.width - pad, y1: y(o.threshold), y2: y(o.threshold), class: "spark-threshold" }, s);
    }
    el("path", { d: linePath(values, x, y), class: "spark-line" }, s);
    values.forEach((v, i) => {
      const lonely = v !== null && (i === 0 || values[i - 1] === null) && (i === values.length - 1 || values[i + 1] === null);
      if (lonely) el("circle", { cx: x(i), cy: y(v), r: 1.6, class: "spark-dot" }, s);
    });
    el("title", {}, s).textContent = "negative share per bucket";
    return s;
  }

  const fmtTime = (d, granularity) => {
    const iso = d.toISOString();
    return granularity === "hour" ? `${iso.slice(5, 10)} ${iso.slice(11, 13)}h` : iso.slice(11, 16);
  };

  /* Drill-down: negative share line over volume bars, alert markers, hover read-out. */
  function trendChart(container, data, opts) {
    const o = Object.assign({ height: 230, alerts: [], onAlert: null, selectedAlert: null, granularity: "minute" }, opts);
    container.textContent = "";
    const width = Math.max(320, container.clientWidth);
    if (o.fitTo) o.height = Math.max(150, Math.min(o.height, Math.round(o.fitTo.clientHeight * 0.52)));
    const m = { l: 40, r: 58, t: 14, b: 24 };
    const w = width - m.l - m.r, h = o.height - m.t - m.b;
    const s = svg(width, o.height, "trend");
    const buckets = data.map((b) => new Date(b.bucket));
    const n = Math.max(buckets.length, 2);
    const t0 = buckets.length ? buckets[0].getTime() : 0;
    const step = buckets.length > 1 ? buckets[1].getTime() - t0 : 60000;
    const x = (i) => m.l + (i + 0.5) * (w / n);
    const xt = (t) => m.l + ((t - t0) / step + 0.5) * (w / n);
    const y = (v) => m.t + (1 - v) * h;
    const vmax = Math.max(1, ...data.map((b) => b.count));
    const yv = (v) => m.t + h - (v / vmax) * h;

    const sel = o.alerts.find((a) => a.id === o.selectedAlert);
    if (sel && buckets.length) {
      const clamp = (v) => Math.min(m.l + w, Math.max(m.l, v));
      const xs = clamp(xt(new Date(sel.window_start).getTime()) - (w / n) / 2);
      const xe = clamp(xt(new Date(sel.window_end).getTime()) - (w / n) / 2);
      el("rect", { x: xs, y: m.t, width: Math.max(3, xe - xs), height: h, class: "alert-window" }, s);
    }
    for (const g of [0, 0.25, 0.5, 0.75, 1]) {
      el("line", { x1: m.l, x2: m.l + w, y1: y(g), y2: y(g), class: "grid" }, s);
      el("text", { x: m.l - 6, y: y(g) + 4, class: "axis axis-left" }, s).textContent = `${Math.round(g * 100)}%`;
    }
    el("text", { x: m.l + w + 6, y: m.t + 8, class: "axis" }, s).textContent = `${vmax} msgs`;
    el("text", { x: m.l + w + 6, y: m.t + h, class: "axis" }, s).textContent = "0";
    const bw = Math.max(1, w / n - 1);
    data.forEach((b, i) => {
      if (!b.count) return;
      el("rect", { x: x(i) - bw / 2, y: yv(b.count), width: bw, height: m.t + h - yv(b.count), class: "vol-bar" }, s);
    });
    const ticks = Math.min(8, buckets.length);
    for (let k = 0; k < ticks; k++) {
      const i = Math.round((k * (buckets.length - 1)) / Math.max(1, ticks - 1));
      el("text", { x: x(i), y: o.height - 6, class: "axis axis-x" }, s).textContent = fmtTime(buckets[i], o.granularity);
    }
    el("path", { d: linePath(data.map((b) => b.negative_share), x, y), class: "neg-line" }, s);
    data.forEach((b, i) => {
      if (b.negative_share !== null && b.count) el("circle", { cx: x(i), cy: y(b.negative_share), r: 2.2, class: "neg-dot" }, s);
    });

    for (const a of o.alerts) {
      const t = new Date(a.window_end).getTime();
      if (!buckets.length || t < t0 - step || t > buckets[buckets.length - 1].getTime() + 2 * step) continue;
      const ax = Math.min(m.l + w, Math.max(m.l, xt(t) - (w / n) / 2));  // the shaded window's end, as above
      const g = el("g", { class: `marker sev-${a.severity}${a.id === o.selectedAlert ? " selected" : ""}`,
        "data-alert-id": a.id, tabindex: 0 }, s);
      el("line", { x1: ax, x2: ax, y1: m.t, y2: m.t + h, class: "marker-line" }, g);
      el("path", { d: `M${ax - 6},${m.t - 2} L${ax + 6},${m.t - 2} L${ax},${m.t + 8} Z`, class: "marker-head" }, g);
      el("title", {}, g).textContent = `${a.rule_name || "rule " + a.rule_id} · ${a.severity} · ${a.status}`;
      if (o.onAlert) g.addEventListener("click", () => o.onAlert(a));
    }

    const cross = el("line", { x1: 0, x2: 0, y1: m.t, y2: m.t + h, class: "crosshair hidden" }, s);
    const tip = document.createElement("div");
    tip.className = "tooltip hidden";
    s.addEventListener("mousemove", (ev) => {
      const r = s.getBoundingClientRect();
      const i = Math.floor(((ev.clientX - r.left - m.l) / w) * n);
      if (i < 0 || i >= data.length) { cross.classList.add("hidden"); tip.classList.add("hidden"); return; }
      const b = data[i];
      cross.setAttribute("x1", x(i)); cross.setAttribute("x2", x(i)); cross.classList.remove("hidden");
      const share = b.negative_share === null ? "–" : `${(b.negative_share * 100).toFixed(0)}%`;
      tip.textContent = `${fmtTime(buckets[i], o.granularity)} UTC · ${b.count} msgs · ${share} negative`;
      tip.classList.remove("hidden");
      tip.style.left = `${Math.min(x(i) + 8, width - 220)}px`;
    });
    s.addEventListener("mouseleave", () => { cross.classList.add("hidden"); tip.classList.add("hidden"); });
    container.appendChild(s);
    container.appendChild(tip);
    return s;
  }

  /* Horizontal bars: [{label, value, extra, cls}] */
  function hbars(container, items) {
    container.textContent = "";
    const width = Math.max(240, container.clientWidth), row = 19, labelW = 92, valueW = 84;
    const s = svg(width, items.length * row + 2, "hbars");
    const max = Math.max(1, ...items.map((it) => it.value));
    items.forEach((it, k) => {
      const yy = k * row + 1;
      el("text", { x: labelW - 6, y: yy + 13, class: "hbar-label" }, s).textContent = it.label;
      el("rect", { x: labelW, y: yy + 3, width: width - labelW - valueW, height: row - 7, class: "hbar-track" }, s);
      const bw = (it.value / max) * (width - labelW - valueW);
      if (it.value) el("rect", { x: labelW, y: yy + 3, width: Math.max(2, bw), height: row - 7, class: `hbar ${it.cls || ""}` }, s);
      el("text", { x: width - valueW + 6, y: yy + 13, class: "hbar-value" }, s).textContent = it.extra || String(it.value);
    });
    container.appendChild(s);
    return s;
  }

  return { sparkline, trendChart, hbars, fmtTime };
})();
