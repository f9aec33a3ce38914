// The operator's page: the installation's organizations, a new one, and an existing account brought in (usually
// its first admin, who then creates the organization's projects and people).
import { rpc } from "./api.js";

const $ = (id) => document.getElementById(id);
const say = (text) => { $("org-status").textContent = text; };
const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };

async function load() {
  const orgs = await rpc("list_organizations");
  $("org-rows").replaceChildren(...orgs.map((o) => {
    const tr = document.createElement("tr");
    tr.append(cell(o.name), cell(o.members), cell(o.admins), cell(o.projects.map((p) => p.name).join(", ")));
    return tr;
  }));
  $("org-pick").replaceChildren(...orgs.map((o) => new Option(o.name, o.id)));
}

$("org-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const o = await rpc("create_organization", { name: e.target.name.value });
    e.target.reset();
    await load();
    $("org-pick").value = String(o.id);
    say(`${o.name} created: now bring in its admin.`);
  } catch (err) {
    say(err.message);
  }
});

$("org-member-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  try {
    await rpc("add_organization_member", { organization_id: Number(f.organization_id.value), email: f.email.value,
                                           admin: f.admin.checked, analyst: f.analyst.checked });
    say(`${f.email.value} added.`);
    f.email.value = "";
    await load();
  } catch (err) {
    say(err.message);
  }
});

load().catch((e) => say(e.message));
