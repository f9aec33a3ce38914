// Draws the masks on their own canvas stacked over the image. The masks' colours are composed into one canvas at
// the image's resolution; an edit recomposes only its dirty rectangle and copies only that rectangle to the screen,
// so a brush stroke costs what it touches, not the image's 12 megapixels. Opacity is the canvas's CSS opacity (free);
// the outline view strokes each mask's contours instead of filling it.
import { contourPath, contours } from "./contours.js";
import { unite } from "./mask.js";

const CANDIDATE = "#ffe14d";

function packed(hex) {  // "#rrggbb" → the Uint32 of an opaque RGBA pixel on a little-endian machine
  const n = parseInt(hex.slice(1), 16);
  return (0xff << 24 | (n & 0xff) << 16 | (n & 0xff00) | (n >> 16 & 0xff)) >>> 0;
}

export class MaskLayer {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.entries = [];      // [{mask, colour}] in drawing order
    this.candidate = null;  // a suggested mask (AI or click-to-segment), drawn on top
    this.display = null;    // image-sized canvas of composed colours
    this.outline = false;
    this.live = null;       // the mask a stroke is painting: filled even in the outline view, until the stroke ends
    this.view = { s: 1, tx: 0, ty: 0, dpr: 1, scale: 1 };
    this.paths = new WeakMap();  // mask → {version, path}
  }

  setSize(w, h) {
    if (this.display && this.display.width === w && this.display.height === h) return;
    this.display = document.createElement("canvas");
    this.display.width = w; this.display.height = h;
    this.dctx = this.display.getContext("2d");
  }

  // The fill's opacity; outlines are drawn opaque (a faint outline would help no one).
  setOpacity(o) {
    this.opacity = o;
    this.canvas.style.opacity = String(this.outline ? 1 : o);
  }

  // The masks to show, in order; recomposes everything (a new item, a list change).
  set(entries, candidate = this.candidate) {
    this.entries = entries.filter((e) => e.mask && e.mask.width === this.display?.width && e.mask.height === this.display?.height);
    this.candidate = candidate && candidate.width === this.display?.width ? candidate : null;
    if (!this.display) return;
    this.dctx.clearRect(0, 0, this.display.width, this.display.height);
    let r = null;
    for (const m of [...this.entries.map((e) => e.mask), this.candidate]) {
      if (m && m.x1 >= 0) r = unite(r, { x0: m.x0, y0: m.y0, x1: m.x1, y1: m.y1 });
    }
    if (r) this.compose(r);
    this.redraw();
  }

  // Recompose one rectangle of the image-sized canvas from the masks' bytes.
  compose({ x0, y0, x1, y1 }) {
    const W = this.display.width, H = this.display.height;
    x0 = Math.max(0, x0); y0 = Math.max(0, y0); x1 = Math.min(W - 1, x1); y1 = Math.min(H - 1, y1);
    if (x1 < x0 || y1 < y0) return;
    const w = x1 - x0 + 1, h = y1 - y0 + 1;
    const img = new ImageData(w, h);
    const out = new Uint32Array(img.data.buffer);
    const layers = this.entries.filter((e) => !this.outline || e.mask === this.live).map((e) => [e.mask.data, packed(e.colour)]);
    if (this.candidate) layers.push([this.candidate.data, packed(CANDIDATE)]);
    for (const [data, colour] of layers) {
      for (let y = 0; y < h; y++) {
        const src = (y0 + y) * W + x0, dst = y * w;
        for (let x = 0; x < w; x++) if (data[src + x]) out[dst + x] = colour;
      }
    }
    this.dctx.putImageData(img, x0, y0);
  }

  setView(scale, tx, ty, dpr, width, height) {
    if (this.canvas.width !== width || this.canvas.height !== height) { this.canvas.width = width; this.canvas.height = height; }
    this.view = { s: scale * dpr, tx: tx * dpr, ty: ty * dpr, dpr, scale };
    this.redraw();
  }

  // The whole screen canvas: after a pan, zoom or list change.
  redraw() {
    const { ctx } = this;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.display) return;
    const { s, tx, ty } = this.view;
    ctx.setTransform(s, 0, 0, s, tx, ty);
    ctx.imageSmoothingEnabled = this.view.scale < 1;
    ctx.drawImage(this.display, 0, 0);
    if (this.outline) this.strokeOutlines();
  }

  strokeOutlines() {
    const { ctx } = this;
    ctx.lineWidth = 2 / this.view.scale;
    ctx.lineJoin = "round";
    for (const e of this.entries) {
      ctx.strokeStyle = e.colour;
      ctx.stroke(this.pathOf(e.mask));
    }
  }

  pathOf(mask) {
    let p = this.paths.get(mask);
    if (!p || p.version !== mask.version) {
      p = { version: mask.version, path: contourPath(contours(mask)) };
      this.paths.set(mask, p);
    }
    return p.path;
  }

  // After an edit of `rect` (image pixels, inclusive): recompose it and copy just that part to the screen.
  flush(rect) {
    if (!rect || !this.display) return;
    if (this.outline && !this.live) { this.redraw(); return; }  // an outline changes as a whole: retrace it
    this.compose({ x0: rect.x0 - 1, y0: rect.y0 - 1, x1: rect.x1 + 1, y1: rect.y1 + 1 });
    const { ctx } = this;
    const { s, tx, ty } = this.view;
    // the screen rectangle, widened to whole device pixels so the clip has no anti-aliased seam
    const sx0 = Math.max(0, Math.floor(rect.x0 * s + tx) - 2), sy0 = Math.max(0, Math.floor(rect.y0 * s + ty) - 2);
    const sx1 = Math.min(this.canvas.width, Math.ceil((rect.x1 + 1) * s + tx) + 2);
    const sy1 = Math.min(this.canvas.height, Math.ceil((rect.y1 + 1) * s + ty) + 2);
    if (sx1 <= sx0 || sy1 <= sy0) return;
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.beginPath();
    ctx.rect(sx0, sy0, sx1 - sx0, sy1 - sy0);
    ctx.clip();
    ctx.clearRect(sx0, sy0, sx1 - sx0, sy1 - sy0);
    ctx.setTransform(s, 0, 0, s, tx, ty);
    ctx.imageSmoothingEnabled = this.view.scale < 1;
    // the source a little wider than the clip, so smoothing samples the same neighbours as a full redraw
    const W = this.display.width, H = this.display.height;
    const ix0 = Math.max(0, Math.floor((sx0 - tx) / s) - 2), iy0 = Math.max(0, Math.floor((sy0 - ty) / s) - 2);
    const ix1 = Math.min(W, Math.ceil((sx1 - tx) / s) + 2), iy1 = Math.min(H, Math.ceil((sy1 - ty) / s) + 2);
    if (ix1 > ix0 && iy1 > iy0) ctx.drawImage(this.display, ix0, iy0, ix1 - ix0, iy1 - iy0, ix0, iy0, ix1 - ix0, iy1 - iy0);
    ctx.restore();
  }

  // A stroke in the outline view shows its mask filled while it lasts (retracing the outline on every frame would
  // cost a pass over the mask's extent per frame), then the outline again.
  beginStroke(mask) { if (this.outline) this.live = mask; }
  endStroke() {
    if (!this.live) return;
    this.live = null;
    this.set(this.entries);
  }

  setOutline(on) {
    this.outline = on;
    this.setOpacity(this.opacity ?? 1);
    this.set(this.entries);
  }
}
