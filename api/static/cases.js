// 案件: a case, its national fields, history and filing messages.

import { fmtNumber, label, t, toDate } from "./i18n.js";
import {
  api,
  canRetry,
  errorText,
  factList,
  fill,
  h,
  loadingSection,
  pill,
  problemName,
  showError,
  table,
  timeEl,
  toast,
} from "./shared.js";

// ================================================================== cases

export function caseView(id) {
  const el = loadingSection("case", t("case.title", { id }));

  async function load() {
    const c = await api(`/cases/${id}`);
    const p = c.payload || {};
    const deadline = toDate(c.deadline);
    const overdue = deadline && deadline < new Date() && !["closed", "voided"].includes(c.status);
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

  const run = () => load().catch((err) => showError(el, err, run));
  run();
  return { el, title: t("case.title", { id }) };
}

