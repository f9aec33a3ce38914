// The image viewer: a canvas with fit, zoom (wheel, +/-), pan (drag), 1:1, reset, brightness/contrast/invert, and
// regions drawn in image pixels: boxes, polygons, points; select, move, delete, label; a length ruler (px, and mm
// when the image has a scale). Regions are plain objects in the shape the API validates. The picture is an image
// or a canvas (a DICOM frame windowed by dicomview.js); a window/level drag is handed to onWindow.
const HANDLE = 6;

export class Viewer {
  constructor(canvas, { onChange = () => {}, onStatus = () => {}, readOnly = false } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onChange = onChange;
    this.onStatus = onStatus;
    this.readOnly = readOnly;
    this.img = null;
    this.scale = 1; this.tx = 0; this.ty = 0;
    this.filter = { brightness: 100, contrast: 100, invert: false };
    this.tool = "pan";
    this.regions = [];
    this.overlays = [];  // read-only shapes (the AI's crop box)
    this.selected = -1;
    this.draft = null;   // the shape being drawn
    this.ruler = null;
    this.pixelsPerMm = null;
    this.onWindow = null;  // (phase, dx, dy) => handled?: set while a DICOM image is shown
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
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
    this.resize();
    this.fit();
    // the new image is on screen: what bench/ui_timing.py waits for after a submit
    this.canvas.dispatchEvent(new CustomEvent("imagedrawn", { detail: { src } }));
    return picture;
  }

  // The same picture with new pixels (another frame, another window): view, regions and selection stay.
  repaint(picture) { this.img = picture; this.draw(); }

  resize() {
    const box = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(box.width * dpr));
    this.canvas.height = Math.max(1, Math.round(box.height * dpr));
    this.canvas.style.width = `${box.width}px`;
    this.canvas.style.height = `${box.height}px`;
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

  zoomAt(factor, sx, sy) {
    const w = this.canvas.width / this.dpr, h = this.canvas.height / this.dpr;
    sx ??= w / 2; sy ??= h / 2;
    const next = Math.min(40, Math.max(0.02, this.scale * factor));
    const f = next / this.scale;
    this.tx = sx - (sx - this.tx) * f;
    this.ty = sy - (sy - this.ty) * f;
    this.scale = next;
    this.draw();
  }

  reset() {
    this.filter = { brightness: 100, contrast: 100, invert: false };
    this.fit();
  }

  setFilter(f) { Object.assign(this.filter, f); this.draw(); }
  setTool(tool) { this.tool = tool; this.finishPolygon(); this.canvas.dataset.tool = tool; this.draw(); }
  setRegions(regions) { this.regions = structuredClone(regions || []); this.selected = -1; this.draw(); }
  setOverlays(shapes) { this.overlays = shapes || []; this.draw(); }

  toImage(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left - this.tx) / this.scale, (e.clientY - r.top - this.ty) / this.scale];
  }

  clamp([x, y]) {
    return [Math.round(Math.min(Math.max(x, 0), this.img.naturalWidth)),
            Math.round(Math.min(Math.max(y, 0), this.img.naturalHeight))];
  }

  // -- drawing ----------------------------------------------------------------------------------------------------
  draw() {
    const { ctx } = this;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#1b1d21";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.img) return;
    const s = this.scale * this.dpr;
    ctx.setTransform(s, 0, 0, s, this.tx * this.dpr, this.ty * this.dpr);
    const f = this.filter;
    ctx.filter = `brightness(${f.brightness}%) contrast(${f.contrast}%)${f.invert ? " invert(1)" : ""}`;
    ctx.imageSmoothingEnabled = this.scale < 2;
    ctx.drawImage(this.img, 0, 0);
    ctx.filter = "none";
    const lw = 2 / this.scale;
    for (const o of this.overlays) this.shape(o, "#f5c542", lw, [8 / this.scale, 6 / this.scale]);
    this.regions.forEach((r, i) => this.shape(r, i === this.selected ? "#4cc3ff" : "#48e08a", lw, []));
    if (this.draft) this.shape(this.draft, "#ffffff", lw, [4 / this.scale, 4 / this.scale]);
    if (this.ruler) this.drawRuler(lw);
    this.onStatus(this.status());
  }

  shape(r, colour, lw, dash) {
    const { ctx } = this;
    ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = lw; ctx.setLineDash(dash);
    if (r.type === "bbox") {
      ctx.strokeRect(r.x, r.y, r.w, r.h);
    } else if (r.type === "polygon" && r.points?.length) {
      ctx.beginPath();
      r.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (!r.open) ctx.closePath();
      ctx.stroke();
    } else if (r.type === "point") {
      ctx.beginPath();
      ctx.arc(r.x, r.y, HANDLE / this.scale, 0, Math.PI * 2);
      ctx.fill();
    }
    if (r.label) {
      const [lx, ly] = r.type === "polygon" ? r.points[0] : [r.x, r.y];
      ctx.setLineDash([]);
      ctx.font = `${13 / this.scale}px system-ui, sans-serif`;
      ctx.fillText(r.label, lx + 4 / this.scale, ly - 4 / this.scale);
    }
    ctx.setLineDash([]);
  }

  drawRuler(lw) {
    const { ctx } = this;
    const [[x0, y0], [x1, y1]] = this.ruler;
    ctx.strokeStyle = "#ff7a59"; ctx.lineWidth = lw;
    ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
    ctx.fillStyle = "#ff7a59";
    ctx.font = `${13 / this.scale}px system-ui, sans-serif`;
    ctx.fillText(this.rulerText(), x1 + 6 / this.scale, y1);
  }

  rulerText() {
    if (!this.ruler) return "";
    const [[x0, y0], [x1, y1]] = this.ruler;
    const px = Math.hypot(x1 - x0, y1 - y0);
    return this.pixelsPerMm ? `${px.toFixed(0)} px · ${(px / this.pixelsPerMm).toFixed(1)} mm` : `${px.toFixed(0)} px`;
  }

  status() {
    return { zoom: Math.round(this.scale * 100), tool: this.tool, regions: this.regions.length,
             selected: this.selected, ruler: this.rulerText() };
  }

  // -- editing ----------------------------------------------------------------------------------------------------
  hit([x, y]) {
    const tol = HANDLE / this.scale;
    for (let i = this.regions.length - 1; i >= 0; i--) {
      const r = this.regions[i];
      if (r.type === "point" && Math.hypot(r.x - x, r.y - y) <= tol * 1.5) return i;
      if (r.type === "bbox" && x >= r.x - tol && x <= r.x + r.w + tol && y >= r.y - tol && y <= r.y + r.h + tol) return i;
      if (r.type === "polygon" && inside(r.points, x, y)) return i;
    }
    return -1;
  }

  select(i) { this.selected = i; this.draw(); }

  deleteSelected() {
    if (this.readOnly || this.selected < 0) return;
    this.regions.splice(this.selected, 1);
    this.selected = -1;
    this.changed();
  }

  labelSelected(label) {
    if (this.selected < 0) return;
    this.regions[this.selected].label = label || undefined;
    this.changed();
  }

  changed() { this.draw(); this.onChange(this.regions); }

  finishPolygon() {
    if (this.draft?.type === "polygon") {
      const pts = this.draft.points;
      if (pts.length >= 3) {
        this.regions.push({ type: "polygon", points: pts });
        this.selected = this.regions.length - 1;
        this.draft = null;
        this.changed();
        return;
      }
    }
    this.draft = null;
  }

  bind() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = c.getBoundingClientRect();
      this.zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    c.addEventListener("contextmenu", (e) => { if (this.onWindow) e.preventDefault(); });
    c.addEventListener("pointerdown", (e) => {
      const windowing = this.onWindow && (e.button === 2 || (e.button === 0 && this.tool === "window"));
      if (!this.img || (e.button !== 0 && !windowing)) return;
      c.setPointerCapture(e.pointerId);
      const p = this.clamp(this.toImage(e));
      const editing = !this.readOnly;
      if (windowing) {
        this.onWindow("start");
        drag = { kind: "window", sx: e.clientX, sy: e.clientY };
      } else if (this.tool === "bbox" && editing) {
        this.draft = { type: "bbox", x: p[0], y: p[1], w: 0, h: 0, ox: p[0], oy: p[1] };
        drag = { kind: "bbox" };
      } else if (this.tool === "point" && editing) {
        this.regions.push({ type: "point", x: p[0], y: p[1] });
        this.selected = this.regions.length - 1;
        this.changed();
      } else if (this.tool === "polygon" && editing) {
        if (!this.draft) this.draft = { type: "polygon", points: [], open: true };
        const first = this.draft.points[0];
        if (first && this.draft.points.length >= 3 && Math.hypot(first[0] - p[0], first[1] - p[1]) * this.scale < 10) {
          this.finishPolygon();  // a click on the first point closes the polygon
        } else {
          this.draft.points.push(p);
          this.draw();
        }
      } else if (this.tool === "ruler") {
        this.ruler = [p, p];
        drag = { kind: "ruler" };
      } else {
        const i = editing ? this.hit(this.toImage(e)) : -1;
        this.selected = i;
        drag = i >= 0 ? { kind: "move", from: this.toImage(e), orig: structuredClone(this.regions[i]) }
                      : { kind: "pan", sx: e.clientX, sy: e.clientY, tx: this.tx, ty: this.ty };
        this.draw();
      }
    });
    c.addEventListener("pointermove", (e) => {
      if (!drag) return;
      if (drag.kind === "window") {
        this.onWindow?.("move", e.clientX - drag.sx, e.clientY - drag.sy);
      } else if (drag.kind === "pan") {
        this.tx = drag.tx + (e.clientX - drag.sx);
        this.ty = drag.ty + (e.clientY - drag.sy);
        this.draw();
      } else if (drag.kind === "bbox") {
        const [x, y] = this.clamp(this.toImage(e));
        const d = this.draft;
        d.x = Math.min(d.ox, x); d.y = Math.min(d.oy, y);
        d.w = Math.abs(x - d.ox); d.h = Math.abs(y - d.oy);
        this.draw();
      } else if (drag.kind === "ruler") {
        this.ruler[1] = this.clamp(this.toImage(e));
        this.draw();
      } else if (drag.kind === "move") {
        const [x, y] = this.toImage(e);
        const dx = Math.round(x - drag.from[0]), dy = Math.round(y - drag.from[1]);
        this.regions[this.selected] = moved(drag.orig, dx, dy, this.img.naturalWidth, this.img.naturalHeight);
        this.draw();
      }
    });
    c.addEventListener("pointerup", () => {
      if (drag?.kind === "bbox") {
        const { x, y, w, h } = this.draft;
        this.draft = null;
        if (w >= 2 && h >= 2) {
          this.regions.push({ type: "bbox", x, y, w, h });
          this.selected = this.regions.length - 1;
          this.changed();
        } else {
          this.draw();
        }
      } else if (drag?.kind === "move") {
        this.changed();
      }
      drag = null;
    });
    c.addEventListener("dblclick", () => this.finishPolygon());
  }
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
