// 总览: every incubator today against the veto line, with the change over
// the last 30 days, its alerts, tenants, graduation rate and the age of its
// data; sortable and filtered, the filters kept in the URL.

import { get } from "../api.js";
import { setQuery } from "../app.js";
import { h } from "../dom.js";
import { t, tv } from "../i18n.js";
import { addDays, daysBetween, int, pct, points } from "../format.js";
import { SEVERITY_MARK, empty, loading, pageHeader, shareMeter, sortableTable, statusBadge } from "../ui.js";

const STATUS_RANK = { breach: 0, warning: 1, no_data: 2, ok: 3 };
const FILTERS = ["district", "level", "kind", "status"];
const TREND_DAYS = 30;

export async function render(root, { route }) {
  root.append(pageHeader(t("overview.title")), loading());
  const now = await get("/v1/reports/overview");
  const before = await get(`/v1/reports/overview?on=${addDays(now.on, -TREND_DAYS)}`);
  const earlier = Object.fromEntries(before.items.map((x) => [x.incubator, x.share]));
  const rows = now.items.map((x) => ({
    ...x,
    trend: x.share !== null && earlier[x.incubator] !== null && earlier[x.incubator] !== undefined
      ? Number(x.share) - Number(earlier[x.incubator]) : null,
    stale_days: x.last_snapshot_on ? daysBetween(x.last_snapshot_on, now.on) : null,
  }));
  const q = route.query;
  const state = {
    sort: q.get("sort") || "status", dir: q.get("dir") || "asc", search: q.get("q") || "",
    ...Object.fromEntries(FILTERS.map((f) => [f, q.get(f) || ""])),
  };

  const tableBox = h("div", { id: "overview-table" });
  const countLine = h("p", { class: "count", id: "overview-count" });

  function save() {
    const p = new URLSearchParams();
    for (const f of [...FILTERS, "sort", "dir"]) if (state[f]) p.set(f, state[f]);
    if (state.search) p.set("q", state.search);
    setQuery(p);
  }

  function visible() {
    const needle = state.search.toLowerCase();
    return rows.filter((r) => FILTERS.every((f) => !state[f] || r[f] === state[f]) &&
      (!needle || r.incubator.toLowerCase().includes(needle) || r.name.toLowerCase().includes(needle)));
  }

  const columns = [
    { key: "incubator", label: t("col.code"), sort: (r) => r.incubator,
      cell: (r) => h("a", { href: `#/incubators/${encodeURIComponent(r.incubator)}`, class: "code" }, r.incubator) },
    { key: "name", label: t("col.name"), sort: (r) => r.name, className: "name",
      cell: (r) => h("a", { href: `#/incubators/${encodeURIComponent(r.incubator)}` }, r.name) },
    { key: "district", label: t("col.district"), sort: (r) => r.district, cell: (r) => r.district },
    { key: "level", label: t("col.level"), sort: (r) => r.level, cell: (r) => tv("level", r.level) },
    { key: "kind", label: t("col.kind"), sort: (r) => r.kind, cell: (r) => tv("kind", r.kind) },
    { key: "share", label: t("col.share"), num: true, sort: (r) => (r.share === null ? null : Number(r.share)),
      title: t("col.share_title"),
      cell: (r) => h("span", { class: "share-cell" }, h("span", { class: "share-value" }, pct(r.share)),
        shareMeter(r.share === null ? null : Number(r.share), Number(r.threshold), Number(r.warning_threshold ?? Number(r.threshold) + 0.05))) },
    { key: "trend", label: t("col.trend", { days: TREND_DAYS }), num: true, sort: (r) => r.trend, title: t("col.trend_title", { days: TREND_DAYS }),
      cell: (r) => h("span", { class: ["trend", r.trend < -0.00005 ? "down" : r.trend > 0.00005 ? "up" : "flat"] },
        r.trend === null ? "—" : `${r.trend < -0.00005 ? "↓" : r.trend > 0.00005 ? "↑" : "→"} ${points(r.trend)}`) },
    { key: "status", label: t("col.status"), sort: (r) => STATUS_RANK[r.status] * 10 + (r.share === null ? 9 : Number(r.share)),
      cell: (r) => statusBadge(r.status) },
    { key: "alerts", label: t("col.open_alerts"), num: true,
      sort: (r) => -(r.open_alerts.critical * 10000 + r.open_alerts.warning * 100 + r.open_alerts.info),
      cell: (r) => alertCounts(r.open_alerts) },
    { key: "incubating", label: t("col.incubating"), num: true, sort: (r) => r.incubating, cell: (r) => int(r.incubating) },
    { key: "graduation", label: t("col.graduation_12m"), num: true,
      sort: (r) => (r.trailing_12m_graduation_rate === null ? null : Number(r.trailing_12m_graduation_rate)),
      cell: (r) => pct(r.trailing_12m_graduation_rate) },
    { key: "stale", label: t("col.days_since_snapshot"), num: true, sort: (r) => r.stale_days,
      cell: (r) => (r.stale_days === null ? h("span", { class: "muted" }, t("overview.never")) : h("span", { class: r.stale_days >= 35 ? "late" : null }, int(r.stale_days))) },
  ];

  function drawTable() {
    const shown = visible();
    countLine.textContent = t("overview.count", { shown: shown.length, total: rows.length });
    if (rows.length === 0) {
      tableBox.replaceChildren(empty(t("overview.empty"), h("code", {}, "POST /v1/incubators")));
      return;
    }
    if (shown.length === 0) {
      tableBox.replaceChildren(empty(t("overview.no_match"), h("button", { type: "button", class: "secondary", onclick: reset }, t("overview.reset"))));
      return;
    }
    tableBox.replaceChildren(sortableTable({
      columns, rows: shown, state,
      onSort: (key, dir) => { state.sort = key; state.dir = dir; save(); drawTable(); },
      rowAttrs: (r) => ({ "data-code": r.incubator, "data-status": r.status, class: `row-${r.status}` }),
    }));
  }

  const selects = {};
  function reset() {
    for (const f of FILTERS) { state[f] = ""; selects[f].value = ""; }
    state.search = "";
    search.value = "";
    save();
    drawTable();
    drawCards();
  }
  function option(value, label, current) {
    return h("option", { value, selected: value === current }, label);
  }
  const distinct = (f) => [...new Set(rows.map((r) => r[f]))].sort();
  const labelOf = { district: (v) => v, level: (v) => tv("level", v), kind: (v) => tv("kind", v), status: (v) => tv("status", v) };
  const filterBar = h("div", { class: "filters", role: "search" },
    FILTERS.map((f) => {
      const values = f === "status" ? ["breach", "warning", "ok", "no_data"] : distinct(f);
      selects[f] = h("select", { id: `filter-${f}`, name: f, onchange: (e) => { state[f] = e.target.value; save(); drawTable(); drawCards(); } },
        option("", t("filter.all"), state[f]), values.map((v) => option(v, labelOf[f](v), state[f])));
      return h("label", { for: `filter-${f}` }, t(`filter.${f}`), selects[f]);
    }));
  const search = h("input", { type: "search", id: "filter-q", value: state.search, placeholder: t("filter.search_placeholder"),
    oninput: (e) => { state.search = e.target.value; save(); drawTable(); } });
  filterBar.append(h("label", { for: "filter-q" }, t("filter.search"), search),
    h("button", { type: "button", class: "secondary", id: "filter-reset", onclick: reset }, t("overview.reset")));

  const cards = h("div", { class: "cards", id: "overview-cards" });
  function card(key, n, status) {
    const active = status && state.status === status;
    return h("button", {
      type: "button", class: ["stat", status && `st-${status}`, active && "active"], "data-card": key, "aria-pressed": status ? String(active) : null,
      onclick: status ? () => { state.status = active ? "" : status; selects.status.value = state.status; save(); drawTable(); drawCards(); } : null,
    }, h("span", { class: "stat-n" }, int(n)), h("span", { class: "stat-label" }, t(`overview.card_${key}`)));
  }
  function drawCards() {
    const n = (st) => rows.filter((r) => r.status === st).length;
    cards.replaceChildren(
      card("all", rows.length, null),
      card("breach", n("breach"), "breach"),
      card("warning", n("warning"), "warning"),
      card("no_data", n("no_data"), "no_data"),
      card("falling", rows.filter((r) => r.trend !== null && r.trend < -0.00005).length, null),
      card("critical", rows.reduce((a, r) => a + r.open_alerts.critical, 0), null));
  }

  drawCards();
  drawTable();
  root.replaceChildren(
    pageHeader(t("overview.title"), h("p", { class: "subtitle" }, t("overview.subtitle", { on: now.on, days: TREND_DAYS }))),
    cards, filterBar, countLine, tableBox,
    h("p", { class: "hint" }, t("overview.legend")));
}

function alertCounts(a) {
  const parts = [];
  for (const sev of ["critical", "warning", "info"]) {
    if (a[sev] > 0) {
      parts.push(h("span", { class: ["chip", `sev-${sev}`], title: `${tv("severity", sev)} ${a[sev]}`, "data-severity": sev },
        h("span", { class: "mark", "aria-hidden": "true" }, SEVERITY_MARK[sev]), h("span", { class: "sr" }, tv("severity", sev)), int(a[sev])));
    }
  }
  return parts.length ? h("span", { class: "alert-counts" }, parts) : h("span", { class: "muted" }, "0");
}
