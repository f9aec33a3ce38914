// Measurements of the current masks and lines, asked of the database (api.region_measurements) a moment after they
// change: area and greatest diameter of each mask, length of each line, in mm when the image has a scale. The
// lesion's diameter in mm can fill the Diameter descriptor (diameter_mm).
import { rpc } from "./api.js";

const WAIT_MS = 600;
const fmt = (x, digits = 1) => Number(x).toLocaleString(undefined, { maximumFractionDigits: digits });

export class Measurements {
  constructor(root, { itemId, regions, onDiameter, currentDiameter = () => null }) {
    this.root = root;
    this.itemId = itemId;     // () => the item's id
    this.regions = regions;   // () => the regions as the API takes them
    this.onDiameter = onDiameter;  // (mm) => fill the descriptor; null when the schema has no diameter_mm
    this.currentDiameter = currentDiameter;  // () => the descriptor's value as it stands
    this.filled = null;       // the diameter this panel last put into the descriptor
    this.timer = null;
    this.seq = 0;
    this.last = "";
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), WAIT_MS);
  }

  clear() {
    clearTimeout(this.timer); this.last = ""; this.seq++; this.root.hidden = true; this.root.replaceChildren();
  }

  // a new item: nothing of the last one's diameter carries over
  reset() { this.filled = null; this.clear(); }

  // The Diameter the panel filled follows the lesion mask while nobody has typed over it; when the mask is gone, a
  // warning says the figure no longer has a mask behind it (a stale diameter must not reach review unnoticed).
  follow(lesionMm) {
    if (this.filled == null || !this.onDiameter) return "";
    const current = this.currentDiameter();
    if (current === null || Number(current) !== this.filled) { this.filled = null; return ""; }  // typed over: theirs
    if (lesionMm == null) return `The Diameter (${fmt(this.filled)} mm) was measured on a lesion mask that is gone: check it.`;
    if (lesionMm !== this.filled) {
      const was = this.filled;
      this.filled = lesionMm;
      this.onDiameter(lesionMm);
      return `Diameter updated from ${fmt(was)} to ${fmt(lesionMm)} mm: the lesion mask changed.`;
    }
    return "";
  }

  async run() {
    const id = this.itemId();
    const regions = this.regions();
    if (!id || !regions.some((r) => r.type === "mask" || r.type === "line")) {
      const note = this.follow(null);
      this.clear();
      if (note) { this.root.replaceChildren(Object.assign(document.createElement("p"), { textContent: note, className: "error" })); this.root.hidden = false; }
      return;
    }
    const key = JSON.stringify(regions.map((r) => (r.type === "mask" ? [r.label, r.rle.counts] : r.type === "line" ? r.points : r.type)));
    if (key === this.last) return;
    const seq = ++this.seq;
    let out;
    try {
      out = await rpc("region_measurements", { item_id: id, regions });
    } catch (e) {
      if (seq === this.seq) this.show([], `Measurements unavailable: ${e.message}`);
      return;
    }
    if (seq !== this.seq) return;  // the regions changed meanwhile: a newer call answers
    this.last = key;
    this.show(out);
  }

  show(list, error = "") {
    const el = (tag, text, cls) => { const e = document.createElement(tag); if (text) e.textContent = text; if (cls) e.className = cls; return e; };
    const rows = [];
    let lesion = null;
    for (const m of list || []) {
      const name = `${m.index + 1}. ${m.type}${m.label ? ` ${m.label}` : ""}`;
      if (m.type === "mask") {
        const area = m.area_mm2 != null ? `${fmt(m.area_mm2)} mm²` : `${fmt(m.area_px, 0)} px²`;
        const dia = m.diameter_mm != null ? `${fmt(m.diameter_mm)} mm` : `${fmt(m.diameter_px)} px`;
        rows.push(el("li", `${name}: area ${area} · diameter ${dia}`));
        if (m.label === "lesion" && m.diameter_mm != null && !lesion) lesion = m;
      } else if (m.type === "line") {
        rows.push(el("li", `${name}: ${m.length_mm != null ? `${fmt(m.length_mm)} mm` : `${fmt(m.length_px)} px`}`));
      }
    }
    const ul = el("ul", null, "measure-list");
    ul.append(...rows);
    this.root.replaceChildren(el("h3", "Measurements"), ul);
    if (error) this.root.append(el("p", error, "error"));
    const note = this.follow(lesion ? Math.round(lesion.diameter_mm * 10) / 10 : null);
    if (note) this.root.append(el("p", note, "error"));
    if (lesion && this.onDiameter) {
      const mm = Math.round(lesion.diameter_mm * 10) / 10;
      const b = el("button", `Use ${fmt(mm)} mm as the Diameter`);
      b.type = "button";
      b.id = "fill-diameter";
      b.addEventListener("click", () => { this.filled = mm; this.onDiameter(mm); });
      this.root.append(b);
    } else if (list?.some((m) => m.type === "mask" && m.label === "lesion") && this.onDiameter) {
      this.root.append(el("p", "The image has no scale (pixels per mm): the diameter is in pixels only.", "muted small"));
    }
    this.root.hidden = false;
  }
}
