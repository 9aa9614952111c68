// The console: a router over URL fragments (#/overview, #/incubators/HRB-001,
// ...), the header, and the session. Each view renders into a fresh
// element, so a view still loading when the person moves on writes into
// nothing.

import { setUnauthorizedHandler } from "./api.js";
import { h } from "./dom.js";
import { lang, setLang, t } from "./i18n.js";
import { session } from "./session.js";
import { errorBox } from "./ui.js";
import * as signin from "./views/signin.js";
import * as overview from "./views/overview.js";
import * as incubator from "./views/incubator.js";
import * as alerts from "./views/alerts.js";
import * as payouts from "./views/payouts.js";
import * as statement from "./views/statement.js";
import * as plan from "./views/plan.js";

// [pattern, view, admin only]
const ROUTES = [
  [/^overview$/, overview, true],
  [/^incubators\/([A-Za-z0-9][A-Za-z0-9._-]{0,31})$/, incubator, false],
  [/^alerts$/, alerts, false],
  [/^payouts$/, payouts, true],
  [/^payouts\/(\d{4}-\d{2})$/, payouts, true],
  [/^payouts\/(\d{4}-\d{2})\/statement\/([A-Za-z0-9][A-Za-z0-9._-]{0,31})$/, statement, true],
  [/^plan$/, plan, true],
];

export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  return { path: decodeURIComponent(path || ""), query: new URLSearchParams(query || "") };
}

export function go(path, query) {
  const q = query && [...query.keys()].length ? `?${query}` : "";
  location.hash = `#/${path}${q}`;
}

// Changes the fragment's query without a new render (filters, sort).
export function setQuery(query) {
  const { path } = parseHash();
  const q = [...query.keys()].length ? `?${query}` : "";
  history.replaceState(null, "", `#/${path}${q}`);
}

function home() {
  const scope = session.scope();
  return scope && !scope.admin ? `incubators/${scope.incubator}` : "overview";
}

function navLink(path, label, active) {
  return h("a", { href: `#/${path}`, class: active ? "active" : null, "aria-current": active ? "page" : null, "data-nav": path }, label);
}

function renderHeader(route) {
  const scope = session.scope();
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  document.getElementById("brand-name").textContent = t("app.name");
  document.title = t("app.name");
  const top = route.path.split("/")[0];
  if (!session.token() || !scope) {
    nav.replaceChildren();
  } else if (scope.admin) {
    nav.replaceChildren(
      navLink("overview", t("nav.overview"), top === "overview" || top === "incubators"),
      navLink("alerts", t("nav.alerts"), top === "alerts"),
      navLink("payouts", t("nav.payouts"), top === "payouts"),
      navLink("plan", t("nav.plan"), top === "plan"));
  } else {
    nav.replaceChildren(
      navLink(`incubators/${scope.incubator}`, t("nav.incubator"), top === "incubators"),
      navLink("alerts", t("nav.alerts"), top === "alerts"));
  }
  const langButton = h("button", {
    type: "button", class: "link", id: "lang-switch", lang: lang() === "zh" ? "en" : "zh-CN",
    onclick: () => { setLang(lang() === "zh" ? "en" : "zh"); render(); },
  }, t("app.switch_language"));
  if (session.token() && scope) {
    who.replaceChildren(
      h("span", { class: "scope", id: "who-scope" }, scope.admin ? t("app.signed_in_admin") : t("app.signed_in_incubator", { code: scope.incubator })),
      langButton,
      h("button", { type: "button", class: "link", id: "sign-out", onclick: signOut }, t("app.sign_out")));
  } else {
    who.replaceChildren(langButton);
  }
}

function signOut() {
  session.signOut("signin.signed_out");
  go("signin");
}

let generation = 0;

export async function render() {
  const gen = ++generation;
  const route = parseHash();
  const main = document.getElementById("main");
  const view = h("div", { class: "view" });
  if (!session.token() || !session.scope()) {
    if (route.path !== "signin") {
      go("signin");
      return;
    }
  } else if (route.path === "" || route.path === "signin") {
    go(home());
    return;
  }
  renderHeader(route);
  main.replaceChildren(view);
  if (route.path === "signin") {
    await signin.render(view, { route, done: () => go(home()) });
    return;
  }
  const scope = session.scope();
  for (const [re, mod, adminOnly] of ROUTES) {
    const m = route.path.match(re);
    if (!m) continue;
    if (adminOnly && !scope.admin) {
      view.append(errorBox({ status: 403, problem: { detail: t("error.admin_only") } }));
      return;
    }
    if (!scope.admin && mod === incubator && m[1] !== scope.incubator) {
      view.append(errorBox({ status: 403, problem: { detail: t("error.own_incubator_only", { code: scope.incubator }) } }));
      return;
    }
    try {
      await mod.render(view, { route, params: m.slice(1), scope, isCurrent: () => gen === generation });
    } catch (err) {
      if (gen === generation && err.status !== 401) {
        console.warn("view failed", err);
        view.replaceChildren(errorBox(err));
      }
    }
    main.focus({ preventScroll: true });
    return;
  }
  view.append(errorBox({ status: 404, problem: { detail: t("error.no_such_page") } }));
}

setUnauthorizedHandler(() => {
  session.signOut("signin.expired");
  go("signin");
});

setLang(lang());
window.addEventListener("hashchange", render);
render();
