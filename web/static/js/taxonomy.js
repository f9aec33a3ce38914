// Classification: type-ahead over search_taxonomy (ranked, synonyms, codes), a collapsible tree, and the recent
// classes one keystroke away (Alt+1..5). Calls onPick(node) with {id, code, name, path}.
import { rpc } from "./api.js";

const trees = new Map();

// every node of a project's taxonomy by id, fetched once per page
export function taxonomyNodes(project) {
  if (!trees.has(project)) {
    trees.set(project, rpc("taxonomy_tree", { project_id: project }).then((all) => new Map(all.map((n) => [n.id, n]))));
  }
  return trees.get(project);
}

export class ClassPicker {
  constructor(root, project, onPick) {
    this.root = root;
    this.project = project;
    this.onPick = onPick;
    this.input = root.querySelector("#class-search");
    this.list = root.querySelector("#class-results");
    this.recentBox = root.querySelector("#class-recent");
    this.tree = root.querySelector("#class-tree");
    this.results = [];
    this.active = -1;
    this.seq = 0;
    this.nodes = null;
    this.key = `dl-recent-classes-${project}`;
    this.bind();
    this.renderRecent();
  }

  bind() {
    let timer;
    this.input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.search(this.input.value), 120);
    });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        if (!this.results.length) return;
        this.active = (this.active + (e.key === "ArrowDown" ? 1 : -1) + this.results.length) % this.results.length;
        this.renderResults();
      } else if (e.key === "Enter") {
        e.preventDefault();
        if (this.results.length) this.pick(this.results[Math.max(0, this.active)]);
      } else if (e.key === "Escape") {
        this.close();
      }
    });
    this.list.addEventListener("mousedown", (e) => {
      const li = e.target.closest("li[data-i]");
      if (li) { e.preventDefault(); this.pick(this.results[+li.dataset.i]); }
    });
    this.tree?.addEventListener("toggle", () => { if (this.tree.open) this.renderTree(); });
  }

  async search(q) {
    const seq = ++this.seq;
    if (!q.trim()) { this.close(); return; }
    const found = await rpc("search_taxonomy", { project_id: this.project, q, max_results: 10 });
    if (seq !== this.seq) return;  // a newer keystroke already asked
    this.results = found;
    this.active = found.length ? 0 : -1;
    this.renderResults();
  }

  renderResults() {
    this.list.replaceChildren(...this.results.map((n, i) => {
      const li = document.createElement("li");
      li.dataset.i = i;
      li.id = `class-opt-${i}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === this.active));
      const path = (n.path || []).slice(0, -1).map((p) => p.name).join(" › ");
      li.innerHTML = `<strong></strong> <code></code><small></small>`;
      li.querySelector("strong").textContent = n.name;
      li.querySelector("code").textContent = [n.code, n.icd10].filter(Boolean).join(" · ");
      li.querySelector("small").textContent = path ? ` ${path}` : "";
      return li;
    }));
    this.list.hidden = !this.results.length;
    this.input.setAttribute("aria-expanded", String(!!this.results.length));
    if (this.active >= 0) this.input.setAttribute("aria-activedescendant", `class-opt-${this.active}`);
  }

  close() {
    this.results = [];
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
  }

  pick(node) {
    this.close();
    this.input.value = "";
    const recent = [node, ...this.recent().filter((n) => n.id !== node.id)].slice(0, 5);
    localStorage.setItem(this.key, JSON.stringify(recent.map(({ id, code, name }) => ({ id, code, name }))));
    this.renderRecent();
    this.onPick(node);
  }

  recent() {
    try { return JSON.parse(localStorage.getItem(this.key) || "[]"); } catch { return []; }
  }

  pickRecent(i) {
    const n = this.recent()[i];
    if (n) this.pick(n);
  }

  renderRecent() {
    this.recentBox.replaceChildren(...this.recent().map((n, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "chip";
      b.textContent = `${i + 1} ${n.name}`;
      b.title = `Alt+${i + 1}: ${n.code}`;
      b.addEventListener("click", () => this.pick(n));
      return b;
    }));
  }

  async nodeById(id) {
    await this.loadTree();
    return this.nodes.get(id);
  }

  async loadTree() {
    this.nodes = await taxonomyNodes(this.project);
    return this.nodes;
  }

  async renderTree() {
    const nodes = await this.loadTree();
    const kids = new Map();
    for (const n of nodes.values()) {
      if (!n.active) continue;
      const k = n.parent_id ?? 0;
      if (!kids.has(k)) kids.set(k, []);
      kids.get(k).push(n);
    }
    const build = (parent) => {
      const ul = document.createElement("ul");
      for (const n of kids.get(parent) || []) {
        const li = document.createElement("li");
        if (kids.has(n.id)) {
          const d = document.createElement("details");
          const s = document.createElement("summary");
          s.append(this.treeButton(n));
          d.append(s, build(n.id));
          li.append(d);
        } else {
          li.append(this.treeButton(n));
        }
        ul.append(li);
      }
      return ul;
    };
    const body = this.tree.querySelector(".tree-body");
    body.replaceChildren(build(0));
  }

  treeButton(n) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "link";
    b.textContent = `${n.name} (${n.code})`;
    b.addEventListener("click", (e) => { e.preventDefault(); this.pick(n); });
    return b;
  }
}
