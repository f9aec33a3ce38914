// The admin page of a project: queue, upload (drag and drop, per-file progress, duplicates), rejected images,
// work rules, people, taxonomy and descriptor schema. Every change is one api call; the SQL checks and audits it.
import { csrf, rpc } from "./api.js";

const $ = (id) => document.getElementById(id);
const project = Number($("admin").dataset.project);
const el = (tag, text, attrs = {}) => {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  Object.assign(e, attrs);
  return e;
};
const when = (t) => (t ? new Date(t).toLocaleString() : "");

function fail(e) {
  $("admin-error").textContent = e.message;
  $("admin-error").hidden = false;
}
async function act(fn, args, then = refresh) {
  $("admin-error").hidden = true;
  try {
    const out = await rpc(fn, args);
    await then();
    return out;
  } catch (e) {
    fail(e);
    return null;
  }
}

// A field edited in place: its whole number sent as `key`, or, when it holds none (a number input reports bad text
// as "", which Number() would take for 0) or the database refuses it, the saved value back in the field.
function editNumber(input, saved, fn, args, key, what) {
  input.addEventListener("change", async () => {
    const text = input.value.trim();
    if (text === "" || !Number.isInteger(Number(text))) {
      input.value = saved;
      fail({ message: `${what}: must be a whole number` });
      return;
    }
    if (!(await act(fn, { ...args, patch: { [key]: Number(text) } }))) input.value = saved;
  });
}

// -- overview: queue, rules, people -------------------------------------------------------------------------------
let overview = null;
async function refresh() {
  overview = await rpc("project_overview", { project_id: project });
  $("project-name").textContent = overview.name;
  $("queue-rows").replaceChildren(...overview.queue.map((q) => {
    const tr = el("tr");
    tr.append(el("td", q.status.replaceAll("_", " ")), el("td", q.items), el("td", when(q.oldest)));
    return tr;
  }));
  $("queue-facts").textContent = `${overview.images} images · ${overview.open_flags} open flags · items locked for `
    + `${overview.lock_minutes} min · ${overview.review_stages} review stage(s)`;
  $("flag-count").textContent = overview.open_flags ? `(${overview.open_flags})` : "";
  renderRules();
  renderMembers();
  const ai = await rpc("ai_status", { project_id: project }).catch(() => null);
  if (ai) {
    const parts = Object.entries(ai.jobs).map(([stage, c]) => `${stage}: ${Object.entries(c).map(([s, n]) => `${n} ${s}`).join(", ")}`);
    $("ai-facts").textContent = parts.length ? parts.join(" · ") : "No AI jobs yet.";
  }
}

function renderRules() {
  $("rule-rows").replaceChildren(...overview.rules.map((r) => {
    const tr = el("tr");
    const prio = el("input", null, { type: "number", value: r.priority, className: "num" });
    prio.setAttribute("aria-label", `Priority of ${r.name}`);
    editNumber(prio, r.priority, "update_work_rule", { rule_id: r.id }, "priority", `Priority of ${r.name}`);
    const max = el("input", null, { type: "number", value: r.max_items, min: 0, className: "num" });
    max.setAttribute("aria-label", `Max items of ${r.name}`);
    editNumber(max, r.max_items, "update_work_rule", { rule_id: r.id }, "max_items", `Max items of ${r.name}`);
    const active = el("input", null, { type: "checkbox", checked: r.active });
    active.setAttribute("aria-label", `${r.name} active`);
    active.addEventListener("change", () => act("update_work_rule", { rule_id: r.id, patch: { active: active.checked } }));
    const al = el("select");
    al.setAttribute("aria-label", `Active learning of ${r.name}`);
    for (const [v, t] of [["", "off"], ["least_confidence", "least confidence"], ["entropy", "entropy"]]) {
      al.append(new Option(t, v, false, (r.active_learning || "") === v));
    }
    al.addEventListener("change", () => act("update_work_rule", { rule_id: r.id, patch: { active_learning: al.value || null } }));
    const gen = el("button", "Generate items", { type: "button" });
    gen.addEventListener("click", async () => {
      const out = await act("generate_work_items", { rule_id: r.id });
      if (out) gen.textContent = `${out.created} created`;
    });
    const cells = [r.name, prio, max, r.items, r.annotations_per_image, (r.source_classes || ["any"]).join(", "), active, al, gen];
    for (const c of cells) { const td = el("td"); td.append(c instanceof Node ? c : String(c)); tr.append(td); }
    return tr;
  }));
}

// The rule's filters as the api takes them; null for a metadata filter that is not (yet) valid JSON.
function ruleFilters(f) {
  const sources = f.source_classes.value.split(",").map((s) => s.trim()).filter(Boolean);
  let metadata = null;
  if (f.metadata_filter.value.trim()) {
    try { metadata = JSON.parse(f.metadata_filter.value); } catch { return null; }
  }
  return {
    source_classes: sources.length ? sources : null, upload_batch: f.upload_batch.value.trim() || null,
    metadata_filter: metadata, annotations_per_image: Number(f.annotations_per_image.value),
  };
}

// As the admin types: how many images the filters take and how many items generate would create.
let previewTimer = null;
function previewRule() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(async () => {
    const f = $("rule-form");
    const filters = ruleFilters(f);
    const out = $("rule-preview");
    if (!filters) { out.textContent = "metadata filter: not valid JSON"; return; }
    try {
      const p = await rpc("preview_work_rule", { project_id: project, ...filters, max_items: Number(f.max_items.value) });
      out.textContent = `${p.images} images match · ${p.items} items · generate would create ${p.would_create}`;
    } catch (e) {
      out.textContent = e.message;
    }
  }, 250);
}
$("rule-form").addEventListener("input", previewRule);
previewRule();

const numberOrNull = (input) => (input.value.trim() === "" ? null : Number(input.value));
$("rule-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const filters = ruleFilters(f);
  if (!filters) { $("rule-preview").textContent = "metadata filter: not valid JSON"; return; }
  const out = await act("create_work_rule", {
    // an empty or unreadable number goes as null, for the database to name, never as 0
    project_id: project, name: f.name.value, max_items: numberOrNull(f.max_items), priority: numberOrNull(f.priority),
    ...filters,
  });
  if (out) { f.reset(); $("rule-preview").textContent = ""; }
});

// Roles in this project (checkboxes), expertise and review level edited in place; the database checks them (and
// keeps your own admin role). They apply at the person's next request.
const PROJECT_ROLES = ["annotator", "reviewer", "admin"];
function profileInputs(m) {
  const list = (v) => v.split(",").map((x) => x.trim()).filter(Boolean);
  const roles = el("span", null, { className: "roles" });
  const boxes = PROJECT_ROLES.map((r) => {
    const box = el("input", null, { type: "checkbox", checked: m.roles.includes(r), value: r });
    box.setAttribute("aria-label", `${r[0].toUpperCase()}${r.slice(1)} of ${m.display_name}`);
    const label = el("label");
    label.append(box, ` ${r}`);
    roles.append(label);
    return box;
  });
  const expertise = el("input", null, { value: (m.expertise || []).join(", "), size: 12 });
  expertise.setAttribute("aria-label", `Expertise of ${m.display_name}`);
  const level = el("input", null, { type: "number", min: 1, max: 2, value: m.review_level });
  level.setAttribute("aria-label", `Review level of ${m.display_name}`);
  // no re-render after saving: the inputs already show what was saved, and re-rendering the table would throw away
  // what the admin is typing in the next field (the change event fires as focus moves on)
  // one save at a time per person, in order: two quick changes must not land in the opposite order
  let saving = Promise.resolve();
  const save = () => {
    saving = saving.then(() => act("set_project_roles", {
      project_id: project, user_id: m.id, roles: boxes.filter((b) => b.checked).map((b) => b.value),
      expertise: list(expertise.value), review_level: Number(level.value) }, async () => {}));
  };
  for (const input of [...boxes, expertise, level]) input.addEventListener("change", save);
  return [roles, expertise, level];
}

// Vacation cover: everything one annotator holds or owes goes to another annotator of the project at once.
function coverFor(m) {
  if (!m.roles.includes("annotator") || m.holding + m.waiting_for_edits === 0) return "";
  const others = overview.members.filter((o) => o.id !== m.id && o.roles.includes("annotator"));
  const pick = el("select");
  pick.setAttribute("aria-label", `Give ${m.display_name}'s items to`);
  pick.append(...others.map((o) => new Option(o.display_name, o.id)));
  const go = el("button", "Reassign", { type: "button" });
  go.addEventListener("click", async () => {
    const out = await act("reassign_user_items", { project_id: project, from_user: m.id, to_user: Number(pick.value) });
    if (out && out.kept.length) fail(new Error(out.kept.map((k) => `item ${k.item_id}: ${k.reason}`).join("; ")));
  });
  const box = el("span", null, { className: "cover" });
  box.append(pick, go);
  return others.length ? box : "";
}

function renderMembers() {
  $("member-rows").replaceChildren(...overview.members.map((m) => {
    const tr = el("tr");
    const vac = el("input", null, { type: "checkbox", checked: m.on_vacation });
    vac.setAttribute("aria-label", `${m.display_name} on vacation`);
    vac.addEventListener("change", () => act("set_vacation", { user_id: m.id, on_vacation: vac.checked }));
    vac.disabled = !m.manageable;  // the person's account is their organization admin's (or their own) to change
    for (const c of [m.display_name, m.email, ...profileInputs(m), m.holding, m.waiting_for_edits, vac,
                     coverFor(m)]) {
      const td = el("td"); td.append(c instanceof Node ? c : String(c)); tr.append(td);
    }
    return tr;
  }));
  rpc("list_users").then((users) => {
    const inside = new Set(overview.members.map((m) => m.id));
    $("nonmembers").replaceChildren(...users.filter((u) => !inside.has(u.id) && u.active)
      .map((u) => new Option(`${u.display_name} <${u.email}>`, u.id)));
  }).catch(fail);
}

$("member-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = Number($("nonmembers").value);
  const roles = [...e.target.querySelectorAll('input[name="roles"]:checked')].map((c) => c.value);
  if (id) act("add_project_member", { project_id: project, user_id: id, roles });
});

$("user-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const roles = [...f.querySelectorAll('input[name="roles"]:checked')].map((c) => c.value);
  const expertise = f.expertise.value.split(",").map((s) => s.trim()).filter(Boolean);
  const user = await act("create_user", { email: f.email.value, display_name: f.display_name.value,
                                          password: f.password.value, organization_id: overview.organization_id,
                                          analyst: roles.includes("analyst") }, async () => {});
  if (user) {
    await act("add_project_member", { project_id: project, user_id: user.id,
                                      roles: roles.filter((r) => r !== "analyst"), expertise,
                                      review_level: Number(f.review_level.value) });
    f.reset();
  }
});

// -- upload (XMLHttpRequest: fetch reports no upload progress) -------------------------------------------------
function uploadOne(file) {
  const li = el("li");
  const name = el("span", file.name, { className: "name" });
  const bar = el("progress", null, { max: 100, value: 0 });
  bar.setAttribute("aria-label", `Upload of ${file.name}`);
  const state = el("span", "waiting", { className: "state" });
  li.append(name, bar, state);
  $("up-list").prepend(li);
  return new Promise((resolve) => {
    const body = new FormData();
    body.append("files", file, file.name);
    body.append("source_class", $("up-source").value);
    if ($("up-batch").value) body.append("batch", $("up-batch").value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/projects/${project}/images`);
    xhr.setRequestHeader("x-csrf-token", csrf());
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100); };
    xhr.onload = () => {
      let out = {};
      try { out = JSON.parse(xhr.responseText); } catch { /* keep the status */ }
      const f = out.files?.[0];
      bar.value = 100;
      if (xhr.status === 200 && f) {
        state.textContent = f.duplicate ? `duplicate of image ${f.id}` : `image ${f.id}`;
        li.className = f.duplicate ? "dup" : "ok";
      } else {
        state.textContent = out.message || `failed (${xhr.status})`;
        li.className = "bad";
      }
      resolve();
    };
    xhr.onerror = () => { state.textContent = "network error"; li.className = "bad"; resolve(); };
    state.textContent = "uploading";
    xhr.send(body);
  });
}

async function uploadAll(files) {
  for (const f of files) await uploadOne(f);  // one at a time: steady progress, no thundering herd
  refresh();
}
const drop = $("dropzone");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  uploadAll([...e.dataTransfer.files]);
});
$("up-files").addEventListener("change", (e) => { uploadAll([...e.target.files]); e.target.value = ""; });

// -- flags --------------------------------------------------------------------------------------------------------
async function loadFlags() {
  const flags = await rpc("open_flags", { project_id: project });
  $("flag-list").replaceChildren(...(flags.length ? flags.map((f) => {
    const li = el("li");
    const img = el("img", null, { src: `/images/${f.image_id}/thumb`, alt: `Image ${f.image_id}`, loading: "lazy", width: 96 });
    const text = el("div");
    text.append(el("strong", f.reason.replaceAll("_", " ")), el("p", f.comment || "—"), el("small", `item ${f.item_id} · ${when(f.created_at)}`));
    const keep = el("button", "Restore to the queue", { type: "button" });
    keep.addEventListener("click", () => act("resolve_flag", { flag_id: f.id, resolution: "restore" }, loadFlagsAndRefresh));
    const remove = el("button", "Remove the image", { type: "button" });
    remove.addEventListener("click", () => act("resolve_flag", { flag_id: f.id, resolution: "remove_image" }, loadFlagsAndRefresh));
    li.append(img, text, keep, remove);
    return li;
  }) : [el("li", "No open flags.")]));
}
async function loadFlagsAndRefresh() { await loadFlags(); await refresh(); }

// -- taxonomy -----------------------------------------------------------------------------------------------------
async function loadTaxonomy() {
  const nodes = await rpc("taxonomy_tree", { project_id: project });
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const kids = new Map();
  for (const n of nodes) {
    const k = n.parent_id ?? 0;
    if (!kids.has(k)) kids.set(k, []);
    kids.get(k).push(n);
  }
  const build = (parent) => (kids.get(parent) || []).map((n) => {
    const li = el("li");
    const b = el("button", `${n.name} (${n.code})${n.active ? "" : " — inactive"}`, { type: "button", className: "link" });
    b.addEventListener("click", () => {
      const f = $("node-form");
      f.code.value = n.code; f.name.value = n.name; f.parent_code.value = byId.get(n.parent_id)?.code || "";
      f.synonyms.value = (n.synonyms || []).join(", "); f.icd10.value = n.icd10 || ""; f.snomed_ct.value = n.snomed_ct || "";
      f.next_steps.value = n.next_steps || ""; f.active.checked = n.active;
      f.name.focus();
    });
    li.append(b);
    if (kids.has(n.id)) { const ul = el("ul"); ul.append(...build(n.id)); li.append(ul); }
    return li;
  });
  $("tax-tree").replaceChildren(...build(0));
}

$("node-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const out = await act("upsert_taxonomy_node", {
    project_id: project, code: f.code.value.trim(), name: f.name.value.trim(), parent_code: f.parent_code.value.trim() || null,
    synonyms: f.synonyms.value.split(",").map((s) => s.trim()).filter(Boolean), icd10: f.icd10.value.trim() || null,
    snomed_ct: f.snomed_ct.value.trim() || null, next_steps: f.next_steps.value, active: f.active.checked,
  }, loadTaxonomy);
  if (out) f.reset();
});

// -- descriptor schema --------------------------------------------------------------------------------------------
async function loadSchema() {
  $("schema-json").value = JSON.stringify(await rpc("descriptor_schema", { project_id: project }), null, 2);
}
$("schema-save").addEventListener("click", async () => {
  $("schema-error").hidden = true;
  let fields;
  try {
    fields = JSON.parse($("schema-json").value);
  } catch (e) {
    $("schema-error").textContent = `Not valid JSON: ${e.message}`;
    $("schema-error").hidden = false;
    return;
  }
  try {
    await rpc("set_descriptor_schema", { project_id: project, fields });
    $("schema-state").textContent = `Saved ${new Date().toLocaleTimeString()}`;
    await loadSchema();
  } catch (e) {
    $("schema-error").textContent = e.message;
    $("schema-error").hidden = false;
  }
});

refresh().catch(fail);
loadFlags().catch(fail);
loadTaxonomy().catch(fail);
loadSchema().catch(fail);
