// The daily share as an SVG line chart: the share (broken where there is
// no data), the veto threshold and the warning line as steps (a policy may
// change them from one month to the next), the area below the threshold
// shaded, month ticks, and a cursor that reads out the day under the
// pointer. Attributes and classes only: no inline style, so the CSP holds.

import { s } from "./dom.js";
import { t, tv } from "./i18n.js";
import { pct } from "./format.js";

const W = 960, H = 300;
const M = { top: 14, right: 16, bottom: 30, left: 52 };

export function shareChart(items) {
  const iw = W - M.left - M.right, ih = H - M.top - M.bottom;
  const values = items.filter((d) => d.share !== null).map((d) => Number(d.share));
  const lines = items.flatMap((d) => [Number(d.threshold), Number(d.warning_threshold ?? d.threshold)]);
  const all = values.concat(lines);
  let lo = Math.max(0, Math.floor((Math.min(...all) - 0.05) * 10) / 10);
  let hi = Math.min(1, Math.ceil((Math.max(...all) + 0.05) * 10) / 10);
  if (hi - lo < 0.2) { lo = Math.max(0, lo - 0.1); hi = Math.min(1, hi + 0.1); }
  const n = items.length;
  const x = (i) => M.left + (n <= 1 ? iw / 2 : (i * iw) / (n - 1));
  const y = (v) => M.top + ih - ((v - lo) / (hi - lo)) * ih;

  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "chart-title" });
  svg.append(s("title", { id: "chart-title" }, t("chart.title")));

  // Horizontal grid with percentage labels.
  const grid = s("g", { class: "grid" });
  for (let v = lo; v <= hi + 1e-9; v += 0.1) {
    const vy = y(v);
    grid.append(s("line", { x1: M.left, x2: W - M.right, y1: vy, y2: vy }),
      s("text", { x: M.left - 6, y: vy + 4, class: "axis-label", "text-anchor": "end" }, `${Math.round(v * 100)}%`));
  }
  svg.append(grid);

  // Month ticks (the first day of each month; every few when the range is long).
  const firsts = items.map((d, i) => [d.on, i]).filter(([on]) => on.endsWith("-01"));
  const every = Math.max(1, Math.ceil(firsts.length / 12));
  const ticks = s("g", { class: "ticks" });
  firsts.forEach(([on, i], k) => {
    if (k % every || x(i) > W - M.right - 24) return;
    ticks.append(s("line", { x1: x(i), x2: x(i), y1: M.top, y2: M.top + ih }),
      s("text", { x: x(i), y: H - 10, class: "axis-label", "text-anchor": "middle" }, on.slice(0, 7)));
  });
  svg.append(ticks);

  // Steps of a policy line; the area under the threshold shaded.
  const step = (key) => items.map((d, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(Number(d[key] ?? d.threshold)).toFixed(1)}`).join("");
  const bottom = y(lo);
  svg.append(s("path", { class: "below-zone", d: `${step("threshold")}L${x(n - 1).toFixed(1)},${bottom}L${x(0).toFixed(1)},${bottom}Z` }));
  svg.append(s("path", { class: "warning-line", d: step("warning_threshold"), "data-line": "warning" }));
  svg.append(s("path", { class: "threshold-line", d: step("threshold"), "data-line": "threshold" }));

  // The share: one subpath per run of days with data.
  let d = "";
  let pen = false;
  items.forEach((p, i) => {
    if (p.share === null) { pen = false; return; }
    d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(Number(p.share)).toFixed(1)}`;
    pen = true;
  });
  svg.append(s("path", { class: "share-line", d, "data-line": "share" }));
  // Days below the threshold marked on the line, so they show in print too.
  const marks = s("g", { class: "breach-marks" });
  items.forEach((p, i) => {
    if (p.status === "breach" && n <= 400) marks.append(s("circle", { cx: x(i), cy: y(Number(p.share)), r: 1.4 }));
  });
  svg.append(marks);

  // Legend.
  const legend = s("g", { class: "legend", transform: `translate(${M.left + 8},${M.top + 4})` });
  [["share-line", t("chart.share")], ["threshold-line", t("chart.threshold")], ["warning-line", t("chart.warning")]].forEach(([cls, label], k) => {
    const gx = k * 150;
    legend.append(s("line", { class: cls, x1: gx, x2: gx + 22, y1: 8, y2: 8 }), s("text", { x: gx + 28, y: 12, class: "legend-label" }, label));
  });
  svg.append(legend);

  // The cursor: a vertical line and a read-out of the nearest day.
  const cursor = s("g", { class: "cursor hidden" });
  const cline = s("line", { y1: M.top, y2: M.top + ih });
  const cbox = s("rect", { class: "cursor-box", width: 190, height: 40, rx: 4 });
  const ctext1 = s("text", { class: "cursor-text" });
  const ctext2 = s("text", { class: "cursor-text" });
  cursor.append(cline, cbox, ctext1, ctext2);
  svg.append(cursor);
  const overlay = s("rect", { class: "overlay", x: M.left, y: M.top, width: iw, height: ih });
  svg.append(overlay);
  function show(evt) {
    const box = svg.getBoundingClientRect();
    const px = ((evt.clientX - box.left) / box.width) * W;
    const i = Math.max(0, Math.min(n - 1, Math.round(((px - M.left) / iw) * (n - 1))));
    const p = items[i];
    const cx = x(i);
    cline.setAttribute("x1", cx);
    cline.setAttribute("x2", cx);
    const bx = cx + 200 > W ? cx - 198 : cx + 8;
    cbox.setAttribute("x", bx);
    cbox.setAttribute("y", M.top + 4);
    ctext1.setAttribute("x", bx + 8);
    ctext1.setAttribute("y", M.top + 20);
    ctext2.setAttribute("x", bx + 8);
    ctext2.setAttribute("y", M.top + 36);
    ctext1.textContent = `${p.on}  ${pct(p.share)}`;
    ctext2.textContent = `${tv("status", p.status)} · ${t("chart.threshold")} ${pct(p.threshold)}`;
    cursor.setAttribute("class", "cursor");
  }
  overlay.addEventListener("pointermove", show);
  overlay.addEventListener("pointerdown", show);
  overlay.addEventListener("pointerleave", () => cursor.setAttribute("class", "cursor hidden"));
  return svg;
}
