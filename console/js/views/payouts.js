// 奖励: the payout runs; one run's lines with every reason (the line's and
// each graduate's); review and approval, each after a confirmation; the
// CSV for the finance office; and the printable statement per incubator.

import { call, get, getAll, post } from "../api.js";
import { go } from "../app.js";
import { h } from "../dom.js";
import { lang, t, tv } from "../i18n.js";
import { int, pct, period, when, yuan } from "../format.js";
import { confirmDialog, empty, errorText, loading, pageHeader, runBadge, section, sortableTable, statusBadge, toast } from "../ui.js";

let directory = null;

// Incubator names by code (lines carry only the code).
export async function incubatorNames() {
  if (!directory) {
    const list = await getAll("/v1/incubators");
    directory = Object.fromEntries(list.map((i) => [i.code, i]));
  }
  return directory;
}

export async function render(root, { params }) {
  if (params[0]) return renderRun(root, params[0]);
  root.append(pageHeader(t("payouts.title")), loading());
  const runs = await getAll("/v1/payout-runs", 240);
  const computeForm = h("form", { class: "inline-form", id: "compute-form" },
    h("label", { for: "compute-period" }, t("payouts.compute_period"), h("input", { type: "month", id: "compute-period", required: true })),
    h("button", { type: "submit", class: "secondary" }, t("payouts.compute")));
  computeForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const p = computeForm.querySelector("#compute-period").value;
    if (!/^\d{4}-\d{2}$/.test(p)) return;
    await act(() => post("/v1/payout-runs", { period: p }), {
      title: t("payouts.compute_title", { period: period(p) }), body: t("payouts.compute_body"), confirm: t("payouts.compute"),
    }, t("payouts.computed"), () => go(`payouts/${p}`));
  });
  const list = runs.length === 0 ? empty(t("payouts.no_runs")) : sortableTable({
    columns: [
      { key: "period", label: t("col.period"), cell: (r) => h("a", { href: `#/payouts/${r.period}` }, period(r.period)) },
      { key: "status", label: t("col.run_status"), cell: (r) => runBadge(r) },
      { key: "total", label: t("col.total_yuan"), num: true, cell: (r) => yuan(r.total_fen) },
      { key: "vetoed", label: t("col.vetoed_count"), num: true, cell: (r) => int((r.vetoed || []).length) },
      { key: "policy", label: t("col.policy_version"), num: true, cell: (r) => int(r.policy_version) },
      { key: "computed", label: t("col.computed"), cell: (r) => who(r.computed_by, r.computed_at) },
      { key: "reviewed", label: t("col.reviewed"), cell: (r) => who(r.reviewed_by, r.reviewed_at) },
      { key: "approved", label: t("col.approved"), cell: (r) => who(r.approved_by, r.approved_at) },
    ],
    rows: runs, state: {}, onSort: () => {}, rowAttrs: (r) => ({ "data-period": r.period }),
  });
  root.replaceChildren(pageHeader(t("payouts.title"), h("p", { class: "subtitle" }, t("payouts.subtitle"))),
    section(t("payouts.runs_title"), list), section(t("payouts.compute_title_short"), h("p", { class: "hint" }, t("payouts.compute_hint")), computeForm));
}

export function who(by, at) {
  if (!by && !at) return h("span", { class: "muted" }, "—");
  return h("span", { class: "who-cell" }, h("span", {}, by || "—"), h("span", { class: "muted small" }, when(at)));
}

// Runs an action after a confirmation; says what happened either way.
// The action's buttons are disabled, with a note, while it runs.
async function act(fn, dialog, done, after) {
  const ok = await confirmDialog(dialog);
  if (!ok) return;
  const buttons = [...document.querySelectorAll("#run-actions button, #compute-form button")];
  buttons.forEach((b) => { b.disabled = true; });
  const working = h("span", { class: "loading inline", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), " ", t("common.working"));
  (buttons[0] && buttons[0].parentElement ? buttons[0].parentElement : document.body).append(working);
  try {
    await fn(ok.values);
    toast(done);
    after();
  } catch (err) {
    if (err.status !== 401) toast(`${errorText(err)} ${err.problem && err.problem.detail ? err.problem.detail : ""}`, "error");
  } finally {
    working.remove();
    buttons.forEach((b) => { b.disabled = false; });
  }
}

async function downloadCsv(p) {
  // The token goes in a header, never in a link: fetch the file, then save
  // it. lang=zh heads the columns in Chinese (API.md, exports in Chinese).
  try {
    const zh = lang() === "zh";
    const blob = await call("GET", `/v1/payout-runs/${p}?lang=${zh ? "zh" : "en"}`, { accept: "text/csv", lang: zh ? "zh-CN" : "en" });
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: `payout-run-${p}.csv`, class: "hidden" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    toast(t("payouts.csv_saved", { file: `payout-run-${p}.csv` }));
  } catch (err) {
    if (err.status !== 401) toast(errorText(err), "error");
  }
}

async function renderRun(root, p) {
  root.append(pageHeader(period(p)), loading());
  const [run, names] = await Promise.all([get(`/v1/payout-runs/${p}`), incubatorNames()]);
  const reload = () => { root.replaceChildren(); renderRun(root, p).catch(() => {}); };
  const draft = run.status === "draft";
  const actions = h("div", { class: "actions", id: "run-actions" });
  if (draft) {
    if (!run.reviewed_by) {
      actions.append(h("button", {
        type: "button", class: "primary", id: "review",
        onclick: () => act((v) => post(`/v1/payout-runs/${p}/review`, { note: v.note }), {
          title: t("payouts.review_title", { period: period(p) }),
          body: [t("payouts.review_body", { total: yuan(run.total_fen), n: run.lines.length })],
          fields: [{ name: "note", label: t("payouts.review_note"), required: true, maxlength: 1000 }],
          confirm: t("payouts.review"),
        }, t("payouts.reviewed"), reload),
      }, t("payouts.review")));
    }
    actions.append(h("button", {
      type: "button", class: run.reviewed_by ? "primary" : "secondary", id: "approve",
      onclick: () => act(() => post(`/v1/payout-runs/${p}/approve`), {
        title: t("payouts.approve_title", { period: period(p) }),
        body: [t("payouts.approve_body", { total: yuan(run.total_fen) }), h("p", { class: "warn" }, t("payouts.approve_final"))],
        confirm: t("payouts.approve"), danger: true,
      }, t("payouts.approved"), reload),
    }, t("payouts.approve")));
    actions.append(h("button", {
      type: "button", class: "secondary", id: "recompute",
      onclick: () => act(() => post("/v1/payout-runs", { period: p }), {
        title: t("payouts.compute_title", { period: period(p) }), body: t("payouts.recompute_body"), confirm: t("payouts.recompute"),
      }, t("payouts.computed"), reload),
    }, t("payouts.recompute")));
  }
  actions.append(h("button", { type: "button", class: "secondary", id: "csv", onclick: () => downloadCsv(p) }, t("payouts.csv")));

  const facts = h("dl", { class: "facts", id: "run-facts" },
    h("dt", {}, t("col.run_status")), h("dd", {}, runBadge(run)),
    h("dt", {}, t("col.policy_version")), h("dd", {}, `v${run.policy_version}`),
    h("dt", {}, t("col.total_yuan")), h("dd", { class: "strong" }, yuan(run.total_fen)),
    h("dt", {}, t("col.computed")), h("dd", {}, who(run.computed_by, run.computed_at)),
    h("dt", {}, t("col.reviewed")), h("dd", {}, who(run.reviewed_by, run.reviewed_at), run.review_note ? h("span", { class: "ack-note" }, run.review_note) : null),
    h("dt", {}, t("col.approved")), h("dd", {}, who(run.approved_by, run.approved_at)));

  const state = { sort: "incubator", dir: "asc" };
  const linesBox = h("div", { id: "run-lines" });
  const columns = [
    { key: "incubator", label: t("col.incubator"), sort: (l) => l.incubator,
      cell: (l) => h("span", {}, h("a", { href: `#/incubators/${encodeURIComponent(l.incubator)}`, class: "code" }, l.incubator), h("br"), h("span", { class: "small" }, names[l.incubator] ? names[l.incubator].name : "")) },
    { key: "share", label: t("col.share_average"), num: true, sort: (l) => (l.share_average === null ? null : Number(l.share_average)), cell: (l) => pct(l.share_average) },
    { key: "vetoed", label: t("col.vetoed"), sort: (l) => (l.vetoed ? 0 : 1), cell: (l) => vetoBadge(l) },
    { key: "graduates", label: t("col.graduates"), className: "graduates", cell: (l) => graduatesList(l) },
    { key: "eligible", label: t("col.eligible_graduates"), num: true, sort: (l) => l.eligible_graduates, cell: (l) => int(l.eligible_graduates) },
    { key: "base", label: t("col.base_yuan"), num: true, sort: (l) => l.base_fen, cell: (l) => yuan(l.base_fen) },
    { key: "cap", label: t("col.cap_remaining_yuan"), num: true, cell: (l) => yuan(l.cap_remaining_fen) },
    { key: "adjustments", label: t("col.adjustments_yuan"), num: true,
      cell: (l) => ((l.adjustments || []).length ? adjustmentsList(l.adjustments) : h("span", { class: "muted" }, "—")) },
    { key: "amount", label: t("col.amount_yuan"), num: true, sort: (l) => l.amount_fen, cell: (l) => h("strong", {}, yuan(l.amount_fen)) },
    { key: "reason", label: t("col.reason"), sort: (l) => l.reason || "", cell: (l) => (l.reason ? tv("line_reason", l.reason) : h("span", { class: "muted" }, "—")) },
    { key: "statement", label: t("payouts.statement"), cell: (l) => h("a", { href: `#/payouts/${p}/statement/${encodeURIComponent(l.incubator)}`, "data-statement": l.incubator, class: "nowrap" }, t("payouts.statement_open")) },
  ];
  function draw() {
    linesBox.replaceChildren(run.lines.length ? sortableTable({
      columns, rows: run.lines, state, onSort: (k, d) => { state.sort = k; state.dir = d; draw(); },
      rowAttrs: (l) => ({ "data-code": l.incubator }),
      footer: h("tr", { class: "total" }, h("th", { scope: "row", colspan: 8 }, t("payouts.total")), h("td", { class: "num" }, h("strong", {}, yuan(run.total_fen))), h("td", { colspan: 2 })),
    }) : empty(t("payouts.no_lines")));
  }
  draw();
  root.replaceChildren(
    pageHeader(t("payouts.run_title", { period: period(p) }), h("p", { class: "subtitle" }, h("a", { href: "#/payouts" }, t("payouts.back")))),
    section(t("payouts.run_facts"), facts, actions),
    section(t("payouts.lines_title"), h("p", { class: "hint" }, t("payouts.lines_hint")), linesBox));
}

// A line's veto in words: vetoed for want of data is not a breach.
export function vetoBadge(l) {
  if (!l.vetoed) return statusBadge("ok");
  return statusBadge(l.reason === "no_data" ? "no_data" : "breach");
}

export function graduatesList(l) {
  if (!l.graduates.length) return h("span", { class: "muted" }, t("payouts.no_graduates"));
  return h("ul", { class: "graduates" }, l.graduates.map((g) => h("li", { class: g.eligible ? "eligible" : "ineligible" },
    h("span", { class: "mark", "aria-hidden": "true" }, g.eligible ? "✔" : "✖"), " ",
    h("span", { class: "code" }, g.external_id), g.high_tech ? h("span", { class: "tag" }, t("payouts.high_tech")) : null, " ",
    g.eligible ? t("payouts.eligible") : tv("graduate_reason", g.reason))));
}

export function adjustmentsList(adjs) {
  return h("ul", { class: "adjustments" }, adjs.map((a) => h("li", {},
    h("span", {}, tv("adjustment", a.kind), " ", a.for_period || "", " ", a.external_id || ""), " ",
    h("strong", {}, yuan(a.amount_fen)))));
}
