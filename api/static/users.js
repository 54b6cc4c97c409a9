// The admins' page: console users (add, disable, enable, reset a password) and machine tokens
// (list, revoke). Every change is made and audited by the server (api/users.py); a generated
// password is shown once, here, and never again.

import { label, t } from "./i18n.js";
import { api, errorText, fill, h, loadingSection, pill, showError, table, timeEl, toast } from "./shared.js";

const ROLES = ["viewer", "operator", "trainer", "admin"];

export function usersView() {
  const el = loadingSection("users", t("users.title"));
  // the one-time password of the last add or reset; kept across re-renders of the lists
  const notice = h("p", { class: "secret-notice", role: "status", id: "users-secret" });
  notice.hidden = true;

  function showSecret(username, password) {
    notice.textContent = t("users.secret", { name: username, password });
    notice.hidden = false;
  }

  async function act(path, body, done) {
    try {
      const answer = await api(path, { method: "POST", body: body ?? {} });
      done(answer);
      await load();
    } catch (err) {
      if (err.status !== 401) toast(t("common.error", { msg: errorText(err) }), "error", 8000);
    }
  }

  function userRow(u) {
    const name = encodeURIComponent(u.username);
    const toggle = u.disabled
      ? h("button", { type: "button", class: "btn", onclick: () => act(`/users/${name}/enable`, null, () => toast(t("users.enabled", { name: u.username }))) }, t("users.enable"))
      : h("button", { type: "button", class: "btn btn-reject", onclick: () => act(`/users/${name}/disable`, null, () => toast(t("users.disabled", { name: u.username }))) }, t("users.disable"));
    const reset = h(
      "button",
      { type: "button", class: "btn", onclick: () => act(`/users/${name}/password`, {}, (a) => showSecret(u.username, a.password)) },
      t("users.reset"),
    );
    return h(
      "tr",
      { dataset: { user: u.username } },
      h("td", {}, u.username),
      h("td", {}, label("role", u.role)),
      h("td", {}, u.disabled ? pill(t("users.state.disabled"), "acct-off") : pill(t("users.state.active"), "acct-active")),
      h("td", {}, timeEl(u.created_at)),
      h("td", { class: "actions" }, toggle, " ", reset),
    );
  }

  function tokenRow(tk) {
    const revoke = tk.revoked
      ? null
      : h(
          "button",
          { type: "button", class: "btn btn-reject", onclick: () => act(`/tokens/${encodeURIComponent(tk.name)}/revoke`, null, () => toast(t("users.revoked", { name: tk.name }))) },
          t("users.revoke"),
        );
    return h(
      "tr",
      { dataset: { token: tk.name } },
      h("td", {}, tk.name),
      h("td", {}, label("role", tk.role)),
      h("td", {}, tk.revoked ? pill(t("users.state.revoked"), "acct-off") : pill(t("users.state.active"), "acct-active")),
      h("td", {}, timeEl(tk.created_at)),
      h("td", {}, tk.last_used_at ? timeEl(tk.last_used_at) : t("common.none")),
      h("td", { class: "actions" }, revoke),
    );
  }

  function addForm() {
    const user = h("input", { id: "new-user", name: "username", autocomplete: "off", required: true, maxlength: "64", pattern: "[A-Za-z0-9_.@\\-]{1,64}" });
    const role = h("select", { id: "new-role", name: "role" }, ROLES.map((r) => h("option", { value: r, selected: r === "operator" }, label("role", r))));
    const submit = h("button", { type: "submit", class: "btn btn-primary" }, t("users.add"));
    const form = h(
      "form",
      { class: "users-add" },
      h("label", { for: "new-user" }, t("users.username")),
      user,
      h("label", { for: "new-role" }, t("users.role")),
      role,
      submit,
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const username = user.value.trim();
      submit.disabled = true;
      act("/users", { username, role: role.value }, (a) => showSecret(a.user.username, a.password)).finally(() => {
        submit.disabled = false;
      });
    });
    return form;
  }

  async function load() {
    const [users, tokens] = await Promise.all([api("/users"), api("/tokens")]);
    fill(
      el,
      h("h1", {}, t("users.title")),
      notice,
      h("h2", {}, t("users.users")),
      table([t("users.username"), t("users.role"), t("users.state"), t("users.created"), t("users.actions")], users.map(userRow), "users-table"),
      h("h3", {}, t("users.addTitle")),
      addForm(),
      h("h2", {}, t("users.tokens")),
      h("p", { class: "muted" }, t("users.tokensHint")),
      tokens.length
        ? table([t("users.tokenName"), t("users.role"), t("users.state"), t("users.created"), t("users.lastUsed"), t("users.actions")], tokens.map(tokenRow), "tokens-table")
        : h("p", { class: "muted" }, t("common.empty")),
    );
  }

  const start = () => load().catch((err) => showError(el, err, start));
  start();
  return { el, title: t("users.title"), retranslate: start };
}
