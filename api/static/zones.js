// 区域编辑: draw a camera's zones on its full-resolution picture, save them into its
// camera file (PUT .../zones) and apply them at once (POST /config/reload). Admins only.

import { label, t } from "./i18n.js";
import { API, api, app, errorText, fill, h, s, toast } from "./shared.js";

// ZonePurpose in detector/config.py, in the order people pick them
export const PURPOSES = [
  "no_vending", "shop_front", "sidewalk", "road", "no_parking", "garbage_point", "construction_site", "wall", "pole",
  "ignore",
];

export const isAdmin = () => (app.user?.permissions || (app.user?.role === "admin" ? ["admin"] : [])).includes("admin");

/** SVG polygons with their names over a picture `w` x `h` px (the camera wall and the editor share it). */
export function zoneShapes(zones, w, hgt, selected = -1) {
  const size = Math.max(12, Math.round(w / 45));
  return zones.map((z, i) => {
    const pts = z.polygon.map(([x, y]) => `${x * w},${y * hgt}`).join(" ");
    const [lx, ly] = z.polygon.reduce(([a, b], [x, y]) => [a + x / z.polygon.length, b + y / z.polygon.length], [0, 0]);
    return s(
      "g",
      { class: ["zone-shape", `zone-${z.purpose}`, i === selected && "zone-selected"].filter(Boolean).join(" ") },
      s("polygon", { points: pts }),
      s("text", { x: lx * w, y: ly * hgt, "font-size": size, "text-anchor": "middle" }, z.display_name || z.name),
    );
  });
}

export function zonesView(cameraId) {
  let zones = [];
  let draft = null; // points being drawn: [[x, y], ...] normalised; with `redraw` the zone being redrawn
  let redraw = -1;
  let selected = -1;
  let size = null; // the picture's natural size
  let destroyed = false;

  const title = h("h1", {}, t("zones.title", { name: cameraId }));
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const errorsBox = h("div", { class: "zone-errors", role: "alert", hidden: true });
  const img = h("img", { class: "zone-picture", alt: t("zones.pictureAlt", { name: cameraId }) });
  const svg = s("svg", { class: "zone-overlay", role: "img", "aria-label": t("zones.canvas") });
  const stage = h("div", { class: "zone-stage" }, img, svg);
  const hint = h("p", { class: "muted small" }, t("zones.hint"));
  const finishBtn = h("button", { type: "button", class: "btn", id: "zone-finish" }, t("zones.finish"));
  const undoBtn = h("button", { type: "button", class: "btn btn-quiet", id: "zone-undo" }, t("zones.undo"));
  const cancelBtn = h("button", { type: "button", class: "btn btn-quiet", id: "zone-cancel" }, t("zones.cancel"));
  const saveBtn = h("button", { type: "button", class: "btn btn-primary", id: "zone-save" }, t("zones.save"));
  const list = h("ol", { class: "zone-list" });
  const el = h(
    "section",
    { class: "zone-editor", dataset: { cameraId } },
    h("div", { class: "page-head" }, title, h("a", { href: "#/cameras" }, t("common.back"))),
    status,
    errorsBox,
    h(
      "div",
      { class: "zone-layout" },
      h("div", {}, stage, hint, h("div", { class: "zone-tools" }, finishBtn, undoBtn, cancelBtn)),
      h("div", { class: "zone-side" }, h("h2", {}, t("zones.list")), list, saveBtn),
    ),
  );

  if (!isAdmin()) {
    fill(el, h("h1", {}, t("zones.titlePlain")), h("p", {}, t("common.forbidden")));
    return { el, title: t("zones.titlePlain") };
  }

  function point(e) {
    const r = svg.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, Math.round(v * 10000) / 10000));
    return [clamp((e.clientX - r.left) / r.width), clamp((e.clientY - r.top) / r.height)];
  }

  svg.addEventListener("click", (e) => {
    if (!size) return;
    draft = draft || [];
    draft.push(point(e));
    paint();
  });
  finishBtn.addEventListener("click", () => {
    if (!draft || draft.length < 3) {
      status.textContent = t("zones.needThree");
      return;
    }
    if (redraw >= 0) {
      zones[redraw].polygon = draft;
      selected = redraw;
    } else {
      let n = zones.length + 1;
      while (zones.some((z) => z.name === `zone-${n}`)) n += 1;
      zones.push({ name: `zone-${n}`, display_name: null, purpose: PURPOSES[0], polygon: draft });
      selected = zones.length - 1;
    }
    draft = null;
    redraw = -1;
    paint();
    list.querySelectorAll(".zone-name")[selected]?.focus();
  });
  undoBtn.addEventListener("click", () => {
    if (draft?.length) draft.pop();
    paint();
  });
  cancelBtn.addEventListener("click", () => {
    draft = null;
    redraw = -1;
    paint();
  });
  saveBtn.addEventListener("click", save);

  function row(z, i) {
    const id = (k) => `zone-${k}-${i}`;
    const name = h("input", { id: id("name"), class: "zone-name", value: z.name, required: true, maxlength: 40 });
    const display = h("input", { id: id("display"), class: "zone-display", value: z.display_name || "", maxlength: 40 });
    const purpose = h(
      "select",
      { id: id("purpose"), class: "zone-purpose" },
      PURPOSES.map((p) => h("option", { value: p, selected: p === z.purpose }, label("purpose", p))),
    );
    name.addEventListener("input", () => { z.name = name.value.trim(); paintShapes(); });
    display.addEventListener("input", () => { z.display_name = display.value.trim() || null; paintShapes(); });
    purpose.addEventListener("change", () => { z.purpose = purpose.value; paintShapes(); });
    for (const input of [name, display, purpose]) input.addEventListener("focus", () => { selected = i; paintShapes(); });
    const redrawBtn = h("button", { type: "button", class: "btn btn-quiet zone-redraw" }, t("zones.redraw"));
    redrawBtn.addEventListener("click", () => {
      redraw = i;
      draft = [];
      status.textContent = t("zones.redrawing", { name: z.name });
      paint();
    });
    const del = h("button", { type: "button", class: "btn btn-quiet zone-delete" }, t("zones.delete"));
    del.addEventListener("click", () => {
      zones.splice(i, 1);
      selected = -1;
      paint();
    });
    return h(
      "li",
      { class: ["zone-row", i === selected && "zone-row-selected"], dataset: { zone: z.name } },
      h("label", { for: id("name") }, t("zones.name")), name,
      h("label", { for: id("display") }, t("zones.displayName")), display,
      h("label", { for: id("purpose") }, t("zones.purpose")), purpose,
      h("div", { class: "zone-row-tools" }, redrawBtn, del),
    );
  }

  function paintShapes() {
    if (!size) return;
    const kids = zoneShapes(zones, size.w, size.h, selected);
    if (draft) {
      const pts = draft.map(([x, y]) => `${x * size.w},${y * size.h}`).join(" ");
      kids.push(s("polyline", { class: "zone-draft", points: pts }));
      const r = Math.max(3, size.w / 200);
      for (const [x, y] of draft) kids.push(s("circle", { class: "zone-draft-point", cx: x * size.w, cy: y * size.h, r }));
    }
    fill(svg, kids);
  }

  function paint() {
    paintShapes();
    fill(list, zones.length ? zones.map(row) : h("li", { class: "muted" }, t("zones.none")));
    finishBtn.disabled = !draft || draft.length < 3;
    undoBtn.disabled = !draft?.length;
    cancelBtn.disabled = !draft;
  }

  function showErrors(items) {
    errorsBox.hidden = !items.length;
    fill(errorsBox, items.length ? [h("p", {}, t("zones.refused")), h("ul", {}, items.map((x) => h("li", {}, x)))] : []);
  }

  async function save() {
    showErrors([]);
    saveBtn.disabled = true;
    status.textContent = t("zones.saving");
    const body = { zones: zones.map((z) => ({ ...z, display_name: z.display_name || undefined })) };
    try {
      await api(`/cameras/${encodeURIComponent(cameraId)}/zones`, { method: "PUT", body });
    } catch (err) {
      status.textContent = "";
      showErrors(errorText(err).split("; "));
      saveBtn.disabled = false;
      return;
    }
    try {
      const r = await api("/config/reload", { method: "POST" });
      status.textContent = t("zones.applied");
      toast(t("zones.applied"), "success");
      if (r?.warnings?.length) showErrors(r.warnings);
    } catch (err) {
      status.textContent = t("zones.savedNotApplied");
      showErrors(errorText(err).split("; "));
    } finally {
      saveBtn.disabled = false;
    }
  }

  async function load() {
    status.textContent = t("common.loading");
    try {
      const [cam, data] = await Promise.all([
        api(`/cameras/${encodeURIComponent(cameraId)}`),
        api(`/cameras/${encodeURIComponent(cameraId)}/zones`),
      ]);
      if (destroyed) return;
      title.textContent = t("zones.title", { name: cam.name || cameraId });
      zones = data.zones.map((z) => ({ ...z, polygon: z.polygon.map((p) => [...p]) }));
      status.textContent = data.file ? t("zones.file", { file: data.file }) : t("zones.notEditable");
      saveBtn.disabled = !data.file;
      paint();
    } catch (err) {
      status.textContent = t("common.error", { msg: errorText(err) });
    }
  }

  img.onload = () => {
    if (destroyed) return;
    size = { w: img.naturalWidth, h: img.naturalHeight };
    svg.setAttribute("viewBox", `0 0 ${size.w} ${size.h}`);
    svg.setAttribute("preserveAspectRatio", "none");
    el.dataset.ready = "true";
    paintShapes();
  };
  img.onerror = () => {
    if (!destroyed) fill(stage, h("p", { class: "no-frame" }, t("cameras.noFrame")));
  };
  img.src = `${API}/cameras/${encodeURIComponent(cameraId)}/picture.jpg?t=${Date.now()}`;
  paint();
  load();

  return {
    el,
    title: t("zones.titlePlain"),
    destroy() {
      destroyed = true;
    },
  };
}
