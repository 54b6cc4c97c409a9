// 摄像头: the camera wall and each camera's health.

import { fmtAgo, fmtNumber, fmtTime, label, t } from "./i18n.js";
import { API, api, app, errorText, fill, h, s } from "./shared.js";
import { isAdmin, zoneShapes } from "./zones.js";

const CAMERA_REFRESH_MS = 10_000;

// ================================================================== cameras

const BAD_STATES = new Set(["stalled", "failed"]);

export function camerasView(query) {
  let street = query.get("street") || "";
  const streetSelect = h("select", { id: "camera-street" });
  const summary = h("p", { class: "muted" });
  const updated = h("p", { class: "muted small", "aria-live": "off" });
  const grid = h("ul", { class: "camera-wall" });
  const el = h(
    "section",
    { class: "cameras" },
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("cameras.title")),
      h(
        "div",
        { class: "filters" },
        h("label", { for: "camera-street" }, t("cameras.street")),
        streetSelect,
      ),
    ),
    summary,
    grid,
    updated,
  );
  const cards = new Map();
  let cams = [];
  let destroyed = false;

  streetSelect.addEventListener("change", () => {
    street = streetSelect.value;
    history.replaceState(null, "", street ? `#/cameras?street=${encodeURIComponent(street)}` : "#/cameras");
    draw(false);
  });

  function fillStreets() {
    const streets = [...new Set(cams.map((c) => c.street).filter(Boolean))].sort((a, b) => a.localeCompare(b, "zh"));
    fill(streetSelect,
      h("option", { value: "" }, t("cameras.allStreets")),
      streets.map((x) => h("option", { value: x, selected: x === street }, x)),
    );
    streetSelect.value = streets.includes(street) ? street : "";
  }

  function card(c) {
    let k = cards.get(c.id);
    if (!k) {
      k = {
        li: h("li", { class: "camera-card", dataset: { cameraId: c.id } }),
        frame: h("div", { class: "frame-box" }),
        name: h("a", { class: "camera-name" }),
        badge: h("span", {}),
        place: h("p", { class: "muted small" }),
        age: h("p", { class: "age" }),
        rates: h("p", { class: "muted small" }),
        error: h("p", { class: "camera-error" }),
        zonesLink: h("a", { class: "camera-zones-link small", href: `#/cameras/${encodeURIComponent(c.id)}/zones` }, t("cameras.editZones")),
        hasFrame: false,
      };
      k.li.append(
        k.frame,
        h("div", { class: "camera-meta" }, h("h2", { class: "camera-title" }, k.name, k.badge), k.place, k.age, k.rates, k.error),
      );
      if (isAdmin()) k.li.querySelector(".camera-meta").append(k.zonesLink);
      cards.set(c.id, k);
    }
    k.cam = c;
    const state = c.state || "unknown";
    k.li.dataset.state = state;
    k.name.textContent = c.name || c.id;
    k.name.href = `#/cameras/${encodeURIComponent(c.id)}`; // its page: picture, health, incidents
    k.badge.className = `badge cam-${state}`;
    fill(k.badge, h("span", { class: "dot", "aria-hidden": "true" }), label("camState", state));
    k.place.textContent = [c.street, c.community, c.address].filter(Boolean).join(" · ") || c.id;
    k.rates.textContent = t("cameras.rates", {
      r: fmtNumber(c.frames_received_per_min),
      a: fmtNumber(c.frames_analysed_per_min),
    });
    k.error.textContent = c.last_error && BAD_STATES.has(state) ? c.last_error : "";
    k.error.hidden = !k.error.textContent;
    if (c.last_error) k.error.title = c.last_error;
    paintAge(k);
    if (!k.hasFrame) fill(k.frame, h("p", { class: "no-frame" }, t("cameras.noFrame")));
    return k;
  }

  function paintAge(k) {
    k.age.textContent = k.cam.last_frame_at
      ? t("cameras.lastFrame", { ago: fmtAgo(k.cam.last_frame_at) })
      : t("cameras.never");
  }

  function loadFrame(k) {
    if (!k.cam.last_frame_at) return;
    const img = new Image();
    img.className = "camera-frame";
    img.alt = t("cameras.frameAlt", { name: k.cam.name || k.cam.id });
    img.onload = () => {
      if (destroyed) return;
      k.hasFrame = true;
      // the zones with their names over the picture, in its pixels, placed as object-fit: contain places it
      const w = img.naturalWidth, hgt = img.naturalHeight;
      const overlay = s("svg", { class: "camera-zones", viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: "xMidYMid meet", "aria-hidden": "true" },
        zoneShapes(k.cam.zones || [], w, hgt));
      fill(k.frame, img, overlay);
    };
    img.src = `${API}/cameras/${encodeURIComponent(k.cam.id)}/frame.jpg?zones=false&t=${Date.now()}`;
  }

  function draw(reloadFrames) {
    fillStreets();
    const shown = cams.filter((c) => !street || c.street === street);
    const live = shown.filter((c) => c.state === "live").length;
    const bad = shown.filter((c) => BAD_STATES.has(c.state)).length;
    summary.textContent = t("cameras.summary", { n: shown.length, live, bad });
    fill(grid,
      ...shown.map((c) => {
        const k = card(c);
        if (reloadFrames) loadFrame(k);
        return k.li;
      }),
    );
    if (!shown.length) fill(grid, h("li", { class: "muted" }, t("common.empty")));
  }

  async function refresh() {
    try {
      cams = await api("/cameras");
      if (destroyed) return;
      app.cameras = cams;
      app.camerasAt = Date.now();
      draw(true);
      updated.textContent = t("cameras.refresh", { t: fmtTime(new Date()) });
    } catch (err) {
      if (err.status !== 401) updated.textContent = t("common.error", { msg: errorText(err) });
    }
  }

  const every = setInterval(refresh, CAMERA_REFRESH_MS);
  const tick = setInterval(() => {
    for (const k of cards.values()) if (k.cam) paintAge(k);
  }, 1000);
  summary.textContent = t("common.loading");
  refresh();

  return {
    el,
    title: t("cameras.title"),
    destroy() {
      destroyed = true;
      clearInterval(every);
      clearInterval(tick);
    },
  };
}

