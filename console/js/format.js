// Numbers as a finance office reads them: shares as percentages with two
// decimals, money in yuan with two decimals from integer fen (no float
// arithmetic on money), dates and times in the bureau's time zone.

import { lang, t } from "./i18n.js";

export const TIME_ZONE = "Asia/Shanghai";

function locale() {
  return lang() === "zh" ? "zh-CN" : "en-GB";
}

function grouped(n) {
  return Math.trunc(n).toLocaleString("en-US");
}

// 0.5583 -> "55.83%". Ratios have 4 decimals, so this is exact.
export function pct(ratio) {
  if (ratio === null || ratio === undefined) return "—";
  const bp = Math.round(Number(ratio) * 10000);
  const sign = bp < 0 ? "-" : "";
  const a = Math.abs(bp);
  return `${sign}${Math.floor(a / 100)}.${String(a % 100).padStart(2, "0")}%`;
}

// A difference of two ratios in percentage points: "+1.20", "-0.35".
export function points(delta) {
  if (delta === null || delta === undefined || Number.isNaN(delta)) return "—";
  const bp = Math.round(delta * 10000);
  const a = Math.abs(bp);
  const sign = bp > 0 ? "+" : bp < 0 ? "−" : "±";
  return `${sign}${Math.floor(a / 100)}.${String(a % 100).padStart(2, "0")}`;
}

// 1234500 fen -> "12,345.00"
export function yuan(fen) {
  if (fen === null || fen === undefined) return "—";
  const n = Number(fen);
  const sign = n < 0 ? "-" : "";
  const a = Math.abs(n);
  return `${sign}${grouped(Math.floor(a / 100))}.${String(a % 100).padStart(2, "0")}`;
}

export function int(n) {
  if (n === null || n === undefined) return "—";
  return grouped(n);
}

export function area(m2) {
  if (m2 === null || m2 === undefined) return "—";
  const c = Math.round(Number(m2) * 100);
  return `${grouped(Math.floor(c / 100))}.${String(c % 100).padStart(2, "0")}`;
}

// RFC 3339 UTC -> "2026-11-26 16:00" in the bureau's time zone.
export function when(ts) {
  if (!ts) return "—";
  const d = new Date(ts);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", {
      timeZone: TIME_ZONE, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).formatToParts(d).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

// Today's date in the bureau's time zone, "YYYY-MM-DD".
export function today() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: TIME_ZONE }).format(new Date());
}

// Calendar arithmetic on "YYYY-MM-DD" strings, in UTC so no zone shifts a day.
export function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

export function daysBetween(a, b) {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86400000);
}

// "2026-10" -> "2026年10月" / "October 2026"
export function period(p) {
  if (!p) return "—";
  const [y, m] = p.split("-").map(Number);
  if (lang() === "zh") return `${y}年${m}月`;
  return new Date(Date.UTC(y, m - 1, 1)).toLocaleDateString(locale(), { month: "long", year: "numeric", timeZone: "UTC" });
}

// The months "YYYY-MM" from the month of day a to that of day b.
export function monthsBetween(a, b) {
  const out = [];
  let [y, m] = a.split("-").map(Number);
  const [y2, m2] = b.split("-").map(Number);
  while (y < y2 || (y === y2 && m <= m2)) {
    out.push(`${y}-${String(m).padStart(2, "0")}`);
    m += 1;
    if (m > 12) { m = 1; y += 1; }
  }
  return out;
}

// An amount in fen written out in capital Chinese numerals, as cheques and
// statements carry it: 12345600 -> "壹拾贰万叁仟肆佰伍拾陆元整".
export function yuanInWords(fen) {
  const digits = "零壹贰叁肆伍陆柒捌玖";
  const units = ["", "拾", "佰", "仟"];
  const groups = ["", "万", "亿", "万亿"];
  let n = Math.abs(Number(fen));
  const negative = Number(fen) < 0;
  const jiao = Math.floor(n / 10) % 10;
  const fenDigit = n % 10;
  let whole = Math.floor(n / 100);
  if (whole === 0 && jiao === 0 && fenDigit === 0) return "零元整";
  let text = "";
  let g = 0;
  let needZero = false;
  while (whole > 0) {
    const part = whole % 10000;
    let chunk = "";
    let zero = false;
    for (let i = 0; i < 4; i++) {
      const d = Math.floor(part / 10 ** i) % 10;
      if (d === 0) {
        if (chunk) zero = true;
      } else {
        chunk = digits[d] + units[i] + (zero ? "零" : "") + chunk;
        zero = false;
      }
    }
    if (part > 0) {
      text = chunk + groups[g] + (needZero ? "零" : "") + text;
      needZero = part < 1000;
    } else if (text) {
      needZero = true;
    }
    whole = Math.floor(whole / 10000);
    g += 1;
  }
  text = text.replace(/^零+/, "");
  if (text) text += "元";
  if (jiao === 0 && fenDigit === 0) return (negative ? "负" : "") + text + "整";
  if (jiao) text += digits[jiao] + "角";
  else if (text) text += "零";
  if (fenDigit) text += digits[fenDigit] + "分";
  else text += "整";
  return (negative ? "负" : "") + text;
}

export function yesNo(v) {
  return v ? t("common.yes") : t("common.no");
}
