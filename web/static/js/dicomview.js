// DICOM in the viewer: one frame's values fetched once (GET /images/{id}/frames/{n}), windowed here on every
// change — the same linear window as app/dicom/pixels.window8 — into a canvas the viewer draws like an image.
const TYPES = { int16: Int16Array, uint16: Uint16Array, uint8: Uint8Array, float32: Float32Array };

// Presets by modality (centre, width); every image also has the file's own window and the full range.
const PRESETS = {
  CT: [["Soft tissue", 40, 400], ["Lung", -600, 1500], ["Bone", 400, 1800], ["Brain", 40, 80]],
  MR: [["High contrast", null, 0.5], ["Low contrast", null, 1.5]],
  colour: [["High contrast", 128, 160], ["Low contrast", 128, 380]],
};

export class DicomFrames {
  constructor(image) {
    const d = image.metadata.dicom;
    this.url = image.url;
    this.frames = d.frames;
    this.samples = d.samples;
    this.modality = d.modality;
    this.invert = !!d.invert;
    this.file = { center: d.window_center, width: d.window_width };
    this.center = d.window_center; this.width = d.window_width;
    this.index = 0;
    this.cache = new Map();
    this.canvas = document.createElement("canvas");
  }

  async frame(n) {
    if (!this.cache.has(n)) {
      const r = await fetch(`${this.url}/frames/${n}`, { credentials: "same-origin" });
      if (!r.ok) throw new Error(`frame ${n + 1}: ${r.status}`);
      const T = TYPES[r.headers.get("x-dtype")] || Float32Array;
      const values = new T(await r.arrayBuffer());
      const rows = +r.headers.get("x-rows"), cols = +r.headers.get("x-columns");
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < values.length; i++) { const v = values[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
      this.cache.set(n, { values, rows, cols, lo, hi });
    }
    return this.cache.get(n);
  }

  presets() {
    const f = this.cache.get(this.index);
    const list = [["File", this.file.center, this.file.width]];
    if (f) list.push(["Full range", (f.lo + f.hi) / 2, Math.max(1, f.hi - f.lo + 1)]);
    const extra = this.samples === 3 ? PRESETS.colour : PRESETS[this.modality] || [];
    for (const [name, c, w] of extra) {
      // relative presets (MR): around the file's window, narrower or wider
      list.push(c === null ? [name, this.file.center, Math.max(1, this.file.width * w)] : [name, c, w]);
    }
    return list;
  }

  // Draw frame n through the current window into this.canvas; returns it, sized like an image for the viewer.
  async render(n = this.index) {
    const f = await this.frame(n);
    // keys can step on while a frame loads: a frame that is no longer the current one is not drawn (its late
    // arrival would otherwise paint over the newer frame and pull the index back)
    if (n !== this.index) return null;
    const { canvas } = this;
    if (canvas.width !== f.cols || canvas.height !== f.rows) { canvas.width = f.cols; canvas.height = f.rows; }
    canvas.naturalWidth = f.cols; canvas.naturalHeight = f.rows;
    const ctx = canvas.getContext("2d");
    const out = ctx.createImageData(f.cols, f.rows);
    const px = out.data, v = f.values;
    const c = this.center - 0.5, w = Math.max(1, this.width - 1), inv = this.invert;
    const lut = (x) => { let y = ((x - c) / w + 0.5) * 255; y = y < 0 ? 0 : y > 255 ? 255 : Math.round(y); return inv ? 255 - y : y; };
    if (this.samples === 3) {
      const table = new Uint8ClampedArray(256);
      for (let i = 0; i < 256; i++) table[i] = lut(i);
      for (let i = 0, j = 0; i < v.length; i += 3, j += 4) {
        px[j] = table[v[i]]; px[j + 1] = table[v[i + 1]]; px[j + 2] = table[v[i + 2]]; px[j + 3] = 255;
      }
    } else {
      for (let i = 0, j = 0; i < v.length; i++, j += 4) {
        const g = lut(v[i]);
        px[j] = px[j + 1] = px[j + 2] = g; px[j + 3] = 255;
      }
    }
    ctx.putImageData(out, 0, 0);
    return canvas;
  }

  setWindow(center, width) { this.center = center; this.width = Math.max(1, width); }

  // A drag: right makes the window wider, down makes the image darker (centre up), scaled to the value range.
  drag(dx, dy, from) {
    const f = this.cache.get(this.index);
    const span = f ? Math.max(1, f.hi - f.lo) : 256;
    this.setWindow(from.center + dy * span / 512, from.width + dx * span / 256);
  }
}
