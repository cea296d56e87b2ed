"""The lab in a real browser: open the fixture notebook, run all cells, then check what the page shows.

Cells of `notebooks/wasmlab_ui.ipynb` (see `make_fixture.py`), by index:
  1 setup   2 %%wasm wat demo   3 fib on browser and wasmtime   4 value types   5 traps   6 time limit
  7 %%wasm wat hello --run browser   8 hello on both   9 %wasm_compare (table + plotly)   10 MemoryViewer
  11 viewer.call(...)   12 kept instances in the browser   13 browser timings and benchmarks   14 "ALL CELLS DONE"
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

NOTEBOOK = "wasmlab_ui.ipynb"
RUN_ALL_TIMEOUT_MS = 90_000
DEMO, FIB, VALUES, TRAPS, LIMIT, HELLO, HELLO_BOTH, COMPARE, VIEWER, VIEWER_CALL, KEPT, TIMINGS = range(2, 14)
DEMO_EXPORTS = 10  # memory, counter, fib, fact64, hyp, half, store, boom, div, spin


KERNEL_IDLE = (
    "() => { const w = window.jupyterapp.shell.currentWidget;"
    " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
    " return k && k.status === 'idle'; }"
)


def cell(page, index: int):
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def output_text(page, index: int) -> str:
    return cell(page, index).locator(".jp-OutputArea").inner_text()


def open_notebook(page, server, name: str) -> None:
    page.goto(server.url(f"lab/tree/{name}?reset"))  # ?reset: no other notebook restored from the workspace
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=60_000)


@pytest.fixture(scope="module")
def lab(lab_server, browser, screenshots) -> Iterator[object]:
    """The fixture notebook open in JupyterLab, every cell run (the page stays open for all tests)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
    page.console_log = console  # type: ignore[attr-defined]
    open_notebook(page, lab_server, NOTEBOOK)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    page.evaluate("() => { void window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    try:
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
            ".some(e => e.innerText.includes('ALL CELLS DONE'))",
            timeout=RUN_ALL_TIMEOUT_MS,
        )
    except Exception:
        page.screenshot(path=str(screenshots / "run-all-failed.png"))
        raise AssertionError("run all cells did not finish:\n" + "\n".join(console[-40:])) from None
    page.screenshot(path=str(screenshots / "notebook.png"))
    try:
        yield page
    finally:
        context.close()


def test_module_inspector_renders(lab, screenshots: Path) -> None:
    out = cell(lab, DEMO).locator(".wasmlab-inspector")
    out.wait_for()
    assert out.locator(".wasmlab-exports tbody tr").count() == DEMO_EXPORTS
    names = out.locator(".wasmlab-exports tbody tr td:first-child").all_inner_texts()
    assert {"fib", "fact64", "memory", "counter", "spin"} <= set(names)
    assert out.locator(".wasmlab-section-bar-part").count() >= 5  # type, function, memory, global, export, code...
    # functions: sorted by size (largest first), filterable, re-sortable by name
    rows = out.locator(".wasmlab-functions-table tbody tr")
    assert rows.count() == 8  # fib fact64 hyp half store boom div spin
    sizes = [
        int(t.replace(",", "")) for t in out.locator(".wasmlab-functions-table tbody td:nth-child(3)").all_inner_texts()
    ]
    assert sizes == sorted(sizes, reverse=True)
    out.locator(".wasmlab-filter").fill("fib")
    assert rows.count() == 1 and "fib" in rows.first.inner_text()
    out.locator(".wasmlab-filter").fill("")
    out.locator("th[data-sort=index]").click()
    indexes = [int(t) for t in out.locator(".wasmlab-functions-table tbody td:nth-child(1)").all_inner_texts()]
    assert indexes == sorted(indexes)
    cell(lab, DEMO).locator(".jp-OutputArea").screenshot(path=str(screenshots / "module-inspector.png"))


def test_magic_cell_highlighted(lab, screenshots: Path) -> None:
    demo = cell(lab, DEMO)
    demo.scroll_into_view_if_needed()
    content = demo.locator(".cm-content")
    assert content.get_attribute("data-language") == "wast"  # %%wasm wat -> WebAssembly text
    tokens = content.locator(".cm-line span[class]")
    assert tokens.count() > 30, "no syntax tokens in the %%wasm wat cell"
    classes = set(content.evaluate("el => [...el.querySelectorAll('.cm-line span[class]')].map(s => s.className)"))
    assert len(classes) >= 3, f"expected several token kinds, got {classes}"
    # a plain code cell stays Python
    assert cell(lab, FIB).locator(".cm-content").get_attribute("data-language") == "python"
    demo.locator(".jp-InputArea").screenshot(path=str(screenshots / "highlight-wat.png"))


def test_magic_language_follows_typing(lab, screenshots: Path) -> None:
    """A new cell switches language as its first line is typed and edited, and back when the magic goes."""
    lab.evaluate(
        "async () => { const app = window.jupyterapp; const nb = app.shell.currentWidget.content;"
        " nb.activeCellIndex = nb.widgets.length - 1; await app.commands.execute('notebook:insert-cell-below'); }"
    )
    last = lab.locator(".jp-Notebook .jp-Cell").last
    editor = last.locator(".cm-content")
    editor.click()
    lab.keyboard.type("%%wasm rust\nfn add(a: i32, b: i32) -> i32 { a + b }\n")
    lab.wait_for_function(
        "el => el.getAttribute('data-language') === 'rust'", arg=editor.element_handle(), timeout=10_000
    )
    last.locator(".jp-InputArea").screenshot(path=str(screenshots / "highlight-rust.png"))
    languages = {}
    for magic, expected in [
        ("%%wasm c", "cpp"),
        ("%%wasm cpp -O3", "cpp"),
        ("%%wasm go", "go"),
        ("%%wasm zig", "zig"),
        ("%%wasm as", "typescript"),
        ("%%wasm python", "python"),
        ("%%wasm wat", "wast"),
        ("print('no magic')", "python"),
    ]:
        lab.evaluate(
            "src => { const nb = window.jupyterapp.shell.currentWidget.content;"
            " nb.widgets[nb.widgets.length - 1].model.sharedModel.setSource(src); }",
            f"{magic}\nint x = 1;\n",
        )
        lab.wait_for_function(
            "([el, want]) => el.getAttribute('data-language') === want",
            arg=[editor.element_handle(), expected],
            timeout=10_000,
        )
        languages[magic] = editor.get_attribute("data-language")
    assert languages["%%wasm zig"] == "zig"
    # the zig mode highlights keywords and primitive types
    lab.evaluate(
        "src => { const nb = window.jupyterapp.shell.currentWidget.content;"
        " nb.widgets[nb.widgets.length - 1].model.sharedModel.setSource(src); }",
        '%%wasm zig\nexport fn add(a: i32, b: i32) i32 {\n    return a + b; // @import("std")\n}\n',
    )
    lab.wait_for_function("el => el.getAttribute('data-language') === 'zig'", arg=editor.element_handle())
    assert editor.locator(".cm-line span[class]").count() >= 5
    last.locator(".jp-InputArea").screenshot(path=str(screenshots / "highlight-zig.png"))
    lab.evaluate("() => window.jupyterapp.commands.execute('notebook:delete-cell')")


def test_browser_runtime_matches_wasmtime(lab) -> None:
    setup = output_text(lab, 1)
    assert re.search(r"browser runtime: .*Chrom", setup), setup  # version() names the page's browser
    print(setup)
    text = output_text(lab, FIB)
    assert "browser fib(20) = 6765; wasmtime fib(20) = 6765; same: True" in text, text
    timings = re.search(r"browser timings: (.*)", text)
    assert timings and "instantiate" in timings.group(1) and "call" in timings.group(1), text
    print(text)

    values = output_text(lab, VALUES)
    assert values.count("same=True") == 6, values
    assert "browser=2432902008176640000" in values  # i64 beyond 2**53, exact through BigInt
    assert "browser=5.0" in values and "browser=1.5" in values and "browser=inf" in values

    traps = output_text(lab, TRAPS)
    assert traps.count("same=True") == 2, traps
    assert "browser='unreachable'" in traps and "browser='integer divide by zero'" in traps
    assert "boom" in traps  # the backtrace names the function (name section)

    limit = output_text(lab, LIMIT)
    assert "time limit: limit:time" in limit and "after the limit: fib(10) = 55" in limit, limit

    wasi = output_text(lab, HELLO_BOTH)
    assert "browser='hello from wasi\\n' exit 3" in wasi and "same=True" in wasi, wasi


def test_browser_keeps_instances_like_wasmtime(lab) -> None:
    """A kept instance in the page's worker: memory written and read, calls, a trap it survives, a time limit
    that restarts the worker and loses the instance, and a fresh instance after that."""
    text = output_text(lab, KEPT)
    both = "(b'ABCD', b'hello', 65536, 6765)"
    assert f"kept: browser={both} wasmtime={both} same=True" in text, text
    assert "kept trap: unreachable; still usable: fib(12) = 144" in text, text
    assert "kept time limit: time" in text and "kept after the limit: InstanceLost" in text, text
    assert "kept fresh: 610" in text, text


def test_browser_timings_resolve_microseconds(lab, lab_server, screenshots: Path) -> None:
    """The lab is served cross-origin isolated (wasmlab.notebook.isolation), so the worker's clock resolves
    microseconds: single calls of ~20-50 µs read as such, not as 0 or 0.1 ms; the benchmarks of a module on
    the browser give a resolved time per call and no quantised zero in startup."""
    import urllib.request

    with urllib.request.urlopen(lab_server.url("lab"), timeout=10) as response:
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert response.headers["Cross-Origin-Embedder-Policy"] == "credentialless"
    assert lab.evaluate("() => self.crossOriginIsolated") is True
    text = output_text(lab, TIMINGS)
    print(text)
    match = re.search(r"isolated: True; resolution: ([0-9.e-]+) ms", text)
    assert match and float(match.group(1)) < 0.1, text
    calls = [float(t) for t in re.search(r"fib\(18\) calls, ms: (.*)", text).group(1).split()]
    resolved = [t for t in calls if 0 < t < 0.1 and round(t * 10_000) % 1000]  # under 0.1 ms, not a 0.1 ms step
    assert len(resolved) >= len(calls) // 2, calls
    tput = re.search(r"µs per call: \{'browser': ([0-9.]+), 'wasmtime': ([0-9.]+)\}; correct: True", text)
    assert tput and 0 < float(tput.group(1)) < 100 and float(tput.group(2)) > 0, text
    startup = re.search(r"startup, warm medians: (\{.*\})", text).group(1)
    assert "0.0," not in startup and "0.0}" not in startup, startup  # a phase under 5 µs reads "< 0.005"
    for phase in ("compile", "instantiate_first", "instantiate_repeat"):
        assert re.search(rf"'{phase}': [0-9.]+", startup), startup
    out = cell(lab, TIMINGS).locator(".jp-OutputArea")
    out.locator(".plotly .main-svg").first.wait_for(timeout=30_000)  # plotly renders in the isolated page
    blocked = [m for m in lab.console_log if "Cross-Origin" in m or "ERR_BLOCKED" in m]
    assert not blocked, blocked
    out.screenshot(path=str(screenshots / "browser-timings.png"))


def test_run_view_renders(lab, screenshots: Path) -> None:
    view = cell(lab, HELLO).locator(".wasmlab-run-view")
    view.wait_for()
    assert "browser" in view.locator(".wasmlab-run-head").inner_text()
    assert "exit 3" in view.locator(".wasmlab-badge").inner_text()
    assert "hello from wasi" in view.locator(".wasmlab-output").inner_text()
    assert view.locator(".wasmlab-timing-bar > div").count() >= 2
    cell(lab, HELLO).locator(".jp-OutputArea").screenshot(path=str(screenshots / "run-view.png"))


def test_widget_updates_after_call(lab, screenshots: Path) -> None:
    widget = cell(lab, VIEWER).locator(".wasmlab-memory-viewer")
    widget.wait_for(timeout=20_000)
    lab.wait_for_function(
        "el => el.querySelectorAll('.wl-changed').length > 0", arg=widget.element_handle(), timeout=20_000
    )
    assert widget.locator(".wl-changed").count() == 8  # 4 bytes, in the hex and the ASCII columns
    assert "store(16, 1145258561)" in widget.inner_text()
    assert "ABCD" in widget.locator(".wl-ascii").first.inner_text() or "ABCD" in widget.inner_text()
    cell(lab, VIEWER).locator(".jp-OutputArea").screenshot(path=str(screenshots / "memory-viewer.png"))


def test_plotly_figure_renders(lab, screenshots: Path) -> None:
    out = cell(lab, COMPARE).locator(".jp-OutputArea")
    out.locator(".plotly .main-svg").first.wait_for(timeout=30_000)
    assert out.locator(".js-plotly-plot").count() == 1
    text = out.inner_text()
    assert "browser" in text and "wasmtime" in text and "all runtimes agree" in text, text
    out.screenshot(path=str(screenshots / "compare-plotly.png"))


def test_saved_outputs_render_without_running(lab_server, browser, screenshots: Path) -> None:
    """A notebook file written outside the lab (so untrusted), never executed: the inspector renders from the
    saved output alone (the renderer is marked safe and needs no kernel)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    import wasmlab
    from wasmlab.notebook.display import MODULE_MIME, jsonable

    module = wasmlab.compile('(module (func (export "a")) (func (export "b")) (memory (export "m") 1))', lang="wat")
    output = new_output(
        "display_data", data={MODULE_MIME: jsonable(module.summary()), "text/plain": repr(module)}, metadata={}
    )
    nb = new_notebook(cells=[new_code_cell("%%wasm wat\n(module ...)", outputs=[output], execution_count=1)])
    nb.cells[0].id = "saved-0"
    nbformat.write(nb, lab_server.root / "saved.ipynb")
    json.loads((lab_server.root / "saved.ipynb").read_text())  # valid JSON on disk

    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    try:
        open_notebook(page, lab_server, "saved.ipynb")
        # no kernelspec in the file: JupyterLab asks; choose "No Kernel"
        page.get_by_role("dialog").get_by_role("button", name="No Kernel", exact=True).click(timeout=30_000)
        page.wait_for_function(
            "() => { const w = window.jupyterapp.shell.currentWidget;"
            " return w && w.sessionContext && w.sessionContext.hasNoKernel; }",
            timeout=30_000,
        )
        first = page.locator(".jp-NotebookPanel:visible .jp-Cell").first
        rows = first.locator(".wasmlab-inspector .wasmlab-exports tbody tr")
        rows.first.wait_for(timeout=30_000)
        assert rows.count() == 3
        first.screenshot(path=str(screenshots / "saved-notebook.png"))
    finally:
        context.close()


def test_interrupt_stops_a_browser_run(lab, screenshots: Path) -> None:
    """Interrupting the kernel while the page runs an endless guest cancels it there (the worker is
    terminated), and the next browser run works."""
    set_last = (
        "src => { const nb = window.jupyterapp.shell.currentWidget.content;"
        " nb.widgets[nb.widgets.length - 1].model.sharedModel.setSource(src); }"
    )
    lab.evaluate(
        "async () => { const app = window.jupyterapp; const nb = app.shell.currentWidget.content;"
        " nb.activeCellIndex = nb.widgets.length - 1; await app.commands.execute('notebook:insert-cell-below'); }"
    )
    last = lab.locator(".jp-Notebook .jp-Cell").last
    run_cell = "() => { void window.jupyterapp.commands.execute('notebook:run-cell'); }"  # do not await the run
    lab.evaluate(set_last, 'demo.run("browser", "spin", timeout=None)')
    lab.evaluate(run_cell)
    lab.wait_for_timeout(3000)
    lab.evaluate("() => { void window.jupyterapp.commands.execute('kernelmenu:interrupt'); }")
    last.locator(".jp-OutputArea-output:has-text('KeyboardInterrupt')").wait_for(timeout=60_000)
    lab.evaluate(set_last, 'print("after interrupt:", demo.run("browser", "fib", (15,)).result)')
    # The kernel aborts execute requests that reach it while it still handles the interrupted cell's error
    # (stop_on_error): wait until it is idle, and run again if the cell was aborted without running.
    for _ in range(3):
        lab.wait_for_function(KERNEL_IDLE, timeout=60_000)
        lab.evaluate(run_cell)
        answered = last.locator(".jp-OutputArea-output:has-text('after interrupt')")
        try:
            answered.wait_for(timeout=15_000)
            break
        except Exception:
            if last.locator(".jp-InputPrompt").inner_text().strip() != "[ ]:":
                raise  # it ran and did not answer: a real failure
    last.locator(".jp-OutputArea-output:has-text('after interrupt: 610')").wait_for(timeout=60_000)
    lab.evaluate("() => window.jupyterapp.commands.execute('notebook:delete-cell')")
