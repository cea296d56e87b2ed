"""Hostile snippets for the compilers: ones that make the compiler run forever, print megabytes, read files
outside the snippet or simply do not compile. Each gives a CompileError with bounded diagnostics within its
time limit, leaves no temporary directory and no compiler process behind, and the next compile works.
What is (and is not) promised about compilers is in SECURITY.md.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

import pytest

import wasmlab
from wasmlab.errors import CompileError
from wasmlab.toolchains import zigenv
from wasmlab.toolchains.base import MAX_CAPTURE, MAX_DIAGNOSTICS

from .conftest import need_toolchain

TIMEOUT = 3.0  # seconds given to a compiler that would run forever
SLACK = 3.0  # killing the process group, removing the temporary directory, a loaded machine


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """compile() makes its `wasmlab-build-*` directories here, so leftovers are ours (others compile too). zig
    builds run in zigenv's fixed build directory instead: `assert_clean` checks that one under its lock."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def processes_in(root: Path) -> list[str]:
    """Live processes whose working directory is under `root` (a compiler left running)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(root)):
            found.append(f"{pid}: {cmdline[:120]}")
    return found


def assert_clean(root: Path) -> None:
    with zigenv.locked() as zig_root:  # no zig build runs meanwhile: what is found in its directory is ours
        zig_dir = zig_root / "build"
        deadline = time.monotonic() + 5
        while (processes_in(root) or processes_in(zig_dir)) and time.monotonic() < deadline:
            time.sleep(0.05)  # SIGKILL is asynchronous for grandchildren
        assert processes_in(root) == [] and processes_in(zig_dir) == []
        assert not zig_dir.exists()  # emptied and removed after every zig build
    assert [p.name for p in root.iterdir()] == []  # no wasmlab-build-* left behind


def compile_fails(source: str, lang: str, timeout: float = 60, **options) -> tuple[CompileError, float]:
    need_toolchain(lang)
    started = time.monotonic()
    with pytest.raises(CompileError) as info:
        wasmlab.compile(source, lang, timeout=timeout, use_cache=False, **options)
    return info.value, time.monotonic() - started


def warm(lang: str, source: str, **options) -> None:
    """Build a valid snippet with the same options first: zig builds libc++ once per option set (20-100 s),
    and a time limit must stop the hostile snippet, not that warm-up."""
    need_toolchain(lang)
    wasmlab.compile(source, lang, timeout=600, **options)


# ------------------------------------------------------------------------------------------ syntax errors

SYNTAX_ERRORS = {
    "wat": ('(module (func (export "f") (result i32) i32.const))', "snippet.wat:1"),
    "c": ("int f(void) {\n  return 1 +;\n}\n", "snippet.c:2:"),
    "cpp": ("int f() {\n  return 1 +;\n}\n", "snippet.cpp:2:"),
    "zig": ("export fn f() u32 {\n    return 1 + ;\n}\n", "snippet.zig:2:"),
    "rust": ('#[no_mangle]\npub extern "C" fn f() -> u32 {\n    1 +\n}\n', "snippet.rs:"),
    "go": ("package main\n\n//go:wasmexport f\nfunc f() int32 {\n\treturn 1 +\n}\n\nfunc main() {}\n", "snippet.go:6:"),
}


@pytest.mark.parametrize("lang", SYNTAX_ERRORS)
def test_syntax_error_gives_a_clear_one_line_error(lang: str, private_tmp: Path) -> None:
    source, where = SYNTAX_ERRORS[lang]
    if lang == "cpp":
        warm("cpp", "int g() { return 1; }\n")
    error, elapsed = compile_fails(source, lang)
    message = str(error)
    assert "\n" not in message and where in message, message
    assert error.lang == lang and where.split(":")[0] in error.diagnostics
    assert str(private_tmp) not in error.diagnostics and "wasmlab-build-" not in error.diagnostics
    assert elapsed < 30
    assert_clean(private_tmp)


# ------------------------------------------------------------------------------------------ compilers that never end

NEVER_ENDING = {
    "cpp-constexpr": (
        "cpp",
        """constexpr unsigned long long spin(unsigned long long n) {
            unsigned long long x = 0;
            for (unsigned long long i = 0; i < n; ++i) x += i ^ (x >> 3);
            return x;
        }
        constexpr unsigned long long value = spin(~0ULL);
        int get() { return (int)value; }""",
        ["-fconstexpr-steps=2147483647"],
    ),
    "cpp-templates": (
        "cpp",
        """constexpr unsigned long spin() { unsigned long i = 0; while (true) { ++i; } return i; }
        constexpr unsigned long forever = spin();
        int get() { return (int)forever; }""",
        ["-fconstexpr-steps=2147483647"],
    ),
    "zig-comptime": (
        "zig",
        """fn spin() u64 {
            @setEvalBranchQuota(4000000000);
            var i: u64 = 0;
            while (i < 4000000000) : (i += 1) {}
            return i;
        }
        export fn get() u64 { return comptime spin(); }""",
        [],
    ),
    "c-include-dev-zero": ("c", '#include "/dev/zero"\nint x;\n', []),
}


@pytest.mark.parametrize("case", NEVER_ENDING)
def test_compiler_that_never_ends_is_stopped(case: str, private_tmp: Path) -> None:
    lang, source, flags = NEVER_ENDING[case]
    warm(lang, "int ok(void) { return 1; }\n" if lang in ("c", "cpp") else "export fn ok() u32 { return 1; }\n")
    error, elapsed = compile_fails(source, lang, timeout=TIMEOUT, flags=flags)
    assert f"ran past {TIMEOUT:g} s and was stopped" in str(error)
    assert TIMEOUT - 0.1 <= elapsed < TIMEOUT + SLACK
    assert_clean(private_tmp)  # the whole process group (zig -> clang) was killed
    assert wasmlab.compile("int ok2(void) { return 2; }", "c").run("wasmtime", "ok2").result == 2


# ------------------------------------------------------------------------------------------ megabytes of output


def test_megabytes_of_diagnostics_are_capped(private_tmp: Path) -> None:
    source = "\n".join(f"int f{i}(void) {{ return undeclared_{i}; }}" for i in range(20000))
    error, _ = compile_fails(source, "c", flags=["-ferror-limit=0"])
    assert "undeclared_0" in str(error)
    assert len(error.diagnostics) < MAX_DIAGNOSTICS + 500
    assert "more characters of compiler output cut" in error.diagnostics
    assert_clean(private_tmp)


def test_compiler_output_is_not_buffered_whole(private_tmp: Path) -> None:
    """`-Xclang -ast-dump` on C++ headers prints ~100 MB: only MAX_CAPTURE bytes of it are ever held."""
    warm("cpp", "#include <vector>\nint ok() { return 1; }\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    source = "#include <vector>\n#include <map>\n#include <string>\n#include <algorithm>\nint get() { return 1; }\n"
    error, _ = compile_fails(source, "cpp", flags=["-fsyntax-only", "-Xclang", "-ast-dump"])
    assert "bytes of compiler output dropped" in error.diagnostics
    assert len(error.diagnostics) < MAX_DIAGNOSTICS + 500
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert peak - before < 4 * MAX_CAPTURE + (16 << 20)
    assert_clean(private_tmp)


# ------------------------------------------------------------------------------------------ files outside the snippet


def test_include_outside_the_snippet_reads_only_what_the_user_can(private_tmp: Path) -> None:
    """The compiler runs as the user: `#include "/etc/passwd"` is read (the user can read it anyway) and fails
    to compile; the diagnostics quote a line or two of it, not the whole file, and no path of the lab's."""
    error, _ = compile_fails('#include "/etc/passwd"\nint x;\n', "c")
    assert "/etc/passwd" in error.diagnostics
    assert len(error.diagnostics) < 4096
    assert_clean(private_tmp)


def test_zig_and_go_refuse_files_outside_the_snippet(private_tmp: Path) -> None:
    error, _ = compile_fails('const s = @embedFile("/etc/passwd");\nexport fn f() u32 { return s.len; }\n', "zig")
    assert "outside" in str(error)
    go = 'package main\n\nimport _ "embed"\n\n//go:embed ../../etc/passwd\nvar s string\n\nfunc main() { println(s) }\n'
    error, _ = compile_fails(go, "go", kind="command")
    assert "invalid pattern" in str(error)
    assert_clean(private_tmp)


def test_flags_that_write_no_module_give_a_compile_error(private_tmp: Path) -> None:
    """A compile that succeeds without writing the module (user flags) is a CompileError, not a missing file."""
    error, _ = compile_fails("export fn f() u32 { return 1; }\n", "zig", flags=["-fno-emit-bin"])
    assert "produced no Wasm module" in str(error)
    error, _ = compile_fails("int f(void) { return 1; }\n", "c", flags=["-E"])
    assert "produced no Wasm module" in str(error)
    assert_clean(private_tmp)
