// The viewer's toolbar and keys, shared by both workspaces: view controls, filters, original/AI crop, AI box, the
// drawing tools and undo/redo, the mask toolbar (maskbar.js), and for DICOM images window/level (presets, drag) and
// frames.
import { DicomFrames } from "./dicomview.js";
import { setupMaskBar } from "./maskbar.js";
import { MaskTool } from "./masktool.js";
import { SegmentTool } from "./segmenttool.js";
import { Viewer } from "./viewer.js";

const TOOL_KEYS = { h: "pan", b: "bbox", p: "polygon", d: "freehand", c: "spline", ".": "point", m: "ruler",
                    k: "mask", e: "erase", g: "segment" };

export function typing(e) {
  const t = e.target;
  return t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName) && t.type !== "checkbox"
    && t.type !== "radio" && t.type !== "range";
}

export function setupViewer({ onChange, readOnly = false, project } = {}) {
  const status = document.getElementById("v-status");
  const viewer = new Viewer(document.getElementById("canvas"), {
    onChange, readOnly,
    onStatus: (s) => {
      const brush = s.tool === "mask" || s.tool === "erase" ? ` ${s.brush} px` : "";
      status.textContent = `${s.zoom} % · ${s.tool}${brush}${s.regions ? ` · ${s.regions} region(s)` : ""}`
        + `${s.selected >= 0 ? ` · region ${s.selected + 1} selected (Delete removes it)` : ""}`
        + `${s.ruler ? ` · ${s.ruler}` : ""}`;
    },
  });
  let item = null;
  const dicomUi = dicomControls(viewer);
  const maskTool = readOnly ? null : new MaskTool(viewer);
  const segment = readOnly ? null
    : new SegmentTool(viewer, { itemId: () => item?.id, onMessage: (text, alert) => maskUi.say(text, alert) });
  const maskUi = setupMaskBar(viewer, { project, readOnly, maskTool, segment });
  const undoButtons = document.querySelectorAll('button[data-act="undo"], button[data-act="redo"]');
  viewer.onHistory = () => {
    for (const b of undoButtons) b.disabled = !(b.dataset.act === "undo" ? viewer.history.canUndo : viewer.history.canRedo);
  };
  const acts = {
    fit: () => viewer.fit(), one: () => viewer.oneToOne(), reset: () => {
      viewer.reset();
      document.getElementById("f-brightness").value = 100;
      document.getElementById("f-contrast").value = 100;
      document.getElementById("f-invert").checked = false;
      dicomUi.resetWindow();
    },
    "zoom-in": () => viewer.zoomAt(1.25), "zoom-out": () => viewer.zoomAt(0.8),
    "frame-prev": () => dicomUi.step(-1), "frame-next": () => dicomUi.step(1),
    undo: () => viewer.undo(), redo: () => viewer.redo(),
  };
  document.querySelector(".toolbar").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-act]");
    if (b) acts[b.dataset.act]();
  });
  const filters = () => viewer.setFilter({
    brightness: +document.getElementById("f-brightness").value,
    contrast: +document.getElementById("f-contrast").value,
    invert: document.getElementById("f-invert").checked,
  });
  for (const id of ["f-brightness", "f-contrast", "f-invert"]) document.getElementById(id).addEventListener("input", filters);
  const std = document.getElementById("which-std");
  const cropBox = document.getElementById("show-crop-box");
  const overlays = () => {
    const box = item?.ai?.crop?.payload?.box;
    const original = document.querySelector('input[name="which"]:checked').value === "original";
    viewer.setOverlays(box && cropBox.checked && original
      ? [{ type: "bbox", x: box.x, y: box.y, w: box.width, h: box.height, label: "AI crop" }] : []);
  };
  cropBox.addEventListener("change", overlays);
  for (const r of document.querySelectorAll('input[name="which"]')) {
    r.addEventListener("change", async () => {
      const which = document.querySelector('input[name="which"]:checked').value;
      const url = which === "standardised" ? item.ai.crop.payload.standardised.url : item.image.url;
      const regions = viewer.savedRegions || viewer.regions;
      viewer.readOnly = readOnly || which !== "original";  // regions are in the original's pixels
      if (which === "original" && dicomUi.active()) viewer.show(await dicomUi.picture(), url);
      else await viewer.load(url);
      if (which !== "original") { viewer.savedRegions = regions; viewer.regions = []; }
      else { viewer.savedRegions = null; viewer.regions = regions; }
      overlays();
    });
  }
  for (const r of document.querySelectorAll('input[name="tool"]')) {
    r.addEventListener("change", () => { viewer.setTool(r.value); document.getElementById("wl-drag").checked = false; });
  }

  function setTool(t) {
    const r = document.querySelector(`input[name="tool"][value="${t}"]`);
    if (r) { r.checked = true; viewer.setTool(t); document.getElementById("wl-drag").checked = false; }
  }

  // Ctrl+Z / Ctrl+Shift+Z (and Ctrl+Y) undo and redo region edits; in a text field they stay the field's own.
  function historyKeys(e) {
    if (readOnly || typing(e) || !(e.ctrlKey || e.metaKey) || e.altKey) return false;
    const k = e.key.toLowerCase();
    if (k === "z") { e.preventDefault(); if (e.shiftKey) viewer.redo(); else viewer.undo(); return true; }
    if (k === "y") { e.preventDefault(); viewer.redo(); return true; }
    return false;
  }

  function keys(e) {
    if (historyKeys(e)) return true;
    if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return false;
    const k = e.key;
    const map = { f: acts.fit, 1: acts.one, 0: acts.reset, "+": acts["zoom-in"], "=": acts["zoom-in"],
                  "-": acts["zoom-out"], i: () => { const c = document.getElementById("f-invert"); c.checked = !c.checked; filters(); },
                  v: () => { if (!std.disabled) { const o = document.querySelector('input[name="which"][value="original"]');
                             (o.checked ? std : o).click(); } },
                  o: () => maskUi.toggleOutline() };
    if (!readOnly) {
      for (const [key, tool] of Object.entries(TOOL_KEYS)) map[key] = () => setTool(tool);
      Object.assign(map, { Delete: () => viewer.deleteSelected(), Backspace: () => viewer.deleteSelected(),
                           F: () => maskUi.fillHoles(),
                           Enter: () => maskUi.accept(true) || viewer.closeDraft(),
                           Escape: () => maskUi.discard() || viewer.cancelDraft() });
      // on a focused button or link, Enter and Esc keep their own meaning
      if (e.target.closest?.("button, a, summary")) { delete map.Enter; delete map.Escape; }
    } else map.m = () => setTool("ruler");
    if (dicomUi.active()) {
      Object.assign(map, { PageUp: () => dicomUi.step(-1), PageDown: () => dicomUi.step(1),
                           w: () => dicomUi.toggleDrag(), W: () => dicomUi.nextPreset() });
    }
    // [ and ]: brush size with the brush or eraser; otherwise a DICOM file's frames (PageUp/PageDown always page)
    if (viewer.tool === "mask" || viewer.tool === "erase") {
      Object.assign(map, { "[": () => maskUi.setBrush(viewer.brush / 1.25), "]": () => maskUi.setBrush(viewer.brush * 1.25) });
    } else if (dicomUi.active()) {
      Object.assign(map, { "[": () => dicomUi.step(-1), "]": () => dicomUi.step(1) });
    }
    const f = map[k] || (k.length === 1 ? map[k.toLowerCase()] : undefined);
    if (!f || f() === false) return false;  // false: nothing to do (e.g. Enter with no suggestion or outline)
    e.preventDefault();
    return true;
  }

  async function show(next) {
    item = next;
    document.querySelector('input[name="which"][value="original"]').checked = true;
    viewer.readOnly = readOnly;
    viewer.savedRegions = null;
    std.disabled = !item.ai?.crop?.payload?.standardised;
    const mm = item.image.metadata?.pixels_per_mm;
    viewer.pixelsPerMm = typeof mm === "number" && mm > 0 ? mm : null;
    if (item.image.metadata?.dicom) viewer.show(await dicomUi.open(item.image), item.image.url);
    else { dicomUi.close(); await viewer.load(item.image.url); }
    overlays();
  }

  return { viewer, show, keys, setTool, maskUi };
}

// The DICOM group of the toolbar: window presets, drag W/L, frame slider; hidden for photographs.
function dicomControls(viewer) {
  const $ = (id) => document.getElementById(id);
  const group = $("dicom-controls"), preset = $("wl-preset"), dragBox = $("wl-drag"), value = $("wl-value");
  const slider = $("frame"), frameOut = $("frame-value");
  let dicom = null, from = null, pending = false;
  const fmt = (x) => (Math.abs(x) >= 100 ? Math.round(x) : Math.round(x * 10) / 10);

  function readout() {
    value.textContent = `C ${fmt(dicom.center)} · W ${fmt(dicom.width)}`;
    slider.value = dicom.index + 1;
    frameOut.textContent = `${dicom.index + 1} / ${dicom.frames}`;
  }
  async function repaint() {  // at most one render per animation frame while dragging
    if (pending) return;
    pending = true;
    requestAnimationFrame(async () => {
      pending = false;
      const picture = await dicom.render();
      if (!picture) return;  // the frame changed while this one loaded: the newer repaint draws
      viewer.repaint(picture);
      readout();
    });
  }
  function fillPresets() {
    preset.replaceChildren(...dicom.presets().map(([name, c, w], i) => {
      const o = document.createElement("option");
      o.value = i; o.textContent = `${name} (${fmt(c)}/${fmt(w)})`;
      return o;
    }));
  }
  preset.addEventListener("change", () => {
    const [, c, w] = dicom.presets()[+preset.value];
    dicom.setWindow(c, w);
    repaint();
  });
  dragBox.addEventListener("change", () => viewer.setTool(dragBox.checked ? "window" : "pan"));
  slider.addEventListener("input", () => { dicom.index = +slider.value - 1; repaint(); });
  const onWindow = (phase, dx, dy) => {
    if (phase === "start") from = { center: dicom.center, width: dicom.width };
    else { dicom.drag(dx, dy, from); repaint(); }
  };

  return {
    active: () => dicom !== null,
    async open(image) {
      dicom = new DicomFrames(image);
      const picture = await dicom.render(0);
      fillPresets();
      group.hidden = false;
      $("frame-controls").hidden = dicom.frames < 2;
      slider.max = dicom.frames;
      viewer.onWindow = onWindow;
      readout();
      return picture;
    },
    close() {
      dicom = null; group.hidden = true; viewer.onWindow = null;
      if (dragBox.checked) { dragBox.checked = false; viewer.setTool("pan"); }
    },
    picture: () => dicom.render(),
    step(d) {
      if (!dicom) return;
      dicom.index = Math.min(dicom.frames - 1, Math.max(0, dicom.index + d));
      repaint();
    },
    resetWindow() {
      if (!dicom) return;
      dicom.setWindow(dicom.file.center, dicom.file.width);
      preset.value = 0;
      repaint();
    },
    toggleDrag() { dragBox.checked = !dragBox.checked; dragBox.dispatchEvent(new Event("change")); },
    nextPreset() {
      preset.value = (+preset.value + 1) % preset.options.length;
      preset.dispatchEvent(new Event("change"));
    },
  };
}

export function renderAi(panel, ai, { onAccept } = {}) {
  const cls = ai?.classify, rec = ai?.recommend;
  panel.hidden = !cls && !rec;
  if (panel.hidden) return;
  panel.querySelector("#ai-model").textContent = cls ? `${cls.model} ${cls.version}` : "";
  const list = panel.querySelector("#ai-classes");
  list.replaceChildren(...(cls?.payload?.classes || []).slice(0, 5).map((c) => {
    const li = document.createElement("li");
    const pct = Math.round(c.probability * 100);
    li.innerHTML = `<span class="bar" style="--p:${pct}%"></span><span class="name"></span> <span class="pct">${pct} %</span>`;
    li.querySelector(".name").textContent = `${c.name} (${c.code})${c.high_risk ? " ⚑" : ""}`;
    if (onAccept) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "link"; b.textContent = "Accept";
      b.setAttribute("aria-label", `Accept ${c.name}`);
      b.addEventListener("click", () => onAccept(c));
      li.append(" ", b);
    }
    return li;
  }));
  const q = cls?.payload?.quality;
  const qp = panel.querySelector("#ai-quality");
  qp.hidden = !q || q.ok;
  if (q && !q.ok) qp.textContent = `Image quality: ${q.reasons.join(", ")} — the AI suggests rejecting it as bad quality.`;
  const steps = panel.querySelector("#ai-steps");
  steps.replaceChildren();
  if (rec?.payload?.steps?.length) {
    const h = document.createElement("h3"); h.textContent = "Recommended next steps";
    const ul = document.createElement("ul");
    ul.append(...rec.payload.steps.map((s) => { const li = document.createElement("li"); li.textContent = s; return li; }));
    steps.append(h, ul);
  }
  panel.querySelector("#ai-disclaimer").textContent = cls?.payload?.disclaimer || rec?.payload?.disclaimer || "";
}
