// The admin page's editor of a project's region labels: a list with rename, move up/down and remove, an add field,
// and Save (api.set_region_labels; the database checks the list). Every control is a button or field, so the list
// is edited from the keyboard alone; moving a label keeps the focus on its button.
import { rpc, rpcGet, textArray } from "./api.js";

const $ = (id) => document.getElementById(id);
const project = Number($("admin").dataset.project);
let labels = [];

function button(text, label, onClick) {
  const b = document.createElement("button");
  b.type = "button"; b.className = "link"; b.textContent = text;
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

function changed() { $("labels-state").textContent = "Unsaved changes"; }

function render(focus = null) {
  $("label-list").replaceChildren(...labels.map((l, i) => {
    const li = document.createElement("li");
    const input = document.createElement("input");
    input.value = l; input.maxLength = 200;
    input.setAttribute("aria-label", `Label ${i + 1}`);
    input.addEventListener("change", () => {  // renamed: the buttons' names follow, in place (the focus moves on)
      labels[i] = input.value.trim();
      const [up, down, remove] = li.querySelectorAll("button");
      up.setAttribute("aria-label", `Move ${labels[i]} up`);
      down.setAttribute("aria-label", `Move ${labels[i]} down`);
      remove.setAttribute("aria-label", `Remove ${labels[i]}`);
      changed();
    });
    const move = (d, which) => () => {
      const j = i + d;
      if (j < 0 || j >= labels.length) return;
      [labels[i], labels[j]] = [labels[j], labels[i]];
      changed();
      render([j, which]);
    };
    li.append(input,
      button("↑", `Move ${l} up`, move(-1, 1)), button("↓", `Move ${l} down`, move(1, 2)),
      button("Remove", `Remove ${l}`, () => { labels.splice(i, 1); changed(); render([Math.min(i, labels.length - 1), 0]); }));
    return li;
  }));
  if (focus) $("label-list").children[focus[0]]?.children[focus[1]]?.focus();
}

async function load() {
  labels = textArray(await rpcGet("region_labels", { project_id: project }));
  render();
  $("labels-state").textContent = "";
}

$("label-add").addEventListener("submit", (e) => {
  e.preventDefault();
  const v = $("label-new").value.trim();
  if (!v) return;
  if (labels.includes(v)) { $("labels-error").textContent = `“${v}” is in the list already.`; $("labels-error").hidden = false; return; }
  labels.push(v);
  $("label-new").value = "";
  $("labels-error").hidden = true;
  changed();
  render();
});

$("labels-save").addEventListener("click", async () => {
  $("labels-error").hidden = true;
  try {
    await rpc("set_region_labels", { project_id: project, labels: labels.filter(Boolean) });
    await load();
    $("labels-state").textContent = `Saved ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    $("labels-error").textContent = e.message;
    $("labels-error").hidden = false;
  }
});

load().catch((e) => { $("labels-error").textContent = e.message; $("labels-error").hidden = false; });
