// The mask toolbar: which label the brush paints (the project's region labels), brush size, opacity, outline view,
// fill holes, and the suggested mask (the AI's pre-annotation or click-to-segment's answer) with Accept / Discard.
import { rpcGet, textArray } from "./api.js";
import { Mask } from "./mask.js";

// Every project starts with these (docs/segmentation.md); used only if the server cannot be asked.
const DEFAULT_LABELS = ["lesion", "pigment network", "dots/globules", "streaks", "blue-white veil",
                        "regression structures", "vessels", "milia-like cysts"];
const MIN_BRUSH = 2, MAX_BRUSH = 200;

export function setupMaskBar(viewer, { project, readOnly, maskTool = null, segment = null }) {
  const $ = (id) => document.getElementById(id);
  const bar = $("mask-bar"), message = $("mask-message");
  const labelPick = $("mask-label"), size = $("brush-size"), sizeOut = $("brush-value");
  const opacity = $("mask-opacity"), outline = $("mask-outline"), actions = $("candidate-actions");
  let labels = DEFAULT_LABELS;
  let item = null;

  const say = (text = "", alert = false) => {
    message.textContent = text;
    message.title = text;  // the bar is one line: the full text on hover
    message.classList.toggle("error", alert);
  };

  const ready = rpcGet("region_labels", { project_id: project })
    .then((out) => { const list = textArray(out); if (list.length) labels = list; })
    .catch(() => { /* an older server: the documented defaults */ })
    .finally(() => {
      viewer.labels = labels;
      if (labelPick) {
        labelPick.replaceChildren(...labels.map((l) => new Option(l, l)));
        setLabel(labels.includes("lesion") ? "lesion" : labels[0]);
      }
      viewer.syncMasks(true);
    });

  function setLabel(label) {
    viewer.maskLabel = label;
    if (labelPick) labelPick.value = label;
  }

  // a mask picked on the image or in the list: the brush paints it, and the label shown is its own
  viewer.onSelect = (i) => { const r = viewer.regions[i]; if (r?.type === "mask") setLabel(r.label); };
  labelPick?.addEventListener("change", () => {
    setLabel(labelPick.value);
    if (viewer.regions[viewer.selected]?.type === "mask") viewer.select(-1);  // the brush follows the label
  });

  function setBrush(d) {
    viewer.brush = Math.round(Math.min(MAX_BRUSH, Math.max(MIN_BRUSH, d)));
    if (size) { size.value = viewer.brush; sizeOut.textContent = `${viewer.brush} px`; }
    viewer.cursor.style.width = viewer.cursor.style.height = `${viewer.brush}px`;
    viewer.onStatus(viewer.status());
  }
  size?.addEventListener("input", () => setBrush(+size.value));

  const applyOpacity = () => viewer.masks.setOpacity(+opacity.value / 100);
  opacity.addEventListener("input", applyOpacity);
  applyOpacity();
  outline.addEventListener("change", () => viewer.masks.setOutline(outline.checked));

  bar.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-act]");
    if (!b) return;
    ({ "fill-holes": fillHoles, accept, discard })[b.dataset.act]?.();
  });

  function fillHoles() {
    if (!maskTool) return;
    if (!maskTool.target()) { say(`No ${viewer.maskLabel} mask to fill yet.`); return; }
    say(maskTool.fillHoles() ? "Holes filled (Ctrl+Z undoes it)." : "No holes to fill.");
  }

  viewer.onCandidate = (c) => { if (actions) actions.hidden = !c; };

  // Enter: the suggested mask becomes a mask region (added to the label's mask if there is one). The AI's suggestion
  // comes up by itself when an item opens, so an Enter pressed within a moment of that (a habitual Enter to start)
  // does not accept it unseen; the button always does.
  let aiShownAt = 0;
  const SEEN_MS = 800;
  function accept(byKey = false) {
    const c = viewer.candidate;
    if (!c || !maskTool) return false;
    if (byKey && c.source === "ai" && performance.now() - aiShownAt < SEEN_MS) return false;
    const label = c.source === "ai" && labels.includes("lesion") ? "lesion" : viewer.maskLabel;
    viewer.setCandidate(null);
    segment?.reset();
    maskTool.accept(c.mask, label);
    say(`Accepted as the ${label} mask: edit it with the brush (K) and eraser (E).`);
    return true;
  }

  // Esc: the suggestion goes; the AI's is not offered again for this item in this tab.
  function discard() {
    const c = viewer.candidate;
    if (!c && !segment?.points.length) return false;
    if (c?.source === "ai" && item) sessionStorage.setItem(`dl-ai-mask-ignored-${item.id}`, "1");
    viewer.setCandidate(null);
    segment?.reset();
    say(c ? "Suggestion discarded." : "");
    return true;
  }

  // A new item: no suggestion carried over; the AI's lesion mask offered when there is no lesion mask yet.
  async function open(next) {
    item = next;
    segment?.reset();
    viewer.setCandidate(null);
    say("");
    await ready;
    const masks = viewer.regions.some((r) => r.type === "mask");
    if (!readOnly) bar.hidden = false;
    else bar.hidden = !masks;
    const rle = item.ai?.crop?.payload?.mask;
    if (readOnly || !rle || sessionStorage.getItem(`dl-ai-mask-ignored-${item.id}`)) return;
    if (viewer.regions.some((r) => r.type === "mask" && r.label === "lesion")) return;
    let mask;
    try { mask = Mask.fromRle(rle); } catch { return; }
    if (mask.width !== viewer.img.naturalWidth || mask.height !== viewer.img.naturalHeight || !mask.area) return;
    viewer.setCandidate(mask, "ai");
    aiShownAt = performance.now();
    say("The AI outlined the lesion: Enter accepts it as the lesion mask (then edit it), Esc ignores it.");
  }

  return { say, setBrush, accept, discard, fillHoles, open, ready, labels: () => labels,
           toggleOutline() { outline.checked = !outline.checked; outline.dispatchEvent(new Event("change")); } };
}
