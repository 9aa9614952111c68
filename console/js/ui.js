// The page's shared pieces: status badges (colour and word and shape, so
// colour is never the only carrier), loading, empty and error states,
// confirmation dialogs, toasts, and sortable tables.

import { h, s } from "./dom.js";
import { dictionaries, t, tv } from "./i18n.js";

const STATUS_MARK = { breach: "✖", warning: "▲", ok: "●", no_data: "○" };
export const SEVERITY_MARK = { critical: "✖", warning: "▲", info: "ℹ" };

export function statusBadge(status) {
  return h("span", { class: ["badge", `st-${status}`], "data-status": status },
    h("span", { class: "mark", "aria-hidden": "true" }, STATUS_MARK[status] || "•"), " ", tv("status", status));
}

export function severityBadge(severity) {
  return h("span", { class: ["badge", `sev-${severity}`], "data-severity": severity },
    h("span", { class: "mark", "aria-hidden": "true" }, SEVERITY_MARK[severity] || "•"), " ", tv("severity", severity));
}

export function runBadge(run) {
  const key = run.status === "approved" ? "approved" : run.reviewed_by ? "reviewed" : run.status;
  return h("span", { class: ["badge", `run-${key}`], "data-run-status": key }, tv("run", key));
}

export function loading(what) {
  return h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), " ",
    what || t("common.loading"));
}

export function empty(message, ...extra) {
  return h("div", { class: "empty" }, h("p", {}, message), ...extra);
}

// An API failure in words: what happened in plain language, and the API's
// own detail for whoever has to look further.
export function errorText(err) {
  if (!err || err.status === undefined) return t("error.unexpected");
  if (err.status === 0) return t("error.network");
  const key = `error.${err.status}`;
  return t(key in dictionaries.zh ? key : "error.other", { status: err.status });
}

export function errorBox(err) {
  const detail = err && err.problem && err.problem.detail;
  const fields = (err && err.problem && err.problem.errors) || [];
  return h("div", { class: "error", role: "alert", "data-status": err && err.status },
    h("p", { class: "error-title" }, errorText(err)),
    detail ? h("p", { class: "error-detail" }, t("error.detail"), " ", detail) : null,
    fields.length ? h("ul", {}, fields.map((f) => h("li", {}, `${f.field}: ${f.message}`))) : null);
}

export function toast(message, kind = "ok") {
  const box = document.getElementById("toasts");
  const el = h("div", { class: ["toast", kind], role: kind === "error" ? "alert" : "status" }, message);
  box.append(el);
  setTimeout(() => el.remove(), 6000);
}

/*
 * A modal confirmation. fields: [{name, label, required, maxlength}] for
 * text to type (a note). Resolves with {values} when confirmed, or null.
 */
export function confirmDialog({ title, body, confirm, fields = [], danger = false }) {
  return new Promise((resolve) => {
    const inputs = {};
    const err = h("p", { class: "field-error", role: "alert" });
    const form = h("form", { method: "dialog", class: "dialog-form", novalidate: true },
      h("h2", {}, title),
      ...(Array.isArray(body) ? body : [body]).map((b) => (b instanceof Node ? b : h("p", {}, b))),
      fields.map((f) => {
        inputs[f.name] = h("textarea", { name: f.name, rows: 3, maxlength: f.maxlength || 1000, required: f.required, id: `dlg-${f.name}` });
        return h("label", { for: `dlg-${f.name}`, class: "block" }, f.label, inputs[f.name]);
      }),
      err,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", value: "cancel", onclick: () => close(null) }, t("common.cancel")),
        h("button", { type: "submit", class: danger ? "danger" : "primary", value: "ok", "data-confirm": "1" }, confirm)));
    const dlg = h("dialog", { class: "confirm" }, form);
    function close(v) {
      dlg.close();
      dlg.remove();
      resolve(v);
    }
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const values = {};
      for (const f of fields) {
        values[f.name] = inputs[f.name].value.trim();
        if (f.required && !values[f.name]) {
          err.textContent = t("common.required", { field: f.label });
          inputs[f.name].focus();
          return;
        }
      }
      close({ values });
    });
    dlg.addEventListener("cancel", (e) => {
      e.preventDefault();
      close(null);
    });
    document.body.append(dlg);
    dlg.showModal();
    (fields.length ? inputs[fields[0].name] : form.querySelector("[data-confirm]")).focus();
  });
}

/*
 * A table with sortable columns. columns: [{key, label, num, sort: row ->
 * value, cell: row -> Node|text, className}]. state: {sort, dir} (kept by
 * the caller, e.g. in the URL); onSort(key, dir) is told of a click.
 */
export function sortableTable({ columns, rows, state, onSort, rowAttrs, caption, footer }) {
  const col = columns.find((c) => c.key === state.sort) || null;
  const dir = state.dir === "desc" ? -1 : 1;
  const sorted = col && col.sort ? [...rows].sort((a, b) => {
    const x = col.sort(a), y = col.sort(b);
    // Missing values last, whichever the direction.
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  }) : rows;
  const head = h("tr", {}, columns.map((c) => {
    const active = col && c.key === col.key;
    const aria = active ? (dir === 1 ? "ascending" : "descending") : "none";
    const label = c.sort
      ? h("button", {
        type: "button", class: "sort", "data-sort": c.key,
        onclick: () => onSort(c.key, active && dir === 1 ? "desc" : "asc"),
      }, c.label, h("span", { class: "arrow", "aria-hidden": "true" }, active ? (dir === 1 ? "▲" : "▼") : "↕"))
      : c.label;
    return h("th", { scope: "col", class: [c.num && "num", c.className], "aria-sort": c.sort ? aria : null, title: c.title }, label);
  }));
  const body = sorted.map((r) => h("tr", rowAttrs ? rowAttrs(r) : {},
    columns.map((c) => h("td", { class: [c.num && "num", c.className], "data-col": c.key }, c.cell(r)))));
  return h("div", { class: "table-wrap" },
    h("table", { class: "data" }, caption ? h("caption", {}, caption) : null, h("thead", {}, head), h("tbody", {}, body),
      footer ? h("tfoot", {}, footer) : null));
}

// A small horizontal meter of a share against its threshold (SVG, so no
// inline style is needed).
export function shareMeter(share, threshold, warning) {
  const w = 80;
  const x = (v) => Math.max(0, Math.min(1, Number(v))) * w;
  const status = share === null ? "no_data" : share < threshold ? "breach" : share < warning ? "warning" : "ok";
  return s("svg", { class: "meter", viewBox: `0 0 ${w} 10`, width: w, height: 10, "aria-hidden": "true" },
    s("rect", { class: "meter-bg", x: 0, y: 2, width: w, height: 6, rx: 2 }),
    share === null ? null : s("rect", { class: `meter-fill st-${status}`, x: 0, y: 2, width: x(share), height: 6, rx: 2 }),
    s("line", { class: "meter-threshold", x1: x(threshold), x2: x(threshold), y1: 0, y2: 10 }));
}

export function pageHeader(title, ...extra) {
  return h("div", { class: "page-head" }, h("h1", {}, title), ...extra);
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}
