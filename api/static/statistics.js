// 统计: statistics and the street ranking, as charts with their tables.

import { fmtDay, fmtMinutes, fmtNumber, fmtPct, label, t } from "./i18n.js";
import {
  api,
  fill,
  go,
  h,
  loadTaxonomy,
  loadingSection,
  problemName,
  s,
  showError,
  table,
} from "./shared.js";

// ================================================================== statistics

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function ratio(v) {
  if (v === null || v === undefined || Number.isNaN(Number(v))) return null;
  const x = Number(v);
  return x > 1 ? x / 100 : x;
}

function legend(items) {
  return h(
    "ul",
    { class: "legend" },
    items.map(([cls, text]) => h("li", {}, h("span", { class: ["swatch", cls], "aria-hidden": "true" }), text)),
  );
}

function chartFrame(titleId, titleText, svgEl, legendEl, dataTable) {
  return h(
    "section",
    { class: "chart", "aria-labelledby": titleId },
    h("h2", { id: titleId }, titleText),
    legendEl,
    svgEl,
    dataTable ? h("details", { class: "chart-data" }, h("summary", {}, t("common.showData")), dataTable) : null,
  );
}

/** Three bars per street: incidents, filed, closed. */
function streetChart(rows) {
  const W = 760;
  const labelW = 132;
  const padR = 48;
  const barH = 9;
  const gap = 2;
  const groupH = 3 * (barH + gap) + 12;
  const top = 22;
  const H = top + Math.max(1, rows.length) * groupH + 4;
  const max = niceMax(Math.max(1, ...rows.map((r) => Math.max(r.incidents || 0, r.filed || 0, r.closed || 0))));
  const plotW = W - labelW - padR;
  const x = (v) => (plotW * (v || 0)) / max;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max);
  const series = [
    ["incidents", "s-incidents"],
    ["filed", "s-filed"],
    ["closed", "s-closed"],
  ];
  const svgEl = s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-labelledby": "street-chart-title" },
    s("title", { id: "street-chart-title" }, t("stats.byStreet")),
    ticks.map((v) =>
      s(
        "g",
        { class: "grid" },
        s("line", { x1: labelW + x(v), x2: labelW + x(v), y1: top - 6, y2: H - 2 }),
        s("text", { x: labelW + x(v), y: top - 10, "text-anchor": "middle", class: "axis" }, fmtNumber(v)),
      ),
    ),
    rows.map((r, i) => {
      const y0 = top + i * groupH;
      return s(
        "g",
        { class: "bar-group" },
        s("title", {}, t("stats.streetTip", { street: r.street, i: r.incidents ?? 0, f: r.filed ?? 0, c: r.closed ?? 0 })),
        s("text", { x: labelW - 8, y: y0 + (3 * (barH + gap)) / 2 + 4, "text-anchor": "end", class: "label" }, r.street || t("common.none")),
        series.map(([key, cls], j) => [
          s("rect", { x: labelW, y: y0 + j * (barH + gap), width: Math.max(0.5, x(r[key])), height: barH, rx: 2, class: cls }),
          s("text", { x: labelW + x(r[key]) + 4, y: y0 + j * (barH + gap) + barH - 1, class: "value" }, fmtNumber(r[key] ?? 0)),
        ]),
      );
    }),
  );
  return svgEl;
}

/** Beijing-time day keys (YYYY-MM-DD) of the last `days` days, oldest first. */
function lastDays(days) {
  const fmt = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit" });
  const out = [];
  const now = Date.now();
  for (let i = days - 1; i >= 0; i--) out.push(fmt.format(new Date(now - i * 86_400_000)));
  return out;
}

/** A stacked column per day: closed, filed but not closed, not filed. */
function dailyChart(rows, days) {
  const byDay = new Map(rows.map((r) => [String(r.day).slice(0, 10), r]));
  const keys = lastDays(days);
  for (const k of byDay.keys()) if (!keys.includes(k)) keys.push(k);
  keys.sort();
  const data = keys.map((k) => {
    const r = byDay.get(k) || { day: k, incidents: 0, filed: 0, closed: 0 };
    const closed = r.closed || 0;
    const filedOpen = Math.max(0, (r.filed || 0) - closed);
    const unfiled = Math.max(0, (r.incidents || 0) - (r.filed || 0));
    return { ...r, day: k, stack: [closed, filedOpen, unfiled] };
  });
  const W = 760;
  const H = 250;
  const padL = 40;
  const padR = 8;
  const padT = 12;
  const padB = 26;
  const plotW = W - padL - padR;
  const plotH = H - padT - padB;
  const max = niceMax(Math.max(1, ...data.map((d) => d.stack.reduce((a, b) => a + b, 0))));
  const step = plotW / Math.max(1, data.length);
  const bw = Math.max(2, step * 0.72);
  const y = (v) => (plotH * v) / max;
  const every = Math.max(1, Math.ceil(data.length / 12));
  const classes = ["s-closed", "s-filed", "s-unfiled"];
  return s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-labelledby": "day-chart-title" },
    s("title", { id: "day-chart-title" }, t("stats.byDay")),
    [0, 0.25, 0.5, 0.75, 1].map((f) =>
      s(
        "g",
        { class: "grid" },
        s("line", { x1: padL, x2: W - padR, y1: padT + plotH - y(f * max), y2: padT + plotH - y(f * max) }),
        s("text", { x: padL - 6, y: padT + plotH - y(f * max) + 4, "text-anchor": "end", class: "axis" }, fmtNumber(f * max)),
      ),
    ),
    data.map((d, i) => {
      let acc = 0;
      const x0 = padL + i * step + (step - bw) / 2;
      return s(
        "g",
        { class: "column" },
        s("title", {}, t("stats.dayTip", { day: d.day, i: d.incidents ?? 0, f: d.filed ?? 0, c: d.closed ?? 0 })),
        s("rect", { x: padL + i * step, y: padT, width: step, height: plotH, class: "hit" }),
        d.stack.map((v, j) => {
          if (!v) return null;
          const r = s("rect", { x: x0, y: padT + plotH - y(acc + v), width: bw, height: y(v), class: classes[j] });
          acc += v;
          return r;
        }),
        i % every === 0 || i === data.length - 1
          ? s("text", { x: x0 + bw / 2, y: H - 8, "text-anchor": "middle", class: "axis" }, fmtDay(d.day))
          : null,
      );
    }),
  );
}

/** Precision (confirmed / reviewed) per problem type, on a 0–100 % track. */
function precisionChart(rows) {
  const W = 760;
  const labelW = 170;
  const padR = 120;
  const rowH = 28;
  const top = 6;
  const H = top + Math.max(1, rows.length) * rowH;
  const plotW = W - labelW - padR;
  return s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-labelledby": "prec-chart-title" },
    s("title", { id: "prec-chart-title" }, t("stats.byProblem")),
    rows.map((r, i) => {
      const y0 = top + i * rowH;
      const p = ratio(r.precision);
      const reviewed = (r.confirmed || 0) + (r.rejected || 0);
      const level = p === null ? "p-none" : p >= 0.9 ? "p-good" : p >= 0.7 ? "p-fair" : "p-poor";
      const text = p === null ? t("stats.noReviews") : t("stats.precisionOf", { p: fmtPct(p), c: r.confirmed || 0, t: reviewed });
      return s(
        "g",
        { class: "precision-row" },
        s("title", {}, `${r.code} ${problemName(r.code, r.name)}：${text}`),
        s("text", { x: labelW - 8, y: y0 + 17, "text-anchor": "end", class: "label" }, problemName(r.code, r.name)),
        s("rect", { x: labelW, y: y0 + 6, width: plotW, height: 14, rx: 3, class: "track" }),
        p === null ? null : s("rect", { x: labelW, y: y0 + 6, width: Math.max(1, plotW * p), height: 14, rx: 3, class: level }),
        s("text", { x: labelW + plotW + 8, y: y0 + 17, class: "value" }, text),
      );
    }),
  );
}

export function statsView(query) {
  const requested = Number(query.get("days"));
  const days = [7, 30, 90, 365].includes(requested) ? requested : 30;
  const el = loadingSection("stats", t("stats.title"));

  async function load() {
    await loadTaxonomy().catch(() => null);
    const st = await api(`/stats?days=${days}`);
    const byStreet = st.by_street || [];
    const byProblem = st.by_problem || [];
    const byDay = st.by_day || [];
    const byCamera = st.by_camera || [];
    const ranking = [...(st.ranking || [])].sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0));
    const sum = (rows, k) => rows.reduce((a, r) => a + (Number(r[k]) || 0), 0);
    const confirmed = sum(byProblem, "confirmed");
    const reviewed = confirmed + sum(byProblem, "rejected");
    const period = h(
      "select",
      { id: "stats-days" },
      [7, 30, 90, 365].map((n) => h("option", { value: String(n), selected: n === days }, t("stats.days", { n }))),
    );
    period.value = String(days);
    period.addEventListener("change", () => go(`#/stats?days=${period.value}`));
    const kpi = (labelText, value, cls) => h("div", { class: ["kpi", cls] }, h("span", { class: "kpi-value" }, value), h("span", { class: "kpi-label" }, labelText));
    const streetTable = table(
      [t("col.street"), t("col.incidents"), t("col.confirmed"), t("col.rejected"), t("col.filed"), t("col.closed"), t("col.medianToFile")],
      byStreet.map((r) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, r.street),
          [r.incidents, r.confirmed, r.rejected, r.filed, r.closed].map((v) => h("td", { class: "num" }, fmtNumber(v))),
          h("td", { class: "num" }, fmtMinutes(r.median_minutes_to_file)),
        ),
      ),
    );
    const dayTable = table(
      [t("col.day"), t("col.incidents"), t("col.filed"), t("col.closed")],
      byDay.map((r) => h("tr", {}, h("th", { scope: "row" }, r.day), [r.incidents, r.filed, r.closed].map((v) => h("td", { class: "num" }, fmtNumber(v))))),
    );
    const problemTable = table(
      [t("col.problem"), t("col.incidents"), t("col.confirmed"), t("col.rejected"), t("col.filed"), t("col.closed"), t("col.precision")],
      byProblem.map((r) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, `${r.code} ${problemName(r.code, r.name)}`),
          [r.incidents, r.confirmed, r.rejected, r.filed, r.closed].map((v) => h("td", { class: "num" }, fmtNumber(v))),
          h("td", { class: "num" }, fmtPct(ratio(r.precision))),
        ),
      ),
    );
    const rankingTable = table(
      [t("col.rank"), t("col.street"), t("col.disposal"), t("col.closed"), t("col.filed")],
      ranking.map((r) => {
        const rate = ratio(r.disposal_rate);
        const bar = h("span", { class: "rate-bar", "aria-hidden": "true" });
        bar.style.width = `${Math.round((rate || 0) * 100)}%`; // CSSOM, allowed under the CSP
        return h(
          "tr",
          { class: r.rank <= 3 ? `top top-${r.rank}` : null },
          h("td", { class: "rank" }, h("span", { class: "rank-no" }, fmtNumber(r.rank))),
          h("th", { scope: "row" }, r.street),
          h(
            "td",
            { class: "rate" },
            h("div", { class: "rate-cell" }, h("span", { class: "rate-track" }, bar), h("span", { class: "rate-text" }, fmtPct(rate, 1))),
          ),
          h("td", { class: "num" }, fmtNumber(r.closed)),
          h("td", { class: "num" }, fmtNumber(r.filed)),
        );
      }),
      "ranking",
    );
    const cameraTable = table(
      [t("col.camera"), t("col.incidents"), t("col.confirmed"), t("col.rejected"), t("col.precision")],
      byCamera.map((r) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, h("a", { href: `#/incidents?camera=${encodeURIComponent(r.camera_id)}` }, r.name || r.camera_id)),
          [r.incidents, r.confirmed, r.rejected].map((v) => h("td", { class: "num" }, fmtNumber(v))),
          h("td", { class: "num" }, fmtPct(ratio(r.precision))),
        ),
      ),
    );
    fill(el,
      h(
        "div",
        { class: "page-head" },
        h("h1", {}, t("stats.title")),
        h("div", { class: "filters" }, h("label", { for: "stats-days" }, t("stats.period")), period),
      ),
      h(
        "div",
        { class: "kpis" },
        kpi(t("stats.kpiIncidents"), fmtNumber(sum(byStreet, "incidents")), "k-incidents"),
        kpi(t("stats.kpiFiled"), fmtNumber(sum(byStreet, "filed")), "k-filed"),
        kpi(t("stats.kpiClosed"), fmtNumber(sum(byStreet, "closed")), "k-closed"),
        kpi(t("stats.kpiPrecision"), reviewed ? fmtPct(confirmed / reviewed) : t("common.none"), "k-precision"),
      ),
      h(
        "div",
        { class: "stats-grid" },
        h(
          "section",
          { class: "chart ranking-box", "aria-labelledby": "ranking-title" },
          h("h2", { id: "ranking-title" }, t("stats.ranking")),
          ranking.length ? rankingTable : h("p", { class: "muted" }, t("common.empty")),
        ),
        chartFrame(
          "by-street-title",
          t("stats.byStreet"),
          byStreet.length ? streetChart(byStreet) : h("p", { class: "muted" }, t("common.empty")),
          legend([
            ["s-incidents", t("series.incidents")],
            ["s-filed", t("series.filed")],
            ["s-closed", t("series.closed")],
          ]),
          streetTable,
        ),
        chartFrame(
          "by-day-title",
          t("stats.byDay"),
          dailyChart(byDay, days),
          legend([
            ["s-closed", t("series.closed")],
            ["s-filed", t("series.filedOpen")],
            ["s-unfiled", t("series.unfiled")],
          ]),
          dayTable,
        ),
        chartFrame(
          "by-problem-title",
          t("stats.byProblem"),
          byProblem.length ? precisionChart(byProblem) : h("p", { class: "muted" }, t("common.empty")),
          null,
          problemTable,
        ),
        h(
          "section",
          { class: "chart", "aria-labelledby": "by-camera-title" },
          h("h2", { id: "by-camera-title" }, t("stats.byCamera")),
          byCamera.length ? cameraTable : h("p", { class: "muted" }, t("common.empty")),
        ),
      ),
    );
  }

  const run = () => load().catch((err) => showError(el, err, run));
  run();
  return { el, title: t("stats.title") };
}

