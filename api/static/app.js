// GridSight console: review queue, camera wall, incidents and cases, statistics.
// Plain ES modules, no build step, nothing from outside this server. Server data is
// only ever put into the page with textContent / DOM nodes (never innerHTML), and no
// inline script or style is used, so a CSP of default-src 'self' holds.

import { applyDocumentLang, getLang, label, onLangChange, setLang, t, translateStatic } from "./i18n.js";
import {
  api,
  app,
  canAdmin,
  canReview,
  errorText,
  fill,
  focusHeading,
  loadCameras,
  loadTaxonomy,
  messageView,
} from "./shared.js";
import { loginView } from "./login.js";
import { reviewView } from "./review.js";
import { camerasView } from "./cameras.js";
import { incidentView, incidentsView } from "./incidents.js";
import { caseView, casesView } from "./cases.js";
import { cameraView } from "./camera.js";
import { bulkView } from "./bulk.js";
import { statsView } from "./statistics.js";
import { zonesView } from "./zones.js";
import { usersView } from "./users.js";

// ================================================================== shell, session, router

function updateShell() {
  translateStatic();
  document.getElementById("lang-toggle").textContent = t("header.otherLang");
  const who = document.getElementById("whoami");
  who.textContent = app.user ? t("header.user", { name: app.user.username, role: label("role", app.user.role) }) : "";
  document.getElementById("nav-users").hidden = !(app.user && canAdmin());
}

function showLogin(message) {
  app.user = null;
  document.getElementById("topbar").hidden = true;
  document.body.classList.add("anonymous");
  const view = loginView(message, signedIn);
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
  { re: /^\/review\/bulk$/, nav: "review", view: () => bulkView() },
  { re: /^\/cameras$/, nav: "cameras", view: (m, q) => camerasView(q) },
  { re: /^\/cameras\/([A-Za-z0-9_-]{1,64})\/zones$/, nav: "cameras", view: (m) => zonesView(m[1]) },
  { re: /^\/incidents$/, nav: "incidents", view: (m, q) => incidentsView(q) },
  { re: /^\/incidents\/(\d+)$/, nav: "incidents", view: (m) => incidentView(Number(m[1])) },
  { re: /^\/cameras\/([A-Za-z0-9_-]{1,64})$/, nav: "cameras", view: (m) => cameraView(m[1]) },
  { re: /^\/cases$/, nav: "cases", view: (m, q) => casesView(q) },
  { re: /^\/cases\/(\d+)$/, nav: "cases", view: (m) => caseView(Number(m[1])) },
  { re: /^\/stats$/, nav: "stats", view: (m, q) => statsView(q) },
  // the server refuses the API to others anyway; the page says so instead of failing
  { re: /^\/users$/, nav: "users", view: () => (canAdmin() ? usersView() : messageView(t("common.forbidden"))) },
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

// ================================================================== boot

function boot() {
  app.onSessionExpired = sessionExpired;
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
