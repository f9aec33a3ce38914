// The annotator workspace: take the next item, annotate, autosave, keep the lock alive, submit, reject, skip, next.
import { ApiError, rpc } from "./api.js";
import { DescriptorsForm } from "./descriptors.js";
import { render as markdown } from "./markdown.js";
import { Measurements } from "./measurements.js";
import { ClassPicker } from "./taxonomy.js";
import { renderAi, setupViewer, typing } from "./viewerbar.js";

const AUTOSAVE_MS = 4000;
const HEARTBEAT_MS = 60000;
const $ = (id) => document.getElementById(id);
const project = Number($("workspace").dataset.project);

let item = null;         // the item being annotated
let chosen = null;       // the chosen class node {id, code, name}
let dirty = false;
let saving = null;
let lockExpires = null;
let lost = false;
let timers = [];

const form = $("annotation");
const { viewer, show: showImage, keys: viewerKeys, maskUi } = setupViewer({
  project, onChange: () => { renderRegions(); touch(); measurements.schedule(); } });
const picker = new ClassPicker(form, project, (node) => { setClass(node); touch(); });
let descriptors;
const measurements = new Measurements($("measurements"), {
  itemId: () => item?.id, regions: () => viewer.serialise(),
  onDiameter: (mm) => {  // the Diameter descriptor (number, mm), when the project's schema has one
    const input = $("d-diameter_mm");
    if (!input) return;
    input.value = String(mm);
    input.dispatchEvent(new Event("input", { bubbles: true }));  // as if typed: saved with the next autosave
  },
  currentDiameter: () => $("d-diameter_mm")?.value ?? null,
});

// -- the item -----------------------------------------------------------------------------------------------------
async function start() {
  $("start-message").textContent = "";
  let out;
  try {
    out = await rpc("next_item", { project_id: project });
  } catch (e) {
    $("start-message").textContent = e.message;
    return;
  }
  if (!out.item) {
    $("start-message").textContent = out.reason === "on_vacation" ? "You are marked as on vacation."
      : "Nothing to annotate right now. Well done.";
    showStart();
    return;
  }
  await open(out.item);
  prefetch(out.upcoming_image);
}

// the image of the item likely to come next, fetched while this one is annotated (then it opens from the cache)
const prefetched = [];
function prefetch(url) {
  if (!url) return;
  const img = new Image();
  img.decoding = "async";
  img.src = url;
  prefetched.push(img);  // kept referenced until the next one, so the fetch is not dropped
  if (prefetched.length > 2) prefetched.shift();
}

async function open(next) {
  item = next;
  lost = false;
  $("lock-lost").hidden = true;
  form.hidden = false;
  $("start").hidden = true;
  form.querySelectorAll("button, input, select, textarea").forEach((el) => { el.disabled = false; });
  const sentBack = item.sent_back;  // decided in SQL
  $("item-title").textContent = `Item ${item.id}${sentBack ? " (edits requested)" : ""}`;
  // a draft wins; else, for edits requested, the revision the reviewer saw
  const content = item.draft || (sentBack ? item.latest_revision?.content : null) || {};
  const comment = sentBack ? item.last_review.comment : "";
  $("review-comment").hidden = !comment;
  $("review-comment").textContent = comment ? `Reviewer asked for changes: ${comment}` : "";
  renderAi($("ai-panel"), item.ai, { onAccept: (c) => { setClass({ id: c.node_id, code: c.code, name: c.name }); touch(); } });
  await showImage(item);
  await fill(content);
  await maskUi.open(item);
  // every item opens at the top of the side panel: a reviewer's comment is never left scrolled off-screen
  document.querySelector(".side").scrollTop = 0;
  lockExpires = item.lock_expires_at ? new Date(item.lock_expires_at) : null;
  dirty = false;
  $("save-state").textContent = item.draft ? "Draft restored" : "Not saved yet";
  clearTimers();
  timers.push(setInterval(autosave, AUTOSAVE_MS), setInterval(heartbeat, HEARTBEAT_MS), setInterval(tick, 1000));
  tick();
  refreshMyWork();
}

async function fill(content) {
  chosen = null;
  $("class-current").textContent = "None chosen";
  if (content.class) {
    const node = await picker.nodeById(content.class);
    if (node) setClass(node);
  }
  descriptors.set(content.descriptors || {});
  $("confidence").value = content.confidence || "";
  $("description").value = content.description || "";
  $("description-preview").hidden = true;
  for (const p of form.querySelectorAll(".field-error")) p.hidden = true;
  try {
    viewer.setRegions(content.regions || []);
  } catch (e) {  // a stored mask that does not decode: say so rather than lose the item
    viewer.setRegions((content.regions || []).filter((r) => r.type !== "mask"));
    $("regions-error").textContent = `A stored mask could not be read (${e.message}); it is not shown.`;
    $("regions-error").hidden = false;
  }
  renderRegions();
  measurements.reset();
  measurements.run();
  $("form-error").hidden = true;
}

function setClass(node) {
  chosen = { id: node.id, code: node.code, name: node.name };
  $("class-current").textContent = `${node.name} (${node.code})`;
  $("class-error").hidden = true;
}

function content() {
  const c = { descriptors: descriptors.value(), regions: viewer.serialise() };
  if (chosen) c.class = chosen.id;
  const text = $("description").value;
  if (text.trim()) c.description = text;
  if ($("confidence").value) c.confidence = $("confidence").value;
  return c;
}

function touch() {
  if (!item || lost) return;
  dirty = true;
  $("save-state").textContent = "Unsaved changes";
}

// -- saving and the lock ------------------------------------------------------------------------------------------
async function autosave() {
  if (!item || !dirty || saving || lost) return;
  dirty = false;
  const id = item.id;
  saving = rpc("save_draft", { item_id: id, content: content() })
    .then((r) => {
      lockExpires = new Date(r.lock_expires_at);
      $("save-state").textContent = `Saved ${new Date(r.saved_at).toLocaleTimeString()}`;
    })
    .catch((e) => {
      if (e.status === 409 || e.status === 404) return lockLost();
      dirty = true;  // try again on the next tick
      $("save-state").textContent = e.status === 400 ? `Not saved: ${e.message}` : "Not saved (offline?) — retrying";
    })
    .finally(() => { saving = null; });
  await saving;
}

async function heartbeat() {
  if (!item || lost || saving) return;
  try {
    const r = await rpc("heartbeat", { item_id: item.id });
    lockExpires = new Date(r.lock_expires_at);
  } catch (e) {
    if (e.status === 409 || e.status === 404) lockLost();
  }
}

function tick() {
  if (!lockExpires) { $("lock-timer").textContent = ""; return; }
  const s = Math.max(0, Math.round((lockExpires - Date.now()) / 1000));
  $("lock-timer").textContent = `lock ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  $("lock-timer").classList.toggle("warn", s < 120);
}

// 409: the lock expired or the item moved on; 404: someone else took it over after it expired (no longer yours)
function lockLost() {
  lost = true;
  clearTimers();
  $("lock-lost").hidden = false;
  form.querySelectorAll("input, select, textarea, .actions button").forEach((el) => { el.disabled = true; });
  $("next-after-loss").disabled = false;
}

function clearTimers() { timers.forEach(clearInterval); timers = []; }

// -- actions ------------------------------------------------------------------------------------------------------
async function submit() {
  if (!item || lost) return;
  for (const p of form.querySelectorAll(".field-error")) p.hidden = true;
  $("form-error").hidden = true;
  if (!chosen) {
    $("class-error").textContent = "Choose a class first.";
    $("class-error").hidden = false;
    $("class-search").focus();
    return;
  }
  if (saving) await saving;
  try {
    await rpc("submit_annotation", { item_id: item.id, content: content() });
  } catch (e) {
    return showError(e);
  }
  done("Submitted");
}

function showError(e) {
  if (!(e instanceof ApiError)) throw e;
  if (e.status === 409 || e.status === 404) return lockLost();
  const f = e.field || "";
  const msg = e.message.replace(/^[\w.[\]]+: /, "");
  if (f === "class") { $("class-error").textContent = msg; $("class-error").hidden = false; return; }
  if (f.startsWith("descriptors") && descriptors.showError(f, msg)) return;
  if (f === "description") { $("description-error").textContent = msg; $("description-error").hidden = false; return; }
  if (f.startsWith("regions")) { $("regions-error").textContent = e.message; $("regions-error").hidden = false; return; }
  $("form-error").textContent = e.message;
  $("form-error").hidden = false;
}

async function reject() {
  if (!item || lost) return;
  $("reject-error").hidden = true;
  $("reject-dialog").showModal();
  $("reject-reason").focus();
}

$("reject-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    await rpc("reject_image", { item_id: item.id, reason: $("reject-reason").value, comment: $("reject-comment").value });
  } catch (err) {
    $("reject-error").textContent = err.message;
    $("reject-error").hidden = false;
    return;
  }
  $("reject-dialog").close();
  $("reject-comment").value = "";
  done("Image rejected");
});
$("reject-cancel").addEventListener("click", () => $("reject-dialog").close());

async function skip() {
  if (!item || lost) return;
  try {
    await rpc("release_item", { item_id: item.id });
  } catch (e) {
    $("form-error").textContent = e.status === 409 ? "This item came back for your edits: it stays with you." : e.message;
    $("form-error").hidden = false;
    return;
  }
  done("Skipped");
}

function done(what) {
  clearTimers();
  measurements.reset();
  item = null;
  lockExpires = null;
  dirty = false;
  $("start-message").textContent = `${what}.`;
  start();  // straight on to the next item
}

function showStart() {
  form.hidden = true;
  $("start").hidden = false;
  $("start-btn").focus();
  refreshMyWork();
}

async function refreshMyWork() {
  try {
    const q = await rpc("my_queue", { project_id: project });
    $("mywork").textContent = `Today ${q.submitted_today} submitted · ${q.edits_requested.length} waiting for your edits`
      + ` · ${q.in_review} in review · ${q.done} done`;
    $("queue-summary").textContent = q.edits_requested.length ? `${q.edits_requested.length} item(s) wait for your edits.` : "";
    return q;
  } catch {
    return null;
  }
}

// -- description --------------------------------------------------------------------------------------------------
$("description").addEventListener("input", touch);
$("confidence").addEventListener("change", touch);
$("preview-toggle").addEventListener("click", () => {
  const p = $("description-preview");
  p.hidden = !p.hidden;
  $("description").hidden = !p.hidden;
  if (!p.hidden) p.innerHTML = markdown($("description").value);  // escaped first: no raw HTML renders
  $("preview-toggle").textContent = p.hidden ? "Preview" : "Edit";
});
async function loadTemplates() {
  const sel = $("template-pick");
  try {
    const list = await rpc("my_templates");
    for (const t of list) sel.append(new Option(t.name, t.body));
  } catch { /* templates are a convenience */ }
  sel.addEventListener("change", () => {
    if (!sel.value) return;
    const ta = $("description");
    const at = ta.selectionStart ?? ta.value.length;
    ta.value = ta.value.slice(0, at) + sel.value + ta.value.slice(at);
    sel.value = "";
    touch();
    ta.focus();
  });
}

// -- regions list -------------------------------------------------------------------------------------------------
function regionSize(r) {
  if (r.type === "bbox") return `${r.w}×${r.h} px`;
  if (r.type === "polygon") return `${r.points.length} points${r.drawn ? ` (${r.drawn})` : ""}`;
  if (r.type === "line") return viewer.lengthText(r.points);
  if (r.type === "mask") return r.mask.area ? `${r.mask.area.toLocaleString()} px` : "empty (not saved)";
  return `at ${r.x}, ${r.y}`;
}

function renderRegions() {
  const list = $("regions");
  const regions = viewer.savedRegions || viewer.regions;
  const labels = maskUi.labels();
  list.replaceChildren(...regions.map((r, i) => {
    const li = document.createElement("li");
    li.innerHTML = `<button type="button" class="link sel"></button> <select aria-label="Label of region ${i + 1}"></select> <button type="button" class="link del" aria-label="Delete region ${i + 1}">✕</button>`;
    li.querySelector(".sel").textContent = `${i + 1}. ${r.type} ${regionSize(r)}`;
    li.querySelector(".sel").addEventListener("click", () => viewer.select(i));
    const pick = li.querySelector("select");
    // the project's region labels; a mask must have one, the other shapes may go without
    const options = [...labels];
    if (r.label && !options.includes(r.label)) options.push(r.label);
    pick.append(...(r.type === "mask" ? [] : [new Option("— no label", "")]), ...options.map((l) => new Option(l, l)));
    pick.value = r.label || "";
    pick.addEventListener("change", () => { viewer.select(i); viewer.labelSelected(pick.value); });
    li.querySelector(".del").addEventListener("click", () => { viewer.select(i); viewer.deleteSelected(); });
    return li;
  }));
}

// -- keys ---------------------------------------------------------------------------------------------------------
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); return; }
  if (e.altKey && /^[1-5]$/.test(e.key)) { e.preventDefault(); picker.pickRecent(Number(e.key) - 1); return; }
  if (document.querySelector("dialog[open]")) return;
  if (typing(e)) return;
  if (!item && e.key === "Enter" && !$("start").hidden && !$("start-btn").disabled) { e.preventDefault(); start(); return; }
  if (e.key === "?") { e.preventDefault(); $("help").showModal(); return; }
  if (!item) return;
  if (e.key === "/") { e.preventDefault(); $("class-search").focus(); return; }
  if (e.key === "r" || e.key === "R") { e.preventDefault(); reject(); return; }
  if (e.key === "s" || e.key === "S") { e.preventDefault(); skip(); return; }
  viewerKeys(e);
});
form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
$("start-btn").addEventListener("click", start);
$("skip-btn").addEventListener("click", skip);
$("reject-btn").addEventListener("click", reject);
$("next-after-loss").addEventListener("click", () => { item = null; start(); });
// save on leaving the page or the window (blur), so nothing typed is lost
window.addEventListener("blur", autosave);
document.addEventListener("visibilitychange", () => { if (document.hidden) autosave(); });
form.addEventListener("focusout", () => { if (dirty) autosave(); });

// -- boot ---------------------------------------------------------------------------------------------------------
(async () => {
  const schema = await rpc("descriptor_schema", { project_id: project });
  descriptors = new DescriptorsForm($("descriptors"), schema, touch);
  $("start-btn").disabled = false;  // ready: the form an item opens into exists
  maskUi.ready.then(renderRegions);  // the label choices, once the project's region labels are in
  loadTemplates();
  const q = await refreshMyWork();
  // resume: an item I hold or one sent back to me opens at once (a reload finds the draft)
  if (q && (q.in_progress.length || q.edits_requested.length)) await start();
  else showStart();
})();
