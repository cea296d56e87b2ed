// LimitsExplorer: sliders for fuel (log scale), timeout (log scale) and linear memory; releasing a slider sets
// the trait, the Python side runs the call on wasmtime and reports where the guest stopped and what it cost.

// slider positions -> limits; the last position of each slider means "no limit" (0)
const FUEL_STEPS = 80; // 10^2 .. 10^10, 10 steps per decade
const TIME_STEPS = 60; // 10 ms .. 10 s... and beyond
const MEMORY_MIB = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

const fuelAt = (pos) => (pos >= FUEL_STEPS ? 0 : Math.round(10 ** (2 + pos / 10)));
const fuelPos = (fuel) => (fuel <= 0 ? FUEL_STEPS : Math.round((Math.log10(fuel) - 2) * 10));
const timeAt = (pos) => (pos >= TIME_STEPS ? 0 : Number((10 ** (-2 + pos / 20)).toPrecision(2)));
const timePos = (t) => (t <= 0 ? TIME_STEPS : Math.round((Math.log10(t) + 2) * 20));
const memAt = (pos) => (pos >= MEMORY_MIB.length ? 0 : MEMORY_MIB[pos] * (1 << 20));
const memPos = (bytes) => {
  if (bytes <= 0) return MEMORY_MIB.length;
  const i = MEMORY_MIB.findIndex((m) => m * (1 << 20) >= bytes);
  return i < 0 ? MEMORY_MIB.length : i;
};

function ms(value) {
  if (value >= 100) return `${value.toFixed(0)} ms`;
  if (value >= 1) return `${value.toFixed(2)} ms`;
  return `${(value * 1000).toFixed(1)} µs`;
}

function render({ model, el }) {
  const root = h("div", { class: "wasmlab-w wasmlab-limits-explorer" });
  el.append(root);

  const slider = (max, pos, label, toTrait, name) => {
    const input = h("input", { type: "range", min: "0", max: String(max), step: "1", style: { width: "260px" } });
    input.value = String(pos);
    const text = h("code", {}, "");
    input.addEventListener("input", () => (text.textContent = label(toTrait(Number(input.value)))));
    input.addEventListener("change", () => {
      model.set(name, toTrait(Number(input.value)));
      model.save_changes();
    });
    return { input, text };
  };

  const fuel = slider(FUEL_STEPS, fuelPos(model.get("fuel")), (v) => (v ? v.toLocaleString() : "no limit"), fuelAt, "fuel");
  const time = slider(TIME_STEPS, timePos(model.get("timeout")), (v) => (v ? `${v} s` : "no limit"), timeAt, "timeout");
  const memory = slider(MEMORY_MIB.length, memPos(model.get("max_memory")),
    (v) => (v ? `${v / (1 << 20)} MiB` : "runtime default"), memAt, "max_memory");
  const rerun = h("button", { onclick: () => model.send({ type: "run" }) }, "Run again");
  const outcome = h("div", {});
  const history = h("div", {});

  root.append(
    h("div", { class: "wl-head" }, h("b", {}, "limits for "), h("code", {}, model.get("call_text")),
      h("span", { class: "wl-muted" }, " on wasmtime")),
    h("table", {}, h("tbody", {},
      h("tr", {}, h("td", {}, "fuel"), h("td", {}, fuel.input), h("td", {}, fuel.text)),
      h("tr", {}, h("td", {}, "timeout"), h("td", {}, time.input), h("td", {}, time.text)),
      h("tr", {}, h("td", {}, "memory"), h("td", {}, memory.input), h("td", {}, memory.text)))),
    h("div", { class: "wl-controls" }, rerun),
    outcome,
    history,
  );

  const draw = () => {
    fuel.input.value = String(fuelPos(model.get("fuel")));
    fuel.text.textContent = model.get("fuel") ? model.get("fuel").toLocaleString() : "no limit";
    time.input.value = String(timePos(model.get("timeout")));
    time.text.textContent = model.get("timeout") ? `${model.get("timeout")} s` : "no limit";
    memory.input.value = String(memPos(model.get("max_memory")));
    memory.text.textContent = model.get("max_memory") ? `${model.get("max_memory") / (1 << 20)} MiB` : "runtime default";

    const status = model.get("status");
    const cls = status === "ok" ? "wl-ok" : status === "limit" ? "wl-warn" : "wl-bad";
    const used = model.get("fuel_used");
    fill(outcome,
      model.get("running") ? h("div", { class: "wl-muted" }, "running…") : null,
      h("div", {},
        h("span", { class: cls }, status === "limit" ? `stopped: ${model.get("limit")} limit` : status || "not run"),
        model.get("result") ? [" → ", h("code", {}, model.get("result"))] : null),
      model.get("stopped_at") ? h("div", {}, "stopped in ", h("code", {}, model.get("stopped_at"))) : null,
      model.get("message") ? h("div", { class: "wl-muted" }, model.get("message")) : null,
      h("div", {}, `cost: ${used === null ? "fuel n/a" : `${used.toLocaleString()} fuel`} · ${ms(model.get("elapsed_ms"))}`),
    );

    const runs = (model.get("history") || []).slice(-10).reverse();
    fill(history,
      runs.length
        ? h("table", {},
            h("thead", {}, h("tr", {}, ["fuel", "timeout", "memory", "outcome", "fuel used", "time"].map((x) => h("th", {}, x)))),
            h("tbody", {}, runs.map((r) => h("tr", {},
              h("td", { class: "wl-num" }, r.fuel ? r.fuel.toLocaleString() : "∞"),
              h("td", { class: "wl-num" }, r.timeout ? `${r.timeout} s` : "∞"),
              h("td", { class: "wl-num" }, r.max_memory ? `${r.max_memory / (1 << 20)} MiB` : "default"),
              h("td", { class: r.status === "ok" ? "wl-ok" : "wl-warn" }, r.limit ? `${r.status}: ${r.limit}` : r.status),
              h("td", { class: "wl-num" }, r.fuel_used === null ? "" : r.fuel_used.toLocaleString()),
              h("td", { class: "wl-num" }, ms(r.elapsed_ms))))))
        : null,
    );
  };

  draw();
  model.on("change", draw);
  return () => model.off("change", draw);
}

export default { render };
