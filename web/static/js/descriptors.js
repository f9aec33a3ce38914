// The descriptors form, generated from the project's descriptor schema; values in and out as the API's object.
export class DescriptorsForm {
  constructor(root, schema, onChange) {
    this.root = root;
    this.schema = schema;
    this.onChange = onChange;
    this.render();
  }

  render() {
    const rows = this.schema.map((f) => {
      const wrap = document.createElement("div");
      wrap.className = "field";
      wrap.dataset.key = f.key;
      const id = `d-${f.key}`;
      const label = document.createElement(f.kind === "multi" ? "span" : "label");
      label.className = "field-label";
      if (f.kind !== "multi") label.htmlFor = id;
      label.textContent = f.label + (f.unit ? ` (${f.unit})` : "");
      if (f.required) label.insertAdjacentHTML("beforeend", ' <abbr title="required" class="req">*</abbr>');
      wrap.append(label);
      if (f.kind === "single") {
        const sel = document.createElement("select");
        sel.id = id;
        sel.append(new Option("—", ""), ...f.options.map((o) => new Option(o.replaceAll("_", " "), o)));
        wrap.append(sel);
      } else if (f.kind === "multi") {
        const group = document.createElement("div");
        group.className = "checks";
        group.setAttribute("role", "group");
        group.setAttribute("aria-label", f.label);
        for (const o of f.options) {
          const l = document.createElement("label");
          const c = document.createElement("input");
          c.type = "checkbox"; c.value = o; c.name = id;
          l.append(c, ` ${o.replaceAll("_", " ")}`);
          group.append(l);
        }
        wrap.append(group);
      } else if (f.kind === "boolean") {
        const sel = document.createElement("select");
        sel.id = id;
        sel.append(new Option("—", ""), new Option("yes", "true"), new Option("no", "false"));
        wrap.append(sel);
      } else {
        const inp = document.createElement(f.kind === "text" ? "textarea" : "input");
        inp.id = id;
        if (f.kind === "number") {
          inp.type = "number"; inp.step = "any";
          if (f.min !== undefined) inp.min = f.min;
          if (f.max !== undefined) inp.max = f.max;
        }
        wrap.append(inp);
      }
      const err = document.createElement("p");
      err.className = "error field-error";
      err.setAttribute("role", "alert");
      err.hidden = true;
      wrap.append(err);
      return wrap;
    });
    this.root.replaceChildren(...rows);
    this.root.addEventListener("change", () => this.onChange());
    this.root.addEventListener("input", () => this.onChange());
  }

  value() {
    const out = {};
    for (const f of this.schema) {
      const wrap = this.root.querySelector(`[data-key="${f.key}"]`);
      if (f.kind === "multi") {
        const picked = [...wrap.querySelectorAll("input:checked")].map((c) => c.value);
        if (picked.length) out[f.key] = picked;
      } else {
        const el = wrap.querySelector("select, input, textarea");
        if (el.value === "") continue;
        out[f.key] = f.kind === "number" ? Number(el.value) : f.kind === "boolean" ? el.value === "true" : el.value;
      }
    }
    return out;
  }

  set(values = {}) {
    for (const f of this.schema) {
      const wrap = this.root.querySelector(`[data-key="${f.key}"]`);
      const v = values[f.key];
      if (f.kind === "multi") {
        for (const c of wrap.querySelectorAll("input")) c.checked = Array.isArray(v) && v.includes(c.value);
      } else {
        wrap.querySelector("select, input, textarea").value = v === undefined || v === null ? "" : String(v);
      }
    }
    this.clearErrors();
  }

  // an API error naming "descriptors.<key>" (or the key) is shown beside that field; returns whether it was
  showError(field, message) {
    const key = (field || "").replace(/^descriptors\.?/, "");
    const wrap = key && this.root.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (!wrap) return false;
    const p = wrap.querySelector(".field-error");
    p.textContent = message;
    p.hidden = false;
    wrap.querySelector("select, input, textarea")?.focus();
    return true;
  }

  clearErrors() {
    for (const p of this.root.querySelectorAll(".field-error")) p.hidden = true;
  }
}
