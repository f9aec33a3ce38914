// One binary mask at the image's resolution: a row-major Uint8Array of 0/1 with brush strokes (capsules), fill
// holes, union, and undo patches kept per 64×64 tile (only the tiles an edit touched are copied, so a stroke on a
// 12-megapixel mask costs kilobytes of history, not megabytes).
import { decode, encode } from "./rle.js";

const TILE = 64;

export class Mask {
  constructor(width, height, data = null) {
    this.width = width; this.height = height;
    this.data = data || new Uint8Array(width * height);
    this.version = 0;
    this.area = 0;
    // columns and rows that may hold set pixels (a superset: erasing does not shrink it)
    this.x0 = width; this.x1 = -1; this.y0 = height; this.y1 = -1;
    this.saved = null;   // tile index -> bytes before the edit in progress
    this.rle = null;     // cached encoding of `rleVersion`
    if (data) this.rescan();
  }

  static fromRle(rle) {
    const { width, height, data } = decode(rle);
    const m = new Mask(width, height, data);
    m.rle = rle; m.rleVersion = m.version;
    return m;
  }

  rescan() {
    const { width: w, height: h, data } = this;
    let n = 0, x0 = w, x1 = -1, y0 = h, y1 = -1;
    for (let y = 0; y < h; y++) {
      const row = y * w;
      let first = -1, last = -1;
      for (let x = 0; x < w; x++) if (data[row + x]) { n++; if (first < 0) first = x; last = x; }
      if (first >= 0) { if (first < x0) x0 = first; if (last > x1) x1 = last; if (y < y0) y0 = y; y1 = y; }
    }
    this.area = n; this.x0 = x0; this.x1 = x1; this.y0 = y0; this.y1 = y1;
  }

  at(x, y) {
    x = Math.floor(x); y = Math.floor(y);
    return x >= 0 && y >= 0 && x < this.width && y < this.height && this.data[y * this.width + x] === 1;
  }

  toRle() {
    if (!this.rle || this.rleVersion !== this.version) {
      this.rle = encode(this.data, this.width, this.height, Math.max(0, this.x0), Math.min(this.width - 1, this.x1));
      this.rleVersion = this.version;
    }
    return this.rle;
  }

  grow(x0, y0, x1, y1) {
    if (x0 < this.x0) this.x0 = x0; if (x1 > this.x1) this.x1 = x1;
    if (y0 < this.y0) this.y0 = y0; if (y1 > this.y1) this.y1 = y1;
  }

  // -- edits: begin, change spans, end → an undo patch --------------------------------------------------------------
  begin() { this.saved = new Map(); }

  keep(tx, ty) {  // copy a tile the first time an edit touches it
    const key = ty * 65536 + tx;
    if (!this.saved || this.saved.has(key)) return;
    this.saved.set(key, this.readTile(tx, ty));
  }

  readTile(tx, ty) {
    const { width: w } = this;
    const x0 = tx * TILE, y0 = ty * TILE, tw = Math.min(TILE, w - x0), th = Math.min(TILE, this.height - y0);
    const out = new Uint8Array(tw * th);
    for (let y = 0; y < th; y++) out.set(this.data.subarray((y0 + y) * w + x0, (y0 + y) * w + x0 + tw), y * tw);
    return out;
  }

  writeTile(key, bytes) {
    const { width: w } = this;
    const tx = key % 65536, ty = Math.floor(key / 65536);
    const x0 = tx * TILE, y0 = ty * TILE, tw = Math.min(TILE, w - x0), th = Math.min(TILE, this.height - y0);
    let delta = 0;
    for (let y = 0; y < th; y++) {
      const row = (y0 + y) * w + x0;
      for (let x = 0; x < tw; x++) { const v = bytes[y * tw + x]; delta += v - this.data[row + x]; this.data[row + x] = v; }
    }
    this.area += delta;
    this.grow(x0, y0, x0 + tw - 1, y0 + th - 1);
    return { x0, y0, x1: x0 + tw - 1, y1: y0 + th - 1 };
  }

  // Sets pixels x0..x1 of row y to v (clipped); the caller widens its dirty rectangle.
  span(y, x0, x1, v) {
    if (y < 0 || y >= this.height) return;
    if (x0 < 0) x0 = 0;
    if (x1 >= this.width) x1 = this.width - 1;
    if (x1 < x0) return;
    if (this.saved) for (let tx = Math.floor(x0 / TILE), te = Math.floor(x1 / TILE), ty = Math.floor(y / TILE); tx <= te; tx++) this.keep(tx, ty);
    const d = this.data, row = y * this.width;
    let delta = 0;
    for (let j = row + x0, end = row + x1; j <= end; j++) if (d[j] !== v) { d[j] = v; delta++; }
    if (delta) {
      this.area += v ? delta : -delta;
      this.version++;
      if (v) this.grow(x0, y, x1, y);
    }
  }

  // The patch of the edit begun with begin(): {before, after} tiles, or null when nothing changed.
  end() {
    const before = this.saved;
    this.saved = null;
    if (!before || !before.size) return null;
    const after = new Map();
    let same = true;
    for (const [key, bytes] of before) {
      const now = this.readTile(key % 65536, Math.floor(key / 65536));
      after.set(key, now);
      if (same) for (let i = 0; i < now.length; i++) if (now[i] !== bytes[i]) { same = false; break; }
    }
    return same ? null : { before, after };
  }

  // Puts one side of a patch back; returns the rectangle that changed.
  apply(tiles) {
    let r = null;
    for (const [key, bytes] of tiles) r = unite(r, this.writeTile(key, bytes));
    this.version++;
    return r;
  }

  // -- brush ---------------------------------------------------------------------------------------------------------
  // Every pixel whose centre lies within r of the segment (ax, ay)-(bx, by) gets v: one capsule per pointer move,
  // each row one span (the capsule is convex). Returns the dirty rectangle or null.
  capsule(ax, ay, bx, by, r, v) {
    const dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy, len = Math.sqrt(len2);
    const yTop = Math.max(0, Math.floor(Math.min(ay, by) - r)), yBot = Math.min(this.height - 1, Math.ceil(Math.max(ay, by) + r));
    let rect = null;
    for (let y = yTop; y <= yBot; y++) {
      const cy = y + 0.5;
      let lo = Infinity, hi = -Infinity;
      for (const [px, py] of [[ax, ay], [bx, by]]) {  // the two end discs
        const h2 = r * r - (cy - py) * (cy - py);
        if (h2 >= 0) { const h = Math.sqrt(h2); lo = Math.min(lo, px - h); hi = Math.max(hi, px + h); }
      }
      if (len > 1e-6) {  // the band between them: 0 <= projection <= 1 and |perpendicular| <= r, each linear in x
        let a = -Infinity, b = Infinity;
        const lim = (k, c, min, max) => {  // min <= k·x + c <= max
          if (Math.abs(k) < 1e-12) { if (c < min || c > max) { a = Infinity; } return; }
          let l = (min - c) / k, u = (max - c) / k;
          if (l > u) [l, u] = [u, l];
          a = Math.max(a, l); b = Math.min(b, u);
        };
        lim(dx, -ax * dx + (cy - ay) * dy, 0, len2);
        lim(dy / len, (-ax * dy - (cy - ay) * dx) / len, -r, r);
        if (a <= b) { lo = Math.min(lo, a); hi = Math.max(hi, b); }
      }
      if (lo > hi) continue;
      const x0 = Math.ceil(lo - 0.5), x1 = Math.floor(hi - 0.5);  // pixel centres inside
      if (x1 < x0) continue;
      this.span(y, x0, x1, v);
      rect = unite(rect, { x0: Math.max(0, x0), y0: y, x1: Math.min(this.width - 1, x1), y1: y });
    }
    return rect;
  }

  // -- whole-mask operations ---------------------------------------------------------------------------------------
  // Background not connected (4-neighbours) to the outside becomes mask; returns the dirty rectangle or null.
  fillHoles() {
    if (this.x1 < 0) return null;
    const { width: W, height: H } = this;
    // the mask's extent plus a border of background (clipped to the image: the image's edge counts as outside)
    const x0 = Math.max(0, this.x0 - 1), y0 = Math.max(0, this.y0 - 1);
    const x1 = Math.min(W - 1, this.x1 + 1), y1 = Math.min(H - 1, this.y1 + 1);
    const w = x1 - x0 + 1, h = y1 - y0 + 1;
    const seen = new Uint8Array(w * h);
    const stack = new Int32Array(w * h);
    let top = 0;
    const push = (x, y) => {
      const k = y * w + x;
      if (!seen[k] && !this.data[(y0 + y) * W + x0 + x]) { seen[k] = 1; stack[top++] = k; }
    };
    for (let x = 0; x < w; x++) { push(x, 0); push(x, h - 1); }
    for (let y = 0; y < h; y++) { push(0, y); push(w - 1, y); }
    while (top) {
      const k = stack[--top], x = k % w, y = (k - x) / w;
      if (x > 0) push(x - 1, y);
      if (x < w - 1) push(x + 1, y);
      if (y > 0) push(x, y - 1);
      if (y < h - 1) push(x, y + 1);
    }
    let rect = null;
    for (let y = 0; y < h; y++) {
      let run = -1;
      for (let x = 0; x <= w; x++) {
        const hole = x < w && !seen[y * w + x] && !this.data[(y0 + y) * W + x0 + x];
        if (hole && run < 0) run = x;
        if (!hole && run >= 0) {
          this.span(y0 + y, x0 + run, x0 + x - 1, 1);
          rect = unite(rect, { x0: x0 + run, y0: y0 + y, x1: x0 + x - 1, y1: y0 + y });
          run = -1;
        }
      }
    }
    return rect;
  }

  // Sets every pixel set in `other` (same size); returns the dirty rectangle or null.
  add(other) {
    let rect = null;
    const { width: w } = this;
    for (let y = Math.max(0, other.y0); y <= Math.min(this.height - 1, other.y1); y++) {
      let run = -1;
      for (let x = other.x0; x <= other.x1 + 1; x++) {
        const on = x <= other.x1 && other.data[y * w + x] === 1;
        if (on && run < 0) run = x;
        if (!on && run >= 0) { this.span(y, run, x - 1, 1); run = -1; }
      }
      rect = unite(rect, { x0: other.x0, y0: y, x1: other.x1, y1: y });
    }
    return rect;
  }
}

export function unite(a, b) {
  if (!a) return b;
  if (!b) return a;
  return { x0: Math.min(a.x0, b.x0), y0: Math.min(a.y0, b.y0), x1: Math.max(a.x1, b.x1), y1: Math.max(a.y1, b.y1) };
}
