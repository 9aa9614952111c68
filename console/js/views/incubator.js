// 孵化器: one incubator: its daily share over a chosen range as a chart with
// the threshold and warning lines, its monthly averages (the figure that
// decides the monthly veto), its tenants, its alerts and its payout lines.

import { get, getAll, pooled } from "../api.js";
import { go } from "../app.js";
import { shareChart } from "../chart.js";
import { h } from "../dom.js";
import { t, tv } from "../i18n.js";
import { addDays, area, int, monthsBetween, pct, period, today, when, yesNo, yuan } from "../format.js";
import { empty, errorBox, loading, pageHeader, section, severityBadge, sortableTable, statusBadge } from "../ui.js";
import { ackButton, alertRule } from "./alerts.js";
import { vetoBadge } from "./payouts.js";

const RANGES = [90, 365, 1100];

export async function render(root, { route, params, scope }) {
  const code = params[0];
  const q = route.query;
  root.append(pageHeader(code), loading());
  const inc = await get(`/v1/incubators/${encodeURIComponent(code)}`);
  const to = q.get("to") || today();
  const days = RANGES.includes(Number(q.get("days"))) ? Number(q.get("days")) : 365;
  const from = q.get("from") || addDays(to, -(days - 1));

  const chartBox = h("div", { class: "chart-box", id: "share-chart" }, loading());
  const monthsBox = h("div", { id: "monthly" }, loading());
  const tenantsBox = h("div", { id: "tenants" }, loading());
  const alertsBox = h("div", { id: "incubator-alerts" }, loading());
  const payoutsBox = h("div", { id: "incubator-payouts" }, loading());
  const todayBox = h("div", { class: "today-status", id: "today-status" });

  const rangeBar = h("form", { class: "range", id: "range-form" },
    RANGES.map((d) => h("button", {
      type: "button", class: ["secondary", !q.get("from") && d === days && "active"], "data-days": d,
      onclick: () => go(`incubators/${code}`, new URLSearchParams({ days: String(d) })),
    }, t(`range.${d}`))),
    h("label", { for: "range-from" }, t("range.from"), h("input", { type: "date", id: "range-from", value: from, required: true })),
    h("label", { for: "range-to" }, t("range.to"), h("input", { type: "date", id: "range-to", value: to, required: true })),
    h("button", { type: "submit", class: "primary" }, t("range.apply")));
  rangeBar.addEventListener("submit", (e) => {
    e.preventDefault();
    go(`incubators/${code}`, new URLSearchParams({ from: rangeBar.querySelector("#range-from").value, to: rangeBar.querySelector("#range-to").value }));
  });

  root.replaceChildren(
    pageHeader(inc.name, h("p", { class: "subtitle" },
      h("span", { class: "code" }, inc.code), " · ", inc.district, " · ", tv("level", inc.level), " · ", tv("kind", inc.kind),
      " · ", t("incubator.area", { area: area(inc.disposable_area_m2) })), todayBox),
    section(t("incubator.share_title"), rangeBar, chartBox),
    section(t("incubator.monthly_title"), h("p", { class: "hint" }, t("incubator.monthly_hint")), monthsBox),
    section(t("incubator.tenants_title"), tenantsBox),
    section(t("incubator.alerts_title"), alertsBox),
    section(t("incubator.payouts_title"), payoutsBox));

  const guard = (box, promise) => promise.catch((err) => { if (err.status !== 401) box.replaceChildren(errorBox(err)); });
  await Promise.all([
    guard(chartBox, drawChart(chartBox, todayBox, code, from, to)),
    guard(monthsBox, drawMonths(monthsBox, code, from, to)),
    guard(tenantsBox, drawTenants(tenantsBox, code)),
    guard(alertsBox, drawAlerts(alertsBox, code, scope)),
    guard(payoutsBox, drawPayouts(payoutsBox, code, scope)),
  ]);
}

async function drawChart(box, todayBox, code, from, to) {
  const series = await get(`/v1/incubators/${encodeURIComponent(code)}/space-share/daily?from=${from}&to=${to}`);
  const items = series.items;
  const last = items[items.length - 1];
  todayBox.replaceChildren(h("span", { class: "big-share" }, pct(last.share)), statusBadge(last.status),
    h("span", { class: "muted" }, t("incubator.on_day", { on: last.on, threshold: pct(last.threshold) })));
  const withData = items.filter((d) => d.share !== null);
  if (withData.length === 0) {
    box.replaceChildren(empty(t("incubator.no_share_data", { code })));
    return;
  }
  const shares = withData.map((d) => Number(d.share));
  const below = items.filter((d) => d.status === "breach").length;
  const warn = items.filter((d) => d.status === "warning").length;
  box.replaceChildren(shareChart(items),
    h("p", { class: "chart-summary", id: "chart-summary" }, t("incubator.chart_summary", {
      from: series.from, to: series.to, days: items.length, with_data: withData.length,
      min: pct(Math.min(...shares)), max: pct(Math.max(...shares)), below, warn,
    })));
}

async function drawMonths(box, code, from, to) {
  const months = monthsBetween(from, to).slice(-37);
  const rows = await pooled(months, 6, (p) => get(`/v1/incubators/${encodeURIComponent(code)}/metrics?period=${p}`));
  const state = { sort: "period", dir: "desc" };
  const columns = [
    { key: "period", label: t("col.period"), sort: (m) => m.period, cell: (m) => period(m.period) },
    { key: "average", label: t("col.share_average"), num: true, sort: (m) => m.space_share.average, cell: (m) => pct(m.space_share.average) },
    { key: "min", label: t("col.share_min"), num: true, cell: (m) => pct(m.space_share.min) },
    { key: "max", label: t("col.share_max"), num: true, cell: (m) => pct(m.space_share.max) },
    { key: "below", label: t("col.days_below"), num: true, sort: (m) => m.space_share.days_below_threshold, cell: (m) => int(m.space_share.days_below_threshold) },
    { key: "days", label: t("col.days_with_data"), num: true, cell: (m) => `${int(m.days_with_data)} / ${int(m.days)}` },
    { key: "veto", label: t("col.monthly_veto"), cell: (m) => (m.space_share.average === null ? statusBadge("no_data")
      : m.space_share.average_below_threshold ? statusBadge("breach") : statusBadge("ok")) },
    { key: "incubating", label: t("col.incubating_end"), num: true, cell: (m) => int(m.tenants.incubating_at_end) },
    { key: "graduated", label: t("col.graduated"), num: true, cell: (m) => int(m.tenants.graduated) },
    { key: "rate", label: t("col.graduation_12m"), num: true, cell: (m) => pct(m.trailing_12m_graduation_rate) },
  ];
  function draw() {
    box.replaceChildren(sortableTable({ columns, rows, state, onSort: (k, d) => { state.sort = k; state.dir = d; draw(); },
      rowAttrs: (m) => ({ "data-period": m.period }) }));
  }
  draw();
}

async function drawTenants(box, code) {
  const tenants = await getAll(`/v1/incubators/${encodeURIComponent(code)}/tenants?status=incubating`);
  if (tenants.length === 0) {
    box.replaceChildren(empty(t("incubator.no_tenants", { code })));
    return;
  }
  const day = today();
  const isTech = (x) => [x.tech_certified_on, x.high_tech_certified_on].some((d) => d && d <= day);
  const warned = tenants.filter((x) => x.warnings && x.warnings.length);
  const state = { sort: "warnings", dir: "asc", onlyWarned: warned.length > 0 };
  const columns = [
    { key: "external_id", label: t("col.external_id"), sort: (x) => x.external_id, cell: (x) => h("span", { class: "code" }, x.external_id) },
    { key: "name", label: t("col.tenant_name"), sort: (x) => x.name, className: "name", cell: (x) => x.name },
    { key: "status", label: t("col.tenant_status"), sort: (x) => x.status, cell: (x) => tv("tenant_status", x.status) },
    { key: "tech", label: t("col.tech"), sort: (x) => (isTech(x) ? 0 : 1),
      cell: (x) => h("span", { class: isTech(x) ? "yes" : "no" }, isTech(x) ? `✔ ${yesNo(true)}` : `— ${yesNo(false)}`) },
    { key: "area", label: t("col.area"), num: true, sort: (x) => Number(x.area_m2 ?? -1), cell: (x) => area(x.area_m2) },
    { key: "admitted", label: t("col.admitted_on"), sort: (x) => x.admitted_on, cell: (x) => x.admitted_on },
    { key: "limit", label: t("col.limit_on"), sort: (x) => x.incubation_limit_on, cell: (x) => x.incubation_limit_on || "—" },
    { key: "warnings", label: t("col.warnings"), sort: (x) => -(x.warnings || []).length,
      cell: (x) => ((x.warnings || []).length ? h("ul", { class: "warnings" }, x.warnings.map((w) => h("li", { title: w.message }, h("span", { class: "badge st-warning" }, "▲ ", tv("warning", w.code)))))
        : h("span", { class: "muted" }, "—")) },
  ];
  const tableBox = h("div");
  const toggle = h("input", { type: "checkbox", id: "only-warned", checked: state.onlyWarned, onchange: (e) => { state.onlyWarned = e.target.checked; draw(); } });
  function draw() {
    const rows = state.onlyWarned ? warned : tenants;
    tableBox.replaceChildren(rows.length ? sortableTable({ columns, rows, state, onSort: (k, d) => { state.sort = k; state.dir = d; draw(); },
      rowAttrs: (x) => ({ "data-tenant": x.external_id }) }) : empty(t("incubator.no_warnings")));
  }
  draw();
  const techArea = tenants.filter(isTech).reduce((a, x) => a + Number(x.area_m2 || 0), 0);
  box.replaceChildren(
    h("p", { class: "count" }, t("incubator.tenant_counts", { n: tenants.length, tech: tenants.filter(isTech).length, warned: warned.length, area: area(techArea) })),
    h("label", { for: "only-warned", class: "inline" }, toggle, " ", t("incubator.only_warned")),
    tableBox);
}

async function drawAlerts(box, code, scope) {
  const page = await get(`/v1/alerts?incubator=${encodeURIComponent(code)}&state=all&limit=50`);
  if (page.items.length === 0) {
    box.replaceChildren(empty(t("incubator.no_alerts")));
    return;
  }
  const rows = page.items;
  box.replaceChildren(sortableTable({
    columns: [
      { key: "severity", label: t("col.severity"), cell: (a) => severityBadge(a.severity) },
      { key: "rule", label: t("col.rule"), cell: (a) => alertRule(a) },
      { key: "state", label: t("col.alert_state"), cell: (a) => tv("alert_state", a.state) },
      { key: "started", label: t("col.started_at"), cell: (a) => when(a.started_at) },
      { key: "resolved", label: t("col.resolved_at"), cell: (a) => when(a.resolved_at) },
      { key: "ack", label: t("col.acknowledged"), cell: (a) => ackButton(a, scope, () => drawAlerts(box, code, scope)) },
    ],
    rows, state: {}, onSort: () => {}, rowAttrs: (a) => ({ "data-alert": a.id }),
  }));
}

async function drawPayouts(box, code, scope) {
  const lines = await getAll(`/v1/incubators/${encodeURIComponent(code)}/payouts`, 120);
  if (lines.length === 0) {
    box.replaceChildren(empty(t("incubator.no_payouts")));
    return;
  }
  box.replaceChildren(sortableTable({
    columns: [
      { key: "period", label: t("col.period"), cell: (l) => period(l.period) },
      { key: "share", label: t("col.share_average"), num: true, cell: (l) => pct(l.share_average) },
      { key: "vetoed", label: t("col.vetoed"), cell: (l) => vetoBadge(l) },
      { key: "eligible", label: t("col.eligible_graduates"), num: true, cell: (l) => `${int(l.eligible_graduates)} / ${int(l.graduates.length)}` },
      { key: "amount", label: t("col.amount_yuan"), num: true, cell: (l) => yuan(l.amount_fen) },
      { key: "reason", label: t("col.reason"), cell: (l) => (l.reason ? tv("line_reason", l.reason) : "—") },
      { key: "approved", label: t("col.approved_at"), cell: (l) => when(l.approved_at) },
      { key: "statement", label: "", cell: (l) => (scope.admin ? h("a", { href: `#/payouts/${l.period}/statement/${encodeURIComponent(code)}` }, t("payouts.statement")) : "") },
    ],
    rows: lines, state: {}, onSort: () => {}, rowAttrs: (l) => ({ "data-period": l.period }),
  }));
}
