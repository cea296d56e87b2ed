"""Python snippets -> Wasm components with componentize-py, run with wasmtime's component API (no mocks).

Builds take ~8-20 s each, so every component is built once per module (module-scoped fixtures)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from wasmlab.errors import CompileError, UsageError
from wasmlab.toolchains import get_toolchain
from wasmlab.toolchains.base import CompileOptions
from wasmlab.toolchains.python import PythonToolchain, derive_exports, wit_name

wasmtime = pytest.importorskip("wasmtime")
from wasmtime.component import Component, Linker  # noqa: E402

FIB_LIBRARY = '''\
def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def mean(xs: list[float]) -> float:
    import statistics  # imported inside the function: wasmlab imports it at build time

    return statistics.fmean(xs) if xs else 0.0


def greet(name: str, shout: bool) -> str:
    text = f"hello, {helper(name)}"
    return text.upper() if shout else text


def min_max(xs: list[int]) -> tuple[int, int] | None:
    return (min(xs), max(xs)) if xs else None


def helper(name):  # not annotated: a helper, not an export
    return name.strip()
'''

EXPLICIT_WIT = """\
package example:calc;

world calc {
  export fib: func(n: s64) -> s64;
  export scale: func(xs: list<f64>, k: f64) -> list<f64>;
}
"""

EXPLICIT_LIBRARY = '''\
class WitWorld:
    def fib(self, n: int) -> int:
        return n if n < 2 else self.fib(n - 1) + self.fib(n - 2)

    def scale(self, xs: list[float], k: float) -> list[float]:
        return [x * k for x in xs]
'''

HELLO_COMMAND = '''\
import sys
import json

print("hello from python")
print(json.dumps({"args": sys.argv[1:]}))
if "fail" in sys.argv:
    raise ValueError("asked to fail")
if "exit" in sys.argv:
    sys.exit(3)
'''


def _skip_without_componentize_py() -> PythonToolchain:
    pytest.importorskip("componentize_py", reason="componentize-py is not installed: pip install componentize-py")
    reason = PythonToolchain().unavailable_reason()
    if reason:
        pytest.skip(reason)
    toolchain = get_toolchain("python")
    assert isinstance(toolchain, PythonToolchain)
    return toolchain


@pytest.fixture(scope="module")
def toolchain() -> PythonToolchain:
    return _skip_without_componentize_py()


@pytest.fixture(scope="module")
def engine():
    config = wasmtime.Config()
    config.cranelift_opt_level = "none"  # compiles the ~18 MB components twice as fast; these tests time nothing
    return wasmtime.Engine(config)


def build(toolchain: PythonToolchain, source: str, workdir: Path, **options) -> bytes:
    return toolchain.build(source, CompileOptions(**options), workdir, "snippet.py")


@pytest.fixture(scope="module")
def fib_component(toolchain, engine, tmp_path_factory) -> Component:
    data = build(toolchain, FIB_LIBRARY, tmp_path_factory.mktemp("py-lib"))
    assert data[:8] == b"\0asm\x0d\0\x01\0"  # a component, not a core module
    return Component(engine, data)


@pytest.fixture(scope="module")
def explicit_component(toolchain, engine, tmp_path_factory) -> Component:
    data = build(toolchain, EXPLICIT_LIBRARY, tmp_path_factory.mktemp("py-wit"), wit=EXPLICIT_WIT)
    return Component(engine, data)


@pytest.fixture(scope="module")
def hello_component(toolchain, engine, tmp_path_factory) -> Component:
    data = build(toolchain, HELLO_COMMAND, tmp_path_factory.mktemp("py-cmd"), kind="command")
    return Component(engine, data)


def instantiate(engine, component: Component, wasi=None):
    linker = Linker(engine)
    linker.add_wasip2()
    store = wasmtime.Store(engine)
    store.set_wasi(wasi or wasmtime.WasiConfig())
    return store, linker.instantiate(store, component)


def call(engine, component: Component, name: str, *args):
    store, instance = instantiate(engine, component)
    func = instance.get_func(store, name)
    assert func is not None, f"no export {name!r}"
    return func(store, *args)


def run_command(engine, component: Component, tmp_path: Path, *args: str) -> tuple[object, str, str]:
    """Run wasi:cli/run; returns (result variant, stdout, stderr), WASI stdio captured to files."""
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["snippet", *args]
    wasi.stdout_file = str(out)
    wasi.stderr_file = str(err)
    store, instance = instantiate(engine, component, wasi)
    interface = instance.get_export_index(store, "wasi:cli/run@0.2.0")
    assert interface is not None, "the component does not export wasi:cli/run@0.2.0"
    run = instance.get_func(store, instance.get_export_index(store, "run", interface))
    result = run(store)
    return result, out.read_text(), err.read_text()


# --- libraries ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_annotated_functions_become_component_exports(engine, fib_component) -> None:
    assert call(engine, fib_component, "fib", 20) == 6765


@pytest.mark.slow
def test_derived_exports_map_python_types_to_wit(engine, fib_component) -> None:
    assert call(engine, fib_component, "mean", [1.0, 2.0, 4.5]) == pytest.approx(2.5)
    assert call(engine, fib_component, "mean", []) == 0.0
    assert call(engine, fib_component, "greet", "  ada ", True) == "HELLO, ADA"
    assert call(engine, fib_component, "min-max", [3, 1, 2]) == (1, 3)
    assert call(engine, fib_component, "min-max", []) is None
    store, instance = instantiate(engine, fib_component)
    assert instance.get_func(store, "helper") is None


@pytest.mark.slow
def test_explicit_wit_world(engine, explicit_component) -> None:
    assert call(engine, explicit_component, "fib", 20) == 6765
    assert call(engine, explicit_component, "scale", [1.0, 2.5], 2.0) == [2.0, 5.0]


@pytest.mark.slow
def test_explicit_wit_names_missing_methods(toolchain, tmp_path) -> None:
    source = "class WitWorld:\n    def fib(self, n):\n        return n\n"
    bare_world = EXPLICIT_WIT.replace("package example:calc;\n", "")  # wasmlab supplies a package
    with pytest.raises(CompileError) as info:
        build(toolchain, source, tmp_path, wit=bare_world, world="calc")
    assert "snippet.py:1" in str(info.value)
    assert "scale" in str(info.value)


def test_wit_error_names_the_wit_line(toolchain, tmp_path) -> None:
    wit = "package example:calc;\n\nworld calc {\n  export fib: func(n: s64) -> s65;\n}\n"
    with pytest.raises(CompileError) as info:
        build(toolchain, EXPLICIT_LIBRARY, tmp_path, wit=wit)
    assert "snippet.wit:4" in str(info.value)
    assert "s65" in info.value.diagnostics


# --- commands -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_command_prints_through_wasi_cli_run(engine, hello_component, tmp_path) -> None:
    result, out, err = run_command(engine, hello_component, tmp_path, "a", "b")
    assert out == 'hello from python\n{"args": ["a", "b"]}\n'
    assert err == ""
    assert result.tag == "ok"


@pytest.mark.slow
def test_command_uncaught_exception_fails_with_the_snippets_traceback(engine, hello_component, tmp_path) -> None:
    result, out, err = run_command(engine, hello_component, tmp_path, "fail")
    assert result.tag == "err"
    assert out.startswith("hello from python\n")
    assert 'File "snippet.py", line 7, in <module>' in err
    assert 'raise ValueError("asked to fail")' in err  # the source line, from the snippet
    assert err.rstrip().endswith("ValueError: asked to fail")
    assert "wasmlab_app" not in err


@pytest.mark.slow
def test_command_sys_exit_nonzero_is_an_error_result(engine, hello_component, tmp_path) -> None:
    result, _, _ = run_command(engine, hello_component, tmp_path, "exit")
    assert result.tag == "err"


# --- compile errors -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_syntax_error_in_library_names_the_snippet_line(toolchain, tmp_path) -> None:
    source = "def fib(n: int) -> int:\n    return n +\n"
    with pytest.raises(CompileError) as info:
        build(toolchain, source, tmp_path)
    assert "snippet.py:2" in str(info.value)
    assert "SyntaxError" in str(info.value)
    assert 'File "snippet.py", line 2' in info.value.diagnostics
    assert "wasmlab_app" not in info.value.diagnostics


@pytest.mark.slow
def test_syntax_error_in_command_names_the_snippet_line(toolchain, tmp_path) -> None:
    with pytest.raises(CompileError) as info:
        build(toolchain, 'print("a")\nprint("b"\n', tmp_path, kind="command")
    assert "snippet.py:2" in str(info.value)
    assert "never closed" in str(info.value)


@pytest.mark.slow
def test_library_top_level_exception_names_the_snippet_line(toolchain, tmp_path) -> None:
    source = "def f(x: int) -> int:\n    return x\n\nvalue = undefined_name + 1\n"
    with pytest.raises(CompileError) as info:
        build(toolchain, source, tmp_path)
    assert "snippet.py:4: NameError" in str(info.value)
    assert info.value.diagnostics.rstrip().endswith("NameError: name 'undefined_name' is not defined")


def test_unsupported_annotation_is_reported_before_building(toolchain, tmp_path) -> None:
    source = "def ok(n: int) -> int:\n    return n\n\ndef count(d: dict[str, int]) -> int:\n    return len(d)\n"
    with pytest.raises(CompileError) as info:
        build(toolchain, source, tmp_path)
    assert "snippet.py:4" in str(info.value)
    assert "dict[str, int]" in str(info.value)
    assert not (tmp_path / "snippet.wasm").exists()


def test_nothing_to_export_says_how(toolchain, tmp_path) -> None:
    with pytest.raises(CompileError, match=r"def fib\(n: int\) -> int"):
        build(toolchain, "def f(x):\n    return x\n", tmp_path)


def test_command_rejects_a_wit_world(toolchain, tmp_path) -> None:
    with pytest.raises(UsageError):
        build(toolchain, "print(1)\n", tmp_path, kind="command", wit=EXPLICIT_WIT)


# --- pure helpers (no build) --------------------------------------------------------------------------------


def test_toolchain_attributes() -> None:
    toolchain = PythonToolchain()
    assert toolchain.lang == "python"
    assert toolchain.extensions == (".py",)
    assert toolchain.produces_component
    if toolchain.unavailable_reason() is None:
        assert toolchain.version().startswith("componentize-py ")


@pytest.mark.parametrize(
    ("py", "wit"),
    [("fib", "fib"), ("fib_fast", "fib-fast"), ("fibFast", "fib-fast"), ("to_HTML", "to-html"),
     ("HTMLParser", "html-parser"), ("fib_2", "fib2"), ("f2", "f2"), ("from_", "from"), ("größe", None)],
)
def test_wit_names(py: str, wit: str | None) -> None:
    assert wit_name(py) == wit


def test_derived_world_types() -> None:
    source = (
        "from typing import Optional\n"
        "def a(x: int, y: float, s: str, b: bool, raw: bytes) -> None: ...\n"
        "def b(xs: list[list[int]], t: tuple[str, bool]) -> Optional[str]: ...\n"
        "def c(x: 'int | None') -> list[bytes]: ...\n"
        "def _private(x: int) -> int: ...\n"
    )
    exports = {e.wit_name: e for e in derive_exports(ast.parse(source), source, "snippet.py")}
    assert set(exports) == {"a", "b", "c"}
    assert exports["a"].params == (("x", "s64"), ("y", "f64"), ("s", "string"), ("b", "bool"), ("raw", "list<u8>"))
    assert exports["a"].result is None
    assert exports["b"].params == (("xs", "list<list<s64>>"), ("t", "tuple<string, bool>"))
    assert exports["b"].result == "option<string>"
    assert exports["c"].params == (("x", "option<s64>"),)
    assert exports["c"].result == "list<list<u8>>"
