// MemoryViewer: hex + ASCII page of linear memory with the bytes of the last call highlighted.
// The Python side reads memory and computes the diff; this file draws and sends `call` / `goto` messages.

const DTYPES = ["u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64", "f32", "f64"];
const WIDTH = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, u64: 8, i64: 8, f32: 4, f64: 8 };

function bytesOf(value) {
  // Bytes traits arrive as a DataView (or ArrayBuffer / typed array, depending on the manager).
  if (!value) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return new Uint8Array(0);
}

const hex = (n, width) => n.toString(16).padStart(width, "0");

function render({ model, el }) {
  const root = h("div", { class: "wasmlab-w wasmlab-memory-viewer" });
  el.append(root);

  const set = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };

  // controls are built once (so inputs keep focus); the grid is redrawn on every change
  const address = h("input", { type: "text", size: "12", placeholder: "address (0x...)" });
  const goto = h("button", { onclick: () => model.send({ type: "goto", address: address.value || "0" }) }, "Go");
  const prev = h("button", { onclick: () => set("offset", Math.max(0, model.get("offset") - model.get("page_size"))) }, "◀");
  const next = h("button", { onclick: () => set("offset", model.get("offset") + model.get("page_size")) }, "▶");
  const pageSize = h("select", {}, [64, 128, 256, 512, 1024, 4096].map((n) => h("option", { value: String(n) }, String(n))));
  pageSize.addEventListener("change", () => set("page_size", Number(pageSize.value)));
  const dtype = h("select", {}, DTYPES.map((d) => h("option", { value: d }, d)));
  dtype.addEventListener("change", () => set("dtype", dtype.value));
  const cstr = h("input", { type: "text", size: "10", placeholder: "C string at" });
  cstr.addEventListener("change", () => {
    const text = cstr.value.trim();
    set("cstring_address", text === "" ? -1 : Number(text));
  });
  const exportSelect = h("select", {});
  const args = h("input", { type: "text", size: "16", placeholder: "args, e.g. 1, 2" });
  const call = h("button", {
    onclick: () => model.send({ type: "call", name: exportSelect.value, args: args.value }),
  }, "Call");

  const status = h("div", {});
  const grid = h("div", {});
  const typed = h("div", {});
  root.append(
    h("div", { class: "wl-controls" }, address, goto, prev, next, h("label", {}, "page", pageSize),
      h("label", {}, "view as", dtype), cstr),
    h("div", { class: "wl-controls" }, exportSelect, args, call),
    status,
    grid,
    typed,
  );

  const draw = () => {
    const offset = model.get("offset");
    const rowSize = model.get("row_size") || 16;
    const page = bytesOf(model.get("page"));
    const changed = model.get("changed") || [];
    const cstrAt = model.get("cstring_address");
    const cstring = model.get("cstring") || "";
    const size = model.get("memory_size");
    const exports = model.get("exports") || [];

    pageSize.value = String(model.get("page_size"));
    dtype.value = model.get("dtype");
    if (exportSelect.options.length !== exports.length) {
      fill(exportSelect, ...exports.map((e) => h("option", { value: e.name }, `${e.name} ${e.type}`)));
    }

    const isChanged = (a) => changed.some(([start, end]) => a >= start && a < end);
    const cstrEnd = cstrAt >= 0 ? cstrAt + new TextEncoder().encode(cstring).length : -1;
    const inCstr = (a) => cstrAt >= 0 && a >= cstrAt && a < cstrEnd;
    const addrWidth = Math.max(4, size.toString(16).length);

    const rows = [];
    for (let r = 0; r < page.length; r += rowSize) {
      const hexCells = [];
      const ascii = [];
      for (let i = 0; i < rowSize; i++) {
        const a = offset + r + i;
        if (r + i >= page.length) {
          hexCells.push(h("span", {}, "  "), " ");
          continue;
        }
        const b = page[r + i];
        let cls = b === 0 ? "wl-zero" : "";
        if (inCstr(a)) cls += " wl-cstr";
        if (isChanged(a)) cls += " wl-changed";
        const title = `0x${hex(a, addrWidth)} = ${b}`;
        hexCells.push(h("span", { class: cls, title }, hex(b, 2)), i === 7 ? "  " : " ");
        ascii.push(h("span", { class: cls }, b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : "."));
      }
      rows.push(
        h("tr", {}, h("td", { class: "wl-addr" }, `0x${hex(offset + r, addrWidth)}`), h("td", {}, hexCells),
          h("td", { class: "wl-ascii" }, ascii)),
      );
    }
    fill(grid, h("table", { class: "wl-hex" }, h("tbody", {}, rows)));

    const count = model.get("changed_count");
    const lastCall = model.get("last_call");
    const error = model.get("error");
    fill(status,
      h("div", { class: "wl-muted" },
        `memory ${size.toLocaleString()} bytes · showing 0x${hex(offset, addrWidth)}..0x${hex(offset + page.length, addrWidth)}`),
      lastCall
        ? h("div", {}, h("code", {}, lastCall), " → ", h("code", {}, model.get("last_result") || "…"),
            h("span", { class: "wl-muted" }, ` · ${count} byte(s) changed in ${changed.length} range(s)`))
        : null,
      cstrAt >= 0 ? h("div", {}, `C string at ${cstrAt}: `, h("code", {}, JSON.stringify(cstring))) : null,
      error ? h("div", { class: "wl-error" }, error) : null,
    );

    const values = model.get("typed") || [];
    const width = WIDTH[model.get("dtype")] || 1;
    fill(typed,
      model.get("dtype") === "u8"
        ? ""
        : h("div", { class: "wl-typed" },
            values.map((v, i) => h("span", { title: `0x${hex(offset + i * width, addrWidth)}` }, v))),
    );
  };

  draw();
  model.on("change", draw);
  return () => model.off("change", draw);
}

export default { render };
