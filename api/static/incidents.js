// 事件: the incident list and an incident's evidence, timeline and cases.

import { fmtMinutes, fmtNumber, label, t, toDate } from "./i18n.js";
import {
  api,
  app,
  cameraById,
  cameraName,
  canReview,
  dayBounds,
  dayParam,
  errorText,
  evidenceUrl,
  factList,
  fill,
  go,
  h,
  loadCameras,
  loadTaxonomy,
  loadingSection,
  persistenceMinutes,
  pill,
  problemName,
  reviewStateLabel,
  safeUrl,
  showError,
  table,
  timeEl,
  toast,
} from "./shared.js";

const PAGE_SIZE = 25;

// ================================================================== incidents

const INCIDENT_STATES = ["active", "open", "present", "cleared", "recurred"];
const REVIEW_STATES = ["pending", "confirmed", "rejected", "relabelled", "auto"];
const FILTER_KEYS = ["state", "problem", "camera", "street", "review", "from", "to"];

export function incidentsView(query) {
  const f = {
    state: query.get("state") || "",
    problem: query.get("problem") || "",
    camera: query.get("camera") || "",
    street: query.get("street") || "",
    review: query.get("review") || "",
    from: dayParam(query.get("from")), // opened on or after this Beijing day
    to: dayParam(query.get("to")), // ... up to and including this one
    offset: Math.max(0, Number.parseInt(query.get("offset") || "0", 10) || 0),
  };
  const el = loadingSection("incidents", t("incidents.title"));

  function hashFor(next) {
    const p = new URLSearchParams();
    for (const k of FILTER_KEYS) if (next[k]) p.set(k, next[k]);
    if (next.offset) p.set("offset", String(next.offset));
    const q = p.toString();
    return q ? `#/incidents?${q}` : "#/incidents";
  }

  function select(id, labelKey, value, options) {
    const sel = h(
      "select",
      { id, name: id },
      h("option", { value: "" }, t("common.all")),
      options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
    );
    sel.value = value;
    sel.addEventListener("change", () => go(hashFor({ ...f, [id.replace("f-", "")]: sel.value, offset: 0 })));
    return h("div", { class: "field" }, h("label", { for: id }, t(labelKey)), sel);
  }

  function day(id, labelKey, value, bounds) {
    const input = h("input", { type: "date", id, name: id, value, ...bounds });
    input.addEventListener("change", () => go(hashFor({ ...f, [id.replace("f-", "")]: input.value, offset: 0 })));
    return h("div", { class: "field" }, h("label", { for: id }, t(labelKey)), input);
  }

  async function load() {
    const [tax, cams] = await Promise.all([loadTaxonomy().catch(() => []), loadCameras().catch(() => [])]);
    const p = new URLSearchParams();
    for (const k of ["state", "problem", "camera", "street", "review"]) if (f[k]) p.set(k, f[k]);
    for (const [k, v] of Object.entries(dayBounds(f.from, f.to))) p.set(k, v);
    p.set("limit", String(PAGE_SIZE));
    p.set("offset", String(f.offset));
    const page = await api(`/incidents?${p}`);
    const streets = [...new Set((cams || []).map((c) => c.street).filter(Boolean))].sort((a, b) => a.localeCompare(b, "zh"));
    const filters = h(
      "form",
      { class: "filters", "aria-label": t("incidents.filters") },
      select("f-state", "filter.state", f.state, INCIDENT_STATES.map((x) => [x, label("incState", x)])),
      select("f-problem", "filter.problem", f.problem, (tax || []).map((x) => [x.code, `${x.code} ${problemName(x.code, x.name_zh)}`])),
      select("f-camera", "filter.camera", f.camera, (cams || []).map((c) => [c.id, c.name || c.id])),
      select("f-street", "filter.street", f.street, streets.map((x) => [x, x])),
      select("f-review", "filter.review", f.review, REVIEW_STATES.map((x) => [x, label("reviewState", x)])),
      day("f-from", "filter.from", f.from, { max: f.to || null }),
      day("f-to", "filter.to", f.to, { min: f.from || null }),
      FILTER_KEYS.some((k) => f[k])
        ? h("a", { class: "btn btn-quiet", href: "#/incidents" }, t("filter.reset"))
        : null,
    );
    filters.addEventListener("submit", (e) => e.preventDefault());
    const items = page?.items || [];
    const total = page?.total ?? items.length;
    const rows = items.map((i) => {
      const thumb = evidenceUrl(i, "annotated") || evidenceUrl(i, "clean");
      const cam = cameraById(i.camera_id);
      return h(
        "tr",
        { dataset: { incidentId: i.id } },
        h("td", {}, h("a", { href: `#/incidents/${i.id}` }, `#${i.id}`)),
        h(
          "td",
          { class: "thumb-cell" },
          thumb ? h("img", { class: "thumb", src: thumb, loading: "lazy", alt: "", width: "112", height: "63" }) : "",
        ),
        h("td", {}, cameraName(i)),
        h("td", {}, i.street ?? cam?.street ?? ""),
        h("td", {}, h("span", { class: "code" }, i.problem_code), " ", problemName(i.problem_code, i.problem_name)),
        h("td", {}, pill(label("incState", i.state), `inc-${i.state}`)),
        h("td", {}, pill(reviewStateLabel(i.review_state), `rev-${i.review_state || "auto"}`)),
        h("td", {}, timeEl(i.opened_at, { seconds: false })),
        h("td", {}, timeEl(i.last_seen_at, { seconds: false })),
      );
    });
    const from = total ? f.offset + 1 : 0;
    const to = Math.min(f.offset + items.length, total);
    const pager = h(
      "nav",
      { class: "pager", "aria-label": t("incidents.title") },
      h(
        "button",
        { type: "button", class: "btn", disabled: f.offset <= 0, onclick: () => go(hashFor({ ...f, offset: Math.max(0, f.offset - PAGE_SIZE) })) },
        t("common.prev"),
      ),
      h("span", { class: "muted" }, t("common.range", { from, to, total })),
      h(
        "button",
        { type: "button", class: "btn", disabled: f.offset + PAGE_SIZE >= total, onclick: () => go(hashFor({ ...f, offset: f.offset + PAGE_SIZE })) },
        t("common.next"),
      ),
    );
    fill(el,
      h("div", { class: "page-head" }, h("h1", {}, t("incidents.title"))),
      filters,
      items.length
        ? table(
            [t("col.id"), t("col.evidence"), t("col.camera"), t("col.street"), t("col.problem"), t("col.state"), t("col.review"), t("col.opened"), t("col.lastSeen")],
            rows,
            "incident-table",
          )
        : h("p", { class: "muted empty" }, t("incidents.none")),
      pager,
    );
  }

  const run = () => load().catch((err) => showError(el, err, run));
  run();
  return { el, title: t("incidents.title") };
}

export function incidentView(id) {
  const el = loadingSection("incident", t("incident.title", { id }));
  let destroyed = false;

  function evidenceGallery(inc) {
    const order = ["annotated", "clip", "clean", "fresh", "after"];
    const rank = (k) => (order.includes(k) ? order.indexOf(k) : order.length);
    const figs = (inc.evidence || [])
      .filter((e) => safeUrl(e.url))
      .map((e, i) => ({ e, i }))
      .sort((a, b) => rank(a.e.kind) - rank(b.e.kind) || a.i - b.i)
      .map(({ e }) => {
        const caption = h(
          "figcaption",
          {},
          label("evKind", e.kind),
          " · ",
          t("common.bytes", { n: fmtNumber((e.bytes || 0) / 1024) }),
          e.kind === "clip" ? null : [" · ", h("a", { href: e.url, target: "_blank", rel: "noopener" }, t("common.open"))],
        );
        if (e.kind === "clip") {
          return h(
            "figure",
            { class: "evidence clip" },
            h("video", { class: "evidence-video", src: e.url, controls: true, preload: "metadata", "aria-label": t("review.clipLabel", { id: inc.id }) }),
            caption,
          );
        }
        return h(
          "figure",
          { class: ["evidence", `ev-${e.kind}`] },
          h("img", {
            src: e.url,
            loading: "lazy",
            alt: `${label("evKind", e.kind)}：${t("review.imageAlt", { id: inc.id, problem: problemName(inc.problem_code, inc.problem_name), camera: cameraName(inc) })}`,
          }),
          caption,
        );
      });
    return figs.length ? h("div", { class: "gallery" }, figs) : h("p", { class: "muted" }, t("common.empty"));
  }

  function timeline(inc) {
    const events = [...(inc.events || [])].sort((a, b) => (toDate(a.ts) || 0) - (toDate(b.ts) || 0));
    if (!events.length) return h("p", { class: "muted" }, t("incident.noEvents"));
    return h(
      "ol",
      { class: "timeline" },
      events.map((ev) =>
        h(
          "li",
          { class: `ev-${ev.kind}` },
          timeEl(ev.ts),
          " ",
          h("strong", {}, label("event", ev.kind)),
          detailsText(ev.details) ? h("span", { class: "muted small" }, ` ${detailsText(ev.details)}`) : null,
        ),
      ),
    );
  }

  function casesBlock(cases) {
    if (!cases.length) return h("p", { class: "muted" }, t("incident.noCases"));
    return h(
      "ul",
      { class: "case-list" },
      cases.map((c) =>
        h(
          "li",
          {},
          h("a", { href: `#/cases/${c.id}` }, t("case.open", { id: c.id })),
          " ",
          pill(label("caseStatus", c.status), `case-${c.status}`),
          c.platform_case_id ? h("span", { class: "muted small" }, ` ${c.platform_case_id}`) : null,
          h("span", { class: "muted small" }, ` ${t("case.deadline")} `, timeEl(c.deadline, { seconds: false })),
        ),
      ),
    );
  }

  function reviewActions(inc) {
    if (inc.review_state !== "pending" || !canReview()) return null;
    const note = h("input", { type: "text", id: "detail-note", maxlength: "500", autocomplete: "off" });
    const code = h(
      "select",
      { id: "detail-code" },
      (app.taxonomy || []).filter((p) => p.code !== inc.problem_code).map((p) => h("option", { value: p.code }, `${p.code} ${problemName(p.code, p.name_zh)}`)),
    );
    const send = async (body) => {
      try {
        await api(`/review/${inc.id}`, { method: "POST", body });
        toast(t(`review.done.${body.verdict}`, { id: inc.id, name: body.problem_code ? problemName(body.problem_code) : "" }), "ok");
        run();
      } catch (err) {
        if (err.status !== 401) toast(t("review.saveFailed", { id: inc.id, msg: errorText(err) }), "error", 8000);
      }
    };
    return h(
      "div",
      { class: "detail-review" },
      h("h2", {}, t("incident.verdict")),
      h(
        "div",
        { class: "button-row" },
        h("button", { type: "button", class: "btn btn-confirm", onclick: () => send({ verdict: "confirm" }) }, t("key.confirm")),
        h("label", { for: "detail-note", class: "visually-hidden" }, t("review.rejectReason")),
        note,
        h("button", { type: "button", class: "btn btn-reject", onclick: () => send(note.value.trim() ? { verdict: "reject", note: note.value.trim() } : { verdict: "reject" }) }, t("key.reject")),
      ),
      h(
        "div",
        { class: "button-row" },
        h("label", { for: "detail-code" }, t("incident.relabelTo")),
        code,
        h("button", { type: "button", class: "btn", onclick: () => code.value && send({ verdict: "relabel", problem_code: code.value }) }, t("key.relabel")),
      ),
    );
  }

  async function load() {
    const [inc, cases] = await Promise.all([
      api(`/incidents/${id}`),
      api(`/cases?incident_id=${id}`).catch(() => []),
      loadCameras().catch(() => null),
      loadTaxonomy().catch(() => null),
    ]);
    if (destroyed) return;
    const cam = cameraById(inc.camera_id);
    const mine = (Array.isArray(cases) ? cases : []).filter((c) => c.incident_id === undefined || c.incident_id === inc.id);
    fill(el,
      h(
        "div",
        { class: "page-head" },
        h("h1", {}, t("incident.title", { id: inc.id }), " · ", problemName(inc.problem_code, inc.problem_name)),
        h(
          "div",
          { class: "pills" },
          pill(label("incState", inc.state), `inc-${inc.state}`),
          pill(reviewStateLabel(inc.review_state), `rev-${inc.review_state || "auto"}`),
        ),
      ),
      h(
        "div",
        { class: "detail-grid" },
        h("section", { class: "detail-evidence", "aria-labelledby": "ev-title" }, h("h2", { id: "ev-title" }, t("incident.evidence")), evidenceGallery(inc)),
        h(
          "div",
          { class: "detail-side" },
          h(
            "section",
            { "aria-labelledby": "facts-title" },
            h("h2", { id: "facts-title" }, t("incident.facts")),
            factList([
              [t("fact.camera"), [cameraName(inc), h("span", { class: "muted small" }, ` ${inc.camera_id}`)]],
              [t("fact.address"), inc.address ?? cam?.address ?? ""],
              [t("fact.streetCommunity"), [inc.street ?? cam?.street, inc.community ?? cam?.community].filter(Boolean).join(" / ")],
              [t("fact.problem"), `${inc.problem_code} ${problemName(inc.problem_code, inc.problem_name)}`],
              [t("fact.zone"), inc.zone],
              [t("fact.firstSeen"), timeEl(inc.first_seen_at)],
              [t("fact.opened"), timeEl(inc.opened_at)],
              [t("fact.lastSeen"), timeEl(inc.last_seen_at)],
              inc.cleared_at ? [t("fact.cleared"), timeEl(inc.cleared_at)] : null,
              [t("fact.persistence"), fmtMinutes(persistenceMinutes(inc))],
              [t("fact.score"), fmtNumber(inc.score, 2)],
              [t("fact.recurrences"), fmtNumber(inc.recurrences)],
              inc.review_note ? [t("incident.reviewNote"), inc.review_note] : null,
            ]),
          ),
          reviewActions(inc),
          h("section", { "aria-labelledby": "cases-title" }, h("h2", { id: "cases-title" }, t("incident.cases")), casesBlock(mine)),
          h("section", { "aria-labelledby": "tl-title" }, h("h2", { id: "tl-title" }, t("incident.timeline")), timeline(inc)),
        ),
      ),
    );
  }

  const run = () => load().catch((err) => showError(el, err, run));
  run();
  return {
    el,
    title: t("incident.title", { id }),
    destroy() {
      destroyed = true;
      for (const v of el.querySelectorAll("video")) v.pause();
    },
  };
}

function detailsText(details) {
  if (!details || typeof details !== "object") return "";
  return Object.entries(details)
    .slice(0, 6)
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(" · ")
    .slice(0, 300);
}

