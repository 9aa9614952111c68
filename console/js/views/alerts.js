// 告警: the alerts firing now and the recent ones; an administrator
// acknowledges one with a note (the note and who wrote it are kept).

import { get, post } from "../api.js";
import { go } from "../app.js";
import { h } from "../dom.js";
import { t, tv } from "../i18n.js";
import { pct, when } from "../format.js";
import { confirmDialog, empty, errorBox, errorText, loading, pageHeader, severityBadge, sortableTable, toast } from "../ui.js";

const SHARE_RULES = ["space_share_breach", "space_share_warning"];

// The rule in words, with its subject and the figure it measured.
export function alertRule(a) {
  const figure = SHARE_RULES.includes(a.rule)
    ? t("alerts.share_figure", { value: pct(a.value), threshold: pct(a.threshold) })
    : a.rule === "stale_data" && a.value !== null ? t("alerts.stale_figure", { days: a.value }) : "";
  return h("span", { class: "rule" }, h("span", {}, tv("rule", a.rule)),
    a.subject ? h("span", { class: "code subject" }, ` ${a.subject}`) : null,
    figure ? h("span", { class: "muted figure" }, ` ${figure}`) : null);
}

// The acknowledgement of an alert: who and when with the note, or (for an
// administrator) the button that makes one.
export function ackButton(a, scope, reload) {
  if (a.acknowledged && a.acknowledgement) {
    return h("span", { class: "ack", title: a.acknowledgement.note }, "✔ ",
      t("alerts.acked_by", { by: a.acknowledgement.by, at: when(a.acknowledgement.at) }),
      h("span", { class: "ack-note" }, a.acknowledgement.note));
  }
  if (!scope.admin || a.state !== "firing") return h("span", { class: "muted" }, "—");
  return h("button", {
    type: "button", class: "secondary small", "data-ack": a.id,
    onclick: async (e) => {
      const button = e.currentTarget;
      const ok = await confirmDialog({
        title: t("alerts.ack_title"),
        body: [h("p", {}, a.incubator, " · ", tv("rule", a.rule)), h("p", { class: "hint" }, t("alerts.ack_body"))],
        fields: [{ name: "note", label: t("alerts.ack_note"), required: true, maxlength: 1000 }],
        confirm: t("alerts.ack_confirm"),
      });
      if (!ok) return;
      button.disabled = true;
      button.textContent = t("common.working");
      try {
        await post(`/v1/alerts/${a.id}/ack`, { note: ok.values.note });
        toast(t("alerts.acked"));
        reload();
      } catch (err) {
        button.disabled = false;
        button.textContent = t("alerts.ack");
        if (err.status !== 401) toast(`${errorText(err)} ${err.problem ? err.problem.detail : ""}`, "error");
      }
    },
  }, t("alerts.ack"));
}

export async function render(root, { route, scope }) {
  const state = route.query.get("state") === "all" ? "all" : "firing";
  const rule = route.query.get("rule") || "";
  const tabs = h("div", { class: "tabs", role: "tablist" },
    ["firing", "all"].map((st) => h("button", {
      type: "button", role: "tab", class: st === state ? "active" : null, "aria-selected": String(st === state), "data-tab": st,
      onclick: () => go("alerts", new URLSearchParams(st === "all" ? { state: "all" } : {})),
    }, t(`alerts.tab_${st}`))));
  const ruleSelect = h("select", { id: "filter-rule", onchange: (e) => {
    const p = new URLSearchParams(route.query);
    if (e.target.value) p.set("rule", e.target.value); else p.delete("rule");
    go("alerts", p);
  } }, h("option", { value: "" }, t("filter.all")),
  ["space_share_breach", "space_share_warning", "stale_data", "duplicate_enterprise", "overdue_tenant"]
    .map((r) => h("option", { value: r, selected: r === rule }, tv("rule", r))));
  const box = h("div", { id: "alerts-table" }, loading());
  root.append(pageHeader(t("alerts.title")), h("div", { class: "filters" }, tabs, h("label", { for: "filter-rule" }, t("col.rule"), ruleSelect)), box);

  const items = [];
  let cursor = null;
  const more = h("button", { type: "button", class: "secondary", id: "alerts-more", onclick: () => load() }, t("common.more"));

  async function load() {
    const p = new URLSearchParams({ state, limit: "100" });
    if (rule) p.set("rule", rule);
    if (!scope.admin) p.set("incubator", scope.incubator);
    if (cursor) p.set("cursor", cursor);
    let page;
    try {
      page = await get(`/v1/alerts?${p}`);
    } catch (err) {
      if (err.status !== 401) box.replaceChildren(errorBox(err));
      return;
    }
    items.push(...page.items);
    cursor = page.next_cursor;
    draw();
  }

  function draw() {
    if (items.length === 0) {
      box.replaceChildren(empty(state === "firing" ? t("alerts.none_firing") : t("alerts.none")));
      return;
    }
    const redraw = async () => {
      items.length = 0;
      cursor = null;
      await load();
    };
    box.replaceChildren(sortableTable({
      columns: [
        { key: "severity", label: t("col.severity"), cell: (a) => severityBadge(a.severity) },
        { key: "incubator", label: t("col.incubator"), cell: (a) => h("a", { href: `#/incubators/${encodeURIComponent(a.incubator)}`, class: "code" }, a.incubator) },
        { key: "rule", label: t("col.rule"), cell: (a) => alertRule(a) },
        { key: "state", label: t("col.alert_state"), cell: (a) => tv("alert_state", a.state) },
        { key: "started", label: t("col.started_at"), cell: (a) => when(a.started_at) },
        { key: "resolved", label: t("col.resolved_at"), cell: (a) => when(a.resolved_at) },
        { key: "ack", label: t("col.acknowledged"), cell: (a) => ackButton(a, scope, redraw) },
      ],
      rows: items, state: {}, onSort: () => {}, rowAttrs: (a) => ({ "data-alert": a.id, "data-severity": a.severity }),
    }), ...(cursor ? [more] : []));
  }
  await load();
}
