// The dashboard: fetches /v1/stats for the chosen range and draws it as inline SVG and tables.
// Everything from the server goes into the page as text nodes, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function fmtMs(v) {
  if (typeof v !== "number") return "–";
  if (v < 10) return v.toFixed(1) + " ms";
  if (v < 1000) return Math.round(v) + " ms";
  return (v / 1000).toFixed(2) + " s";
}
function fmtUsd(v) {
  if (typeof v !== "number") return "–";
  if (v === 0) return "$0";
  if (Math.abs(v) < 0.01) return "$" + v.toFixed(6);
  if (Math.abs(v) < 1) return "$" + v.toFixed(4);
  return "$" + v.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
function fmtCount(v) { return typeof v === "number" ? Math.round(v).toLocaleString() : "–"; }
function fmtTime(iso, withDate) {
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  const hm = d.toISOString().slice(11, 16);
  return withDate ? d.toISOString().slice(5, 10) + " " + hm : hm;
}

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, String(v)));
  if (text !== undefined) node.textContent = text;
  return node;
}

// A bar chart of one or two stacked series over time buckets.
function barChart(figure, series, layers, format) {
  // Drawn at the figure's own width, so text is never stretched.
  const W = Math.max(figure.clientWidth - 20, 200), H = 170, left = 68, bottom = 20, top = 8;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img" });
  const total = (p) => layers.reduce((sum, layer) => sum + (Number(p[layer.key]) || 0), 0);
  const max = Math.max(0, ...series.map(total));
  svg.appendChild(el("line", { class: "axis", x1: left, x2: W, y1: H - bottom, y2: H - bottom }));
  if (!series.length || max === 0) {
    svg.appendChild(el("text", { class: "empty-note", x: W / 2, y: H / 2, "text-anchor": "middle" }, "nothing in this range"));
    figure.appendChild(svg);
    return;
  }
  svg.appendChild(el("text", { x: left - 6, y: top + 8, "text-anchor": "end" }, format(max)));
  svg.appendChild(el("text", { x: left - 6, y: H - bottom, "text-anchor": "end" }, format(0)));
  svg.appendChild(el("line", { class: "axis", x1: left, x2: W, y1: top, y2: top, "stroke-dasharray": "2 3" }));
  const width = (W - left) / series.length;
  const spansDays = series.length > 1 && (new Date(series[series.length - 1].t) - new Date(series[0].t)) > 86400000;
  series.forEach((point, i) => {
    let base = H - bottom;
    const x = left + i * width + Math.min(1, width * 0.1);
    const w = Math.max(width - Math.min(2, width * 0.2), 0.5);
    const tip = [fmtTime(point.t, true)].concat(layers.map((l) => l.label + ": " + format(Number(point[l.key]) || 0))).join("\n");
    layers.forEach((layer) => {
      const value = Number(point[layer.key]) || 0;
      if (!value) return;
      const h = (value / max) * (H - bottom - top);
      base -= h;
      const rect = el("rect", { class: layer.cls, x: x.toFixed(2), y: base.toFixed(2), width: w.toFixed(2), height: h.toFixed(2) });
      rect.appendChild(el("title", {}, tip));
      svg.appendChild(rect);
    });
  });
  const marks = series.length > 1 ? [0, Math.floor((series.length - 1) / 2), series.length - 1] : [0];
  marks.forEach((i, n) => {
    const anchor = n === 0 ? "start" : n === marks.length - 1 ? "end" : "middle";
    const x = left + i * width + (anchor === "end" ? width : anchor === "middle" ? width / 2 : 0);
    svg.appendChild(el("text", { x: x, y: H - 5, "text-anchor": anchor }, fmtTime(series[i].t, spansDays)));
  });
  figure.appendChild(svg);
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(tableId, items, columns, emptyText) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren();
  if (!items.length) {
    const row = document.createElement("tr");
    const td = cell(row, emptyText, "muted");
    td.colSpan = columns.length;
    body.appendChild(row);
    return;
  }
  items.forEach((item) => {
    const row = document.createElement("tr");
    columns.forEach(([key, format, cls]) => cell(row, format(item[key], item), cls));
    body.appendChild(row);
  });
}

function totals(box, data) {
  const t = data.totals || {};
  const shown = [
    ["Calls", fmtCount(t.calls)],
    ["Errors", fmtCount(t.errors)],
    ["Tokens", fmtCount(t.tokens !== undefined ? t.tokens : t.total_tokens)],
    ["Cost", fmtUsd(t.cost_usd)],
  ];
  if (t.p50_ms !== undefined) shown.push(["Latency p50", fmtMs(t.p50_ms)]);
  if (t.p95_ms !== undefined) shown.push(["Latency p95", fmtMs(t.p95_ms)]);
  box.replaceChildren();
  shown.forEach(([label, value]) => {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = label;
    dd.textContent = value;
    div.append(dt, dd);
    box.appendChild(div);
  });
}

async function load() {
  const root = document.getElementById("dashboard");
  if (!root) return;
  const status = document.getElementById("dash-status");
  const params = new URLSearchParams({ bucket: "auto" });
  if (root.dataset.since) params.set("since", root.dataset.since);
  if (root.dataset.until) params.set("until", root.dataset.until);
  let data;
  try {
    const response = await fetch("/v1/stats?" + params.toString(), { credentials: "same-origin" });
    data = await response.json();
    if (!response.ok) throw new Error(data.error || "HTTP " + response.status);
  } catch (error) {
    status.textContent = "Could not load the statistics: " + error.message;
    status.className = "error-banner";
    return;
  }
  status.hidden = true;
  totals(document.getElementById("dash-totals"), data);
  // Succeeded calls stacked under errors: the bar's height is the number of calls.
  const series = (data.series || []).map((p) => Object.assign({}, p, { ok: (Number(p.calls) || 0) - (Number(p.errors) || 0) }));
  barChart(document.getElementById("chart-calls"), series, [
    { key: "ok", label: "succeeded", cls: "b-calls" },
    { key: "errors", label: "errors", cls: "b-errors" },
  ], fmtCount);
  barChart(document.getElementById("chart-cost"), series, [{ key: "cost_usd", label: "cost", cls: "b-cost" }], fmtUsd);
  barChart(document.getElementById("chart-tokens"), series, [{ key: "tokens", label: "tokens", cls: "b-tokens" }], fmtCount);
  const id = (v) => (v === null || v === undefined || v === "" ? "–" : String(v));
  fill("by-model", data.by_model || [], [
    ["model", id], ["calls", fmtCount, "num"], ["errors", fmtCount, "num"], ["p50_ms", fmtMs, "num"],
    ["p95_ms", fmtMs, "num"], ["ttft_p50_ms", fmtMs, "num"], ["ttft_p95_ms", fmtMs, "num"],
    ["tokens", fmtCount, "num"], ["cost_usd", fmtUsd, "num"],
  ], "No calls in this range.");
  fill("top-errors", data.top_errors || [], [
    ["type", id], ["message", id], ["count", fmtCount, "num"], ["last_at", (v) => (v ? fmtTime(v, true) + " UTC" : "–")],
  ], "No errors in this range.");
}

document.addEventListener("DOMContentLoaded", load);
