// 计划: each target of the city's plan (科技创业三年行动计划) with its progress.

import { get } from "../api.js";
import { go } from "../app.js";
import { h, s } from "../dom.js";
import { has, t } from "../i18n.js";
import { int, today } from "../format.js";
import { empty, loading, pageHeader } from "../ui.js";

function bar(actual, target) {
  const w = 240;
  const f = target > 0 ? Math.min(1, actual / target) : 1;
  return s("svg", { class: "progress", viewBox: `0 0 ${w} 14`, width: w, height: 14, "aria-hidden": "true" },
    s("rect", { class: "progress-bg", x: 0, y: 0, width: w, height: 14, rx: 3 }),
    s("rect", { class: ["progress-fill", actual >= target ? "met" : "unmet"].join(" "), x: 0, y: 0, width: f * w, height: 14, rx: 3 }));
}

export async function render(root, { route }) {
  const asOf = route.query.get("as_of") || "";
  root.append(pageHeader(t("plan.title")), loading());
  const plan = await get(`/v1/reports/plan-progress${asOf ? `?as_of=${asOf}` : ""}`);
  const form = h("form", { class: "inline-form", id: "plan-form" },
    h("label", { for: "plan-as-of" }, t("plan.as_of"), h("input", { type: "date", id: "plan-as-of", value: plan.as_of, max: today() })),
    h("button", { type: "submit", class: "secondary" }, t("range.apply")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    go("plan", new URLSearchParams({ as_of: form.querySelector("#plan-as-of").value }));
  });
  const met = plan.items.filter((i) => i.met).length;
  const list = plan.items.length === 0 ? empty(t("plan.empty")) : h("div", { class: "table-wrap" }, h("table", { class: "data plan" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("plan.target_name")), h("th", { scope: "col", class: "num" }, t("plan.actual")),
      h("th", { scope: "col", class: "num" }, t("plan.target")), h("th", { scope: "col", class: "num" }, t("plan.progress")), h("th", { scope: "col" }), h("th", { scope: "col" }, t("col.status")))),
    h("tbody", {}, plan.items.map((i) => h("tr", { "data-key": i.key, "data-met": String(i.met) },
      h("td", { class: "name" }, has(`plan.key.${i.key}`) ? t(`plan.key.${i.key}`) : i.description),
      h("td", { class: "num" }, int(i.actual)),
      h("td", { class: "num" }, int(i.target)),
      h("td", { class: "num" }, i.target > 0 ? `${Math.floor((i.actual * 100) / i.target)}%` : "—"),
      h("td", {}, bar(i.actual, i.target)),
      h("td", {}, h("span", { class: ["badge", i.met ? "st-ok" : "st-warning"] }, i.met ? `✔ ${t("plan.met")}` : `… ${t("plan.not_met")}`)))))));
  root.replaceChildren(
    pageHeader(t("plan.title"), h("p", { class: "subtitle" }, t("plan.window", { from: plan.from, to: plan.to, as_of: plan.as_of, met, n: plan.items.length }))),
    form, list);
}
