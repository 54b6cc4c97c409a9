// The login page.

import { label, t } from "./i18n.js";
import { api, app, errorText, h, s } from "./shared.js";

// ================================================================== login

/** The login form; `onSignedIn(me)` takes over once the server accepted the password. */
export function loginView(message, onSignedIn) {
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
      onSignedIn(me && me.role ? me : await api("/auth/me", { auth: false }));
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

