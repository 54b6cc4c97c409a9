// GridSight console: review queue, camera wall, incidents and cases, statistics.
// Plain ES modules, no build step, nothing from outside this server. Server data is
// only ever put into the page with textContent / DOM nodes (never innerHTML), and no
// inline script or style is used, so a CSP of default-src 'self' holds.

import {
  applyDocumentLang,
  fmtAgo,
  fmtDay,
  fmtMinutes,
  fmtNumber,
  fmtPct,
  fmtTime,
  getLang,
  label,
  onLangChange,
  setLang,
  t,
  toDate,
  translateStatic,
} from "./i18n.js";

const API = "/api/v1";
const REVIEW_BATCH = 6; // items asked for at a time
const PRELOAD_AHEAD = 4; // annotated JPEGs fetched and decoded ahead of the operator
const REFILL_BELOW = 3; // ask for more when fewer than this many are left ahead
const QUEUE_POLL_MS = 15_000; // an empty queue looks for new detections this often
const CAMERA_REFRESH_MS = 10_000;
const PAGE_SIZE = 25;
// What each role may do, as the server's detector/accounts.py PERMISSIONS says; a /auth/me
// answer with its own `permissions` list takes precedence.
const PERMISSIONS = {
  viewer: ["read"],
  operator: ["read", "review", "cases"],
  trainer: ["read", "models"],
  admin: ["read", "review", "cases", "models", "admin"],
};

// keypress → next item painted, in ms, newest last (read by the browser tests); verdicts are
// sent in the background, and their round trips (keypress → server answered) are kept beside it.
window.__reviewTimings = [];
window.__reviewSaveTimings = [];

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
function fill(el, ...children) {
  el.replaceChildren();
  appendAll(el, children);
  return el;
}

/** An HTML element: h("a", {href: "#/x", class: "y"}, "text", child...). */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  appendAll(el, children);
  return el;
}

/** An SVG element; attributes are set verbatim. */
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
  }
  appendAll(el, children);
  return el;
}

/** Evidence and frame URLs come from the server: only this server's API paths are used. */
function safeUrl(u) {
  return typeof u === "string" && u.startsWith(`${API}/`) && !u.includes("..") ? u : null;
}

function evidenceOf(item, kind) {
  return (item.evidence || []).filter((e) => e.kind === kind && safeUrl(e.url)).at(-1) || null;
}

function evidenceUrl(item, kind) {
  return evidenceOf(item, kind)?.url ?? null;
}

function pill(text, cls) {
  return h("span", { class: ["pill", cls] }, text);
}

function timeEl(value, opts) {
  const d = toDate(value);
  return d ? h("time", { datetime: d.toISOString() }, fmtTime(d, opts)) : t("common.none");
}

function factList(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v === "" || v == null ? t("common.none") : v)]),
  );
}

function table(headers, rows, cls) {
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
function keyOf(e) {
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

function focusHeading(root) {
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

async function api(path, { method = "GET", body, signal, auth = true } = {}) {
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
    if (res.status === 401 && auth) sessionExpired();
    throw err;
  }
  return data;
}

function errorText(err) {
  if (!(err instanceof ApiError)) return String(err?.message || err);
  if (err.status === 403) return t("common.forbidden");
  if (err.status === 404) return `${t("common.notFound")}（${err.message}）`;
  return err.message;
}

// ================================================================== app state

const app = {
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
const canReview = () => can("review");
const canRetry = () => can("cases");

function loadTaxonomy() {
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

async function loadCameras(maxAgeMs = 5000) {
  if (app.cameras && Date.now() - app.camerasAt < maxAgeMs) return app.cameras;
  const cams = await api("/cameras");
  app.cameras = Array.isArray(cams) ? cams : [];
  app.camerasAt = Date.now();
  return app.cameras;
}

const cameraById = (id) => app.cameras?.find((c) => c.id === id) || null;

function problemName(code, nameZh) {
  const p = app.taxonomy?.find((x) => x.code === code);
  const zh = nameZh || p?.name_zh || "";
  if (getLang() === "en" && p?.name_en) return zh ? `${p.name_en}（${zh}）` : p.name_en;
  return zh || code || t("common.none");
}

function cameraName(item) {
  return item.camera_name || cameraById(item.camera_id)?.name || item.camera_id;
}

function persistenceMinutes(item) {
  if (item.persistence_minutes !== undefined && item.persistence_minutes !== null) return item.persistence_minutes;
  const a = toDate(item.first_seen_at);
  const b = toDate(item.last_seen_at);
  return a && b ? (b - a) / 60000 : null;
}

function reviewStateLabel(rs) {
  return rs ? label("reviewState", rs) : t("reviewState.auto");
}

// ================================================================== toasts

function toast(message, kind = "info", ms = 4000) {
  const box = document.getElementById("toasts");
  const el = h("div", { class: ["toast", `toast-${kind}`] }, message);
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => el.remove(), ms);
}

// ================================================================== shell, session, router

function updateShell() {
  translateStatic();
  document.getElementById("lang-toggle").textContent = t("header.otherLang");
  const who = document.getElementById("whoami");
  who.textContent = app.user ? t("header.user", { name: app.user.username, role: label("role", app.user.role) }) : "";
}

function showLogin(message) {
  app.user = null;
  document.getElementById("topbar").hidden = true;
  document.body.classList.add("anonymous");
  const view = loginView(message);
  mount(view, null);
  view.focus.focus();
}

function signedIn(me) {
  app.user = {
    username: me.username,
    role: me.role,
    permissions: Array.isArray(me.permissions) ? me.permissions : null,
  };
  document.getElementById("topbar").hidden = false;
  document.body.classList.remove("anonymous");
  updateShell();
  loadTaxonomy().catch(() => {});
  loadCameras().catch(() => {});
  route();
}

function sessionExpired() {
  if (!app.user) return;
  showLogin(t("common.sessionExpired"));
}

async function logout() {
  try {
    await api("/auth/logout", { method: "POST", auth: false });
  } catch {
    // the session is dropped here anyway
  }
  app.taxonomy = null;
  app.taxonomyPromise = null;
  app.cameras = null;
  showLogin();
}

const ROUTES = [
  { re: /^\/review$/, nav: "review", view: () => reviewView() },
  { re: /^\/cameras$/, nav: "cameras", view: (m, q) => camerasView(q) },
  { re: /^\/incidents$/, nav: "incidents", view: (m, q) => incidentsView(q) },
  { re: /^\/incidents\/(\d+)$/, nav: "incidents", view: (m) => incidentView(Number(m[1])) },
  { re: /^\/cases\/(\d+)$/, nav: "incidents", view: (m) => caseView(Number(m[1])) },
  { re: /^\/stats$/, nav: "stats", view: (m, q) => statsView(q) },
];

function defaultRoute() {
  return canReview() ? "#/review" : "#/cameras";
}

function route() {
  if (!app.user) return;
  const raw = location.hash.replace(/^#/, "");
  if (!raw || raw === "/") {
    location.replace(defaultRoute());
    return;
  }
  const [path, query = ""] = raw.split("?");
  const r = ROUTES.find((x) => x.re.test(path));
  const view = r ? r.view(path.match(r.re), new URLSearchParams(query)) : messageView(t("common.unknownRoute"));
  mount(view, r?.nav ?? null);
  focusHeading(view.el);
}

function mount(view, nav) {
  if (app.view?.destroy) app.view.destroy();
  app.view = view;
  fill(document.getElementById("main"), view.el);
  for (const a of document.querySelectorAll(".mainnav a")) {
    if (a.dataset.route === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = view.title ? `${view.title} · GridSight` : "GridSight";
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function messageView(text, retry) {
  const el = h(
    "section",
    { class: "message-view" },
    h("h1", {}, text),
    retry ? h("button", { type: "button", class: "btn", onclick: retry }, t("common.retry")) : null,
  );
  return { el, title: text };
}

/** A view that loads, then renders; errors become a message with a retry button. */
function loadingSection(cls, titleText) {
  const el = h("section", { class: cls }, h("h1", {}, titleText), h("p", { class: "loading" }, t("common.loading")));
  return el;
}

function showError(el, err, retry) {
  if (err?.status === 401) return;
  fill(el,
    el.querySelector("h1") || h("h1", {}, ""),
    h("p", { class: "form-error", role: "alert" }, t("common.error", { msg: errorText(err) })),
    retry ? h("button", { type: "button", class: "btn", onclick: retry }, t("common.retry")) : null,
  );
}

// ================================================================== login

function loginView(message) {
  const user = h("input", {
    id: "login-user",
    name: "username",
    autocomplete: "username",
    autocapitalize: "off",
    spellcheck: "false",
    required: true,
  });
  const pass = h("input", {
    id: "login-pass",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const err = h("p", { class: "form-error", role: "alert", id: "login-error" }, message || "");
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, t("login.submit"));
  const form = h(
    "form",
    { class: "login-form", "aria-describedby": "login-error" },
    h("label", { for: "login-user" }, t("login.username")),
    user,
    h("label", { for: "login-pass" }, t("login.password")),
    pass,
    err,
    submit,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    submit.textContent = t("login.busy");
    err.textContent = "";
    try {
      const me = await api("/auth/login", {
        method: "POST",
        body: { username: user.value.trim(), password: pass.value },
        auth: false,
      });
      signedIn(me && me.role ? me : await api("/auth/me", { auth: false }));
    } catch (ex) {
      if (ex.status === 401) err.textContent = t("login.wrong");
      else if (ex.status === 429)
        err.textContent = /^\d+$/.test(ex.retryAfter || "")
          ? t("login.limited", { s: ex.retryAfter })
          : t("login.limitedNoTime");
      else err.textContent = t("login.failed", { msg: errorText(ex) });
      pass.value = "";
      pass.focus();
      submit.disabled = false;
      submit.textContent = t("login.submit");
    }
  });
  const el = h(
    "section",
    { class: "login" },
    h(
      "div",
      { class: "login-card" },
      h("div", { class: "brand" }, h("span", { class: "brand-mark", "aria-hidden": "true" }), h("span", {}, "GridSight")),
      h("h1", {}, t("login.title")),
      h("p", { class: "muted" }, t("app.subtitle")),
      form,
    ),
  );
  return { el, title: t("login.title"), focus: user };
}

// ================================================================== review

function reviewView() {
  const reviewer = canReview();
  const st = {
    items: [], // pending incidents loaded, in queue order
    pos: 0, // the one on screen
    decided: new Set(), // ids given a verdict here (not to be shown again unless undone)
    undo: [], // verdict entries, newest last
    chain: Promise.resolve(), // verdicts and undos reach the server in keypress order
    mode: null, // null | "reject" | "relabel" | "help"
    relabelPage: 0,
    showClip: false,
    fetching: null,
    maxSeen: 0, // the newest incident id the server has sent (the `after` cursor)
    loaded: false,
    forbidden: false,
    destroyed: false,
  };
  const images = new Map(); // incident id → preloaded <img>

  // ---------------------------------------------------------------- DOM
  const heading = h("h1", { class: "visually-hidden", tabindex: "-1" }, t("review.title"));
  const stage = h("div", { class: "stage" });
  const overlay = h("div", { class: "overlay", hidden: true });
  const stageWrap = h("div", { class: "stage-wrap" }, stage, overlay);
  const queueInfo = h("p", { class: "queue-info" });
  const problemTitle = h("h2", { class: "review-problem" });
  const incidentLink = h("a", { class: "incident-link" });
  const factsBox = h("div", { class: "facts-box" });
  const reasonInput = h("input", {
    type: "text",
    id: "reject-reason",
    maxlength: "500",
    autocomplete: "off",
    "aria-describedby": "reject-hint",
  });
  const reasonLabel = h("label", { for: "reject-reason" });
  const reasonHint = h("p", { class: "hint", id: "reject-hint" });
  const prompt = h("div", { class: "reject-prompt", hidden: true }, reasonLabel, reasonInput, reasonHint);
  const lastLine = h("p", { class: "last-verdict", role: "status", "aria-live": "polite" });
  const readOnly = reviewer ? null : h("p", { class: "read-only" });
  const side = h(
    "aside",
    { class: "review-side" },
    queueInfo,
    problemTitle,
    incidentLink,
    factsBox,
    prompt,
    lastLine,
    readOnly,
  );
  const keybar = h("div", { class: "keybar", role: "group" });
  const card = h("div", { class: "review-card", hidden: true }, stageWrap, side, keybar);
  const emptyTitle = h("h2", {});
  const emptyHint = h("p", { class: "muted" });
  const emptyBox = h("div", { class: "review-empty", hidden: true }, h("span", { class: "empty-mark", "aria-hidden": "true" }), emptyTitle, emptyHint);
  const loading = h("p", { class: "loading" }, t("common.loading"));
  const el = h("section", { class: "review" }, heading, loading, card, emptyBox);

  // ---------------------------------------------------------------- keys and buttons
  const KEYS = [
    { key: "Y", action: "confirm", label: "key.confirm", cls: "key-confirm", verdict: true },
    { key: "N", action: "reject", label: "key.reject", cls: "key-reject", verdict: true },
    { key: "R", action: "relabel", label: "key.relabel", cls: "key-relabel", verdict: true },
    { key: "U", action: "undo", label: "key.undo", verdict: true },
    { key: "V", action: "clip", label: "key.clip" },
    { key: "K", action: "prev", label: "key.prev" },
    { key: "J", action: "next", label: "key.next" },
    { key: "?", action: "help", label: "key.help" },
  ];

  function paintStatic() {
    heading.textContent = t("review.title");
    keybar.setAttribute("aria-label", t("help.title"));
    reasonLabel.textContent = t("review.rejectReason");
    reasonHint.textContent = t("review.rejectHint");
    emptyTitle.textContent = st.forbidden ? t("common.forbidden") : t("review.empty");
    emptyHint.textContent = st.forbidden ? "" : t("review.emptyHint");
    if (readOnly) readOnly.textContent = t("review.readOnly");
    fill(keybar,
      ...KEYS.filter((k) => reviewer || !k.verdict).map((k) =>
        h(
          "button",
          {
            type: "button",
            class: ["key-btn", k.cls],
            dataset: { action: k.action },
            "aria-keyshortcuts": k.key === "?" ? "Shift+/" : k.key,
            onclick: (e) => {
              // a verdict clicked with the mouse must not leave focus on the button, where the next
              // Enter would judge the next item; keyboard activation (detail 0) keeps focus
              if (k.verdict && e.detail > 0) heading.focus({ preventScroll: true });
              act(k.action, e.timeStamp);
            },
          },
          h("kbd", {}, k.key),
          h("span", {}, k.action === "clip" && st.showClip ? t("key.image") : t(k.label)),
        ),
      ),
    );
  }

  function act(action, start) {
    switch (action) {
      case "confirm":
        return verdict("confirm", {}, start);
      case "reject":
        return openReject();
      case "relabel":
        return openRelabel();
      case "undo":
        return undo();
      case "clip":
        return toggleClip();
      case "next":
        return move(1);
      case "prev":
        return move(-1);
      case "help":
        return st.mode === "help" ? closeOverlay() : openHelp();
      default:
        return undefined;
    }
  }

  function onKey(e) {
    if (st.destroyed || e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const target = e.target;
    if (target instanceof Element && target.closest("input, textarea, select, [contenteditable='true']")) return;
    const k = keyOf(e);
    if (st.mode === "relabel") {
      if (/^[1-9]$/.test(k)) {
        e.preventDefault();
        const btn = overlay.querySelector(`button[data-key="${k}"]`);
        if (btn) pickRelabel(btn.dataset.code, e.timeStamp);
      } else if (k === "0") {
        e.preventDefault();
        st.relabelPage += 1;
        renderRelabel();
      } else if (k === "Escape" || k === "r") {
        e.preventDefault();
        closeOverlay();
      }
      return;
    }
    if (st.mode === "help") {
      closeOverlay();
      if (k === "Escape" || k === "?") {
        e.preventDefault();
        return;
      }
    }
    if (k === "Escape") {
      closeOverlay();
      return;
    }
    const map = { y: "confirm", n: "reject", r: "relabel", u: "undo", v: "clip", j: "next", k: "prev", "?": "help" };
    const action = map[k];
    if (!action) return;
    e.preventDefault(); // the N that opens the reason box must not be typed into it
    const verdictKey = action === "confirm" || action === "reject" || action === "relabel" || action === "undo";
    if (verdictKey && (e.repeat || !reviewer)) return; // a held key gives one verdict
    try {
      performance.mark("gridsight:review-key", { startTime: e.timeStamp });
    } catch {
      // marks with a start time are recent; the timings array does not need them
    }
    act(action, e.timeStamp);
  }

  reasonInput.addEventListener("keydown", (e) => {
    if (e.isComposing || e.keyCode === 229) return; // Enter that ends a Chinese IME composition
    if (e.key === "Enter") {
      e.preventDefault();
      e.stopPropagation();
      finishReject(reasonInput.value.trim(), e.timeStamp);
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      finishReject("", e.timeStamp);
    }
  });

  // ---------------------------------------------------------------- showing an item
  const current = () => st.items[st.pos] || null;

  function imageFor(item) {
    let img = images.get(item.id);
    if (!img) {
      const url = evidenceUrl(item, "annotated") || evidenceUrl(item, "clean");
      if (!url) return h("p", { class: "stage-note" }, t("review.noImage"));
      img = new Image();
      img.decoding = "async";
      img.src = url;
      img.decode().catch(() => {});
      images.set(item.id, img);
    }
    img.className = "evidence-image";
    img.alt = t("review.imageAlt", { id: item.id, problem: problemName(item.problem_code, item.problem_name), camera: cameraName(item) });
    return img;
  }

  function clipFor(item, url) {
    const v = h("video", {
      class: "evidence-video",
      src: url,
      controls: true,
      preload: "auto",
      "aria-label": t("review.clipLabel", { id: item.id }),
    });
    v.muted = true; // autoplay needs it; operators unmute with the controls
    v.playsInline = true;
    v.loop = true;
    v.autoplay = true;
    v.play().catch(() => {});
    return v;
  }

  function stopVideo() {
    const v = stage.querySelector("video");
    if (v) {
      v.pause();
      v.removeAttribute("src");
      v.load();
    }
  }

  function preloadAround() {
    const keep = new Set();
    for (let i = Math.max(0, st.pos - 1); i < Math.min(st.items.length, st.pos + 1 + PRELOAD_AHEAD); i++) {
      imageFor(st.items[i]);
      keep.add(st.items[i].id);
    }
    for (const id of images.keys()) if (!keep.has(id)) images.delete(id);
  }

  function renderFacts(item) {
    const cam = cameraById(item.camera_id);
    const street = item.street ?? cam?.street ?? "";
    const community = item.community ?? cam?.community ?? "";
    fill(problemTitle,
      h("span", { class: "code" }, item.problem_code),
      " ",
      problemName(item.problem_code, item.problem_name),
    );
    incidentLink.textContent = `${t("review.incident", { id: item.id })} · ${t("review.details")}`;
    incidentLink.href = `#/incidents/${item.id}`;
    fill(factsBox,
      factList([
        [t("fact.camera"), [cameraName(item), h("span", { class: "muted small" }, ` ${item.camera_id}`)]],
        [t("fact.address"), item.address ?? cam?.address ?? ""],
        [t("fact.streetCommunity"), [street, community].filter(Boolean).join(" / ")],
        [t("fact.problem"), `${item.problem_code} ${problemName(item.problem_code, item.problem_name)}`],
        [t("fact.zone"), item.zone],
        [t("fact.firstSeen"), timeEl(item.first_seen_at)],
        [t("fact.opened"), timeEl(item.opened_at)],
        [t("fact.lastSeen"), timeEl(item.last_seen_at)],
        [t("fact.persistence"), fmtMinutes(persistenceMinutes(item))],
        [t("fact.score"), fmtNumber(item.score, 2)],
        [t("fact.recurrences"), fmtNumber(item.recurrences)],
      ]),
    );
  }

  function updateQueueInfo() {
    queueInfo.textContent = current() ? t("review.position", { i: st.pos + 1, n: st.items.length }) : "";
  }

  /** Puts the current item on screen; with `start` (a keypress time), records how long it took to paint. */
  function show(start) {
    if (st.destroyed) return;
    loading.hidden = true;
    const item = current();
    if (!item) {
      stopVideo();
      card.hidden = true;
      emptyBox.hidden = false;
      delete el.dataset.incidentId;
      paintStatic();
      return;
    }
    emptyBox.hidden = true;
    card.hidden = false;
    el.dataset.incidentId = String(item.id);
    stopVideo();
    const url = st.showClip ? evidenceUrl(item, "clip") : null;
    const media = url ? clipFor(item, url) : imageFor(item);
    if (!url) st.showClip = false;
    fill(stage, media);
    renderFacts(item);
    updateQueueInfo();
    if (start !== undefined) measure(start, item.id, media);
    preloadAround();
    if (st.items.length - st.pos <= REFILL_BELOW) refill();
  }

  function measure(start, id, media) {
    const ready = media instanceof HTMLImageElement ? media.decode().catch(() => {}) : Promise.resolve();
    ready.then(() =>
      requestAnimationFrame(() => {
        if (st.destroyed || current()?.id !== id) return; // replaced before it reached the screen
        setTimeout(() => {
          // the frame that shows the item has been painted
          const end = performance.now();
          window.__reviewTimings.push(Math.round((end - start) * 10) / 10);
          if (window.__reviewTimings.length > 5000) window.__reviewTimings.shift();
          try {
            performance.measure("gridsight:review-next", { start, end });
          } catch {
            // old browsers: the array above is enough
          }
        }, 0);
      }),
    );
  }

  /**
   * Asks the server for the next pending incidents after the newest one seen (`fromStart`: from the
   * oldest, to pick up incidents put back by an undo elsewhere); resolves to how many were added.
   */
  function refill({ fromStart = false } = {}) {
    if (st.fetching) return st.fetching;
    const after = fromStart ? 0 : st.maxSeen;
    st.fetching = api(`/review/next?limit=${REVIEW_BATCH}&after=${after}`)
      .then((list) => {
        const have = new Set(st.items.map((i) => i.id));
        let added = 0;
        for (const item of Array.isArray(list) ? list : []) {
          if (!item) continue;
          st.maxSeen = Math.max(st.maxSeen, item.id);
          if (have.has(item.id) || st.decided.has(item.id)) continue;
          st.items.push(item);
          have.add(item.id);
          added += 1;
        }
        st.loaded = true;
        st.forbidden = false;
        return added;
      })
      .catch((err) => {
        st.loaded = true;
        if (err.status === 403) st.forbidden = true;
        else if (err.status !== 401) toast(t("common.error", { msg: errorText(err) }), "error");
        return 0;
      })
      .finally(() => {
        st.fetching = null;
      });
    return st.fetching.then((added) => {
      if (st.destroyed) return added;
      if (added && !card.hidden) {
        updateQueueInfo();
        preloadAround();
      }
      return added;
    });
  }

  /** After the current item left the list: show the next one, fetching it first if none is loaded. */
  function advance(start) {
    if (st.pos < st.items.length) {
      show(start);
      return;
    }
    refill()
      .then((added) => added || refill({ fromStart: true }))
      .then(() => {
        if (st.destroyed) return;
        if (st.pos >= st.items.length) st.pos = Math.max(0, st.items.length - 1);
        show(start);
      });
  }

  function move(delta) {
    const next = st.pos + delta;
    if (next < 0) return;
    if (next >= st.items.length) {
      refill().then((added) => {
        if (added && st.pos + delta < st.items.length) move(delta);
      });
      return;
    }
    st.pos = next;
    st.showClip = false;
    closeOverlay();
    hidePrompt();
    show();
  }

  // ---------------------------------------------------------------- verdicts
  function enqueue(fn) {
    const p = st.chain.then(fn);
    st.chain = p.catch(() => {});
    return p;
  }

  function verdict(kind, extra, start) {
    const item = current();
    if (!reviewer || !item) return;
    st.items.splice(st.pos, 1);
    st.decided.add(item.id);
    const body = { verdict: kind, ...extra };
    const entry = { item, kind, body, ok: undefined };
    entry.done = enqueue(() => api(`/review/${item.id}`, { method: "POST", body })).then(
      (res) => {
        entry.ok = true;
        entry.result = res;
        if (start !== undefined) {
          window.__reviewSaveTimings.push(Math.round((performance.now() - start) * 10) / 10);
          if (window.__reviewSaveTimings.length > 5000) window.__reviewSaveTimings.shift();
        }
      },
      (err) => {
        entry.ok = false;
        verdictFailed(entry, err);
      },
    );
    st.undo.push(entry);
    if (st.undo.length > 50) st.undo.shift();
    st.showClip = false;
    st.mode = null;
    const name = kind === "relabel" ? problemName(extra.problem_code) : "";
    lastLine.textContent = `${t(`review.done.${kind}`, { id: item.id, name })} · ${t("review.undoHint")}`;
    advance(start);
  }

  function verdictFailed(entry, err) {
    const i = st.undo.indexOf(entry);
    if (i >= 0) st.undo.splice(i, 1);
    if (err.status === 401 || st.destroyed) return; // the login screen takes over
    if (err.status === 409) {
      toast(t("review.taken", { id: entry.item.id }), "warn");
      return;
    }
    st.decided.delete(entry.item.id);
    st.items.splice(Math.min(st.pos, st.items.length), 0, entry.item); // back in front of the operator
    toast(t("review.saveFailed", { id: entry.item.id, msg: errorText(err) }), "error", 8000);
    show();
  }

  async function undo() {
    if (!reviewer) return;
    const entry = st.undo.pop();
    if (!entry) {
      lastLine.textContent = t("review.nothingToUndo");
      return;
    }
    await entry.done;
    if (entry.ok === false) return; // never saved: it is already back in the queue
    try {
      await enqueue(() => api(`/review/${entry.item.id}/undo`, { method: "POST" }));
    } catch (err) {
      if (err.status !== 401) {
        const msg = t("review.undoFailed", { id: entry.item.id, msg: errorText(err) });
        lastLine.textContent = msg;
        toast(msg, "error", 8000);
      }
      return;
    }
    if (st.destroyed) return;
    st.decided.delete(entry.item.id);
    const at = st.items.findIndex((i) => i.id === entry.item.id);
    if (at >= 0) st.pos = at;
    else {
      st.pos = Math.min(st.pos, st.items.length);
      st.items.splice(st.pos, 0, { ...entry.item, review_state: "pending" });
    }
    st.showClip = false;
    closeOverlay();
    hidePrompt();
    lastLine.textContent = t("review.undone", { id: entry.item.id });
    show();
  }

  // ---------------------------------------------------------------- reject reason
  function openReject() {
    if (!reviewer || !current()) return;
    closeOverlay();
    st.mode = "reject";
    reasonInput.value = "";
    prompt.hidden = false;
    reasonInput.focus();
  }

  function hidePrompt() {
    if (prompt.hidden) return;
    prompt.hidden = true;
    if (st.mode === "reject") st.mode = null;
    if (document.activeElement === reasonInput) heading.focus({ preventScroll: true });
  }

  function finishReject(note, start) {
    hidePrompt();
    verdict("reject", note ? { note } : {}, start);
  }

  // ---------------------------------------------------------------- overlays: relabel, help
  function closeOverlay() {
    if (overlay.hidden) return;
    overlay.hidden = true;
    fill(overlay);
    if (st.mode === "relabel" || st.mode === "help") st.mode = null;
  }

  function relabelOptions(item) {
    const watched = new Set(cameraById(item.camera_id)?.problems || []);
    // the camera's own problems first, then the taxonomy's order (related types sit together there)
    return (app.taxonomy || [])
      .filter((p) => p.code !== item.problem_code)
      .map((p, i) => ({ p, i }))
      .sort((a, b) => Number(watched.has(b.p.code)) - Number(watched.has(a.p.code)) || a.i - b.i)
      .map(({ p }) => p);
  }

  function openRelabel() {
    const item = current();
    if (!reviewer || !item) return;
    hidePrompt();
    if (!app.taxonomy) {
      loadTaxonomy().then(
        () => {
          if (current() === item && !st.mode) openRelabel();
        },
        () => toast(t("review.noTaxonomy"), "error"),
      );
      return;
    }
    st.mode = "relabel";
    st.relabelPage = 0;
    renderRelabel();
  }

  function renderRelabel() {
    const item = current();
    if (!item) return closeOverlay();
    const opts = relabelOptions(item);
    const pages = Math.max(1, Math.ceil(opts.length / 9));
    st.relabelPage %= pages;
    const page = opts.slice(st.relabelPage * 9, st.relabelPage * 9 + 9);
    fill(overlay,
      h(
        "div",
        { class: "overlay-box relabel-box", role: "dialog", "aria-labelledby": "relabel-title" },
        h("h2", { id: "relabel-title" }, t("review.relabelTitle")),
        h(
          "p",
          { class: "muted small" },
          `${t("review.current")}：${item.problem_code} ${problemName(item.problem_code, item.problem_name)}`,
        ),
        h(
          "ol",
          { class: "choices" },
          page.map((p, i) =>
            h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "choice",
                  dataset: { code: p.code, key: String(i + 1) },
                  onclick: (e) => pickRelabel(p.code, e.timeStamp),
                },
                h("kbd", {}, String(i + 1)),
                h("span", { class: "choice-name" }, problemName(p.code, p.name_zh)),
                h("span", { class: "choice-code" }, p.code),
              ),
            ),
          ),
        ),
        h(
          "p",
          { class: "hint" },
          pages > 1 ? `${t("review.relabelMore", { p: st.relabelPage + 1, n: pages })} · ` : "",
          t("review.relabelCancel"),
        ),
      ),
    );
    overlay.hidden = false;
  }

  function pickRelabel(code, start) {
    closeOverlay();
    verdict("relabel", { problem_code: code }, start);
  }

  function openHelp() {
    hidePrompt();
    const rows = [
      ["J", "help.j"],
      ["K", "help.k"],
      ...(reviewer
        ? [
            ["Y", "help.y"],
            ["N", "help.n"],
            ["R", "help.r"],
            ["U", "help.u"],
          ]
        : []),
      ["V", "help.v"],
      ["?", "help.q"],
      ["Esc", "help.esc"],
    ];
    fill(overlay,
      h(
        "div",
        { class: "overlay-box help-box", role: "dialog", "aria-labelledby": "help-title" },
        h("h2", { id: "help-title" }, t("help.title")),
        h("dl", { class: "key-help" }, rows.map(([k, d]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, t(d))])),
      ),
    );
    overlay.hidden = false;
    st.mode = "help";
  }

  // ---------------------------------------------------------------- clip
  function toggleClip() {
    const item = current();
    if (!item) return;
    const url = evidenceUrl(item, "clip");
    if (!url) {
      lastLine.textContent = t("review.noClip");
      return;
    }
    st.showClip = !st.showClip;
    stopVideo();
    fill(stage, st.showClip ? clipFor(item, url) : imageFor(item));
    paintStatic();
  }

  // ---------------------------------------------------------------- life cycle
  document.addEventListener("keydown", onKey);
  const poll = setInterval(() => {
    if (!current() && !st.fetching) refill({ fromStart: true }).then((n) => n && show());
  }, QUEUE_POLL_MS);
  paintStatic();
  refill({ fromStart: true }).then(() => show());
  loadCameras()
    .then(() => {
      if (current() && !st.destroyed) renderFacts(current());
    })
    .catch(() => {});

  return {
    el,
    title: t("review.title"),
    destroy() {
      st.destroyed = true;
      document.removeEventListener("keydown", onKey);
      clearInterval(poll);
      stopVideo();
    },
    retranslate() {
      paintStatic();
      if (st.mode === "relabel") renderRelabel();
      else if (st.mode === "help") openHelp();
      if (current()) {
        renderFacts(current());
        updateQueueInfo();
        const media = stage.firstElementChild;
        if (media instanceof HTMLImageElement) imageFor(current());
      }
    },
  };
}

// ================================================================== cameras

const BAD_STATES = new Set(["stalled", "failed"]);

function camerasView(query) {
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
        hasFrame: false,
      };
      k.li.append(
        k.frame,
        h("div", { class: "camera-meta" }, h("h2", { class: "camera-title" }, k.name, k.badge), k.place, k.age, k.rates, k.error),
      );
      cards.set(c.id, k);
    }
    k.cam = c;
    const state = c.state || "unknown";
    k.li.dataset.state = state;
    k.name.textContent = c.name || c.id;
    k.name.href = `#/incidents?camera=${encodeURIComponent(c.id)}`;
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
      fill(k.frame, img);
    };
    img.src = `${API}/cameras/${encodeURIComponent(k.cam.id)}/frame.jpg?t=${Date.now()}`;
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

// ================================================================== incidents

const INCIDENT_STATES = ["active", "open", "present", "cleared", "recurred"];
const REVIEW_STATES = ["pending", "confirmed", "rejected", "relabelled", "auto"];
const FILTER_KEYS = ["state", "problem", "camera", "street", "review"];

function incidentsView(query) {
  const f = {
    state: query.get("state") || "",
    problem: query.get("problem") || "",
    camera: query.get("camera") || "",
    street: query.get("street") || "",
    review: query.get("review") || "",
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

  async function load() {
    const [tax, cams] = await Promise.all([loadTaxonomy().catch(() => []), loadCameras().catch(() => [])]);
    const p = new URLSearchParams();
    for (const k of FILTER_KEYS) if (f[k]) p.set(k, f[k]);
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

function incidentView(id) {
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

// ================================================================== cases

function caseView(id) {
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

function statsView(query) {
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

// ================================================================== boot

function boot() {
  applyDocumentLang();
  updateShell();
  document.getElementById("lang-toggle").addEventListener("click", () => setLang(getLang() === "zh" ? "en" : "zh"));
  document.getElementById("logout").addEventListener("click", logout);
  document.getElementById("skip-link").addEventListener("click", () => document.getElementById("main").focus());
  window.addEventListener("hashchange", route);
  onLangChange(() => {
    updateShell();
    if (!app.user) showLogin();
    else if (app.view?.retranslate) app.view.retranslate();
    else route();
  });
  api("/auth/me", { auth: false }).then(signedIn, (err) => {
    if (err.status === 401) showLogin();
    else mount(messageView(t("common.error", { msg: errorText(err) }), () => location.reload()), null);
  });
}

boot();
