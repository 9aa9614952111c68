// The API client: the signed-in token on every call, problem+json turned
// into an ApiError, and a 401 anywhere sends the person back to sign in.

import { session } from "./session.js";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
    this.problem = problem || null;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function call(method, path, { body, token, accept, lang } = {}) {
  const headers = { Authorization: `Bearer ${token || session.token() || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (accept) headers.Accept = accept;
  if (lang) headers["Accept-Language"] = lang;
  let r;
  try {
    r = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch (e) {
    throw new ApiError(0, null);
  }
  if (!r.ok) {
    let problem = null;
    try {
      problem = await r.json();
    } catch {
      problem = null;
    }
    const err = new ApiError(r.status, problem);
    if (r.status === 401 && !token) onUnauthorized(err);
    throw err;
  }
  if (accept && accept.startsWith("text/csv")) return r.blob();
  if (r.status === 204) return null;
  return r.json();
}

export const get = (path, opts) => call("GET", path, opts);
export const post = (path, body, opts) => call("POST", path, { ...opts, body: body || {} });

// Every item of a paged list (limit 500 a page), up to max items.
export async function getAll(path, max = 20000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await get(`${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

// Runs fn over items with at most n calls at once; results in order.
export async function pooled(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}
