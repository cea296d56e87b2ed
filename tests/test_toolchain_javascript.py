"""JavaScript snippets with both toolchains: QuickJS-NG (a core module on every WASI engine) and StarlingMonkey
(componentize-js, a component). Real builds, shared per session: a StarlingMonkey build takes ~40 s."""

from __future__ import annotations

import pytest

import wasmlab
from wasmlab.errors import CompileError, UsageError
from wasmlab.runtimes import available_runtimes
from wasmlab.toolchains import get_toolchain, list_toolchains, toolchain_names
from wasmlab.toolchains.javascript import derive_exports

from .conftest import need_toolchain

LIBRARY = """\
export function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }
export const addTwo = (a, b) => a + b
export function fail(x) { if (x > 1) throw new RangeError("too big: " + x); return x }
"""
COMMAND = "const parts = ['hello', 'from', 'js']\nconsole.log(parts.join(' '), 6 * 7)\n"
SYNTAX_ERROR = "const a = 1\nconst b = (a +;\n"


def _need(toolchain: str) -> None:
    need_toolchain("javascript")  # the default (starlingmonkey) answers for node itself
    try:
        get_toolchain("javascript", toolchain)
    except wasmlab.ToolchainUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def quickjs_library() -> wasmlab.Module:
    _need("quickjs")
    return wasmlab.compile(LIBRARY, "javascript", toolchain="quickjs")


@pytest.fixture(scope="session")
def quickjs_command() -> wasmlab.Module:
    _need("quickjs")
    return wasmlab.compile(COMMAND, "js", kind="command", toolchain="quickjs")


@pytest.fixture(scope="session")
def cached_wasmtime():
    """A wasmtime engine with its compiled-code cache: the 12 MB StarlingMonkey component compiles once per
    machine, not once per test session."""
    from wasmlab.runtimes.wasmtime import WasmtimeRuntime

    runtime = WasmtimeRuntime(cache=True)
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def starlingmonkey_library() -> wasmlab.Module:
    _need("starlingmonkey")
    return wasmlab.compile(LIBRARY, "javascript")


@pytest.fixture(scope="session")
def starlingmonkey_command() -> wasmlab.Module:
    _need("starlingmonkey")
    return wasmlab.compile(COMMAND, "javascript", kind="command", toolchain="starlingmonkey")


def test_exports_are_read_from_the_declarations() -> None:
    exports = derive_exports(LIBRARY + "export const f = function (x, { y, z } = {}, ...rest) {}\n", "a.js")
    assert [(e.name, e.arity, e.line) for e in exports] == [("fib", 1, 1), ("addTwo", 2, 2), ("fail", 1, 3),
                                                             ("f", 3, 4)]
    with pytest.raises(CompileError, match=r"a\.js:2: export default"):
        derive_exports("const x = 1\nexport default function () {}\n", "a.js")
    with pytest.raises(CompileError, match="a library exports functions"):
        derive_exports("console.log(1)\n", "a.js")


def test_registry_lists_both_toolchains() -> None:
    assert toolchain_names("js") == ("starlingmonkey", "quickjs")
    rows = [(r.lang, r.toolchain) for r in list_toolchains() if r.lang == "javascript"]
    assert rows == [("javascript", "starlingmonkey"), ("javascript", "quickjs")]
    with pytest.raises(UsageError, match="no toolchain 'v8'"):
        wasmlab.compile(COMMAND, "javascript", toolchain="v8")
    with pytest.raises(UsageError, match="single toolchain"):
        wasmlab.compile("int f(void) { return 1; }", "c", toolchain="quickjs")


def test_quickjs_library_is_one_module_for_every_engine(quickjs_library: wasmlab.Module) -> None:
    module = quickjs_library
    assert not module.is_component
    assert sorted(e.name for e in module.exports) == ["_initialize", "addTwo", "fail", "fib", "memory"]
    assert {i.module for i in module.imports} == {"wasi_snapshot_preview1"}
    engines = [r for r in ("wasmtime", "node", "wasm3", "wasmer") if r in available_runtimes([r], note=False)]
    for engine in engines:
        assert module.run(engine, "fib", (20,)).result == 6765, engine
        assert module.run(engine, "addTwo", (2, 3.5)).result == 5.5, engine


def test_quickjs_exception_traps_with_the_error_on_stderr(quickjs_library: wasmlab.Module) -> None:
    result = quickjs_library.run("wasmtime", "fail", (5,), check=False)
    assert result.trap == "unreachable"
    assert b"RangeError: too big: 5" in result.stderr
    assert quickjs_library.run("wasmtime", "fail", (1,)).result == 1


def test_quickjs_command_prints_on_wasmtime_and_node(quickjs_command: wasmlab.Module) -> None:
    for engine in available_runtimes(["wasmtime", "node"], note=False):
        result = quickjs_command.run(engine)
        assert (result.exit_code, result.output) == (0, "hello from js 42\n"), engine


def test_quickjs_build_is_cached(quickjs_command: wasmlab.Module) -> None:
    again = wasmlab.compile(COMMAND, "js", kind="command", toolchain="quickjs")
    assert again.provenance.cached and again.bytes == quickjs_command.bytes


@pytest.mark.parametrize("toolchain", ["quickjs", "starlingmonkey"])
def test_syntax_error_names_the_snippets_line(toolchain: str) -> None:
    _need(toolchain)
    with pytest.raises(CompileError) as info:
        wasmlab.compile(SYNTAX_ERROR, "javascript", kind="command", toolchain=toolchain)
    message = str(info.value)
    assert message.startswith("javascript compile error: snippet.js:2:"), message
    assert "SyntaxError" in message and "\n" not in message


def test_starlingmonkey_library_component(starlingmonkey_library: wasmlab.Module, cached_wasmtime) -> None:
    module = starlingmonkey_library
    assert module.is_component
    assert "export add-two: func(p1: f64, p2: f64) -> f64;" in module.wit()
    assert module.run(cached_wasmtime, "fib", (20,)).result == 6765
    assert module.run(cached_wasmtime, "add-two", (2, 3.5)).result == 5.5


def test_starlingmonkey_command_runs_top_level_code(starlingmonkey_command: wasmlab.Module, cached_wasmtime) -> None:
    result = starlingmonkey_command.run(cached_wasmtime)
    assert (result.exit_code, result.output) == (0, "hello from js 42\n")


def test_starlingmonkey_command_refuses_imports() -> None:
    _need("starlingmonkey")
    with pytest.raises(CompileError, match=r"snippet\.js:2: a command's code runs inside wasi:cli/run"):
        wasmlab.compile("console.log(1)\nimport x from 'y'\n", "javascript", kind="command")


def test_starlingmonkey_components_run_on_node_as_on_wasmtime(
    starlingmonkey_library: wasmlab.Module, starlingmonkey_command: wasmlab.Module, cached_wasmtime
) -> None:
    if "node" not in available_runtimes(["node"], note=False):
        pytest.skip("node is not available")
    for name, args in [("fib", (20,)), ("add-two", (2, 3.5))]:
        assert starlingmonkey_library.run("node", name, args).result == starlingmonkey_library.run(
            cached_wasmtime, name, args
        ).result
    on_node = starlingmonkey_command.run("node")
    assert (on_node.exit_code, on_node.output) == (0, "hello from js 42\n")
