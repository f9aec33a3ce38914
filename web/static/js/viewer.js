// The image viewer: a canvas with fit, zoom (wheel, +/-), pan (drag), 1:1, reset, brightness/contrast/invert, and
// regions drawn in image pixels: boxes, polygons (clicked, freehand or spline), points, lines (the measuring ruler
// keeps its line), masks; select, move, delete, label, undo/redo. Regions are plain objects in the shape the API
// validates (a mask region carries its pixels as a non-enumerable `mask`; serialise() gives the RLE). Three
// canvases are stacked: the picture (#canvas, which takes the pointer), the masks (masklayer.js) and the vectors,
// so a brush stroke repaints only the mask layer's dirty rectangle. The picture is an image or a canvas (a DICOM
// frame windowed by dicomview.js); a window/level drag is handed to onWindow.
import { History } from "./history.js";
import { Mask } from "./mask.js";
import { MaskLayer } from "./masklayer.js";
import { freehandPolygon, splinePolygon } from "./outlines.js";
import { HANDLE, VectorLayer } from "./vectorlayer.js";

// mask colours by the label's place in the project's list: cyan first, as lesions are red and brown
const PALETTE = ["#00e5ff", "#ffb400", "#ff5ad1", "#b388ff", "#3ddc84", "#ff5a5f", "#f0f0f0", "#c6ff00"];
const EDIT_TOOLS = new Set(["bbox", "polygon", "point", "freehand", "spline", "mask", "erase", "segment"]);

// A mask region: what the API stores ({type, label, rle}) minus the RLE, which serialise() encodes from `mask`.
export function maskRegion(label, mask) {
  const r = { type: "mask", label };
  Object.defineProperty(r, "mask", { value: mask, enumerable: false });
  return r;
}

// The fields the database takes for each kind of region (it refuses any other): whatever else a region picked up
// on the way (an older client's extras) is left behind.
const FIELDS = { bbox: ["x", "y", "w", "h"], point: ["x", "y"], polygon: ["points", "drawn"], line: ["points"] };
function ownFields(r) {
  const out = { type: r.type };
  for (const k of ["label", ...(FIELDS[r.type] || [])]) if (r[k] !== undefined) out[k] = r[k];
  return out;
}

export class Viewer {
  constructor(canvas, { onChange = () => {}, onStatus = () => {}, readOnly = false } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    const stage = canvas.parentElement;
    const layer = (cls) => {
      const c = document.createElement("canvas");
      c.className = `layer ${cls}`;
      c.setAttribute("aria-hidden", "true");
      stage.append(c);
      return c;
    };
    this.masks = new MaskLayer(layer("masks"));
    this.overlay = layer("vectors");
    this.vectors = new VectorLayer(this.overlay);
    this.cursor = document.createElement("div");
    this.cursor.className = "brush-cursor";
    this.cursor.hidden = true;
    stage.append(this.cursor);
    this.onChange = onChange;
    this.onStatus = onStatus;
    this.onHistory = () => {};
    this.onCandidate = () => {};
    this.onSelect = () => {};
    this.readOnly = readOnly;
    this.img = null;
    this.scale = 1; this.tx = 0; this.ty = 0;
    this.filter = { brightness: 100, contrast: 100, invert: false };
    this.tool = "pan";
    this._regions = [];
    this.overlays = [];  // read-only shapes (the AI's crop box, the previous revision's outline)
    this.selected = -1;
    this.draft = null;   // the shape being drawn
    this.ruler = null;
    this.pixelsPerMm = null;
    this.labels = [];    // the project's region labels (their order gives the masks' colours)
    this.maskLabel = "lesion";
    this.brush = 24;     // brush diameter in screen pixels: zoom in for finer strokes
    this.candidate = null;  // {mask, source: "ai" | "segment"}: suggested, not a region until accepted
    this.prompts = null;    // click-to-segment's {points, box}, drawn over the image
    this.tools = {};        // pointer handlers of the tools that live in their own modules (mask, erase, segment)
    this.history = new History(() => this.onHistory());
    this.shownMasks = [];
    this.onWindow = null;  // (phase, dx, dy) => handled?: set while a DICOM image is shown
    canvas.viewer = this;  // where tests and bench/segment_ui.py reach the viewer from the page
    new ResizeObserver(() => this.resize()).observe(stage);
    this.bind();
  }

  async load(src) {
    const img = new Image();
    img.decoding = "async";
    img.src = src;
    await img.decode();
    return this.show(img, src);
  }

  // A new picture (an <img>, or a canvas with naturalWidth/naturalHeight set), fitted to the stage.
  show(picture, src = "") {
    this.img = picture;
    this.selected = -1; this.draft = null; this.ruler = null;
    this.masks.setSize(picture.naturalWidth, picture.naturalHeight);
    this.shownMasks = null;
    this.resize();
    this.fit();
    // the new image is on screen: what bench/ui_timing.py waits for after a submit
    this.canvas.dispatchEvent(new CustomEvent("imagedrawn", { detail: { src } }));
    return picture;
  }

  // The same picture with new pixels (another frame, another window): view, regions and selection stay.
  repaint(picture) { this.img = picture; this.drawPicture(); }

  resize() {
    const box = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    for (const c of [this.canvas, this.overlay]) {
      c.width = Math.max(1, Math.round(box.width * dpr));
      c.height = Math.max(1, Math.round(box.height * dpr));
      c.style.width = `${box.width}px`;
      c.style.height = `${box.height}px`;
    }
    this.masks.canvas.style.width = `${box.width}px`;
    this.masks.canvas.style.height = `${box.height}px`;
    this.dpr = dpr;
    this.draw();
  }

  // -- view -------------------------------------------------------------------------------------------------------
  fit() {
    if (!this.img) return;
    const w = this.canvas.width / this.dpr, h = this.canvas.height / this.dpr;
    this.scale = Math.min(w / this.img.naturalWidth, h / this.img.naturalHeight) * 0.98;
    this.tx = (w - this.img.naturalWidth * this.scale) / 2;
    this.ty = (h - this.img.naturalHeight * this.scale) / 2;
    this.draw();
  }

  oneToOne() { this.zoomAt(1 / this.scale); }

  zoomAt(factor, sx, sy, later = false) {
    const w = this.canvas.width / this.dpr, h = this.canvas.height / this.dpr;
    sx ??= w / 2; sy ??= h / 2;
    const next = Math.min(40, Math.max(0.02, this.scale * factor));
    const f = next / this.scale;
    this.tx = sx - (sx - this.tx) * f;
    this.ty = sy - (sy - this.ty) * f;
    this.scale = next;
    if (later) this.drawSoon(); else this.draw();
  }

  // Wheel and drag events can come several per frame: draw once, at the next animation frame.
  drawSoon() {
    if (!this.soon) this.soon = requestAnimationFrame(() => { this.soon = 0; this.draw(); });
  }

  reset() {
    this.filter = { brightness: 100, contrast: 100, invert: false };
    this.fit();
  }

  setFilter(f) { Object.assign(this.filter, f); this.drawPicture(); }
  setTool(tool) {
    if (this.draft) this.finishDraft();
    this.tool = tool;
    this.canvas.dataset.tool = tool;
    this.cursor.hidden = true;
    this.draw();
  }
  // Read-only shapes by group ("ai": the crop box; "revision": the previous revision's masks), drawn dashed.
  setOverlays(shapes, group = "ai") {
    this.overlayGroups = { ...this.overlayGroups, [group]: shapes || [] };
    this.overlays = Object.values(this.overlayGroups).flat();
    this.drawVectors();
  }

  toImage(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left - this.tx) / this.scale, (e.clientY - r.top - this.ty) / this.scale];
  }

  clamp([x, y], round = true) {
    const cx = Math.min(Math.max(x, 0), this.img.naturalWidth), cy = Math.min(Math.max(y, 0), this.img.naturalHeight);
    return round ? [Math.round(cx), Math.round(cy)] : [Math.round(cx * 10) / 10, Math.round(cy * 10) / 10];
  }

  // -- regions ------------------------------------------------------------------------------------------------------
  get regions() { return this._regions; }
  set regions(list) { this._regions = list; this.selected = -1; this.listChanged(false); }

  // An item's stored regions (masks decoded); a new item: history starts empty.
  setRegions(regions) {
    this._regions = (regions || []).map((r) => (r.type === "mask" ? maskRegion(r.label, Mask.fromRle(r.rle)) : structuredClone(r)));
    this.selected = -1;
    this.draft = null;
    this.history.clear();
    this.listChanged(false);
  }

  // What the API stores: masks encoded (cached until their pixels change); a mask with no pixel left is dropped.
  serialise(list = this.savedRegions || this._regions) {
    return list.filter((r) => r.type !== "mask" || r.mask.area > 0)
      .map((r) => (r.type === "mask" ? { type: "mask", label: r.label, rle: r.mask.toRle() } : ownFields(r)));
  }

  // A new region list as one undoable step.
  commit(next, select = -1) {
    const before = this._regions;
    this.history.push({ undo: () => this.setList(before), redo: () => this.setList(next) });
    this._regions = next;
    this.selected = select;
    this.listChanged();
  }

  setList(list) {
    this._regions = list;
    if (this.selected >= list.length) this.selected = -1;
    this.listChanged();
  }

  // During a stroke that creates a mask: shown at once, recorded (and announced) when the stroke ends.
  setListQuietly(list) {
    this._regions = list;
    if (this.selected >= list.length) this.selected = -1;
    this.vectors.invalidate();
    this.syncMasks();
  }

  listChanged(notify = true) {
    this.vectors.invalidate();
    this.syncMasks();
    this.drawVectors();
    if (notify) this.onChange(this._regions);
  }

  // After a pixel edit (the mask layer already shows it): the lists, the measurements.
  pixelsChanged() { this.drawVectors(); this.onChange(this._regions, { pixels: true }); }

  colourOf(label) {
    const i = this.labels.indexOf(label);
    return PALETTE[(i < 0 ? this.labels.length + [...label || ""].length : i) % PALETTE.length];
  }

  // The mask layer gets the current masks and candidate; recomposed only when that set changed.
  syncMasks(force = false) {
    const entries = this._regions.filter((r) => r.type === "mask").map((r) => ({ mask: r.mask, colour: this.colourOf(r.label) }));
    const candidate = !this.readOnly && this.candidate ? this.candidate.mask : null;
    const key = [...entries.map((e) => e.mask), ...entries.map((e) => e.colour), candidate];
    const same = this.shownMasks && key.length === this.shownMasks.length && key.every((k, i) => k === this.shownMasks[i]);
    if (same && !force) return;
    this.shownMasks = key;
    this.masks.set(entries, candidate);
  }

  setCandidate(mask, source) {
    this.candidate = mask ? { mask, source } : null;
    this.syncMasks();
    this.drawVectors();
    this.onCandidate(this.candidate);
  }

  undo() { if (!this.readOnly) { this.draft = null; this.history.undo(); } }
  redo() { if (!this.readOnly) { this.draft = null; this.history.redo(); } }

  // -- drawing ----------------------------------------------------------------------------------------------------
  draw() {
    if (this.soon) { cancelAnimationFrame(this.soon); this.soon = 0; }
    this.drawPicture();
    this.masks.setView(this.scale, this.tx, this.ty, this.dpr || 1, this.canvas.width, this.canvas.height);
    this.drawVectors();
  }

  drawPicture() {
    const { ctx } = this;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#1b1d21";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.img) return;
    const s = this.scale * this.dpr;
    ctx.setTransform(s, 0, 0, s, this.tx * this.dpr, this.ty * this.dpr);
    const f = this.filter;
    // a filter, even an identity one, sends every frame through the slow filter path: set one only when needed
    const plain = f.brightness === 100 && f.contrast === 100 && !f.invert;
    ctx.filter = plain ? "none" : `brightness(${f.brightness}%) contrast(${f.contrast}%)${f.invert ? " invert(1)" : ""}`;
    ctx.imageSmoothingEnabled = this.scale < 2;
    ctx.drawImage(this.img, 0, 0);
    ctx.filter = "none";
  }

  drawVectors() {
    this.vectors.draw(this);
    this.onStatus(this.status());
  }

  lengthText(points) {
    if (!points) return "";
    const [[x0, y0], [x1, y1]] = points;
    const px = Math.hypot(x1 - x0, y1 - y0);
    return this.pixelsPerMm ? `${px.toFixed(0)} px · ${(px / this.pixelsPerMm).toFixed(1)} mm` : `${px.toFixed(0)} px`;
  }

  rulerText() { return this.ruler ? this.lengthText(this.ruler) : ""; }

  status() {
    return { zoom: Math.round(this.scale * 100), tool: this.tool, regions: this._regions.length,
             selected: this.selected, ruler: this.rulerText(), brush: this.brush };
  }

  // -- editing ----------------------------------------------------------------------------------------------------
  hit([x, y]) {
    const tol = HANDLE / this.scale;
    for (let i = this._regions.length - 1; i >= 0; i--) {
      const r = this._regions[i];
      if (r.type === "point" && Math.hypot(r.x - x, r.y - y) <= tol * 1.5) return i;
      if (r.type === "bbox" && x >= r.x - tol && x <= r.x + r.w + tol && y >= r.y - tol && y <= r.y + r.h + tol) return i;
      if (r.type === "polygon" && inside(r.points, x, y)) return i;
      if (r.type === "line" && toSegment(r.points, x, y) <= tol) return i;
    }
    for (let i = this._regions.length - 1; i >= 0; i--) {  // masks last: the shapes drawn over them win
      if (this._regions[i].type === "mask" && this._regions[i].mask.at(x, y)) return i;
    }
    return -1;
  }

  select(i) { this.selected = i; this.vectors.invalidate(); this.drawVectors(); this.onSelect(i); }

  deleteSelected() {
    if (this.readOnly || this.selected < 0) return;
    this.commit(this._regions.filter((_, i) => i !== this.selected));
  }

  labelSelected(label) {
    const r = this._regions[this.selected];
    if (!r || this.readOnly || (r.label || "") === (label || "")) return;
    if (r.type === "mask" && !label) return;  // a mask needs a label
    const next = r.type === "mask" ? maskRegion(label, r.mask) : { ...r, label: label || undefined };
    if (!label) delete next.label;
    this.commit(this._regions.map((x, i) => (i === this.selected ? next : x)), this.selected);
  }

  add(region) { this.commit([...this._regions, region], this._regions.length); }

  finishDraft() {
    const d = this.draft;
    this.draft = null;
    if (d?.type === "polygon" && d.points.length >= 3) {
      this.add({ type: "polygon", points: dedupe(d.points) });
    } else if (d?.type === "spline" && d.ctrl.length >= 3) {
      const pts = splinePolygon(dedupe(d.ctrl), 4 / this.scale).map((p) => this.clamp(p, false));
      if (pts.length >= 3) this.add({ type: "polygon", points: pts, drawn: "spline" });
    } else {
      this.drawVectors();
    }
  }

  // Enter: close the outline being drawn. Returns whether there was one.
  closeDraft() { if (!this.draft) return false; this.finishDraft(); return true; }
  cancelDraft() { if (!this.draft) return false; this.draft = null; this.drawVectors(); return true; }

  bind() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = c.getBoundingClientRect();
      this.zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top, true);
    }, { passive: false });
    c.addEventListener("contextmenu", (e) => { if (this.onWindow) e.preventDefault(); });
    c.addEventListener("pointerleave", () => { this.cursor.hidden = true; });
    c.addEventListener("pointerdown", (e) => {
      const windowing = this.onWindow && (e.button === 2 || (e.button === 0 && this.tool === "window"));
      if (!this.img || (e.button !== 0 && !windowing)) return;
      try { c.setPointerCapture(e.pointerId); } catch { /* a synthetic event (the benches) has no pointer to capture */ }
      const f = this.toImage(e), p = this.clamp(f);
      const editing = !this.readOnly;
      const tool = editing || !EDIT_TOOLS.has(this.tool) ? this.tool : "pan";
      if (windowing) {
        this.onWindow("start");
        drag = { kind: "window", sx: e.clientX, sy: e.clientY };
      } else if (this.tools[tool]) {
        drag = { kind: "tool", tool: this.tools[tool] };
        drag.tool.down(e, f);
      } else if (tool === "bbox") {
        this.draft = { type: "bbox", x: p[0], y: p[1], w: 0, h: 0, ox: p[0], oy: p[1] };
        drag = { kind: "bbox" };
      } else if (tool === "point") {
        this.add({ type: "point", x: p[0], y: p[1] });
      } else if (tool === "polygon") {
        if (this.draft?.type !== "polygon") this.draft = { type: "polygon", points: [], open: true };
        const first = this.draft.points[0];
        if (first && this.draft.points.length >= 3 && Math.hypot(first[0] - p[0], first[1] - p[1]) * this.scale < 10) {
          this.finishDraft();  // a click on the first point closes the polygon
        } else {
          this.draft.points.push(p);
          this.drawVectors();
        }
      } else if (tool === "spline") {
        if (this.draft?.type !== "spline") this.draft = { type: "spline", ctrl: [] };
        const first = this.draft.ctrl[0];
        if (first && this.draft.ctrl.length >= 3 && Math.hypot(first[0] - p[0], first[1] - p[1]) * this.scale < 10) {
          this.finishDraft();
        } else {
          this.draft.ctrl.push(this.clamp(f, false));
          this.drawVectors();
        }
      } else if (tool === "freehand") {
        this.draft = { type: "polygon", points: [this.clamp(f, false)], open: true };
        drag = { kind: "freehand" };
      } else if (tool === "ruler") {
        this.ruler = [p, p];
        drag = { kind: "ruler" };
      } else {
        const i = editing ? this.hit(f) : -1;
        if (i !== this.selected) this.select(i);
        const movable = i >= 0 && this._regions[i].type !== "mask";  // masks are edited with the brush, not moved
        drag = movable ? { kind: "move", from: f, index: i, orig: this._regions[i] }
                       : { kind: "pan", sx: e.clientX, sy: e.clientY, tx: this.tx, ty: this.ty };
      }
    });
    c.addEventListener("pointermove", (e) => {
      if (this.tool === "mask" || this.tool === "erase") this.moveCursor(e);
      if (!drag) return;
      if (drag.kind === "window") {
        this.onWindow?.("move", e.clientX - drag.sx, e.clientY - drag.sy);
      } else if (drag.kind === "tool") {
        drag.tool.move(e);
      } else if (drag.kind === "pan") {
        this.tx = drag.tx + (e.clientX - drag.sx);
        this.ty = drag.ty + (e.clientY - drag.sy);
        this.drawSoon();
      } else if (drag.kind === "bbox") {
        const [x, y] = this.clamp(this.toImage(e));
        const d = this.draft;
        d.x = Math.min(d.ox, x); d.y = Math.min(d.oy, y);
        d.w = Math.abs(x - d.ox); d.h = Math.abs(y - d.oy);
        this.drawVectors();
      } else if (drag.kind === "freehand") {
        for (const ev of coalesced(e)) this.draft.points.push(this.clamp(this.toImage(ev), false));
        this.drawVectors();
      } else if (drag.kind === "ruler") {
        this.ruler[1] = this.clamp(this.toImage(e));
        this.drawVectors();
      } else if (drag.kind === "move") {
        const [x, y] = this.toImage(e);
        const dx = Math.round(x - drag.from[0]), dy = Math.round(y - drag.from[1]);
        this._regions = this._regions.map((r, i) => (i === drag.index ? moved(drag.orig, dx, dy, this.img.naturalWidth, this.img.naturalHeight) : r));
        this.drawVectors();
      }
    });
    const up = (e) => {
      const d = drag;
      drag = null;
      if (!d) return;
      if (d.kind === "tool") {
        d.tool.up(e);
      } else if (d.kind === "bbox") {
        const { x, y, w, h } = this.draft;
        this.draft = null;
        if (w >= 2 && h >= 2) this.add({ type: "bbox", x, y, w, h });
        else this.drawVectors();
      } else if (d.kind === "freehand") {
        const trace = this.draft.points;
        this.draft = null;
        const pts = freehandPolygon(trace, 0.75 / this.scale);
        if (pts.length >= 3) this.add({ type: "polygon", points: pts, drawn: "freehand" });
        else this.drawVectors();
      } else if (d.kind === "ruler" && !this.readOnly) {
        // the annotator's measurement is kept as a line region; the reviewer's stays a ruler
        const [[x0, y0], [x1, y1]] = this.ruler;
        this.ruler = null;
        if (Math.hypot(x1 - x0, y1 - y0) >= 2) this.add({ type: "line", points: [[x0, y0], [x1, y1]] });
        else this.drawVectors();
      } else if (d.kind === "move") {
        const now = this._regions[d.index];
        if (now !== d.orig) {  // one undo step for the whole drag
          const before = this._regions.map((r, i) => (i === d.index ? d.orig : r));
          this._regions = before;
          this.commit(this._regions.map((r, i) => (i === d.index ? now : r)), d.index);
        }
      }
    };
    c.addEventListener("pointerup", up);
    c.addEventListener("pointercancel", up);
    c.addEventListener("dblclick", () => {
      if (this.draft?.type === "polygon" || this.draft?.type === "spline") this.finishDraft();
    });
  }

  moveCursor(e) {
    const r = this.canvas.getBoundingClientRect();
    const d = this.brush;
    this.cursor.hidden = false;
    this.cursor.style.width = this.cursor.style.height = `${d}px`;
    this.cursor.style.transform = `translate(${e.clientX - r.left - d / 2}px, ${e.clientY - r.top - d / 2}px)`;
    this.cursor.classList.toggle("erase", this.tool === "erase");
  }
}

// The pointer positions since the last event (a fast stroke delivers several per frame); at least the event's own.
export function coalesced(e) {
  const list = e.getCoalescedEvents?.();
  return list?.length ? list : [e];
}

function dedupe(points) {
  return points.filter((p, i) => i === 0 || p[0] !== points[i - 1][0] || p[1] !== points[i - 1][1]);
}

function moved(r, dx, dy, W, H) {
  if (r.type === "bbox") {
    return { ...r, x: Math.min(Math.max(r.x + dx, 0), W - r.w), y: Math.min(Math.max(r.y + dy, 0), H - r.h) };
  }
  if (r.type === "point") {
    return { ...r, x: Math.min(Math.max(r.x + dx, 0), W), y: Math.min(Math.max(r.y + dy, 0), H) };
  }
  const xs = r.points.map((p) => p[0]), ys = r.points.map((p) => p[1]);
  const cx = Math.min(Math.max(dx, -Math.min(...xs)), W - Math.max(...xs));
  const cy = Math.min(Math.max(dy, -Math.min(...ys)), H - Math.max(...ys));
  return { ...r, points: r.points.map(([x, y]) => [x + cx, y + cy]) };
}

function inside(pts, x, y) {
  let hit = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i], [xj, yj] = pts[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

function toSegment([[ax, ay], [bx, by]], x, y) {
  const dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  const t = len2 ? Math.min(1, Math.max(0, ((x - ax) * dx + (y - ay) * dy) / len2)) : 0;
  return Math.hypot(x - ax - t * dx, y - ay - t * dy);
}
