// ModuleExplorer: draws what the Python side put in the model; edits `filter` and `top`.
// Plain ES module for anywidget (no build step). All text goes through textContent: nothing is parsed as HTML.

const SECTION_COLORS = {
  type: "#8250df", import: "#bf3989", function: "#0969da", table: "#1b7c83", memory: "#4d2d00",
  global: "#6e7781", export: "#d1242f", start: "#953800", element: "#116329", code: "#654ff0",
  data: "#bc4c00", datacount: "#57606a", tag: "#a40e26",
};

function size(n) {
  if (n === null || n === undefined) return "n/a";
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(2)} MiB`;
}

function table(headers, rows, numeric = []) {
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, headers.map((x, i) => h("th", numeric.includes(i) ? { class: "wl-num" } : {}, x)))),
    h(
      "tbody",
      {},
      rows.map((row) => h("tr", {}, row.map((cell, i) => h("td", numeric.includes(i) ? { class: "wl-num" } : {}, cell)))),
    ),
  );
}

function sectionColor(name) {
  return name.startsWith("custom") ? "#afb8c1" : SECTION_COLORS[name] || "#8c959f";
}

function render({ model, el }) {
  const root = h("div", { class: "wasmlab-w wasmlab-module-explorer" });
  el.append(root);

  const draw = () => {
    const info = model.get("info") || {};
    const exports = model.get("exports") || [];
    const imports = model.get("imports") || [];
    const sections = model.get("sections") || [];
    const functions = model.get("functions") || [];
    const count = model.get("function_count");
    const build = info.origin === "compile" ? `${info.lang} ${info.build} -${info.opt} · ${info.toolchain}` : info.origin;

    const filter = h("input", { type: "search", placeholder: "filter functions", value: model.get("filter") });
    filter.addEventListener("change", () => {
      model.set("filter", filter.value);
      model.save_changes();
    });
    const top = h("select", {}, [10, 20, 50, 200, 1000].map((n) => h("option", { value: String(n) }, String(n))));
    top.value = String(model.get("top"));
    top.addEventListener("change", () => {
      model.set("top", Number(top.value));
      model.save_changes();
    });

    const largest = functions.length ? functions[0].size || 1 : 1;
    fill(root,
      h(
        "div",
        { class: "wl-head" },
        h("b", {}, info.name || "module"),
        " ",
        h("span", { class: "wl-muted" }, `Wasm ${info.kind} · ${size(info.size)} · sha256 `),
        h("code", {}, (info.sha256 || "").slice(0, 12)),
        build ? h("div", { class: "wl-muted" }, build) : null,
      ),
      h("h4", {}, `exports (${exports.length})`),
      exports.length
        ? table(["name", "kind", "type"], exports.map((e) => [h("code", {}, e.name), e.kind, h("code", {}, e.type)]))
        : h("div", { class: "wl-muted" }, "none"),
      h("h4", {}, `imports (${imports.length})`),
      imports.length
        ? table(
            ["module", "name", "kind", "type"],
            imports.map((i) => [i.module, h("code", {}, i.name), i.kind, h("code", {}, i.type)]),
          )
        : h("div", { class: "wl-muted" }, "none"),
      h("h4", {}, `sections (${sections.length})`),
      h(
        "div",
        { class: "wl-stack" },
        sections.map((s) =>
          h("div", {
            title: `${s.name}${s.count > 1 ? ` ×${s.count}` : ""}: ${s.size} bytes`,
            style: { width: `${(100 * s.share).toFixed(3)}%`, background: sectionColor(s.name), minWidth: "1px" },
          }),
        ),
      ),
      table(
        ["section", "offset", "bytes", "share", ""],
        sections.map((s) => [
          s.count > 1 ? `${s.name} ×${s.count}` : s.name,
          s.count > 1 ? "" : h("code", {}, `0x${s.offset.toString(16)}`),
          s.size.toLocaleString(),
          `${(100 * s.share).toFixed(1)}%`,
          h("div", {
            class: "wl-bar",
            style: { width: `${Math.max(1, 200 * s.share).toFixed(0)}px`, background: sectionColor(s.name) },
          }),
        ]),
        [2, 3],
      ),
      h("h4", {}, `functions by size (${functions.length} of ${count})`),
      h("div", { class: "wl-controls" }, filter, h("label", {}, "show", top)),
      table(
        ["#", "function", "bytes", ""],
        functions.map((f) => [
          String(f.index),
          h("code", {}, f.name || `func[${f.index}]`),
          f.size.toLocaleString(),
          h("div", { class: "wl-bar", style: { width: `${Math.max(1, (160 * f.size) / largest).toFixed(0)}px` } }),
        ]),
        [0, 2],
      ),
    );
  };

  draw();
  model.on("change", draw);
  return () => model.off("change", draw);
}

export default { render };
