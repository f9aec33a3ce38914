// Mask editing: the brush and the eraser (a capsule per pointer move, painted into the mask's bytes; the mask layer
// repaints the dirty rectangle once per animation frame), fill holes, and accepting a suggested mask. Each edit is
// one undo step holding only the 64×64 tiles it touched. The brush paints into the selected mask, else the mask of
// the chosen label (a new one on the first stroke).
import { Mask } from "./mask.js";
import { coalesced, maskRegion } from "./viewer.js";

export class MaskTool {
  constructor(viewer) {
    this.v = viewer;
    this.stroke = null;
    this.dirty = null;
    this.frame = 0;
    viewer.tools.mask = this;
    viewer.tools.erase = this;
  }

  // The mask region edits go to: {index, region} or null.
  target() {
    const { v } = this;
    const sel = v.regions[v.selected];
    if (sel?.type === "mask") return { index: v.selected, region: sel };
    const index = v.regions.findIndex((r) => r.type === "mask" && r.label === v.maskLabel);
    return index >= 0 ? { index, region: v.regions[index] } : null;
  }

  newMask() { return new Mask(this.v.img.naturalWidth, this.v.img.naturalHeight); }

  down(e, [x, y]) {
    const { v } = this;
    const erase = v.tool === "erase" || e.altKey;  // Alt paints with the eraser for one stroke
    let t = this.target();
    let before = null;
    if (!t) {
      if (erase) return;
      before = v.regions;  // a new mask region, made by this stroke (undone with it)
      const region = maskRegion(v.maskLabel, this.newMask());
      v.setListQuietly([...v.regions, region]);
      t = { index: v.regions.length - 1, region };
    }
    const mask = t.region.mask;
    mask.begin();
    v.masks.beginStroke(mask);
    this.stroke = { mask, before, after: before ? v.regions : null, value: erase ? 0 : 1, last: [x, y] };
    this.paint(x, y);
  }

  move(e) {
    if (!this.stroke) return;
    for (const ev of coalesced(e)) {
      const [x, y] = this.v.toImage(ev);
      this.paint(x, y);
    }
  }

  paint(x, y) {
    const s = this.stroke;
    const r = Math.max(0.5, this.v.brush / 2 / this.v.scale);
    const rect = s.mask.capsule(s.last[0], s.last[1], x, y, r, s.value);
    s.last = [x, y];
    if (!rect) return;
    this.dirty = this.dirty ? unite(this.dirty, rect) : rect;
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    const rect = this.dirty;
    this.dirty = null;
    this.v.masks.flush(rect);
  }

  up() {
    const s = this.stroke;
    if (!s) return;
    this.stroke = null;
    if (this.frame) { cancelAnimationFrame(this.frame); this.flush(); }
    this.v.masks.endStroke();
    this.record(s.mask, s.mask.end(), s.before, s.after);
  }

  // One undo step for a pixel edit (and the region it created, if any).
  record(mask, patch, listBefore = null, listAfter = null) {
    const { v } = this;
    if (!patch) {
      if (listBefore) v.setListQuietly(listBefore);
      return;
    }
    const apply = (tiles, list) => {
      const rect = mask.apply(tiles);
      if (list) v.setList(list); else v.masks.flush(rect);
      v.pixelsChanged();
    };
    v.history.push({ undo: () => apply(patch.before, listBefore), redo: () => apply(patch.after, listAfter) });
    if (listBefore) v.setList(listAfter);  // tells the workspace about the new region
    v.pixelsChanged();
  }

  fillHoles() {
    const t = this.target();
    if (!t || this.v.readOnly) return false;
    const { mask } = t.region;
    mask.begin();
    const rect = mask.fillHoles();
    const patch = mask.end();
    if (rect) this.v.masks.flush(rect);
    this.record(mask, patch);
    return !!patch;
  }

  // A suggested mask becomes (part of) the mask of `label`: added to it if there is one, else a new region.
  accept(candidate, label) {
    const { v } = this;
    const index = v.regions.findIndex((r) => r.type === "mask" && r.label === label);
    if (index < 0) {
      v.add(maskRegion(label, candidate));
      return;
    }
    const { mask } = v.regions[index];
    mask.begin();
    const rect = mask.add(candidate);
    const patch = mask.end();
    if (rect) v.masks.flush(rect);
    this.record(mask, patch);
    v.select(index);
  }
}

function unite(a, b) {
  return { x0: Math.min(a.x0, b.x0), y0: Math.min(a.y0, b.y0), x1: Math.max(a.x1, b.x1), y1: Math.max(a.y1, b.y1) };
}
