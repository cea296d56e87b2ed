"""Every language compiles a `fib` library and a WASI hello command that run under wasmtime."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import wasmlab
from wasmlab.errors import CompileError, UsageError

from .conftest import need_toolchain

SNIPPETS = Path(__file__).parent / "snippets"
EXT = {"wat": "wat", "c": "c", "cpp": "cpp", "zig": "zig", "rust": "rs", "go": "go", "assemblyscript": "ts",
       "python": "py"}
FIB = {lang: (SNIPPETS / f"fib.{ext}").read_text() for lang, ext in EXT.items()}
HELLO = {lang: (SNIPPETS / f"hello.{ext}").read_text() for lang, ext in EXT.items() if lang != "wat"}
HELLO_OUT = {
    "c": "hello from c, 3 args\n", "cpp": "hello from c++, 3 args\n", "zig": "hello from zig\n",
    "rust": "hello from rust, 3 args\n", "go": "hello from go, 3 args\n",
    "assemblyscript": "hello from assemblyscript\n", "python": "hello from python, 3 args\n",
}


@pytest.mark.parametrize("lang", sorted(FIB))
def test_fib_library_runs_under_wasmtime(lang: str) -> None:
    need_toolchain(lang)
    module = wasmlab.compile(FIB[lang], lang)
    if lang == "python":  # a component: its export is typed in WIT
        assert module.is_component
        assert {"name": "fib", "kind": "func", "type": "func(n: s64) -> s64"} in module.summary()["exports"]
    else:
        assert module.kind == "module"
        assert str(module.func_type("fib")) == "(i32) -> i32"
    assert module.run("wasmtime", "fib", (20,)).result == 6765


@pytest.mark.parametrize("lang", sorted(HELLO))
def test_hello_command_runs_under_wasmtime(lang: str) -> None:
    need_toolchain(lang)
    module = wasmlab.compile(HELLO[lang], lang, kind="command")
    assert module.is_command or module.is_component
    result = module.run("wasmtime", argv=("a", "b"))
    output = result.stdout + result.stderr  # zig's std.debug.print writes to stderr
    assert output.decode() == HELLO_OUT[lang]
    assert result.exit_code == 0


ERRORS = {
    "wat": ("(module\n  (func (export \"f\")\n    i32.bogus))\n", "snippet.wat:3"),
    "c": ("int f(void) {\n  return 1\n}\n", "snippet.c:2"),
    "cpp": ("int f() {\n  return undefined_name;\n}\n", "snippet.cpp:2"),
    "zig": ("export fn f() i32 {\n    return undefined_name;\n}\n", "snippet.zig:2"),
    "rust": ("fn main() {\n    let x: i32 = \"no\";\n}\n", "snippet.rs:2"),
    "go": ("package main\n\nfunc main() {\n\tundefinedName()\n}\n", "snippet.go:4"),
    "assemblyscript": ("export function f(): i32 {\n  return undefinedName;\n}\n", "snippet.ts:2"),
}


@pytest.mark.parametrize("lang", sorted(ERRORS))
def test_compile_error_carries_diagnostics_with_snippet_lines(lang: str) -> None:
    need_toolchain(lang)
    source, location = ERRORS[lang]
    kind = "command" if lang in ("rust", "go") else "library"
    with pytest.raises(CompileError) as info:
        wasmlab.compile(source, lang, kind=kind)
    error = info.value
    assert location in error.diagnostics + str(error)
    assert "\n" not in str(error)  # the message is one line; diagnostics hold the rest
    assert "/tmp/" not in error.diagnostics  # temporary paths are hidden from the user


def test_invalid_wat_type_error_is_a_compile_error() -> None:
    with pytest.raises(CompileError, match="type mismatch"):
        wasmlab.compile('(module (func (export "f") (result i32) i32.const 1 i32.add))', "wat")


@pytest.mark.parametrize("opt", ["O0", "O1", "O2", "O3", "Os", "Oz"])
def test_optimisation_levels_all_build_working_modules(opt: str) -> None:
    need_toolchain("rust")
    module = wasmlab.compile(FIB["rust"], "rust", opt=opt)
    assert module.provenance.opt == opt
    assert module.run("wasmtime", "fib", (15,)).result == 610


def test_optimisation_changes_the_output() -> None:
    need_toolchain("rust")
    sizes = {opt: wasmlab.compile(FIB["rust"], "rust", opt=opt).size for opt in ("O0", "Oz")}
    assert sizes["Oz"] < sizes["O0"]


def test_strip_keeps_names_and_drops_dwarf() -> None:
    need_toolchain("c")
    stripped = wasmlab.compile(FIB["c"], "c")
    full = wasmlab.compile(FIB["c"] + "\n", "c", strip=False, flags=("-g",))
    assert not stripped.parsed.has_dwarf
    assert full.parsed.has_dwarf
    assert stripped.size < full.size
    assert "fib" in stripped.parsed.function_names.values()


def test_c_library_imports_no_wasi_unless_used() -> None:
    need_toolchain("c")
    pure = wasmlab.compile("#include <string.h>\nint len(const char *s) { return strlen(s); }\n", "c")
    assert pure.wasi_imports == []
    printing = wasmlab.compile('#include <stdio.h>\nvoid hi(void) { puts("hi"); }\n', "c")
    assert any(i.name == "fd_write" for i in printing.wasi_imports)


def test_language_detected_from_extension(tmp_path) -> None:
    source = tmp_path / "answer.wat"
    source.write_text('(module (func (export "answer") (result i32) i32.const 42))')
    module = wasmlab.compile(source)
    assert module.provenance.lang == "wat"
    assert module.name == "answer"
    assert module.run("wasmtime", "answer").result == 42


def test_long_one_line_snippet_is_source_not_a_path() -> None:
    source = '(module (func (export "long") (result i32) ' + "i32.const 1 drop " * 40 + "i32.const 2))"
    assert wasmlab.compile(source, "wat").run("wasmtime", "long").result == 2


def test_aliases_and_unknown_languages() -> None:
    assert wasmlab.compile('(module (func (export "f")))', "WAST").provenance.lang == "wat"
    with pytest.raises(UsageError, match="unknown language 'cobol'"):
        wasmlab.compile("x", "cobol")
    with pytest.raises(UsageError, match="needs a language"):
        wasmlab.compile("int f(void) { return 1; }")


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="optimisation level"):
        wasmlab.compile(FIB["wat"], "wat", opt="O9")
    with pytest.raises(UsageError, match="kind"):
        wasmlab.compile(FIB["wat"], "wat", kind="plugin")


def test_list_toolchains_reports_every_language() -> None:
    rows = {row.lang: row for row in wasmlab.list_toolchains()}
    assert set(rows) == {"wat", "c", "cpp", "zig", "rust", "go", "assemblyscript", "python", "javascript"}
    for row in rows.values():
        assert row.available == (not row.reason)
        if row.available:
            assert row.version


@pytest.mark.parametrize("lang", ["c", "cpp", "zig", "rust"])
@pytest.mark.parametrize("opt", ["O2", "Os", "Oz"])
def test_strip_keeps_names_at_every_optimisation_level(lang: str, opt: str) -> None:
    """zig (and zig cc) drop the name section at -Os/-Oz by themselves: strip=True keeps it there too."""
    need_toolchain(lang)
    module = wasmlab.compile(FIB[lang], lang, opt=opt)
    assert any(name.endswith("fib") for name in module.parsed.function_names.values()), module.parsed.function_names
    assert not module.parsed.has_dwarf
    assert module.run("wasmtime", "fib", (15,)).result == 610


@pytest.mark.parametrize("lang", ["c", "cpp"])
def test_debug_builds_are_reproducible_and_name_the_snippet_not_the_build_directory(lang: str) -> None:
    need_toolchain(lang)
    source = 'extern "C" int ratio(int a, int b) {\n    return a / b;\n}\n' if lang == "cpp" else \
        "int ratio(int a, int b) {\n    return a / b;\n}\n"
    first, second = (wasmlab.compile(source, lang, strip=False, flags=("-g",), use_cache=False)
                     for _ in range(2))
    assert first.parsed.has_dwarf and first.sha256 == second.sha256
    trap = first.run("wasmtime", "ratio", (1, 0), check=False).trap_frames
    ext = "c" if lang == "c" else "cpp"
    assert trap and trap[0].startswith("ratio (0x") and trap[0].endswith(f" at ./snippet.{ext}:2:14"), trap


def test_c_with_wit_builds_a_component_of_that_world() -> None:
    """C exports named and lowered as the canonical ABI wants (tests/snippets/mcp_geo.c) wrap into a component."""
    need_toolchain("c")
    from wasmtime.component import Record

    wit = (SNIPPETS / "mcp_geo.wit").read_text()
    module = wasmlab.compile((SNIPPETS / "mcp_geo.c").read_text(), "c", wit=wit, world="geo-tools", opt="Os")
    assert module.is_component
    assert [e["name"] for e in module.component_items()["exports"]] == ["demo:geo/geo@0.1.0"]
    a, b = Record(), Record()
    a.x, a.y, b.x, b.y = 0.0, 0.0, 3.0, 4.0
    assert module.run("wasmtime", "geo#distance", (a, b)).result == 5.0
    with pytest.raises(CompileError, match="failed to encode a component") as info:
        wasmlab.compile("int other(void) { return 1; }", "c", wit=wit)
    assert "distance" in info.value.diagnostics
    with pytest.raises(UsageError, match="kind='library'"):
        wasmlab.compile("int main(void) { return 0; }", "c", kind="command", wit=wit)


def test_a_zig_build_waits_its_turn_at_most_its_timeout() -> None:
    """zig builds take turns in one fixed directory (zigenv): waiting for another build is bounded by the
    compile's timeout, and gives a one-line CompileError rather than a kernel that hangs."""
    from wasmlab.toolchains import zigenv

    need_toolchain("c")
    with zigenv.locked():  # another build holds the directory (a second lock in this process conflicts too)
        started = time.monotonic()
        with pytest.raises(CompileError) as info:
            wasmlab.compile("int busy(void) { return 1; }", "c", timeout=0.5, use_cache=False)
    assert 0.5 <= time.monotonic() - started < 5
    assert "busy with another build for 0.5 s" in str(info.value) and "\n" not in str(info.value)
    assert wasmlab.compile("int busy(void) { return 1; }", "c", use_cache=False).run("wasmtime", "busy").result == 1
