// Calls to /rpc/<function> with the session cookie and the CSRF header; errors carry the JSON error body.
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

export async function rpc(fn, args = {}) {
  const r = await fetch(`/rpc/${fn}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrf() },
    body: JSON.stringify(args),
    credentials: "same-origin",
  });
  const text = await r.text();
  const body = text ? JSON.parse(text) : null;
  if (r.status === 401) {  // the session ended (signed out elsewhere, password changed): sign in again
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError(401, body);
  }
  if (!r.ok) throw new ApiError(r.status, body);
  return body;
}

export async function logout() {
  await fetch("/auth/logout", { method: "POST", headers: { "x-csrf-token": csrf() }, credentials: "same-origin" });
  location.assign("/login");
}
