// Draws the viewer's shapes on the canvas stacked over the masks: overlays (the AI's crop box, the previous
// revision's outlines, dashed), the regions, their labels and line lengths, the selection, the shape being drawn,
// the ruler, the suggested mask's outline and click-to-segment's prompts. Every region but the selected one goes
// into one cached path: 1,000 regions cost one stroke per frame.
import { splinePolygon } from "./outlines.js";

export const HANDLE = 6;
const REGION = "#48e08a", SELECTED = "#4cc3ff", CANDIDATE = "#ffe14d", RULER = "#ff7a59";

export class VectorLayer {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.path = null;  // the regions' path, rebuilt after a change of the list or the selection
  }

  invalidate() { this.path = null; }

  draw(v) {
    const { ctx } = this;
    this.v = v;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!v.img) return;
    const s = v.scale * v.dpr;
    ctx.setTransform(s, 0, 0, s, v.tx * v.dpr, v.ty * v.dpr);
    const lw = 2 / v.scale;
    // overlays are in the original's pixels: not drawn over the AI crop (while savedRegions holds the regions)
    if (!v.savedRegions) for (const o of v.overlays) this.shape(o, o.colour || "#f5c542", lw, o.dash || [8 / v.scale, 6 / v.scale]);
    if (!this.path) this.path = this.regionPath(v.regions, v.selected);
    // beyond the 200 regions an annotation may hold (a bench's 1,000), one-pixel lines: software rasterisers draw
    // those an order of magnitude faster than wider strokes
    ctx.strokeStyle = REGION; ctx.fillStyle = REGION; ctx.setLineDash([]);
    ctx.lineWidth = v.regions.length > 200 ? 1 / s : lw;
    ctx.stroke(this.path);
    const dots = new Path2D();
    const r = HANDLE / v.scale;
    v.regions.forEach((p, i) => {
      if (p.type === "point" && i !== v.selected) { dots.moveTo(p.x + r, p.y); dots.arc(p.x, p.y, r, 0, Math.PI * 2); }
    });
    ctx.fill(dots);
    this.labels();
    const sel = v.regions[v.selected];
    if (sel) this.shape(sel, SELECTED, lw * 1.5, [], true);
    if (v.draft) this.draft(v.draft, lw);
    if (v.ruler) this.line(v.ruler, RULER, lw);
    if (v.candidate && !v.readOnly) this.shape({ type: "mask", mask: v.candidate.mask }, CANDIDATE, lw, [], true);
    if (v.prompts) this.prompts(v.prompts, lw);
  }

  regionPath(regions, selected) {
    const p = new Path2D();
    regions.forEach((r, i) => {
      if (i === selected) return;
      if (r.type === "bbox") p.rect(r.x, r.y, r.w, r.h);
      else if ((r.type === "polygon" || r.type === "line") && r.points?.length) {
        r.points.forEach(([x, y], k) => (k ? p.lineTo(x, y) : p.moveTo(x, y)));
        if (r.type === "polygon") p.closePath();
      }
    });
    return p;
  }

  // Labels (and line lengths) of the regions on screen; no more than 150, which is more than anyone reads.
  labels() {
    const { ctx, v } = this;
    const w = this.canvas.width / v.dpr, h = this.canvas.height / v.dpr;
    const pad = 4 / v.scale;
    ctx.font = `${13 / v.scale}px system-ui, sans-serif`;
    let shown = 0;
    for (const r of v.regions) {
      const text = r.type === "line" ? [r.label, v.lengthText(r.points)].filter(Boolean).join(" · ") : r.label;
      if (!text) continue;
      const [lx, ly] = anchor(r);
      const sx = lx * v.scale + v.tx, sy = ly * v.scale + v.ty;
      if (sx < -200 || sy < -20 || sx > w || sy > h + 20) continue;
      if (++shown > 150) break;
      ctx.fillStyle = r.type === "mask" ? v.colourOf(r.label) : REGION;
      ctx.fillText(text, lx + pad, ly - pad);
    }
  }

  shape(r, colour, lw, dash, outlineMask = false) {
    const { ctx, v } = this;
    ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = lw; ctx.setLineDash(dash);
    if (r.type === "bbox") {
      ctx.strokeRect(r.x, r.y, r.w, r.h);
    } else if ((r.type === "polygon" || r.type === "line") && r.points?.length) {
      ctx.beginPath();
      r.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (r.type === "polygon" && !r.open) ctx.closePath();
      ctx.stroke();
    } else if (r.type === "point") {
      ctx.beginPath();
      ctx.arc(r.x, r.y, HANDLE / v.scale, 0, Math.PI * 2);
      ctx.fill();
    } else if (r.type === "mask" && outlineMask) {
      ctx.stroke(v.masks.pathOf(r.mask));
    } else if (r.type === "outline") {  // closed loops (the previous revision's mask)
      for (const pts of r.loops) {
        ctx.beginPath();
        pts.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        ctx.closePath();
        ctx.stroke();
      }
    }
    if (r.label && dash.length && r.type !== "outline") {  // overlays name themselves (regions: labels())
      const [lx, ly] = anchor(r);
      ctx.setLineDash([]);
      ctx.font = `${13 / v.scale}px system-ui, sans-serif`;
      ctx.fillText(r.label, lx + 4 / v.scale, ly - 4 / v.scale);
    }
    ctx.setLineDash([]);
  }

  draft(d, lw) {
    const { v } = this;
    const dash = [4 / v.scale, 4 / v.scale];
    if (d.type === "spline") {
      const pts = d.ctrl.length >= 3 ? splinePolygon(d.ctrl, 4 / v.scale) : d.ctrl;
      this.shape({ type: "polygon", points: pts, open: d.ctrl.length < 3 }, "#ffffff", lw, dash);
      for (const [x, y] of d.ctrl) this.ctx.fillRect(x - 3 / v.scale, y - 3 / v.scale, 6 / v.scale, 6 / v.scale);
    } else {
      this.shape(d, "#ffffff", lw, dash);
    }
  }

  line(points, colour, lw) {
    const { ctx, v } = this;
    const [[x0, y0], [x1, y1]] = points;
    ctx.strokeStyle = colour; ctx.lineWidth = lw;
    ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
    ctx.fillStyle = colour;
    ctx.font = `${13 / v.scale}px system-ui, sans-serif`;
    ctx.fillText(v.lengthText(points), x1 + 6 / v.scale, y1);
  }

  // Click-to-segment's prompts: lesion clicks green with +, not-lesion clicks red with −, the box dashed.
  prompts({ points = [], box = null }, lw) {
    const { ctx, v } = this;
    if (box) { ctx.strokeStyle = CANDIDATE; ctx.lineWidth = lw; ctx.setLineDash([6 / v.scale, 4 / v.scale]); ctx.strokeRect(...box); ctx.setLineDash([]); }
    const r = 7 / v.scale;
    for (const [x, y, positive] of points) {
      ctx.fillStyle = positive ? "#3ddc84" : "#ff5a5f";
      ctx.strokeStyle = "#000"; ctx.lineWidth = lw / 2;
      ctx.beginPath(); ctx.arc(x, y, r, 0, Math.PI * 2); ctx.fill(); ctx.stroke();
      ctx.lineWidth = lw;
      ctx.beginPath(); ctx.moveTo(x - r / 2, y); ctx.lineTo(x + r / 2, y);
      if (positive) { ctx.moveTo(x, y - r / 2); ctx.lineTo(x, y + r / 2); }
      ctx.stroke();
    }
  }
}

// Where a region's label goes.
export function anchor(r) {
  if (r.type === "polygon") return r.points[0];
  if (r.type === "line") return r.points[1];
  if (r.type === "mask") return [Math.max(0, r.mask.x0), Math.max(0, r.mask.y0)];
  return [r.x, r.y];
}
