// 批量审核: tick several waiting incidents, confirm or reject them in one go (POST /review/bulk).

import { t } from "./i18n.js";
import {
  api,
  cameraName,
  canReview,
  errorText,
  evidenceUrl,
  fill,
  h,
  loadCameras,
  loadTaxonomy,
  loadingSection,
  messageView,
  problemName,
  showError,
  timeEl,
  toast,
} from "./shared.js";

const SHOWN = 50; // the most /review/next gives at a time

export function bulkView() {
  if (!canReview()) return messageView(t("common.forbidden")); // the server refuses verdicts anyway
  const el = loadingSection("bulk-review", t("bulk.title"));

  async function load(notice = null) {
    const [items] = await Promise.all([
      api(`/review/next?limit=${SHOWN}`),
      loadCameras().catch(() => null),
      loadTaxonomy().catch(() => null),
    ]);
    const boxes = [];
    const count = h("span", { class: "muted", "aria-live": "polite" });
    const all = h("input", { type: "checkbox", id: "bulk-all" });
    const note = h("input", { type: "text", id: "bulk-note", maxlength: "500", autocomplete: "off" });
    const confirm = h("button", { type: "button", class: "btn btn-confirm", onclick: () => send("confirm") }, t("bulk.confirm"));
    const reject = h("button", { type: "button", class: "btn btn-reject", onclick: () => send("reject") }, t("bulk.reject"));
    const chosen = () => boxes.filter((b) => b.checked).map((b) => Number(b.value));

    function update() {
      const n = chosen().length;
      count.textContent = t("bulk.selected", { n, total: boxes.length });
      confirm.disabled = reject.disabled = n === 0;
      all.checked = n > 0 && n === boxes.length;
      all.indeterminate = n > 0 && n < boxes.length;
    }
    all.addEventListener("change", () => {
      for (const b of boxes) b.checked = all.checked;
      update();
    });

    async function send(verdict) {
      const ids = chosen();
      if (!ids.length) return;
      confirm.disabled = reject.disabled = true;
      const text = note.value.trim();
      try {
        const results = await api("/review/bulk", { method: "POST", body: { incident_ids: ids, verdict, note: text } });
        const failed = (results || []).filter((r) => r.error);
        const ok = ids.length - failed.length;
        if (ok) toast(t(`bulk.done.${verdict}`, { n: ok }), "ok");
        // one already judged elsewhere does not stop the others; say which and why
        run(failed.length
          ? h("div", { class: "form-error", role: "alert", id: "bulk-failed" },
              t("bulk.failed", { n: failed.length }),
              h("ul", {}, failed.map((r) => h("li", {}, t("review.incident", { id: r.incident_id }), `：${r.error}`))))
          : null);
      } catch (err) {
        if (err.status === 401) return;
        toast(t("common.error", { msg: errorText(err) }), "error", 8000);
        update();
      }
    }

    const cards = (items || []).map((inc) => {
      const box = h("input", { type: "checkbox", value: String(inc.id), id: `bulk-${inc.id}`, onchange: update });
      boxes.push(box);
      const thumb = evidenceUrl(inc, "annotated") || evidenceUrl(inc, "clean");
      return h(
        "li",
        { class: "bulk-item", dataset: { incidentId: inc.id } },
        h(
          "label",
          { for: box.id },
          thumb ? h("img", { class: "thumb", src: thumb, loading: "lazy", alt: "", width: "224", height: "126" }) : null,
          h("span", { class: "bulk-check" }, box, " ", t("review.incident", { id: inc.id })),
          h("span", { class: "small" }, `${inc.problem_code} ${problemName(inc.problem_code, inc.problem_name)}`),
          h("span", { class: "muted small" }, cameraName(inc), " · ", timeEl(inc.opened_at, { seconds: false })),
        ),
        h("a", { class: "small", href: `#/incidents/${inc.id}` }, t("bulk.details")),
      );
    });
    fill(el,
      h("div", { class: "page-head" }, h("h1", {}, t("bulk.title")), h("a", { href: "#/review" }, t("bulk.back"))),
      notice,
      cards.length
        ? [
            h(
              "div",
              { class: "button-row bulk-bar" },
              h("label", { for: "bulk-all" }, all, " ", t("bulk.all")),
              count,
              h("label", { for: "bulk-note" }, t("bulk.note")),
              note,
              confirm,
              reject,
            ),
            h("ul", { class: "bulk-list" }, cards),
          ]
        : h("p", { class: "muted empty" }, t("review.empty")),
    );
    update();
  }

  const run = (notice) => load(notice).catch((err) => showError(el, err, () => run()));
  run();
  return { el, title: t("bulk.title") };
}
