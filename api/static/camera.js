// 摄像头详情: one camera — its latest picture, health history and incidents.

import { fmtAgo, fmtNumber, label, t } from "./i18n.js";
import {
  API,
  api,
  canAdmin,
  factList,
  fill,
  h,
  loadingSection,
  pill,
  problemName,
  reviewStateLabel,
  showError,
  table,
  timeEl,
} from "./shared.js";

const RECENT_INCIDENTS = 10;

export function cameraView(id) {
  const el = loadingSection("camera", t("camera.title", { name: id }));
  const path = encodeURIComponent(id);

  function picture(cam) {
    const box = h("div", { class: "frame-box camera-picture" }, h("p", { class: "no-frame" }, t("cameras.noFrame")));
    if (!cam.last_frame_at) return box;
    const img = h("img", { class: "camera-frame", alt: t("cameras.frameAlt", { name: cam.name || cam.id }) });
    img.onload = () => fill(box, img);
    img.src = `${API}/cameras/${path}/frame.jpg?t=${Date.now()}`; // a 404 (no frame yet) keeps the "no picture" line
    return box;
  }

  function health(events) {
    if (!events.length) return h("p", { class: "muted" }, t("camera.noHealth"));
    return table(
      [t("col.time"), t("col.state"), t("col.error")],
      events.map((e) =>
        h(
          "tr",
          { dataset: { state: e.state } },
          h("td", {}, timeEl(e.ts)),
          h("td", {}, pill(label("camState", e.state), `cam-${e.state}`)),
          h("td", {}, e.error ? h("code", { class: "error-text" }, e.error) : ""),
        ),
      ),
      "health-table",
    );
  }

  function incidents(page) {
    const items = page?.items || [];
    if (!items.length) return h("p", { class: "muted" }, t("camera.noIncidents"));
    return table(
      [t("col.id"), t("col.problem"), t("col.state"), t("col.review"), t("col.opened")],
      items.map((i) =>
        h(
          "tr",
          { dataset: { incidentId: i.id } },
          h("td", {}, h("a", { href: `#/incidents/${i.id}` }, `#${i.id}`)),
          h("td", {}, h("span", { class: "code" }, i.problem_code), " ", problemName(i.problem_code, i.problem_name)),
          h("td", {}, pill(label("incState", i.state), `inc-${i.state}`)),
          h("td", {}, pill(reviewStateLabel(i.review_state), `rev-${i.review_state || "auto"}`)),
          h("td", {}, timeEl(i.opened_at, { seconds: false })),
        ),
      ),
      "camera-incidents",
    );
  }

  async function load() {
    const [cam, events, page] = await Promise.all([
      api(`/cameras/${path}`),
      api(`/cameras/${path}/health?limit=50`),
      api(`/incidents?camera=${path}&limit=${RECENT_INCIDENTS}`),
    ]);
    const state = cam.state || "unknown";
    const total = page?.total ?? 0;
    fill(el,
      h(
        "div",
        { class: "page-head" },
        h("h1", {}, t("camera.title", { name: cam.name || cam.id })),
        h("span", { class: `badge cam-${state}` }, h("span", { class: "dot", "aria-hidden": "true" }), label("camState", state)),
        canAdmin() ? h("a", { class: "btn", href: `#/cameras/${path}/zones` }, t("cameras.editZones")) : null,
      ),
      h(
        "div",
        { class: "detail-grid" },
        h("section", { "aria-labelledby": "cam-pic-title" }, h("h2", { id: "cam-pic-title" }, t("camera.picture")), picture(cam)),
        h(
          "section",
          { "aria-labelledby": "cam-facts-title" },
          h("h2", { id: "cam-facts-title" }, t("incident.facts")),
          factList([
            [t("camera.id"), h("code", {}, cam.id)],
            [t("fact.address"), cam.address],
            [t("fact.streetCommunity"), [cam.street, cam.community].filter(Boolean).join(" / ")],
            [t("camera.lastFrame"), cam.last_frame_at ? [timeEl(cam.last_frame_at), ` （${fmtAgo(cam.last_frame_at)}）`] : t("cameras.never")],
            [t("camera.rates"), t("cameras.rates", { r: fmtNumber(cam.frames_received_per_min), a: fmtNumber(cam.frames_analysed_per_min) })],
            [t("camera.reconnects"), fmtNumber(cam.reconnects)],
            [t("camera.dropped"), fmtNumber(cam.frames_dropped)],
            [t("camera.problems"), (cam.problems || []).map((code) => `${code} ${problemName(code)}`).join("、")],
            cam.last_error ? [t("col.error"), h("code", { class: "error-text" }, cam.last_error)] : null,
          ]),
        ),
      ),
      h("section", { "aria-labelledby": "cam-health-title" }, h("h2", { id: "cam-health-title" }, t("camera.health")), health(events || [])),
      h(
        "section",
        { "aria-labelledby": "cam-inc-title" },
        h(
          "div",
          { class: "section-head" },
          h("h2", { id: "cam-inc-title" }, t("camera.incidents", { n: fmtNumber(total) })),
          total ? h("a", { href: `#/incidents?camera=${path}` }, t("camera.allIncidents")) : null,
        ),
        incidents(page),
      ),
    );
  }

  const run = () => load().catch((err) => showError(el, err, run));
  run();
  return { el, title: t("camera.title", { name: id }) };
}
