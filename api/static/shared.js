// Shared by every page: DOM helpers, the API client, the app's state, toasts, view helpers.

import { fmtTime, getLang, label, t, toDate } from "./i18n.js";

export const API = "/api/v1";
// What each role may do, as the server's api/accounts.py PERMISSIONS says; a /auth/me
// answer with its own `permissions` list takes precedence.
const PERMISSIONS = {
  viewer: ["read"],
  operator: ["read", "review", "cases"],
  trainer: ["read", "models"],
  admin: ["read", "review", "cases", "models", "admin"],
};

// ================================================================== DOM helpers

const SVG_NS = "http://www.w3.org/2000/svg";
const PROPS = new Set(["value", "checked", "selected", "muted", "defaultMuted", "playsInline", "autoplay", "loop"]);

function setProps(el, props) {
  if (!props) return;
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "style") throw new Error("style attributes are blocked by the CSP: use a class");
    if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
    else if (k === "text") el.textContent = String(v);
    else if (k === "dataset") for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function appendAll(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el` (arrays are flattened, strings become text). */
export function fill(el, ...children) {
  el.replaceChildren();
  appendAll(el, children);
  return el;
}

/** An HTML element: h("a", {href: "#/x", class: "y"}, "text", child...). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  appendAll(el, children);
  return el;
}

/** An SVG element; attributes are set verbatim. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
  }
  appendAll(el, children);
  return el;
}

/** Evidence and frame URLs come from the server: only this server's API paths are used. */
export function safeUrl(u) {
  return typeof u === "string" && u.startsWith(`${API}/`) && !u.includes("..") ? u : null;
}

function evidenceOf(item, kind) {
  return (item.evidence || []).filter((e) => e.kind === kind && safeUrl(e.url)).at(-1) || null;
}

export function evidenceUrl(item, kind) {
  return evidenceOf(item, kind)?.url ?? null;
}

export function pill(text, cls) {
  return h("span", { class: ["pill", cls] }, text);
}

export function timeEl(value, opts) {
  const d = toDate(value);
  return d ? h("time", { datetime: d.toISOString() }, fmtTime(d, opts)) : t("common.none");
}

export function factList(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v === "" || v == null ? t("common.none") : v)]),
  );
}

export function table(headers, rows, cls) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: ["data", cls] },
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows),
    ),
  );
}

/**
 * The key pressed, lower-cased; falls back to the physical key when an input method reports
 * "Process" (a Chinese IME left on), and reads full-width ？ as ?.
 */
export function keyOf(e) {
  const key = e.key || "";
  if (key === "？") return "?";
  if (key && key !== "Process" && key !== "Unidentified" && key !== "Dead") {
    return key.length === 1 ? key.toLowerCase() : key;
  }
  const code = e.code || "";
  if (/^Key[A-Z]$/.test(code)) return code.slice(3).toLowerCase();
  if (/^(Digit|Numpad)[0-9]$/.test(code)) return code.slice(-1);
  if (code === "Slash" && e.shiftKey) return "?";
  if (code === "Escape") return "Escape";
  return key;
}

export function focusHeading(root) {
  const h1 = root.querySelector("h1");
  if (h1) {
    if (!h1.hasAttribute("tabindex")) h1.setAttribute("tabindex", "-1");
    h1.focus({ preventScroll: true });
  }
}

// ================================================================== API

class ApiError extends Error {
  constructor(status, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

function detailOf(data) {
  if (!data || data.detail === undefined) return "";
  if (typeof data.detail === "string") return data.detail;
  if (Array.isArray(data.detail)) return data.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  return JSON.stringify(data.detail);
}

/** `meta`, when given, receives the answer's X-Total-Count as `meta.total` (lists that page). */
export async function api(path, { method = "GET", body, signal, auth = true, meta } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, signal, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(API + path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, t("common.network"));
  }
  let data = null;
  if ((res.headers.get("content-type") || "").includes("json")) data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new ApiError(res.status, detailOf(data) || `HTTP ${res.status}`, res.headers.get("Retry-After"));
    if (res.status === 401 && auth) app.onSessionExpired?.();
    throw err;
  }
  if (meta) meta.total = Number.parseInt(res.headers.get("X-Total-Count") ?? "", 10);
  return data;
}

export function errorText(err) {
  if (!(err instanceof ApiError)) return String(err?.message || err);
  if (err.status === 403) return t("common.forbidden");
  if (err.status === 404) return `${t("common.notFound")}（${err.message}）`;
  return err.message;
}

// ================================================================== app state

export const app = {
  user: null,
  view: null,
  taxonomy: null,
  taxonomyPromise: null,
  cameras: null,
  camerasAt: 0,
};

function can(permission) {
  const perms = app.user?.permissions || PERMISSIONS[app.user?.role] || [];
  return perms.includes(permission);
}
export const canReview = () => can("review");
export const canRetry = () => can("cases");
export const canAdmin = () => can("admin");

export function loadTaxonomy() {
  if (!app.taxonomyPromise) {
    app.taxonomyPromise = api("/taxonomy").then(
      (data) => {
        const list = Array.isArray(data) ? data : data?.problems || [];
        app.taxonomy = list
          .filter((p) => p && /^\d{5}$/.test(p.code))
          .map((p) => ({ code: p.code, name_zh: p.name_zh || p.name || p.code, name_en: p.name_en || null }));
        return app.taxonomy;
      },
      (err) => {
        app.taxonomyPromise = null;
        throw err;
      },
    );
  }
  return app.taxonomyPromise;
}

export async function loadCameras(maxAgeMs = 5000) {
  if (app.cameras && Date.now() - app.camerasAt < maxAgeMs) return app.cameras;
  const cams = await api("/cameras");
  app.cameras = Array.isArray(cams) ? cams : [];
  app.camerasAt = Date.now();
  return app.cameras;
}

export const cameraById = (id) => app.cameras?.find((c) => c.id === id) || null;

export function problemName(code, nameZh) {
  const p = app.taxonomy?.find((x) => x.code === code);
  const zh = nameZh || p?.name_zh || "";
  if (getLang() === "en" && p?.name_en) return zh ? `${p.name_en}（${zh}）` : p.name_en;
  return zh || code || t("common.none");
}

export function cameraName(item) {
  return item.camera_name || cameraById(item.camera_id)?.name || item.camera_id;
}

export function persistenceMinutes(item) {
  if (item.persistence_minutes !== undefined && item.persistence_minutes !== null) return item.persistence_minutes;
  const a = toDate(item.first_seen_at);
  const b = toDate(item.last_seen_at);
  return a && b ? (b - a) / 60000 : null;
}

export function reviewStateLabel(rs) {
  return rs ? label("reviewState", rs) : t("reviewState.auto");
}

// ================================================================== toasts

export function toast(message, kind = "info", ms = 4000) {
  const box = document.getElementById("toasts");
  const el = h("div", { class: ["toast", `toast-${kind}`] }, message);
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => el.remove(), ms);
}

export function go(hash) {
  // the router listens for hashchange; going where we are still re-renders
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

export function messageView(text, retry) {
  const el = h(
    "section",
    { class: "message-view" },
    h("h1", {}, text),
    retry ? h("button", { type: "button", class: "btn", onclick: retry }, t("common.retry")) : null,
  );
  return { el, title: text };
}

/** A view that loads, then renders; errors become a message with a retry button. */
export function loadingSection(cls, titleText) {
  const el = h("section", { class: cls }, h("h1", {}, titleText), h("p", { class: "loading" }, t("common.loading")));
  return el;
}

export function showError(el, err, retry) {
  if (err?.status === 401) return;
  fill(el,
    el.querySelector("h1") || h("h1", {}, ""),
    h("p", { class: "form-error", role: "alert" }, t("common.error", { msg: errorText(err) })),
    retry ? h("button", { type: "button", class: "btn", onclick: retry }, t("common.retry")) : null,
  );
}

// ================================================================== date filters

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** A YYYY-MM-DD from a URL, or "" for anything else. */
export const dayParam = (v) => (DAY.test(v || "") ? v : "");

/**
 * since/until of the days `from`..`to` (both included, either may be "") for the API. Days are
 * Beijing days: China keeps +08:00 all year, so no zone database is needed.
 */
export function dayBounds(from, to) {
  const out = {};
  if (dayParam(from)) out.since = `${from}T00:00:00+08:00`;
  if (dayParam(to)) {
    const next = new Date(`${to}T00:00:00Z`);
    next.setUTCDate(next.getUTCDate() + 1);
    out.until = `${next.toISOString().slice(0, 10)}T00:00:00+08:00`;
  }
  return out;
}
