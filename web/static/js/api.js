// Calls to /rpc/<function> (and the app's other JSON routes) with the session cookie and the CSRF header; errors
// carry the JSON error body.
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code;
    this.field = body?.details?.field || null;
    this.body = body;
  }
}

export function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)dl_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

async function request(url, init = {}) {
  const r = await fetch(url, { credentials: "same-origin", ...init });
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = r.ok ? text : { message: `HTTP ${r.status}` }; }
  if (r.status === 401) {  // the session ended (signed out elsewhere, password changed): sign in again
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError(401, body);
  }
  if (!r.ok) throw new ApiError(r.status, body);
  return body;
}

// POST a JSON body to any of the app's routes (e.g. /items/{id}/segment); `signal` lets a newer call cancel it.
export function post(path, args = {}, signal = undefined) {
  return request(path, {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrf() },
    body: JSON.stringify(args),
    signal,
  });
}

export function rpc(fn, args = {}) { return post(`/rpc/${fn}`, args); }

// GET /rpc/<fn>?… for functions that only read (the app allows GET for those that are not VOLATILE).
export function rpcGet(fn, args = {}) {
  return request(`/rpc/${fn}?${new URLSearchParams(args)}`);
}

export async function logout() {
  await fetch("/auth/logout", { method: "POST", headers: { "x-csrf-token": csrf() }, credentials: "same-origin" });
  location.assign("/login");
}

// A list of text as the API answers it: a JSON array, or PostgreSQL's array text ({a,"b c"}) — what the HTTP layer
// sends today for the functions that return text[] (api.region_labels, api.set_region_labels).
export function textArray(value) {
  if (Array.isArray(value)) return value;
  if (typeof value !== "string" || !value.startsWith("{") || !value.endsWith("}")) throw new Error("not a list");
  const out = [];
  const s = value.slice(1, -1);
  let i = 0;
  while (i < s.length) {
    let item = "";
    if (s[i] === '"') {
      for (i++; i < s.length && s[i] !== '"'; i++) item += s[i] === "\\" ? s[++i] : s[i];
      i++;
    } else {
      for (; i < s.length && s[i] !== ","; i++) item += s[i];
    }
    out.push(item);
    i++;  // the comma
  }
  return out;
}
