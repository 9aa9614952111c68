// Signing in with a token. An admin token sees the city; an incubator
// token, which the API cannot be asked to name, is confirmed against the
// incubator code the person types. The person says which kind of token it
// is, so that signing in as intended asks the API nothing it will refuse.

import { get } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { session } from "../session.js";
import { errorText } from "../ui.js";

const CODE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;

// What a token may do: {admin: true}, {admin: false, incubator}, or an error key.
async function scopeOf(token, kind, code) {
  if (kind === "admin") {
    try {
      await get("/v1/incubators?limit=1", { token });
      return { admin: true };
    } catch (err) {
      if (err.status === 401) return { error: "signin.bad_token" };
      if (err.status === 403) return { error: "signin.not_admin" };
      return { error: null, err };
    }
  }
  if (!code) return { error: "signin.need_code" };
  if (!CODE.test(code)) return { error: "signin.bad_code" };
  try {
    await get(`/v1/incubators/${encodeURIComponent(code)}`, { token });
    return { admin: false, incubator: code };
  } catch (err) {
    if (err.status === 401) return { error: "signin.bad_token" };
    if (err.status === 403) return { error: "signin.wrong_code" };
    if (err.status === 404) return { error: "signin.bad_code" };
    return { error: null, err };
  }
}

export async function render(root, { done }) {
  const flash = session.takeFlash();
  const message = h("p", { class: "form-message", id: "signin-message", role: "alert" }, flash ? t(flash) : "");
  if (flash === "signin.expired") message.classList.add("warn");
  const token = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", required: true, spellcheck: "false", autocapitalize: "off" });
  const code = h("input", { type: "text", id: "code", name: "code", autocomplete: "off", spellcheck: "false", autocapitalize: "off", placeholder: "HRB-001" });
  const kindAdmin = h("input", { type: "radio", name: "kind", id: "kind-admin", value: "admin", checked: true });
  const kindIncubator = h("input", { type: "radio", name: "kind", id: "kind-incubator", value: "incubator" });
  const codeLabel = h("label", { for: "code", class: "block hidden", id: "code-label" }, t("signin.code"), h("span", { class: "hint" }, t("signin.code_hint")), code);
  for (const r of [kindAdmin, kindIncubator]) {
    r.addEventListener("change", () => codeLabel.classList.toggle("hidden", !kindIncubator.checked));
  }
  const button = h("button", { type: "submit", class: "primary", id: "signin-submit" }, t("signin.submit"));
  const form = h("form", { class: "signin", id: "signin-form", novalidate: true },
    h("h1", {}, t("signin.title")),
    h("p", { class: "hint" }, t("signin.intro")),
    h("label", { for: "token", class: "block" }, t("signin.token"), token),
    h("fieldset", { class: "kind" }, h("legend", {}, t("signin.kind")),
      h("label", { for: "kind-admin", class: "inline" }, kindAdmin, " ", t("signin.kind_admin")),
      h("label", { for: "kind-incubator", class: "inline" }, kindIncubator, " ", t("signin.kind_incubator"))),
    codeLabel,
    message,
    button,
    h("p", { class: "hint small" }, t("signin.storage")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const tok = token.value.trim();
    if (!tok) {
      message.textContent = t("signin.empty");
      token.focus();
      return;
    }
    button.disabled = true;
    message.textContent = t("signin.checking");
    message.classList.remove("warn");
    const scope = await scopeOf(tok, kindIncubator.checked ? "incubator" : "admin", code.value.trim());
    button.disabled = false;
    if (scope.error !== undefined) {
      message.textContent = scope.error ? t(scope.error) : errorText(scope.err);
      message.classList.add("warn");
      return;
    }
    session.signIn(tok, scope);
    token.value = "";
    done();
  });
  root.append(h("div", { class: "signin-wrap" }, form));
  token.focus();
}
