"""The `wasmlab` command line, run as a real subprocess: JSON shapes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import need_toolchain

WAT = '(module (memory (export "memory") 1 4) (func (export "add") (param i32 i32) (result i32) ' \
      'local.get 0 local.get 1 i32.add))'


def wasmlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wasmlab.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ}, timeout=300)


@pytest.fixture
def wat_file(tmp_path: Path) -> Path:
    path = tmp_path / "add.wat"
    path.write_text(WAT)
    return path


def test_compile_json(wat_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.wasm"
    proc = wasmlab("compile", str(wat_file), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"path", "size", "sha256", "lang", "cached", "compile_ms"} <= set(data)
    assert data["lang"] == "wat" and data["size"] == out.stat().st_size
    assert out.read_bytes().startswith(b"\0asm")


def test_compile_default_output_path(wat_file: Path) -> None:
    proc = wasmlab("compile", str(wat_file))
    assert proc.returncode == 0, proc.stderr
    assert wat_file.with_suffix(".wasm").is_file()


def test_inspect_json_of_a_module(wat_file: Path) -> None:
    wasmlab("compile", str(wat_file))
    proc = wasmlab("inspect", str(wat_file.with_suffix(".wasm")), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"size", "kind", "imports", "exports", "memories", "sections", "custom_sections", "functions"} <= set(data)
    assert data["kind"] == "module"
    assert {"name": "add", "kind": "func", "type": "(i32, i32) -> i32"} in data["exports"]
    assert data["memories"][0]["min"] == 1 and data["memories"][0]["max"] == 4
    assert [s["name"] for s in data["sections"]][:2] == ["type", "function"]


def test_inspect_compiles_source_and_reports_sizes(tmp_path: Path) -> None:
    need_toolchain("c")
    src = tmp_path / "lib.c"
    src.write_text("#include <stdio.h>\nint hello(void) { return puts(\"hi\"); }\n")
    proc = wasmlab("inspect", str(src), "--sizes", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert any(i["module"] == "wasi_snapshot_preview1" and i["name"] == "fd_write" for i in data["imports"])
    report = data["size_report"]
    assert report["raw"] == data["size"] and report["gzip"] < report["raw"] and report["brotli"] < report["raw"]
    text = wasmlab("inspect", str(src))
    assert "largest functions" in text.stdout and "fd_write" in text.stdout


def test_toolchains_json() -> None:
    proc = wasmlab("toolchains", "--json")
    assert proc.returncode == 0
    rows = json.loads(proc.stdout)
    assert {r["lang"] for r in rows} >= {"wat", "c", "cpp", "zig", "rust", "go", "assemblyscript", "python"}
    for row in rows:
        assert {"available", "version", "reason"} <= set(row)


def test_compile_error_exits_1_with_one_line_and_diagnostics(tmp_path: Path) -> None:
    need_toolchain("c")
    src = tmp_path / "bad.c"
    src.write_text("int f(void) {\n  return nope;\n}\n")
    proc = wasmlab("compile", str(src))
    assert proc.returncode == 1
    first = proc.stderr.splitlines()[0]
    assert first.startswith("wasmlab: c compile error") and "nope" in first
    assert "bad.c:2" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("content", [b"", b"\0asm", b"not wasm at all", b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\x0f"])
def test_invalid_module_exits_2_without_traceback(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.wasm"
    path.write_bytes(content)
    proc = wasmlab("inspect", str(path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("wasmlab: invalid Wasm")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [("compile", "missing.c"), ("compile", "x.unknownext"),
                                  ("compile", "add.wat", "--lang", "cobol"), ("compile", "add.wat", "-O", "9")])
def test_usage_errors_exit_2(args: tuple[str, ...], wat_file: Path) -> None:
    if args[1] == "x.unknownext":
        (wat_file.parent / "x.unknownext").write_text("")
    proc = wasmlab(*args, cwd=wat_file.parent)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("wasmlab: ") and "Traceback" not in proc.stderr


def test_debug_flag_shows_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.wasm"
    path.write_bytes(b"nope")
    proc = wasmlab("--debug", "inspect", str(path))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


QUOTA_COMPONENT_WAT = r"""(component
  (core module $m (func (export "limit") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 60))))
  (core instance $i (instantiate $m))
  (func $limit (param "tier" u32) (result u32) (canon lift (core func $i "limit")))
  (instance $quota (export "limit" (func $limit)))
  (export "wasmlab:edge/quota@0.1.0" (instance $quota)))"""


def test_run_calls_a_component_interface_function(tmp_path: Path) -> None:
    component = tmp_path / "quota.wat"
    component.write_text(QUOTA_COMPONENT_WAT)
    proc = wasmlab("run", str(component), "--invoke", "quota#limit", "0x3")
    assert proc.returncode == 0 and proc.stdout.strip() == "180", proc.stderr
    proc = wasmlab("run", str(component), "--invoke", "quota#limit", "gold")  # a string reaches the u32 param
    assert proc.returncode == 2 and proc.stderr.startswith("wasmlab: quota#limit(tier: u32) -> u32 cannot take")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("runtime", ["wasmtime", "node", "wasm3", "wasmer"])
def test_run_rejects_arguments_of_the_wrong_type_the_same_on_every_engine(runtime: str, wat_file: Path) -> None:
    from wasmlab.runtimes import list_runtimes

    if not any(row.name == runtime and row.available for row in list_runtimes()):
        pytest.skip(f"{runtime} is not available")
    for value, message in [("x", "argument 0 is i32, got str 'x'"),
                           ("2.5", "argument 0 is i32, got the float 2.5: pass an int"),
                           ("4294967296", "argument 0 (4294967296) does not fit in i32"),
                           ("[1]", "argument 0 is i32, got list [1]")]:
        proc = wasmlab("run", str(wat_file), "--runtime", runtime, "--invoke", "add", value, "1")
        assert (proc.returncode, proc.stderr) == (2, f"wasmlab: add: {message}\n"), value
    proc = wasmlab("run", str(wat_file), "--runtime", runtime, "--invoke", "add", "4294967295", "2")
    assert proc.stdout.strip() == "1"  # the unsigned form wraps, as in Wasm
