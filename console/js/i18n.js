// Every label of the page comes from one dictionary per language
// (lang/zh.js, lang/en.js); Chinese is the default. t("overview.count", {shown: 3})
// fills {shown}. The choice of language (not a secret) is kept in localStorage.

import zh from "./lang/zh.js";
import en from "./lang/en.js";

export const dictionaries = { zh, en };
const LANG = "incubatord.lang";
let current = localStorage.getItem(LANG) === "en" ? "en" : "zh";

export function lang() {
  return current;
}

export function setLang(l) {
  current = l === "en" ? "en" : "zh";
  localStorage.setItem(LANG, current);
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
}

export function t(key, params) {
  let text = dictionaries[current][key];
  if (text === undefined) text = dictionaries.zh[key];
  if (text === undefined) {
    console.warn(`missing label ${key}`);
    return key;
  }
  if (params) text = text.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
  return text;
}

// A label of an API value ("status.breach"), or the value itself when the
// dictionaries do not know it (a value added to the API later).
export function tv(group, value) {
  if (value === null || value === undefined) return "—";
  const key = `${group}.${value}`;
  return key in dictionaries[current] || key in dictionaries.zh ? t(key) : String(value);
}

export function has(key) {
  return key in dictionaries[current] || key in dictionaries.zh;
}
