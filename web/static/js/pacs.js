// The admin page's PACS panel: the project's DICOMweb URL, a series search (QIDO-RS through the app), and the
// import of the chosen series (WADO-RS through the app; each instance de-identified like an upload).
import { ApiError, csrf, rpc } from "./api.js";

const $ = (id) => document.getElementById(id);
const project = Number($("admin").dataset.project);
const status = (text) => { $("pacs-status").textContent = text; };

async function call(method, path, body) {
  const r = await fetch(path, {
    method, credentials: "same-origin",
    headers: { "x-csrf-token": csrf(), ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const out = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, out);
  return out;
}

async function loadSource() {
  try {
    const s = await rpc("dicomweb_source", { project_id: project });
    $("pacs-source").base_url.value = s.base_url || "";  // null: none configured yet
  } catch (e) {
    status(e.message);
  }
}

$("pacs-source").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const s = await rpc("set_dicomweb_source", { project_id: project, base_url: e.target.base_url.value });
    status(`Saved: ${s.base_url}`);
  } catch (err) { status(err.message); }
});

function row(s) {
  const tr = document.createElement("tr");
  const box = Object.assign(document.createElement("input"), { type: "checkbox", value: JSON.stringify(
    { study_uid: s.study_uid, series_uid: s.series_uid }) });
  box.setAttribute("aria-label", `Series ${s.series_number ?? ""} ${s.series_description ?? ""} of ${s.study_date ?? ""}`);
  box.addEventListener("change", chosen);
  const td = document.createElement("td");
  td.append(box);
  tr.append(td);
  for (const v of [s.study_date, s.modality, s.body_part, s.series_description ?? s.series_number,
                   s.study_description, s.instances]) {
    tr.append(Object.assign(document.createElement("td"), { textContent: v ?? "" }));
  }
  return tr;
}

function chosen() {
  const n = document.querySelectorAll("#pacs-rows input:checked").length;
  $("pacs-import").disabled = n === 0;
  $("pacs-import").textContent = n ? `Import ${n} series` : "Import chosen series";
}

$("pacs-search").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = new URLSearchParams();
  for (const name of ["date", "modality", "body_part"]) {
    const v = e.target[name].value.trim();
    if (v) q.set(name, name === "date" ? v : v.toUpperCase());
  }
  status("Searching…");
  try {
    const out = await call("GET", `/projects/${project}/dicomweb/series?${q}`);
    $("pacs-rows").replaceChildren(...out.series.map(row));
    $("pacs-table").hidden = false;
    $("pacs-all").checked = false;
    chosen();
    status(`${out.series.length} series`);
  } catch (err) { status(err.message); }
});

$("pacs-all").addEventListener("change", (e) => {
  for (const b of document.querySelectorAll("#pacs-rows input")) b.checked = e.target.checked;
  chosen();
});

$("pacs-import").addEventListener("click", async () => {
  const series = [...document.querySelectorAll("#pacs-rows input:checked")].map((b) => JSON.parse(b.value));
  $("pacs-import").disabled = true;
  status(`Importing ${series.length} series…`);
  try {
    const out = await call("POST", `/projects/${project}/dicomweb/import`,
                           { series, source_class: $("up-source").value || null, batch: $("up-batch").value || null });
    const ok = out.files.filter((f) => f.status === 200);
    const dup = ok.filter((f) => f.duplicate).length;
    const refused = out.files.length - ok.length;
    status(`Imported ${ok.length - dup} image(s)` + (dup ? `, ${dup} already here` : "")
           + (refused ? `, ${refused} refused (${out.files.find((f) => f.status !== 200).error})` : ""));
  } catch (err) {
    status(err.message);
  } finally {
    chosen();
  }
});

loadSource();
