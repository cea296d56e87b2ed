// ComparisonDashboard: choose runtimes / export / arguments / repeat, press Run; Python compares and fills
// `rows`, which this file draws as a table and a stacked bar chart (SVG) of median phase times.

const SVG = "http://www.w3.org/2000/svg";
const PHASE_COLORS = { compile: "#8250df", instantiate: "#0969da", call: "#654ff0", run: "#bc4c00" };

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

function ms(value) {
  if (value === null || value === undefined) return "";
  if (value >= 100) return `${value.toFixed(0)} ms`;
  if (value >= 1) return `${value.toFixed(2)} ms`;
  return `${(value * 1000).toFixed(1)} µs`;
}

function chart(rows, phases) {
  const used = phases.filter((p) => rows.some((r) => r[`${p}_ms`] !== null && r[`${p}_ms`] !== undefined));
  if (!rows.length || !used.length) return null;
  const total = (r) => used.reduce((sum, p) => sum + (r[`${p}_ms`] || 0), 0);
  const max = Math.max(...rows.map(total)) || 1;
  const label = 110, width = 520, bar = 18, gap = 6;
  const height = rows.length * (bar + gap) + 24;
  const items = [];
  rows.forEach((r, i) => {
    const y = i * (bar + gap);
    items.push(svg("text", { x: label - 6, y: y + bar - 5, "text-anchor": "end", "font-size": 12, fill: "currentColor" },
      document.createTextNode(r.runtime)));
    let x = label;
    for (const p of used) {
      const w = ((r[`${p}_ms`] || 0) / max) * width;
      if (w > 0) {
        const rect = svg("rect", { x, y, width: Math.max(w, 0.5), height: bar, fill: PHASE_COLORS[p] || "#999" });
        rect.append(svg("title", {}, document.createTextNode(`${r.runtime} ${p}: ${ms(r[`${p}_ms`])}`)));
        items.push(rect);
      }
      x += w;
    }
    items.push(svg("text", { x: x + 4, y: y + bar - 5, "font-size": 11, fill: "currentColor" },
      document.createTextNode(ms(total(r)))));
  });
  let lx = label;
  for (const p of used) {
    items.push(svg("rect", { x: lx, y: height - 14, width: 10, height: 10, fill: PHASE_COLORS[p] || "#999" }));
    items.push(svg("text", { x: lx + 14, y: height - 5, "font-size": 11, fill: "currentColor" }, document.createTextNode(p)));
    lx += 90;
  }
  return svg("svg", { width: label + width + 80, height, role: "img" }, items);
}

function render({ model, el }) {
  const root = h("div", { class: "wasmlab-w wasmlab-comparison-dashboard" });
  el.append(root);
  const set = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };

  const runtimeBox = h("div", { class: "wl-controls" });
  const exportSelect = h("select", {});
  exportSelect.addEventListener("change", () => set("invoke", exportSelect.value));
  const args = h("input", { type: "text", size: "16", placeholder: "args, e.g. 10, 20" });
  args.addEventListener("change", () => set("args", args.value));
  const repeat = h("input", { type: "number", min: "1", max: "1000", style: { width: "4em" } });
  repeat.addEventListener("change", () => set("repeat", Math.max(1, Number(repeat.value) || 1)));
  const run = h("button", {
    onclick: () => {
      // push the text fields first so Python runs with what is on screen
      model.set("args", args.value);
      model.set("repeat", Math.max(1, Number(repeat.value) || 1));
      model.save_changes();
      model.send({ type: "run" });
    },
  }, "Run");
  const status = h("div", {});
  const results = h("div", {});
  root.append(
    runtimeBox,
    h("div", { class: "wl-controls" }, h("label", {}, "export", exportSelect), h("label", {}, "args", args),
      h("label", {}, "repeat", repeat), run),
    status,
    results,
  );

  const drawControls = () => {
    const selected = new Set(model.get("runtimes") || []);
    fill(runtimeBox,
      "runtimes:",
      ...(model.get("available_runtimes") || []).map((name) => {
        const box = h("input", { type: "checkbox" });
        box.checked = selected.has(name);
        box.addEventListener("change", () => {
          const now = new Set(model.get("runtimes") || []);
          if (box.checked) now.add(name);
          else now.delete(name);
          set("runtimes", (model.get("available_runtimes") || []).filter((n) => now.has(n)));
        });
        return h("label", {}, box, name);
      }),
    );
    const exports = model.get("exports") || [];
    fill(exportSelect,
      h("option", { value: "" }, "(WASI command)"),
      ...exports.map((e) => h("option", { value: e.name }, `${e.name} ${e.type}`)),
    );
    exportSelect.value = model.get("invoke");
    args.value = model.get("args");
    repeat.value = String(model.get("repeat"));
  };

  const drawResults = () => {
    const rows = model.get("rows") || [];
    const phases = (model.get("phases") || []).filter((p) => rows.some((r) => r[`${p}_ms`] !== null));
    const agree = model.get("agree");
    const skipped = Object.entries(model.get("skipped") || {});
    const error = model.get("error");
    run.disabled = model.get("running");
    run.textContent = model.get("running") ? "Running…" : "Run";
    fill(status,
      error ? h("div", { class: "wl-error" }, error) : null,
      agree === null ? null : h("div", { class: agree ? "wl-ok" : "wl-bad" }, agree ? "all runtimes agree" : "runtimes DISAGREE"),
    );
    if (!rows.length) {
      fill(results, h("div", { class: "wl-muted" }, "press Run to compare"));
      return;
    }
    const headers = ["runtime", "result", "ok", "agrees", "trap / error", "stdout", ...phases];
    const body = rows.map((r) =>
      h("tr", {},
        h("td", {}, h("b", {}, r.runtime)),
        h("td", {}, h("code", {}, r.result)),
        h("td", { class: r.ok ? "wl-ok" : "wl-bad" }, r.ok ? "ok" : "no"),
        h("td", { class: r.agrees ? "wl-ok" : "wl-bad" }, r.agrees ? "yes" : "NO"),
        h("td", { class: "wl-bad" }, r.trap || r.error || (r.exit_code ? `exit ${r.exit_code}` : "")),
        h("td", {}, h("pre", {}, (r.stdout || "").slice(0, 200))),
        ...phases.map((p) => h("td", { class: "wl-num" }, ms(r[`${p}_ms`])))),
    );
    fill(results,
      h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))), h("tbody", {}, body)),
      chart(rows, phases),
      skipped.length ? h("div", { class: "wl-muted" }, "skipped: ", skipped.map(([k, v]) => `${k} (${v})`).join("; ")) : null,
    );
  };

  drawControls();
  drawResults();
  const onControls = () => drawControls();
  model.on("change:available_runtimes", onControls);
  model.on("change:runtimes", onControls);
  model.on("change:exports", onControls);
  model.on("change:invoke", onControls);
  const onResults = () => drawResults();
  for (const name of ["rows", "agree", "skipped", "error", "running", "runs"]) model.on(`change:${name}`, onResults);
  return () => {
    for (const name of ["available_runtimes", "runtimes", "exports", "invoke"]) model.off(`change:${name}`, onControls);
    for (const name of ["rows", "agree", "skipped", "error", "running", "runs"]) model.off(`change:${name}`, onResults);
  };
}

export default { render };
