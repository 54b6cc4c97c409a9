// 案件: a case, its national fields, history and filing messages.

import { fmtNumber, label, t, toDate } from "./i18n.js";
import {
  api,
  canRetry,
  dayBounds,
  dayParam,
  errorText,
  factList,
  fill,
  go,
  h,
  loadCameras,
  loadTaxonomy,
  loadingSection,
  pill,
  problemName,
  showError,
  table,
  timeEl,
  toast,
} from "./shared.js";

const PAGE_SIZE = 25;
// the statuses a case can be in, to filter by (which moves are allowed is the server's: `allowed`)
const CASE_STATUSES = ["queued", "accepted", "filed", "dispatched", "handled", "verified", "closed", "voided"];
const FILTER_KEYS = ["status", "problem", "street", "overdue", "from", "to", "number"];

const isOverdue = (c) => {
  const deadline = toDate(c.deadline);
  return Boolean(deadline && deadline < new Date() && !["closed", "voided"].includes(c.status));
};

// ================================================================== case list

export function casesView(query) {
  const f = Object.fromEntries(FILTER_KEYS.map((k) => [k, (query.get(k) || "").trim()]));
  f.from = dayParam(f.from);
  f.to = dayParam(f.to);
  f.overdue = ["true", "false"].includes(f.overdue) ? f.overdue : "";
  f.offset = Math.max(0, Number.parseInt(query.get("offset") || "0", 10) || 0);
  const el = loadingSection("cases", t("cases.title"));

  function hashFor(next) {
    const p = new URLSearchParams();
    for (const k of FILTER_KEYS) if (next[k]) p.set(k, next[k]);
    if (next.offset) p.set("offset", String(next.offset));
    const q = p.toString();
    return q ? `#/cases?${q}` : "#/cases";
  }
  const goWith = (key, value) => go(hashFor({ ...f, [key]: value, offset: 0 }));

  function field(key, labelKey, control) {
    control.id = `cf-${key}`;
    control.name = key;
    if (control.tagName !== "INPUT" || control.type !== "search") {
      control.addEventListener("change", () => goWith(key, control.value));
    }
    return h("div", { class: "field" }, h("label", { for: control.id }, t(labelKey)), control);
  }

  function select(key, labelKey, options) {
    const sel = h(
      "select",
      {},
      h("option", { value: "" }, t("common.all")),
      options.map(([v, text]) => h("option", { value: v, selected: v === f[key] }, text)),
    );
    sel.value = f[key];
    return field(key, labelKey, sel);
  }

  async function load() {
    const [tax, cams] = await Promise.all([loadTaxonomy().catch(() => []), loadCameras().catch(() => [])]);
    const p = new URLSearchParams();
    for (const k of ["status", "problem", "street", "overdue", "number"]) if (f[k]) p.set(k, f[k]);
    for (const [k, v] of Object.entries(dayBounds(f.from, f.to))) p.set(k, v);
    p.set("limit", String(PAGE_SIZE));
    p.set("offset", String(f.offset));
    const meta = {};
    const items = (await api(`/cases?${p}`, { meta })) || [];
    const total = Number.isFinite(meta.total) ? meta.total : f.offset + items.length;
    const streets = [...new Set((cams || []).map((c) => c.street).filter(Boolean))].sort((a, b) => a.localeCompare(b, "zh"));
    const number = h("input", { type: "search", value: f.number, maxlength: "64", autocomplete: "off", placeholder: "E0900620260301…" });
    const filters = h(
      "form",
      { class: "filters", "aria-label": t("cases.filters") },
      select("status", "filter.caseStatus", CASE_STATUSES.map((x) => [x, label("caseStatus", x)])),
      select("problem", "filter.problem", (tax || []).map((x) => [x.code, `${x.code} ${problemName(x.code, x.name_zh)}`])),
      select("street", "filter.street", streets.map((x) => [x, x])),
      select("overdue", "filter.overdue", [["true", t("cases.overdueOnly")], ["false", t("cases.notOverdue")]]),
      field("from", "filter.from", h("input", { type: "date", value: f.from, max: f.to || null })),
      field("to", "filter.to", h("input", { type: "date", value: f.to, min: f.from || null })),
      field("number", "filter.caseNumber", number),
      h("button", { type: "submit", class: "btn" }, t("filter.search")),
      FILTER_KEYS.some((k) => f[k]) ? h("a", { class: "btn btn-quiet", href: "#/cases" }, t("filter.reset")) : null,
    );
    filters.addEventListener("submit", (e) => {
      e.preventDefault();
      goWith("number", number.value.trim());
    });
    const rows = items.map((c) => {
      const p = c.payload || {};
      const late = isOverdue(c);
      return h(
        "tr",
        { dataset: { caseId: c.id }, class: late ? "row-overdue" : null },
        h("td", {}, h("a", { href: `#/cases/${c.id}` }, c.platform_case_id || t("case.open", { id: c.id }))),
        h("td", {}, h("span", { class: "code" }, c.problem_code), " ", problemName(c.problem_code, p.sxmc)),
        h("td", {}, p.street || ""),
        h("td", {}, pill(label("caseStatus", c.status), `case-${c.status}`)),
        h("td", {}, timeEl(c.deadline, { seconds: false }), late ? [" ", pill(t("case.overdue"), "overdue")] : null),
        h("td", {}, timeEl(c.created_at, { seconds: false })),
      );
    });
    const from = total ? f.offset + 1 : 0;
    const to = Math.min(f.offset + items.length, total);
    const page = (offset) => () => go(hashFor({ ...f, offset }));
    fill(el,
      h("div", { class: "page-head" }, h("h1", {}, t("cases.title"))),
      filters,
      items.length
        ? table([t("col.caseNumber"), t("col.problem"), t("col.street"), t("col.state"), t("case.deadline"), t("col.created")], rows, "case-table")
        : h("p", { class: "muted empty" }, t("cases.none")),
      h(
        "nav",
        { class: "pager", "aria-label": t("cases.title") },
        h("button", { type: "button", class: "btn", disabled: f.offset <= 0, onclick: page(Math.max(0, f.offset - PAGE_SIZE)) }, t("common.prev")),
        h("span", { class: "muted" }, t("common.range", { from, to, total })),
        h("button", { type: "button", class: "btn", disabled: f.offset + PAGE_SIZE >= total, onclick: page(f.offset + PAGE_SIZE) }, t("common.next")),
      ),
    );
  }

  const run = () => load().catch((err) => showError(el, err, run));
  run();
  return { el, title: t("cases.title") };
}

// ================================================================== one case

/** A button per move the server allows this caller (none for a viewer), with an optional note. */
function moveActions(c, done) {
  if (!c.allowed?.length) return null;
  const note = h("input", { type: "text", id: "case-note", maxlength: "500", autocomplete: "off" });
  async function move(status, btn) {
    for (const b of btn.parentElement.querySelectorAll("button")) b.disabled = true;
    const body = note.value.trim() ? { status, note: note.value.trim() } : { status };
    try {
      await api(`/cases/${c.id}/status`, { method: "POST", body });
      toast(t("case.moved", { id: c.id, status: label("caseStatus", status) }), "ok");
      done();
    } catch (err) {
      if (err.status === 401) return;
      // 409: the case moved meanwhile (another operator, the platform): say so, then show where it is now
      const text = err.status === 409
        ? t("case.moveRefused", { status: label("caseStatus", status), msg: err.message })
        : t("common.error", { msg: errorText(err) });
      done(h("p", { class: "form-error", role: "alert", id: "case-move-error" }, text));
    }
  }
  return h(
    "section",
    { class: "case-actions", "aria-labelledby": "case-actions-title" },
    h("h2", { id: "case-actions-title" }, t("case.actions")),
    h(
      "div",
      { class: "button-row" },
      h("label", { for: "case-note" }, t("case.note")),
      note,
      c.allowed.map((status) =>
        h(
          "button",
          {
            type: "button",
            class: ["btn", status === "voided" ? "btn-reject" : "btn-primary"],
            dataset: { status },
            onclick: (e) => move(status, e.currentTarget),
          },
          label("caseAction", status),
        ),
      ),
    ),
  );
}

export function caseView(id) {
  const el = loadingSection("case", t("case.title", { id }));

  async function load(notice = null) {
    const c = await api(`/cases/${id}`);
    const p = c.payload || {};
    const overdue = isOverdue(c);
    const outbox = c.outbox || [];
    const dead = outbox.some((m) => m.state === "dead");
    const retry =
      dead && canRetry()
        ? h(
            "button",
            {
              type: "button",
              class: "btn btn-primary",
              id: "case-retry",
              onclick: async (e) => {
                const btn = e.currentTarget;
                btn.disabled = true;
                try {
                  const r = await api(`/cases/${id}/retry`, { method: "POST" });
                  toast(t("case.retried", { n: r?.requeued ?? 0 }), "ok");
                  run();
                } catch (err) {
                  if (err.status !== 401) toast(t("common.error", { msg: errorText(err) }), "error", 8000);
                  btn.disabled = false;
                }
              },
            },
            t("case.retry"),
          )
        : null;
    fill(el,
      h(
        "div",
        { class: "page-head" },
        h("h1", {}, t("case.title", { id: c.id }), p.sxmc ? ` · ${p.sxmc}` : ""),
        h(
          "div",
          { class: "pills" },
          pill(label("caseStatus", c.status), `case-${c.status}`),
          overdue ? pill(t("case.overdue"), "overdue") : null,
          c.verification ? pill(label("verification", c.verification), `ver-${c.verification}`) : null,
        ),
      ),
      moveActions(c, (kept) => run(kept)),
      notice,
      factList([
        [t("case.incident"), h("a", { href: `#/incidents/${c.incident_id}` }, t("review.incident", { id: c.incident_id }))],
        [t("case.status"), label("caseStatus", c.status)],
        [t("case.platformId"), c.platform_case_id || ""],
        [t("case.deadline"), [timeEl(c.deadline), overdue ? ` （${t("case.overdue")}）` : ""]],
        [t("case.verification"), c.verification ? label("verification", c.verification) : ""],
        c.recurrence_of ? [t("case.recurrenceOf"), h("a", { href: `#/cases/${c.recurrence_of}` }, t("case.open", { id: c.recurrence_of }))] : null,
        [t("case.code"), p.sxdm || c.problem_code],
        [t("case.name"), p.sxmc || problemName(c.problem_code)],
        [t("fact.address"), p.address || ""],
        [t("fact.streetCommunity"), [p.street, p.community].filter(Boolean).join(" / ")],
        [t("case.department"), p.department?.name || ""],
        [t("case.description"), p.description || ""],
      ]),
      h("h2", {}, t("case.history")),
      (c.history || []).length
        ? table(
            [t("col.time"), t("col.from"), t("col.to"), t("col.source"), t("col.note")],
            c.history.map((x) =>
              h(
                "tr",
                {},
                h("td", {}, timeEl(x.ts)),
                h("td", {}, x.from_status ? label("caseStatus", x.from_status) : t("common.none")),
                h("td", {}, label("caseStatus", x.to_status)),
                h("td", {}, label("source", x.source)),
                h("td", {}, x.note || ""),
              ),
            ),
          )
        : h("p", { class: "muted" }, t("case.noHistory")),
      h("div", { class: "section-head" }, h("h2", {}, t("case.outbox")), retry),
      outbox.length
        ? table(
            [t("col.kind"), t("col.sendState"), t("col.attempts"), t("col.lastError")],
            outbox.map((m) =>
              h(
                "tr",
                { class: m.state === "dead" ? "row-dead" : null },
                h("td", {}, label("sendKind", m.kind)),
                h("td", {}, pill(label("sendState", m.state), `send-${m.state}`)),
                h("td", {}, fmtNumber(m.attempts)),
                h("td", {}, m.last_error ? h("code", { class: "error-text" }, m.last_error) : ""),
              ),
            ),
          )
        : h("p", { class: "muted" }, t("case.noOutbox")),
    );
  }

  const run = (notice) => load(notice).catch((err) => showError(el, err, () => run()));
  run();
  return { el, title: t("case.title", { id }) };
}

