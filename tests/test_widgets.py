"""The notebook widgets, driven through their Python API with real modules, real instances and real runtimes.

The front-end files are checked twice: as ES modules (syntax, `export default`) and by rendering each one in node
against a minimal DOM stand-in with the widget's real state, then sending its messages back to Python."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import wasmlab
from wasmlab.notebook import ComparisonDashboard, LimitsExplorer, MemoryViewer, ModuleExplorer
from wasmlab.notebook.widgets import STATIC, diff_ranges, front_end, parse_args

from .conftest import need_toolchain
from .snippets import FIB_WAT, SPIN_WAT

MEMORY_WAT = """(module
  (memory (export "memory") 2)
  (data (i32.const 64) "hello\\00")
  (func (export "poke") (param $addr i32) (param $value i32)
    (i32.store (local.get $addr) (local.get $value)))
  (func (export "poke64") (param $addr i32) (param $value f64)
    (f64.store (local.get $addr) (local.get $value)))
  (func (export "fill") (param $addr i32) (param $value i32) (param $n i32)
    (memory.fill (local.get $addr) (local.get $value) (local.get $n)))
  (func (export "boom") unreachable))
"""
GREET_C = """
static char buffer[32];
const char *greet(void) { return "hello, wasm"; }
char *shout(int n) { for (int i = 0; i < n; i++) buffer[i] = 'A' + i; buffer[n] = 0; return buffer; }
"""
WIDGET_FILES = ("module_explorer.js", "memory_viewer.js", "comparison_dashboard.js", "limits_explorer.js")


@pytest.fixture(scope="module")
def memory_module():
    return wasmlab.compile(MEMORY_WAT, "wat", name="mem")


@pytest.fixture(scope="module")
def fib_module():
    return wasmlab.compile(FIB_WAT, "wat", name="fib")


# ------------------------------------------------------------------------------------------ ModuleExplorer
def test_module_explorer(memory_module):
    explorer = ModuleExplorer(memory_module)
    assert explorer.info["name"] == "mem" and explorer.info["size"] == memory_module.size
    exports = {e["name"]: e for e in explorer.exports}
    assert exports["poke"]["type"] == "(i32, i32) -> ()" and exports["poke"]["kind"] == "func"
    assert exports["memory"]["kind"] == "memory"
    assert [s["name"] for s in explorer.sections][:3] == ["type", "function", "memory"]
    assert sum(s["size"] for s in explorer.sections) < memory_module.size
    shares = sum(s["share"] for s in explorer.sections)
    assert shares == pytest.approx(sum(s["size"] for s in explorer.sections) / memory_module.size)
    sizes = [f["size"] for f in explorer.functions]
    assert sizes == sorted(sizes, reverse=True) and explorer.function_count == 4

    explorer.top = 2
    assert len(explorer.functions) == 2 and explorer.function_count == 4
    explorer.top = 20
    explorer.filter = "nothing-matches"
    assert explorer.functions == [] and explorer.function_count == 0


def test_many_sections_are_grouped_by_name():
    customs = " ".join(f'(@custom "c{i % 3}" "xx")' for i in range(30))
    module = wasmlab.compile(f'(module {customs} (func (export "f")))\n', "wat", strip=False)
    assert len(module.sections) == 34
    explorer = ModuleExplorer(module)
    grouped = {s["name"]: s for s in explorer.sections}
    assert len(explorer.sections) == 7 and grouped["custom:c1"]["count"] == 10
    assert grouped["custom:c1"]["size"] == sum(s.size for s in module.sections if s.name == "custom:c1")
    assert grouped["code"]["count"] == 1


def test_module_explorer_names_and_imports():
    need_toolchain("c")
    module = wasmlab.compile('#include <stdio.h>\nint main(void) { puts("hi"); }\n', "c", kind="command")
    explorer = ModuleExplorer(module)
    assert any(i["module"].startswith("wasi") for i in explorer.imports)
    explorer.filter = "main"
    assert explorer.functions and all("main" in (f["name"] or "") for f in explorer.functions)


# ------------------------------------------------------------------------------------------ MemoryViewer
def test_memory_viewer_marks_exactly_the_bytes_a_call_changed(memory_module):
    viewer = MemoryViewer(memory_module.instantiate("wasmtime"))
    assert viewer.memory_size == 2 * 65536 and len(viewer.page) == viewer.page_size == 256
    assert viewer.changed == []

    viewer.call("poke", 100, 0x01020300)  # little-endian: byte 100 stays 0, 101..103 become 3, 2, 1
    assert viewer.changed == [[101, 104]] and viewer.changed_addresses() == [101, 102, 103]
    assert viewer.changed_count == 3 and viewer.last_call == "poke(100, 16909056)"
    assert bytes(viewer.page[100:104]) == b"\x00\x03\x02\x01"

    viewer.call("poke", 100, 0x01020300)  # the same write again changes nothing
    assert viewer.changed == [] and viewer.changed_count == 0

    viewer.call("fill", 70000, 0xAB, 5)  # outside the page shown: still recorded
    assert viewer.changed_addresses() == [70000, 70001, 70002, 70003, 70004]
    viewer.call("poke", 300, 7)
    viewer.call("poke", 310, 9)
    assert viewer.changed == [[310, 311]]  # only the last call's bytes


def test_memory_viewer_paging_typed_views_and_cstrings(memory_module):
    viewer = MemoryViewer(memory_module)  # a Module is instantiated on wasmtime
    viewer.call("poke", 100, -2)
    viewer.dtype = "i32"
    assert viewer.typed[25] == "-2" and viewer.values()[25] == -2
    viewer.dtype = "u32"
    assert viewer.typed[25] == str(2**32 - 2)
    viewer.call("poke64", 128, 2.5)
    viewer.dtype = "f64"
    assert viewer.typed[16] == "2.5"

    viewer.cstring_address = 64
    assert viewer.cstring == "hello"
    assert viewer.read_cstring(65) == "ello"

    viewer.goto(1000)
    assert viewer.offset == 992 and len(viewer.page) == 256  # aligned to the row
    viewer.next_page()
    assert viewer.offset == 1248
    viewer.prev_page()
    viewer.prev_page()
    assert viewer.offset == 736
    viewer.offset = 10**9
    assert viewer.offset == viewer.memory_size - viewer.page_size  # clamped to the last page
    viewer.page_size = 64
    viewer.goto(0)
    assert len(viewer.page) == 64 and viewer.offset == 0


def test_memory_viewer_errors_and_messages(memory_module):
    viewer = MemoryViewer(memory_module)
    with pytest.raises(wasmlab.Trap):
        viewer.call("boom")
    assert viewer.error.startswith("Trap:") and viewer.changed == []
    # what the front end sends: a call typed as text, routed the way ipywidgets routes custom messages
    viewer._handle_custom_msg({"type": "call", "name": "poke", "args": "200, 0x7f"}, [])
    assert viewer.error == "" and viewer.changed == [[200, 201]]
    viewer._handle_custom_msg({"type": "call", "name": "nope", "args": ""}, [])
    assert "nope" in viewer.error
    viewer._handle_custom_msg({"type": "goto", "address": "0x400"}, [])
    assert viewer.offset == 0x400


def test_memory_viewer_on_a_compiled_c_instance():
    need_toolchain("c")
    module = wasmlab.compile(GREET_C, "c", name="greet")
    viewer = MemoryViewer(module.instantiate("wasmtime"))
    address = viewer.call("greet")
    viewer.cstring_address = address
    assert viewer.cstring == "hello, wasm"
    buffer = viewer.call("shout", 3)
    assert viewer.read_cstring(buffer) == "ABC"
    assert set(viewer.changed_addresses()) == {buffer, buffer + 1, buffer + 2}  # the NUL was already 0


def test_diff_ranges_and_parse_args():
    assert diff_ranges(b"\0" * 10, b"\0\1\1\0\0\0\0\0\0\2") == [(1, 3), (9, 10)]
    assert diff_ranges(b"ab", b"ab\0\0\5") == [(4, 5)]  # a grown memory's new zero pages are not changes
    assert parse_args("10, 2.5 0x1f -3") == (10, 2.5, 31, -3)
    assert parse_args("") == ()


# ------------------------------------------------------------------------------------------ ComparisonDashboard
def test_comparison_dashboard_run_fills_the_table(fib_module):
    dashboard = ComparisonDashboard(fib_module, args=(20,), runtimes=["wasmtime"])
    assert dashboard.invoke == "fib" and dashboard.args == "20"
    assert "wasmtime" in dashboard.available_runtimes
    assert dashboard.rows == [] and dashboard.agree is None

    comparison = dashboard.run()
    assert isinstance(comparison, wasmlab.Comparison)
    (row,) = dashboard.rows
    assert row["runtime"] == "wasmtime" and row["result"] == "6765" and row["ok"] and row["agrees"]
    assert row["call_ms"] > 0 and dashboard.agree is True and dashboard.runs == 1
    json.dumps(dashboard.rows)  # JSON-ready, as the front end gets it
    assert dashboard.figure().data  # the plotly version of the chart

    dashboard.args = "10"
    dashboard.repeat = 2
    dashboard._handle_custom_msg({"type": "run"}, [])  # the Run button
    assert dashboard.runs == 2 and dashboard.rows[0]["result"] == "55"
    assert len(dashboard.comparison.samples["wasmtime"]) == 2


def test_comparison_dashboard_several_runtimes_and_errors(fib_module):
    dashboard = ComparisonDashboard(fib_module, args=(15,))
    dashboard.runtimes = dashboard.available_runtimes
    dashboard.run()
    ran = {row["runtime"] for row in dashboard.rows}
    assert "wasmtime" in ran and ran | set(dashboard.skipped) == set(dashboard.available_runtimes)
    assert all(row["result"] == "610" for row in dashboard.rows) and dashboard.agree

    dashboard.runtimes = ["wasmtime", "nosuchengine"]
    assert dashboard.run() is None and "unknown runtime 'nosuchengine'" in dashboard.error
    dashboard.runtimes = []
    assert dashboard.run() is None and "at least one runtime" in dashboard.error
    assert not dashboard.running


# ------------------------------------------------------------------------------------------ LimitsExplorer
def test_limits_explorer_fuel(fib_module):
    explorer = LimitsExplorer(fib_module, "fib", (25,), run=False)
    assert explorer.status == "" and explorer.call_text == "fib(25)"
    explorer.fuel = 1000  # a change runs the call
    assert explorer.status == "limit" and explorer.limit == "fuel"
    assert explorer.fuel_used == 1000 and explorer.stopped_at.startswith("fib")
    assert "1,000 units of fuel" in explorer.message

    explorer.fuel = 10**9
    assert explorer.status == "ok" and explorer.limit == "" and explorer.result == "75025"
    assert 1000 < explorer.fuel_used < 10**9 and explorer.elapsed_ms > 0
    used = explorer.fuel_used

    explorer.fuel = 0  # no limit: still metered
    assert explorer.status == "ok" and explorer.fuel_used == used
    assert [h["status"] for h in explorer.history] == ["limit", "ok", "ok"]


def test_limits_explorer_time_and_memory():
    spin = wasmlab.compile(SPIN_WAT, "wat", name="spin")
    explorer = LimitsExplorer(spin, "spin", timeout=0.2)
    assert explorer.status == "limit" and explorer.limit == "time" and explorer.stopped_at.startswith("spin")
    assert 150 < explorer.elapsed_ms < 5000

    big = wasmlab.compile('(module (memory (export "memory") 40) (func (export "f") (result i32) i32.const 1))', "wat")
    explorer = LimitsExplorer(big, "f", (), run=False)
    result = explorer.set_limits(max_memory=1 << 20, timeout=2)  # one run for both changes
    assert result.error_kind == "limit:memory"
    assert explorer.status == "limit" and explorer.limit == "memory" and len(explorer.history) == 1
    explorer.max_memory = 0
    assert explorer.status == "ok" and explorer.result == "1"
    with pytest.raises(TypeError):
        explorer.set_limits(stack=1)


def test_limits_explorer_without_auto_run(fib_module):
    explorer = LimitsExplorer(fib_module, "fib", (10,), run=False, auto_run=False)
    explorer.fuel = 5
    assert explorer.status == ""
    explorer._handle_custom_msg({"type": "run"}, [])
    assert explorer.status == "limit"


# ------------------------------------------------------------------------------------------ front-end files
@pytest.mark.parametrize("name", WIDGET_FILES)
def test_esm_files_are_es_modules(name):
    path = STATIC / name
    text = path.read_text()
    assert path.stat().st_size > 500
    assert "export default" in text and "render" in text
    assert "require(" not in text and "innerHTML" not in text  # plain ES module; text never parsed as HTML


def test_widgets_ship_their_files(memory_module, fib_module):
    widgets = [
        ModuleExplorer(memory_module),
        MemoryViewer(memory_module),
        ComparisonDashboard(fib_module, runtimes=["wasmtime"]),
        LimitsExplorer(fib_module, "fib", (5,)),
    ]
    css = (STATIC / "widgets.css").read_text()
    for widget, name in zip(widgets, WIDGET_FILES, strict=True):
        assert widget._esm == front_end(name) and widget._esm.startswith((STATIC / "dom.js").read_text())
        assert widget._css == css


NODE = shutil.which("node")

# A stand-in for the few DOM APIs the widgets use, a model backed by the widget's real state, and actions
# (click a button, change an input) that stand for a user. Prints the rendered text and what was sent.
HARNESS = r"""
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

class FakeNode {
  constructor(tag) { this.tag = tag; this.children = []; this.attrs = {}; this.style = {}; this.className = "";
    this.listeners = {}; this._value = ""; this.checked = false; this.disabled = false; this.text = ""; }
  // as in a browser, append(null) adds the text "null"
  append(...nodes) { for (const n of nodes) this.children.push(n instanceof FakeNode ? n : text(n)); }
  replaceChildren(...nodes) { this.children = []; this.append(...nodes); }
  setAttribute(k, v) { this.attrs[k] = String(v); if (k === "value") this.value = String(v); }
  addEventListener(type, fn) { (this.listeners[type] ||= []).push(fn); }
  dispatch(type) { for (const fn of this.listeners[type] || []) fn({ target: this }); }
  get value() {  // a select shows its first option until one is chosen
    return this.tag === "select" && !this._value && this.options.length ? this.options[0].attrs.value : this._value;
  }
  set value(v) { this._value = String(v); }
  get options() { return this.children.filter((c) => c.tag === "option"); }
  get textContent() { return this.tag === "#text" ? this.text : this.children.map((c) => c.textContent).join(""); }
  set textContent(v) { this.children = [text(v)]; }
  *walk() { yield this; for (const c of this.children) yield* c.walk(); }
}
const text = (s) => { const n = new FakeNode("#text"); n.text = String(s); return n; };
globalThis.Node = FakeNode;
globalThis.document = { createElement: (t) => new FakeNode(t), createElementNS: (ns, t) => new FakeNode(t),
  createTextNode: text };

const [file, stateFile, actionsFile] = process.argv.slice(2);
const state = JSON.parse(readFileSync(stateFile, "utf8"));
for (const [k, v] of Object.entries(state)) {
  if (v && v.__bytes__) state[k] = new DataView(new Uint8Array(v.__bytes__).buffer);
}
const listeners = {};
const out = { set: {}, sent: [], saves: 0 };
const model = {
  get: (k) => state[k],
  set: (k, v) => { state[k] = v; out.set[k] = v; },
  save_changes: () => { out.saves += 1; },
  send: (msg) => out.sent.push(msg),
  on: (evt, fn) => (listeners[evt] ||= []).push(fn),
  off: (evt, fn) => { listeners[evt] = (listeners[evt] || []).filter((f) => f !== fn); },
};
const el = new FakeNode("div");
const widget = (await import(pathToFileURL(file))).default;
const cleanup = widget.render({ model, el });
for (const action of JSON.parse(readFileSync(actionsFile, "utf8"))) {
  const node = [...el.walk()].find((n) =>
    (action.text === undefined || n.textContent === action.text) &&
    (action.tag === undefined || n.tag === action.tag) &&
    (action.placeholder === undefined || n.attrs.placeholder === action.placeholder));
  if (!node) throw new Error(`no element for ${JSON.stringify(action)}`);
  if (action.value !== undefined) node.value = action.value;
  node.dispatch(action.event);
}
for (const fn of listeners["change"] || []) fn();  // a re-render, as after a state update
const nodes = [...el.walk()];
out.text = el.textContent;
if (/\b(null|undefined|NaN)\b|\[object /.test(out.text)) throw new Error(`rendered a hole: ${out.text}`);
out.changed = nodes.filter((n) => n.className.includes("wl-changed")).length;
out.rects = nodes.filter((n) => n.tag === "rect").length;
if (typeof cleanup === "function") cleanup();
console.log(JSON.stringify(out));
"""


def render_in_node(tmp_path: Path, widget, name: str, actions: list[dict] | None = None) -> dict:
    state = {}
    for key, value in widget.get_state().items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = {"__bytes__": list(bytes(value))}
        state[key] = value
    (tmp_path / "harness.mjs").write_text(HARNESS)
    (tmp_path / name).write_text(front_end(name))  # what anywidget loads: the shared helpers, then the widget
    (tmp_path / "state.json").write_text(json.dumps(state))
    (tmp_path / "actions.json").write_text(json.dumps(actions or []))
    proc = subprocess.run(
        [
            NODE,
            str(tmp_path / "harness.mjs"),
            str(tmp_path / name),
            str(tmp_path / "state.json"),
            str(tmp_path / "actions.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_front_ends_render_the_real_state(tmp_path, memory_module, fib_module):
    explorer = ModuleExplorer(memory_module)
    out = render_in_node(
        tmp_path,
        explorer,
        "module_explorer.js",
        [{"placeholder": "filter functions", "value": "po", "event": "change"}],
    )
    assert "exports (5)" in out["text"] and "(i32, i32) -> ()" in out["text"] and "poke" in out["text"]
    assert out["set"] == {"filter": "po"} and out["saves"] == 1

    viewer = MemoryViewer(memory_module)
    viewer.call("poke", 64, 0x4F4C4C48)  # "HLLO" over "hell"
    viewer.cstring_address = 64
    out = render_in_node(
        tmp_path,
        viewer,
        "memory_viewer.js",
        [
            {"placeholder": "args, e.g. 1, 2", "value": "8, 1", "event": "change"},
            {"tag": "button", "text": "Call", "event": "click"},
        ],
    )
    assert "48 4c 4c 4f 6f 00" in out["text"] and "HLLOo" in out["text"]
    assert "poke(64, 1330400328)" in out["text"] and "4 byte(s) changed" in out["text"]
    assert out["changed"] == 2 * 4  # each changed byte: its hex cell and its ASCII cell
    (message,) = out["sent"]
    assert message["type"] == "call" and message["args"] == "8, 1"
    viewer._handle_custom_msg(message, [])  # back to Python, as the kernel would deliver it
    assert viewer.last_call.startswith(message["name"]) and viewer.error == ""

    dashboard = ComparisonDashboard(fib_module, args=(12,), runtimes=["wasmtime"])
    dashboard.run()
    out = render_in_node(
        tmp_path, dashboard, "comparison_dashboard.js", [{"tag": "button", "text": "Run", "event": "click"}]
    )
    assert "144" in out["text"] and "all runtimes agree" in out["text"] and out["rects"] >= 2
    assert out["sent"] == [{"type": "run"}] and out["set"]["args"] == "12"

    limits = LimitsExplorer(fib_module, "fib", (20,), fuel=300)
    out = render_in_node(
        tmp_path, limits, "limits_explorer.js", [{"tag": "button", "text": "Run again", "event": "click"}]
    )
    assert "stopped: fuel limit" in out["text"] and "fib(20)" in out["text"] and "300 fuel" in out["text"]
    assert out["sent"] == [{"type": "run"}]


def test_module_explorer_accepts_top_and_filter_at_construction():
    module = wasmlab.compile(
        '(module (func $alpha (export "alpha")) (func $beta (export "beta") (result i32) i32.const 1))', "wat"
    )
    explorer = ModuleExplorer(module, top=1, filter="bet")
    assert [f["name"] for f in explorer.functions] == ["beta"]
    assert explorer.function_count == 1
