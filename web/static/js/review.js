// The reviewer workspace: next review item, the image with the annotation's regions (masks and lines included),
// revision history with a diff (the previous revision's masks dashed over the image, and the Dice of each label's
// masks between revisions), the AI suggestion for comparison, approve (A) or request changes with a comment (C).
import { rpc } from "./api.js";
import { contours } from "./contours.js";
import { render as markdown } from "./markdown.js";
import { Mask } from "./mask.js";
import { dice, union } from "./rle.js";
import { taxonomyNodes } from "./taxonomy.js";
import { renderAi, setupViewer, typing } from "./viewerbar.js";

const $ = (id) => document.getElementById(id);
const project = Number($("workspace").dataset.project);
const { viewer, show: showImage, keys: viewerKeys, maskUi } = setupViewer({ readOnly: true, project });
let item = null;
let tree = null;
// the project's descriptor schema: the annotator's form order, labels and units (not raw keys)
let fields = [];
const schemaReady = rpc("descriptor_schema", { project_id: project }).then((f) => { fields = f || []; }).catch(() => {});
const fieldOf = (k) => fields.find((f) => f.key === k);
const fieldName = (k) => fieldOf(k)?.label || k.replaceAll("_", " ");
function fieldValue(k, v) {
  if (v === null || v === undefined) return "—";
  const f = fieldOf(k);
  const word = (x) => (typeof x === "boolean" ? (x ? "yes" : "no") : String(x).replaceAll("_", " "));
  const text = Array.isArray(v) ? v.map(word).join(", ") : word(v);
  return f?.unit && typeof v === "number" ? `${text} ${f.unit}` : text;
}
function descriptorKeys(...contents) {
  const present = new Set(contents.flatMap((c) => Object.keys(c?.descriptors || {})));
  return [...fields.map((f) => f.key).filter((k) => present.has(k)), ...[...present].filter((k) => !fieldOf(k))];
}

async function start() {
  $("start-message").textContent = "";
  const out = await rpc("next_review", { project_id: project }).catch((e) => ({ error: e.message }));
  if (out.error || !out.item) {
    $("start-message").textContent = out.error || "Nothing to review right now.";
    $("review").hidden = true;
    // the last item's image goes too: nothing on screen may look like work still to review
    document.querySelector(".viewer-pane .stage").classList.add("idle");
    $("start").hidden = false;
    $("start-btn").focus();
    return;
  }
  item = out.item;
  document.querySelector(".viewer-pane .stage").classList.remove("idle");
  tree = await taxonomyNodes(project);
  await schemaReady;
  $("start").hidden = true;
  $("review").hidden = false;
  $("item-title").textContent = `Item ${item.id} · revision ${item.revision_seq} · stage ${item.review_stage}`;
  const rev = item.latest_revision;
  await showImage(item);
  viewer.setRegions(rev?.content?.regions || []);
  await maskUi.open(item);
  renderAnnotation(rev?.content || {});
  renderHistory(item.revisions || [], item.reviews || []);
  showPrevious(item.revisions || []);
  renderAi($("ai-panel"), item.ai);
  document.querySelector(".side").scrollTop = 0;  // each item from the top of the panel
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
  for (const k of descriptorKeys(c)) add(fieldName(k), fieldValue(k, c.descriptors[k]));
  if (c.confidence) add("Confidence", c.confidence);
  add("Description", c.description ? markdown(c.description) : "—", true);  // escaped before rendering
  const kinds = {};
  for (const r of c.regions || []) { const k = r.type === "mask" ? `mask ${r.label}` : r.type; kinds[k] = (kinds[k] || 0) + 1; }
  add("Regions", (c.regions || []).length
    ? `${c.regions.length}: ${Object.entries(kinds).map(([k, n]) => (n > 1 ? `${n} × ${k}` : k)).join(", ")}` : "0");
}

// Each label's masks (their union when several) of one revision's regions: label → RLE.
function masksByLabel(regions = []) {
  const by = new Map();
  for (const r of regions) if (r.type === "mask") by.set(r.label, [...(by.get(r.label) || []), r.rle]);
  return new Map([...by].map(([label, list]) => [label, union(list)]));
}

// "mask lesion: Dice 0.87" for every label with a mask in either revision
function maskDiff(a = [], b = []) {
  const before = masksByLabel(a), after = masksByLabel(b);
  const out = [];
  for (const label of new Set([...before.keys(), ...after.keys()])) {
    if (!before.has(label)) out.push(`mask ${label}: new`);
    else if (!after.has(label)) out.push(`mask ${label}: removed`);
    else out.push(`mask ${label}: Dice ${dice(before.get(label), after.get(label))?.toFixed(3) ?? "—"} with the previous revision`);
  }
  return out;
}

// The previous revision's masks, dashed over the image (a checkbox hides them).
function showPrevious(revisions) {
  const prev = revisions.length > 1 ? revisions[revisions.length - 2] : null;
  const masks = (prev?.content?.regions || []).filter((r) => r.type === "mask");
  const toggle = $("prev-toggle");
  toggle.hidden = !masks.length;
  $("prev-label").textContent = prev ? `Revision ${prev.revision_seq}'s masks, dashed` : "";
  const shapes = [];
  for (const r of masks) {
    try {
      shapes.push({ type: "outline", loops: contours(Mask.fromRle(r.rle)), colour: "#ffffff", label: r.label });
    } catch { /* a mask that does not decode is not drawn */ }
  }
  const apply = () => viewer.setOverlays($("show-prev").checked ? shapes : [], "revision");
  $("show-prev").onchange = apply;
  apply();
}

function diff(a = {}, b = {}) {
  const out = [];
  if (a.class !== b.class) out.push(`class: ${a.class ? className(a.class) : "—"} → ${b.class ? className(b.class) : "—"}`);
  for (const k of descriptorKeys(a, b)) {
    const x = a.descriptors?.[k] ?? null, y = b.descriptors?.[k] ?? null;
    if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`${fieldName(k)}: ${fieldValue(k, x)} → ${fieldValue(k, y)}`);
  }
  if ((a.description || "") !== (b.description || "")) out.push("description changed");
  if (JSON.stringify(a.regions || []) !== JSON.stringify(b.regions || [])) {
    out.push(`regions: ${(a.regions || []).length} → ${(b.regions || []).length}`);
  }
  out.push(...maskDiff(a.regions, b.regions));
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
