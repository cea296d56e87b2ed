"""The wasmer-sdk runtime (modern Wasmer, WASI commands only, in process) and the WasmEdge stub: real
engines, real modules, no mocks."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

import wasmlab
from wasmlab.errors import LimitExceeded, RuntimeUnavailable, ToolchainUnavailable, Trap
from wasmlab.module import Module
from wasmlab.runtimes import get_runtime, list_runtimes
from wasmlab.runtimes.wasmedge import WasmEdgeRuntime, wasmedge_binary
from wasmlab.runtimes.wasmer_sdk import COMMANDS_ONLY, WasmerSdkRuntime

REASON = WasmerSdkRuntime().unavailable_reason()
needs_sdk = pytest.mark.skipif(REASON is not None, reason=f"wasmer-sdk: {REASON}")

HELLO_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    char line[64] = "";
    fgets(line, sizeof line, stdin);
    line[strcspn(line, "\n")] = 0;
    printf("hello %s argc=%d env=%s stdin=%s\n", argc > 1 ? argv[1] : "?", argc, getenv("WHO"), line);
    fprintf(stderr, "to stderr\n");
    return argc > 2 ? atoi(argv[2]) : 0;
}
"""
CRASH_C = r"""
#include <stdio.h>
__attribute__((noinline)) int crash_here(int x) { if (x) __builtin_trap(); return x; }
int main(int argc, char **argv) { printf("before\n"); fflush(stdout); return crash_here(argc > 1); }
"""
SPIN_WAT = '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))'
LIBRARY_WAT = '(module (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))'


def compiled(source: str) -> Module:
    try:
        return wasmlab.compile(source, lang="c", kind="command")
    except ToolchainUnavailable as exc:
        pytest.skip(f"no C toolchain: {exc}")


@pytest.fixture(scope="module")
def hello() -> Module:
    return compiled(HELLO_C)


@needs_sdk
def test_registry_and_capabilities() -> None:
    runtime = get_runtime("wasmer-sdk")
    assert runtime.name == "wasmer-sdk" and runtime.capabilities == {"wasi", "timeout"}
    assert runtime.version().startswith("wasmer-sdk 0.")
    # the Wasmer inside (embedded from a git commit): its crates' versions, read from the native library
    assert re.search(r"\(wasmer-wasix \d+\.\d+\.\d+, Cranelift \d+\.\d+\.\d+\)$", runtime.version())
    row = next(r for r in list_runtimes() if r.name == "wasmer-sdk")
    assert row.available and row.capabilities == ("wasi", "timeout")


@needs_sdk
def test_hello_command(hello: Module) -> None:
    result = hello.run("wasmer-sdk", argv=["world"], env={"WHO": "me"}, stdin=b"typed\n")
    assert result.stdout == b"hello world argc=2 env=me stdin=typed\n"
    assert result.stderr == b"to stderr\n" and result.exit_code == 0 and result.ok
    assert set(result.timings) == {"compile", "instantiate", "run"}
    assert all(v >= 0 for v in result.timings.values())


@needs_sdk
def test_exit_code_and_output_cap(hello: Module) -> None:
    result = hello.run("wasmer-sdk", argv=["world", "7"], check=False)
    assert result.exit_code == 7 and not result.ok
    assert result.stdout == b"hello world argc=3 env=(null) stdin=\n"
    assert hello.run("wasmer-sdk", argv=["w"], max_output=5).stdout == b"hello"


@needs_sdk
def test_trap_with_frames() -> None:
    module = compiled(CRASH_C)
    result = module.run("wasmer-sdk", argv=["crash"], check=False)
    assert result.trap == "unreachable" and result.stdout == b"before\n"
    assert result.trap_frames[0].startswith("crash_here (0x") and result.trap_frames[-1].startswith("_start (0x")
    with pytest.raises(Trap):
        module.run("wasmer-sdk", argv=["crash"])


@needs_sdk
def test_timeout_stops_an_endless_command(hello: Module) -> None:
    spin = wasmlab.compile(SPIN_WAT, lang="wat")
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        spin.run("wasmer-sdk", timeout=0.5)
    assert info.value.limit == "time" and time.monotonic() - started < 1.0
    assert hello.run("wasmer-sdk", argv=["next"]).stdout.startswith(b"hello next")


@needs_sdk
def test_keyboard_interrupt_stops_the_guest(hello: Module) -> None:
    spin = wasmlab.compile(SPIN_WAT, lang="wat")
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            spin.run("wasmer-sdk", timeout=30)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 3
    assert hello.run("wasmer-sdk", argv=["after"]).stdout.startswith(b"hello after")


@needs_sdk
def test_refuses_what_is_not_a_command(hello: Module) -> None:
    library = wasmlab.compile(LIBRARY_WAT, lang="wat")
    with pytest.raises(RuntimeUnavailable, match="call exports") as info:
        library.run("wasmer-sdk", "add", (1, 2))
    assert COMMANDS_ONLY in str(info.value)
    with pytest.raises(RuntimeUnavailable, match="WASI commands only"):
        library.instantiate("wasmer-sdk")
    with pytest.raises(RuntimeUnavailable, match="not a WASI command"):
        library.run("wasmer-sdk")
    with pytest.raises(RuntimeUnavailable, match="fuel"):
        hello.run("wasmer-sdk", fuel=1000)
    with pytest.raises(RuntimeUnavailable, match="WASI commands only"):
        hello.run("wasmer-sdk", "main", (0, 0))


@needs_sdk
def test_cache_is_not_in_the_working_directory(hello: Module, isolated_cache: Path) -> None:
    hello.run("wasmer-sdk", argv=["x"])
    assert (isolated_cache / "wasmer-sdk").is_dir()
    assert not (Path.cwd() / ".wasmer").exists() or (Path.cwd() / ".wasmer").stat().st_mtime < time.time() - 60


# ------------------------------------------------------------------------------------------------ wasmedge


@pytest.mark.skipif(wasmedge_binary() is not None, reason="a wasmedge binary is installed here")
def test_wasmedge_listed_as_unavailable() -> None:
    row = next(r for r in list_runtimes() if r.name == "wasmedge")
    assert not row.available and row.version == ""
    assert "PyPI `wasmedge` is an empty placeholder" in row.reason and "GitHub" in row.reason
    assert "install.sh" in row.install
    with pytest.raises(RuntimeUnavailable, match="no installable WasmEdge"):
        get_runtime("wasmedge")
    assert WasmEdgeRuntime().capabilities == {"exports", "wasi", "timeout", "max_memory"}
