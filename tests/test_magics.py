"""The IPython side of the notebook extension, in process: a real IPython shell (`globalipapp`), real compilers and
wasmtime. Outputs are captured with `capture_output`, as a notebook front end would receive them."""

from __future__ import annotations

import time

import pytest
from IPython.core.error import UsageError
from IPython.testing.globalipapp import get_ipython
from IPython.utils.capture import capture_output

import wasmlab
from wasmlab.notebook.display import COMPARISON_MIME, MODULE_MIME, RUN_MIME, jsonable
from wasmlab.notebook.magics import WasmMagics
from wasmlab.runtimes import list_runtimes

from .conftest import need_toolchain
from .snippets import ADD_WAT, FIB_C, FIB_WAT, SPIN_WAT

TRAP_WAT = '(module (func $inner unreachable) (func (export "boom") call $inner))\n'


@pytest.fixture(scope="module")
def ip():
    shell = get_ipython()
    saved = list(shell.display_formatter.active_types)
    # a notebook front end takes every MIME type; the terminal shell under test only text/plain by default
    shell.display_formatter.active_types = list(shell.display_formatter.formatters)
    shell.run_line_magic("load_ext", "wasmlab")
    yield shell
    shell.run_line_magic("unload_ext", "wasmlab")
    shell.display_formatter.active_types = saved


@pytest.fixture(autouse=True)
def fresh_config(ip):
    """Every test starts from the default trait values."""
    magics = next(c for c in ip.configurables if isinstance(c, WasmMagics))
    defaults = {name: trait.default() for name, trait in magics.traits(config=True).items()}
    yield magics
    for name, value in defaults.items():
        setattr(magics, name, value)


def run(ip, source: str):
    with capture_output() as captured:
        result = ip.run_cell(source, store_history=False)
    return result, captured


def texts(captured) -> str:
    return "\n".join(out.data.get("text/plain", "") for out in captured.outputs)


def bundles(captured, mime: str) -> list:
    return [out.data[mime] for out in captured.outputs if mime in out.data]


def test_wasm_compiles_binds_and_runs(ip):
    need_toolchain("c")
    result, captured = run(ip, f"%%wasm c --name fib --run wasmtime --invoke fib 10\n{FIB_C}")
    assert result.success, captured.stderr
    module = ip.user_ns["fib"]
    assert isinstance(module, wasmlab.Module)
    assert module.name == "fib" and "fib" in module.export_names()
    assert "55" in texts(captured)
    (run_data,) = bundles(captured, RUN_MIME)
    assert run_data["result"] == 55 and run_data["ok"] and run_data["runtime"] == "wasmtime"
    (summary,) = bundles(captured, MODULE_MIME)
    assert summary["name"] == "fib"
    assert any("55" in html for html in bundles(captured, "text/html"))


def test_default_name_is_lang_module(ip):
    result, captured = run(ip, f"%%wasm wat\n{ADD_WAT}")
    assert result.success, captured.stderr
    assert isinstance(ip.user_ns["wat_module"], wasmlab.Module)
    result, captured = run(ip, f"%%wasm wast -q\n{ADD_WAT}")  # aliases map to the canonical language
    assert result.success and not captured.outputs
    assert ip.user_ns["wat_module"].export_names() == ["add"]


def test_compile_error_shows_diagnostics_and_keeps_the_name(ip):
    need_toolchain("c")
    sentinel = object()
    ip.user_ns["keep"] = sentinel
    result, captured = run(ip, "%%wasm c --name keep\nint f(void) {\n  return undefined_name;\n}\n")
    assert type(result.error_in_exec) is UsageError  # IPython shows exactly UsageError without a traceback
    first, *detail = captured.stderr.strip().splitlines()
    assert first.startswith("UsageError: c compile error:")
    assert "snippet.c:2" in first
    assert any("snippet.c:2" in line for line in detail)  # the compiler's own diagnostics, under the message
    assert "Traceback" not in captured.stdout + captured.stderr
    assert ip.user_ns["keep"] is sentinel

    # an existing module under the name survives a failed recompile too
    assert run(ip, f"%%wasm wat --name keep -q\n{ADD_WAT}")[0].success
    before = ip.user_ns["keep"]
    result, captured = run(ip, '%%wasm wat --name keep\n(module (func (export "f") (result i32) i64.const 1))\n')
    assert not result.success and "UsageError" in captured.stderr
    assert ip.user_ns["keep"] is before


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%%wasm cobol", "unknown language 'cobol'"),
        ("%%wasm wat --bogus", "unrecognized arguments: --bogus"),
        ("%%wasm wat --kind plugin", "invalid choice"),
        ("%%wasm wat --invoke add 1 2", "--invoke needs --run"),
        ("%%wasm wat --run nosuchengine --invoke add 1 2", "unknown runtime 'nosuchengine'"),
        ("%%wasm wat --name 2bad", "not a valid Python identifier"),
    ],
)
def test_user_errors_are_one_line(ip, line, message):
    ip.user_ns.pop("wat_module", None)
    result, captured = run(ip, f"{line}\n{ADD_WAT}")
    assert type(result.error_in_exec) is UsageError
    lines = captured.stderr.strip().splitlines()
    assert len(lines) == 1, captured.stderr
    assert lines[0].startswith("UsageError: ") and message in lines[0]
    assert "wat_module" not in ip.user_ns or "nosuchengine" in line  # a run failure comes after the compile


def test_trap_shows_code_and_backtrace(ip):
    result, captured = run(ip, f"%%wasm wat --name trapper -q --run wasmtime --invoke boom\n{TRAP_WAT}")
    assert result.success  # a trap is a result, not a cell error
    text = texts(captured)
    assert "trap: unreachable" in text
    assert "inner" in text  # the Wasm backtrace, innermost frame first
    (data,) = bundles(captured, RUN_MIME)
    assert data["trap"] == "unreachable" and data["trap_frames"][0].startswith("inner")
    (html,) = bundles(captured, "text/html")
    assert "unreachable" in html and "backtrace" in html


def test_infinite_loop_hits_the_timeout_and_the_shell_lives_on(ip):
    started = time.perf_counter()
    result, captured = run(ip, f"%%wasm wat --name spin -q --run wasmtime --invoke spin --timeout 1\n{SPIN_WAT}")
    elapsed = time.perf_counter() - started
    assert result.success
    text = texts(captured)
    assert "LimitExceeded (time)" in text and "1 s time limit" in text
    assert elapsed < 10
    (data,) = bundles(captured, RUN_MIME)
    assert data["error_kind"] == "limit:time"
    result, captured = run(ip, "6 * 7")
    assert result.success and result.result == 42
    assert isinstance(ip.user_ns["spin"], wasmlab.Module)


def test_raise_on_error_fails_the_cell_after_showing(ip, fresh_config):
    ip.run_line_magic("config", "WasmMagics.raise_on_error = True")
    result, captured = run(ip, f"%%wasm wat --name trapper -q --run wasmtime --invoke boom\n{TRAP_WAT}")
    assert type(result.error_in_exec) is UsageError
    assert "trap: unreachable" in texts(captured)


def test_config_traits_take_effect(ip, fresh_config):
    ip.run_line_magic("config", "WasmMagics.timeout = 0.3")
    assert fresh_config.timeout == 0.3
    _, captured = run(ip, f"%%wasm wat --name spin -q --run wasmtime --invoke spin\n{SPIN_WAT}")
    assert "0.3 s time limit" in texts(captured)

    ip.run_line_magic("config", "WasmMagics.fuel = 500")
    _, captured = run(ip, f"%%wasm wat --name f -q --run wasmtime --invoke fib 25\n{FIB_WAT}")
    assert "LimitExceeded (fuel)" in texts(captured)
    _, captured = run(ip, f"%%wasm wat --name f -q --run wasmtime --invoke fib 25 --fuel 100000000\n{FIB_WAT}")
    assert "75025" in texts(captured)  # the option overrides the trait
    ip.run_line_magic("config", "WasmMagics.fuel = None")

    ip.run_line_magic("config", "WasmMagics.show_module = False")
    ip.run_line_magic("config", "WasmMagics.show_timings = False")
    _, captured = run(ip, f"%%wasm wat --name f --run wasmtime --invoke fib 10\n{FIB_WAT}")
    assert not bundles(captured, MODULE_MIME)
    assert "55" in texts(captured) and "call " not in texts(captured)

    need_toolchain("c")
    ip.run_line_magic("config", "WasmMagics.opt = 'O0'")
    assert run(ip, f"%%wasm c --name fib0\n{FIB_C}")[0].success
    assert ip.user_ns["fib0"].provenance.opt == "O0"
    assert run(ip, f"%%wasm c --name fib3 -O 3\n{FIB_C}")[0].success
    assert ip.user_ns["fib3"].provenance.opt == "O3"


def test_config_lists_the_traits(ip):
    _, captured = run(ip, "%config WasmMagics")
    for name in ("default_runtimes", "timeout", "fuel", "opt", "show_timings", "raise_on_error"):
        assert f"WasmMagics.{name}" in captured.stdout


def test_wasi_command_prints_its_stdout(ip):
    need_toolchain("c")
    source = '#include <stdio.h>\nint main(int argc, char **argv) { printf("hi %s, %d args\\n", argv[1], argc); }\n'
    result, captured = run(ip, f"%%wasm c --name hello -q --run wasmtime -- world two\n{source}")
    assert result.success, captured.stderr
    assert ip.user_ns["hello"].is_command  # --run without --invoke builds a command
    assert "hi world, 3 args" in texts(captured)
    (data,) = bundles(captured, RUN_MIME)
    assert data["exit_code"] == 0 and data["stdout"] == "hi world, 3 args\n"


def test_run_on_several_runtimes_shows_a_table(ip):
    others = [r.name for r in list_runtimes() if r.available and r.name != "wasmtime" and "exports" in r.capabilities]
    if not others:
        pytest.skip("only wasmtime is available here")
    runtimes = f"wasmtime,{others[0]}"
    result, captured = run(ip, f"%%wasm wat --name add -q --run {runtimes} --invoke add 40 2\n{ADD_WAT}")
    assert result.success, captured.stderr
    (data,) = bundles(captured, COMPARISON_MIME)
    assert [r["runtime"] for r in data["results"]] == ["wasmtime", others[0]]
    assert all(r["result"] == 42 for r in data["results"]) and data["agree"]
    assert others[0] in texts(captured)


def test_rich_display_bundles_and_escaping(ip):
    source = '(module (func (export "<img src=x onerror=alert(1)>") (result i32) i32.const 7))'
    module = wasmlab.compile(source, "wat", name="<b>evil</b>")
    data, _ = ip.display_formatter.format(module)
    assert data[MODULE_MIME] == jsonable(module.summary())
    assert data["text/plain"] == repr(module)
    html = data["text/html"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html
    assert "&lt;b&gt;evil&lt;/b&gt;" in html and "<b>evil" not in html

    result = module.run("wasmtime", "<img src=x onerror=alert(1)>", check=False)
    data, _ = ip.display_formatter.format(result)
    assert data[RUN_MIME]["result"] == 7
    assert "<img" not in data["text/html"] and "7" in data["text/plain"]

    comparison = wasmlab.compare(module, "<img src=x onerror=alert(1)>", runtimes=["wasmtime"], repeat=1)
    data, _ = ip.display_formatter.format(comparison)
    assert data[COMPARISON_MIME]["agree"] is True
    assert "<img" not in data["text/html"] and "wasmtime" in data["text/html"]
    assert "all runtimes agree" in data["text/plain"]


def test_wasm_inspect(ip):
    assert run(ip, f"%%wasm wat --name add -q\n{ADD_WAT}")[0].success
    result, captured = run(ip, "%wasm_inspect add")
    assert result.success
    text = texts(captured)
    assert "add: func (i32, i32) -> i32" in text and "sections:" in text
    assert bundles(captured, MODULE_MIME)[0]["exports"][0]["name"] == "add"
    assert "exports (1)" in bundles(captured, "text/html")[0]

    result, captured = run(ip, "%wasm_inspect add --json")
    (data,) = bundles(captured, "application/json")
    assert data["exports"] == [{"name": "add", "kind": "func", "type": "(i32, i32) -> i32"}]

    ip.user_ns["notamodule"] = 3
    for line, message in [("%wasm_inspect notamodule", "not a wasmlab Module"), ("%wasm_inspect nope", "no module")]:
        result, captured = run(ip, line)
        assert type(result.error_in_exec) is UsageError and message in captured.stderr


def test_wasm_runtimes_and_toolchains(ip):
    result, captured = run(ip, "%wasm_runtimes")
    assert result.success
    html = bundles(captured, "text/html")[0]
    assert "wasmtime" in html and "wasmedge" in html
    result, captured = run(ip, "%wasm_toolchains")
    html = bundles(captured, "text/html")[0]
    assert all(lang in html for lang in ("wat", "c", "rust", "assemblyscript"))


def test_wasm_compare(ip):
    assert run(ip, f"%%wasm wat --name fibw -q\n{FIB_WAT}")[0].success
    result, captured = run(ip, "%wasm_compare fibw --invoke fib 15 --runtimes wasmtime --repeat 2 --out cmp")
    assert result.success, captured.stderr
    (data,) = bundles(captured, COMPARISON_MIME)
    assert data["results"][0]["result"] == 610
    assert bundles(captured, "application/vnd.plotly.v1+json")  # the phase-time figure
    comparison = ip.user_ns["cmp"]
    assert isinstance(comparison, wasmlab.Comparison) and len(comparison.samples["wasmtime"]) == 2

    result, captured = run(ip, "%wasm_compare fibw --invoke fib 15 --runtimes wasmtime --fuel 100 --no-plot")
    assert not bundles(captured, "application/vnd.plotly.v1+json")
    assert bundles(captured, COMPARISON_MIME)[0]["results"][0]["error_kind"] == "limit:fuel"


def test_wasm_bench_runs_the_suite_and_keeps_the_result(ip):
    result, captured = run(ip, "%wasm_bench throughput --runtimes wasmtime --kernels fib --samples 3 --quick")
    assert result.error_in_exec is None, captured.stderr
    bench_result = ip.user_ns["_wasm_bench"]
    assert set(bench_result.table["runtime"]) >= {"wasmtime"}
    assert bundles(captured, "application/vnd.plotly.v1+json")
    result, captured = run(ip, "%wasm_bench nonsense")
    assert type(result.error_in_exec) is UsageError
    assert "unknown benchmark 'nonsense'" in captured.stderr


def test_wasm_bench_measures_your_own_module(ip, tmp_path):
    ip.user_ns["fib_wat"] = wasmlab.compile(FIB_WAT, "wat", name="fib")
    options = "--runtimes wasmtime --samples 2 --quick"
    result, captured = run(ip, f"%wasm_bench fib_wat --invoke fib 12 throughput {options}")
    assert result.error_in_exec is None, captured.stderr
    tput = ip.user_ns["_wasm_bench"]
    assert tput.kind == "throughput" and tput.subject["label"] == "fib(12)" and tput.params["result"] == [144]
    assert set(tput.table["runtime"]) == {"wasmtime"} and len(tput.table) == 2 and tput.table["correct"].all()
    assert bundles(captured, "application/vnd.plotly.v1+json")
    result, captured = run(ip, f"%wasm_bench fib_wat --invoke fib 12 startup {options}")
    assert result.error_in_exec is None, captured.stderr
    startup = ip.user_ns["_wasm_bench"]
    assert startup.kind == "startup" and startup.params["answers"] == {"wasmtime": 144}
    path = tmp_path / "fib.wat"
    path.write_text(FIB_WAT)
    result, captured = run(ip, f"%wasm_bench {path} --invoke fib 10 {options}")  # with --invoke: throughput
    assert result.error_in_exec is None, captured.stderr
    assert ip.user_ns["_wasm_bench"].params["result"] == [55]
    result, captured = run(ip, f"%wasm_bench fib_wat {options}")
    assert type(result.error_in_exec) is UsageError and "not a WASI command" in captured.stderr
    result, captured = run(ip, "%wasm_bench fib_wat sweep")
    assert type(result.error_in_exec) is UsageError and "startup or throughput" in captured.stderr


def test_unload_and_reload(ip):
    ip.run_line_magic("unload_ext", "wasmlab")
    assert "wasm" not in ip.magics_manager.magics["cell"]
    module = wasmlab.compile(ADD_WAT, "wat")
    data, _ = ip.display_formatter.format(module)
    assert MODULE_MIME not in data
    ip.run_line_magic("load_ext", "wasmlab")
    assert "wasm" in ip.magics_manager.magics["cell"]
    assert MODULE_MIME in ip.display_formatter.format(module)[0]
    assert sum(isinstance(c, WasmMagics) for c in ip.configurables) == 1
