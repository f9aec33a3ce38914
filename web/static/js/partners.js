// The admin page's Partners panel (organization admins): API keys for integration partners - made for this
// project, the secret shown once, revoked in one click - and webhooks with their latest deliveries.
import { rpc } from "./api.js";

const $ = (id) => document.getElementById(id);
const project = Number($("admin").dataset.project);
const say = (text) => { $("partners-status").textContent = text; };
const cell = (text) => { const td = document.createElement("td"); td.textContent = text ?? ""; return td; };
const when = (t) => (t ? new Date(t).toLocaleString() : "never");
let organization = null;

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

async function load() {
  organization = (await rpc("project_overview", { project_id: project })).organization_id;
  let keys, hooks;
  try {
    [keys, hooks] = await Promise.all([rpc("list_api_keys", { organization_id: organization }),
                                       rpc("list_webhooks", { organization_id: organization })]);
  } catch (e) {
    $("partners-body").hidden = true;
    say(e.status === 404 ? "Keys and webhooks are managed by the organization's admins." : e.message);
    return;
  }
  $("partners-body").hidden = false;
  $("key-rows").replaceChildren(...keys.map((k) => {
    const tr = document.createElement("tr");
    const state = k.revoked_at ? "revoked" : new Date(k.expires_at) < new Date() ? "expired" : "active";
    tr.append(cell(k.name), cell(k.prefix), cell(k.scopes.join(", ")), cell(state), cell(when(k.last_used_at)),
              cell(`${k.used_today} today, ${k.use_count} in all`));
    const td = document.createElement("td");
    if (state === "active") {
      const b = button("Revoke", async () => { await rpc("revoke_api_key", { key_id: k.id }); await load(); });
      b.setAttribute("aria-label", `Revoke key ${k.name} (${k.prefix})`);
      td.append(b);
    }
    tr.append(td);
    return tr;
  }));
  $("hook-rows").replaceChildren(...hooks.map((h) => {
    const tr = document.createElement("tr");
    const last = h.deliveries[0];
    tr.append(cell(h.url), cell(h.events.join(", ")), cell(h.active ? "active" : "paused"),
              cell(last ? `${last.event}: ${last.status} (${last.attempts} attempts, ${last.last_status ?? last.last_error ?? ""})` : "none yet"));
    const td = document.createElement("td");
    const b = button("Send a test", async () => { await rpc("test_webhook", { webhook_id: h.id }); say("Test ping queued."); });
    b.setAttribute("aria-label", `Send a test to ${h.url}`);
    td.append(b);
    tr.append(td);
    return tr;
  }));
}

$("key-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const scopes = [...f.querySelectorAll('input[name="scopes"]:checked')].map((c) => c.value);
  try {
    const k = await rpc("create_api_key", {
      organization_id: organization, name: f.name.value, project_ids: [project], scopes,
      expires_at: new Date(Date.now() + Number(f.days.value) * 86400000).toISOString(),
      daily_quota: f.quota.value ? Number(f.quota.value) : null });
    $("new-key").value = k.key;  // the only time anyone sees it
    $("new-key-box").hidden = false;
    f.reset();
    await load();
  } catch (err) {
    say(err.message);
  }
});

$("hook-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const events = [...f.querySelectorAll('input[name="events"]:checked')].map((c) => c.value);
  try {
    const h = await rpc("create_webhook", { organization_id: organization, url: f.url.value, events });
    $("new-key").value = h.secret;
    $("new-key-box").hidden = false;
    f.reset();
    await load();
  } catch (err) {
    say(err.message);
  }
});

load().catch((e) => say(e.message));
