// 奖励核定表: the statement of one incubator's line of a payout run, laid
// out as an A4 sheet that prints as it looks (print.css hides the rest of
// the page): the share and the veto, every graduate and its reason, the
// amounts in figures and in words, the policy version and who computed,
// reviewed and approved it and when, and places to sign.

import { get } from "../api.js";
import { h } from "../dom.js";
import { t, tv } from "../i18n.js";
import { int, pct, period, when, yesNo, yuan, yuanInWords } from "../format.js";
import { empty, loading, runBadge } from "../ui.js";
import { incubatorNames } from "./payouts.js";

export async function render(root, { params }) {
  const [p, code] = params;
  root.append(loading());
  const [run, names, policy] = await Promise.all([
    get(`/v1/payout-runs/${p}`), incubatorNames(), get(`/v1/policy?period=${p}`)]);
  const line = run.lines.find((l) => l.incubator === code);
  const inc = names[code];
  if (!line || !inc) {
    root.replaceChildren(empty(t("statement.no_line", { code, period: period(p) })));
    return;
  }
  const approved = run.status === "approved";
  const row = (label, value, cls) => h("tr", {}, h("th", { scope: "row" }, label), h("td", { class: cls }, value));
  const sheet = h("article", { class: ["sheet", !approved && "draft"], id: "statement", "data-status": run.status },
    approved ? null : h("div", { class: "watermark", "aria-hidden": "true" }, t("statement.draft_mark")),
    h("header", { class: "sheet-head" },
      h("p", { class: "issuer" }, t("statement.issuer")),
      h("h1", {}, t("statement.title")),
      h("p", { class: "sheet-sub" }, t("statement.period", { period: period(p) }), " · ", t("statement.status"), " ", runBadge(run),
        " · ", t("statement.policy", { version: run.policy_version }))),
    h("table", { class: "sheet-table" },
      h("tbody", {},
        row(t("statement.incubator"), `${inc.name}（${inc.code}）`),
        row(t("col.district"), inc.district),
        row(t("statement.level_kind"), `${tv("level", inc.level)} · ${tv("kind", inc.kind)}`))),
    h("h2", {}, t("statement.s1")),
    h("table", { class: "sheet-table" },
      h("tbody", {},
        row(t("statement.share_average"), pct(line.share_average), "num"),
        row(t("statement.threshold"), pct(policy.veto_threshold), "num"),
        row(t("statement.days_with_data"), line.days_with_data === undefined ? "—" : int(line.days_with_data), "num"),
        row(t("statement.veto"), line.vetoed ? `✖ ${t("statement.vetoed")}（${tv("line_reason", line.reason)}）` : `✔ ${t("statement.not_vetoed")}`))),
    h("h2", {}, t("statement.s2")),
    line.graduates.length === 0 ? h("p", {}, t("payouts.no_graduates")) : h("table", { class: "sheet-table grid" },
      h("thead", {}, h("tr", {}, [t("col.external_id"), t("statement.credit_code"), t("statement.graduated_on"), t("payouts.high_tech"), t("statement.counted"), t("col.reason")].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, line.graduates.map((g) => h("tr", {},
        h("td", { class: "code" }, g.external_id), h("td", { class: "code" }, g.credit_code), h("td", {}, g.graduated_on || "—"),
        h("td", {}, yesNo(g.high_tech)), h("td", {}, g.eligible ? `✔ ${yesNo(true)}` : `✖ ${yesNo(false)}`),
        h("td", {}, g.eligible ? "—" : tv("graduate_reason", g.reason)))))),
    h("h2", {}, t("statement.s3")),
    h("table", { class: "sheet-table" },
      h("tbody", {},
        row(t("col.eligible_graduates"), int(line.eligible_graduates), "num"),
        row(t("statement.base"), yuan(line.base_fen), "num"),
        row(t("statement.cap_remaining"), yuan(line.cap_remaining_fen), "num"),
        (line.adjustments || []).map((a) => row(`${tv("adjustment", a.kind)} ${a.for_period || ""} ${a.external_id || ""}`, yuan(a.amount_fen), "num")),
        row(t("statement.amount"), h("strong", {}, yuan(line.amount_fen)), "num"),
        row(t("statement.amount_words"), yuanInWords(line.amount_fen)),
        line.reason ? row(t("col.reason"), tv("line_reason", line.reason)) : null)),
    h("h2", {}, t("statement.s4")),
    h("table", { class: "sheet-table grid" },
      h("thead", {}, h("tr", {}, [t("statement.step"), t("statement.by"), t("statement.at"), t("statement.signature")].map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {},
        h("tr", {}, h("td", {}, t("statement.computed")), h("td", {}, run.computed_by || "—"), h("td", {}, when(run.computed_at)), h("td", { class: "sign" })),
        h("tr", {}, h("td", {}, t("statement.reviewed")), h("td", {}, run.reviewed_by || "—"), h("td", {}, when(run.reviewed_at)), h("td", { class: "sign" })),
        h("tr", {}, h("td", {}, t("statement.approved")), h("td", {}, run.approved_by || "—"), h("td", {}, when(run.approved_at)), h("td", { class: "sign" })))),
    run.review_note ? h("p", { class: "small" }, t("statement.review_note"), " ", run.review_note) : null,
    h("footer", { class: "sheet-foot" },
      h("p", {}, t("statement.footer", { at: when(new Date().toISOString()) })),
      h("p", { class: "stamp" }, t("statement.stamp"))));
  root.replaceChildren(
    h("div", { class: "no-print sheet-tools" },
      h("a", { href: `#/payouts/${p}` }, t("payouts.back_run")),
      h("button", { type: "button", class: "primary", id: "print", onclick: () => window.print() }, t("statement.print")),
      h("span", { class: "hint" }, t("statement.print_hint"))),
    sheet);
}
