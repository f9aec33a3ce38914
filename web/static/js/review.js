// The reviewer workspace: next review item, the image with the annotation's regions, revision history with a diff,
// the AI suggestion for comparison, approve (A) or request changes with a comment (C).
import { rpc } from "./api.js";
import { render as markdown } from "./markdown.js";
import { taxonomyNodes } from "./taxonomy.js";
import { renderAi, setupViewer, typing } from "./viewerbar.js";

const $ = (id) => document.getElementById(id);
const project = Number($("workspace").dataset.project);
const { viewer, show: showImage, keys: viewerKeys } = setupViewer({ readOnly: true });
let item = null;
let tree = null;

async function start() {
  $("start-message").textContent = "";
  const out = await rpc("next_review", { project_id: project }).catch((e) => ({ error: e.message }));
  if (out.error || !out.item) {
    $("start-message").textContent = out.error || "Nothing to review right now.";
    $("review").hidden = true;
    $("start").hidden = false;
    $("start-btn").focus();
    return;
  }
  item = out.item;
  tree = await taxonomyNodes(project);
  $("start").hidden = true;
  $("review").hidden = false;
  $("item-title").textContent = `Item ${item.id} · revision ${item.revision_seq} · stage ${item.review_stage}`;
  const rev = item.latest_revision;
  await showImage(item);
  viewer.setRegions(rev?.content?.regions || []);
  renderAnnotation(rev?.content || {});
  renderHistory(item.revisions || [], item.reviews || []);
  renderAi($("ai-panel"), item.ai);
  const hints = item.hints || [];
  $("hints").hidden = !hints.length;
  $("hint-list").replaceChildren(...hints.map((h) => { const li = document.createElement("li"); li.textContent = h.message; return li; }));
  $("comment").value = "";
  $("decision-error").hidden = true;
}

const className = (id) => { const n = tree?.get(id); return n ? `${n.name} (${n.code})` : `class ${id}`; };

function renderAnnotation(c) {
  const dl = $("annotation");
  dl.replaceChildren();
  const add = (k, v, html = false) => {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd");
    if (html) dd.innerHTML = v; else dd.textContent = v;
    dl.append(dt, dd);
  };
  add("Class", c.class ? className(c.class) : "—");
  for (const [k, v] of Object.entries(c.descriptors || {})) add(k.replaceAll("_", " "), Array.isArray(v) ? v.join(", ") : String(v));
  if (c.confidence) add("Confidence", c.confidence);
  add("Description", c.description ? markdown(c.description) : "—", true);  // escaped before rendering
  add("Regions", String((c.regions || []).length));
}

function diff(a = {}, b = {}) {
  const out = [];
  if (a.class !== b.class) out.push(`class: ${a.class ? className(a.class) : "—"} → ${b.class ? className(b.class) : "—"}`);
  const keys = new Set([...Object.keys(a.descriptors || {}), ...Object.keys(b.descriptors || {})]);
  for (const k of keys) {
    const x = JSON.stringify(a.descriptors?.[k] ?? null), y = JSON.stringify(b.descriptors?.[k] ?? null);
    if (x !== y) out.push(`${k}: ${x} → ${y}`);
  }
  if ((a.description || "") !== (b.description || "")) out.push("description changed");
  if (JSON.stringify(a.regions || []) !== JSON.stringify(b.regions || [])) {
    out.push(`regions: ${(a.regions || []).length} → ${(b.regions || []).length}`);
  }
  return out;
}

function renderHistory(revisions, reviews) {
  $("history").replaceChildren(...revisions.map((r, i) => {
    const li = document.createElement("li");
    const head = document.createElement("strong");
    head.textContent = `Revision ${r.revision_seq} · ${new Date(r.created_at).toLocaleString()}`;
    li.append(head);
    const changes = i ? diff(revisions[i - 1].content, r.content) : ["first revision"];
    const ul = document.createElement("ul");
    ul.className = "diff";
    ul.append(...changes.map((t) => { const x = document.createElement("li"); x.textContent = t; return x; }));
    li.append(ul);
    for (const v of reviews.filter((v) => v.revision_seq === r.revision_seq)) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = `${v.decision.replaceAll("_", " ")} at stage ${v.stage}${v.comment ? `: ${v.comment}` : ""}`;
      li.append(p);
    }
    return li;
  }));
}

async function decide(kind) {
  if (!item) return;
  const comment = $("comment").value.trim();
  if (kind === "changes" && !comment) {
    $("decision-error").textContent = "Say what should change: the annotator sees this comment.";
    $("decision-error").hidden = false;
    $("comment").focus();
    return;
  }
  try {
    if (kind === "approve") await rpc("approve", { item_id: item.id, comment });
    else await rpc("request_changes", { item_id: item.id, comment });
  } catch (e) {
    $("decision-error").textContent = e.message;
    $("decision-error").hidden = false;
    return;
  }
  $("start-message").textContent = kind === "approve" ? "Approved." : "Changes requested.";
  item = null;
  start();
}

async function loadTemplates() {
  const sel = $("template-pick");
  sel.replaceChildren(new Option("Insert template…", ""));
  try { for (const t of await rpc("my_templates")) sel.append(new Option(t.name, t.body)); } catch { /* optional */ }
}
$("template-pick").addEventListener("change", (e) => {
  if (!e.target.value) return;
  $("comment").value += ($("comment").value ? "\n" : "") + e.target.value;
  e.target.value = "";
});
$("save-template").addEventListener("click", async () => {
  const body = $("comment").value.trim();
  const name = body && prompt("Template name");
  if (!name) return;
  await rpc("save_template", { name, body });
  loadTemplates();
});

document.addEventListener("keydown", (e) => {
  if (document.querySelector("dialog[open]") || typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
  if (!item && e.key === "Enter" && !$("start-btn").disabled) { e.preventDefault(); start(); return; }
  if (e.key === "?") { e.preventDefault(); $("help").showModal(); return; }
  if (!item) return;
  if (e.key === "a" || e.key === "A") { e.preventDefault(); decide("approve"); return; }
  if (e.key === "c" || e.key === "C") {
    e.preventDefault();
    if ($("comment").value.trim()) decide("changes"); else $("comment").focus();
    return;
  }
  viewerKeys(e);
});
$("start-btn").addEventListener("click", start);
$("approve-btn").addEventListener("click", () => decide("approve"));
$("changes-btn").addEventListener("click", () => decide("changes"));
loadTemplates();
$("start-btn").disabled = false;  // ready
$("start-btn").focus();
