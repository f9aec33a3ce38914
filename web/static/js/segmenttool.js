// Click-to-segment: a click marks lesion, Shift+click marks not lesion, a drag draws a box around it; each prompt
// asks POST /items/{id}/segment for a mask over the whole image, shown as a candidate that Enter accepts and Esc
// discards (the viewer's candidate). Only the newest answer counts: an older request still running is aborted.
import { post } from "./api.js";
import { Mask } from "./mask.js";

const DRAG_PX = 5;  // a press that moves further than this is a box, not a click
// Below this score the service found nothing it believes in (the reference answers 0 for a speck on plain skin):
// offering it as a suggestion would let Enter merge noise into the lesion and inflate its diameter.
const MIN_SCORE = 0.05;

export class SegmentTool {
  constructor(viewer, { itemId, onMessage = () => {} }) {
    this.v = viewer;
    this.itemId = itemId;  // () => the item's id
    this.onMessage = onMessage;
    this.points = [];
    this.box = null;
    this.press = null;
    this.pending = null;
    viewer.tools.segment = this;
  }

  reset() {
    this.pending?.abort();
    this.pending = null;
    this.points = [];
    this.box = null;
    this.v.prompts = null;
    this.v.drawVectors();
  }

  down(e, p) { this.press = { sx: e.clientX, sy: e.clientY, p, negative: e.shiftKey, box: null }; }

  move(e) {
    const s = this.press;
    if (!s) return;
    if (!s.box && Math.hypot(e.clientX - s.sx, e.clientY - s.sy) < DRAG_PX) return;
    const [x, y] = this.v.clamp(this.v.toImage(e));
    const [ox, oy] = this.v.clamp(s.p);
    s.box = [Math.min(ox, x), Math.min(oy, y), Math.abs(x - ox), Math.abs(y - oy)];
    this.showPrompts(s.box);
  }

  up() {
    const s = this.press;
    this.press = null;
    if (!s) return;
    if (s.box) {
      if (s.box[2] < 2 || s.box[3] < 2) { this.showPrompts(); return; }
      this.box = s.box;
    } else {
      const [px, py] = s.p;
      if (px < 0 || py < 0 || px > this.v.img.naturalWidth || py > this.v.img.naturalHeight) {
        this.onMessage("That click is outside the image: click on the lesion.");
        return;
      }
      const [x, y] = this.v.clamp(s.p);
      this.points.push([x, y, s.negative ? 0 : 1]);
    }
    this.showPrompts();
    if (!this.box && !this.points.some((p) => p[2] === 1)) {  // the service needs a lesion click or a box
      this.onMessage("Click the lesion first (Shift+click marks what is not lesion), or drag a box around it.");
      return;
    }
    this.run(performance.now());
  }

  showPrompts(box = this.box) {
    this.v.prompts = { points: this.points, box };
    this.v.drawVectors();
  }

  async run(t0) {
    this.pending?.abort();
    const ctrl = new AbortController();
    this.pending = ctrl;
    this.onMessage("Segmenting…");
    let out;
    try {
      out = await post(`/items/${this.itemId()}/segment`, { points: this.points, box: this.box }, ctrl.signal);
    } catch (e) {
      if (ctrl.signal.aborted) return;
      this.pending = null;
      this.onMessage(e.status === 503
        ? "Click-to-segment is off on this server (no segment service is configured). Draw with the brush (K) instead."
        : `Click-to-segment failed: ${e.message}`, true);
      return;
    }
    if (ctrl.signal.aborted) return;
    this.pending = null;
    let mask;
    try {
      mask = Mask.fromRle(out.rle);
    } catch (e) {
      this.onMessage(`Click-to-segment answered a mask that does not decode: ${e.message}`, true);
      return;
    }
    if (mask.width !== this.v.img.naturalWidth || mask.height !== this.v.img.naturalHeight) {
      this.onMessage("Click-to-segment answered a mask of another size than the image.", true);
      return;
    }
    if (!mask.area || (typeof out.score === "number" && out.score < MIN_SCORE)) {
      this.onMessage("No lesion found there: click inside it, or draw a box around it.");
      this.v.setCandidate(null);
      return;
    }
    this.v.setCandidate(mask, "segment");
    const score = typeof out.score === "number" ? ` (score ${out.score.toFixed(2)})` : "";
    this.onMessage(`Suggested mask${score}: Enter accepts it, Esc discards it; click again to refine.`);
    // when the candidate is on screen: what bench/segment_ui.py times from the click
    requestAnimationFrame(() => this.v.canvas.dispatchEvent(
      new CustomEvent("segmentshown", { detail: { ms: performance.now() - t0, server_ms: out.latency_ms } })));
  }
}
