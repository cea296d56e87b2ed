"""The wasmer runtime (wasmer-python 1.1 on CPython 3.10, in a worker), every compiler: real engine, real
modules (WAT and C), no mocks."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import wasmlab
from wasmlab.errors import (
    ExitTrap,
    InstanceLost,
    LimitExceeded,
    RuntimeUnavailable,
    ToolchainUnavailable,
    Trap,
    UsageError,
)
from wasmlab.module import Module
from wasmlab.runtimes import get_runtime
from wasmlab.runtimes.wasmer import WasmerRuntime

REASON = WasmerRuntime().unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"wasmer: {REASON}")

VALUES_WAT = """
(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "id64") (param i64) (result i64) (local.get 0))
  (func (export "mul64") (param i64 i64) (result i64) (i64.mul (local.get 0) (local.get 1)))
  (func (export "add32f") (param f32 f32) (result f32) (f32.add (local.get 0) (local.get 1)))
  (func (export "idf32") (param f32) (result f32) (local.get 0))
  (func (export "div64") (param f64 f64) (result f64) (f64.div (local.get 0) (local.get 1)))
  (func (export "nothing"))
)
"""
MULTI_WAT = """
(module
  (func (export "swap") (param i32 i64 f64) (result f64 i64 i32) (local.get 2) (local.get 1) (local.get 0))
)
"""

TRAPS_WAT = """
(module
  (memory (export "memory") 1)
  (func $inner (unreachable))
  (func $outer (export "unreachable") (call $inner))
  (func $divide (export "div0") (param i32) (result i32) (i32.div_s (i32.const 1) (local.get 0)))
  (func $load (export "oob") (result i32) (i32.load (i32.const 70000)))
  (func $rec (export "rec") (param i32) (result i32)
    (i32.add (call $rec (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func $spin (export "spin") (loop $l (br $l)))
)
"""

# `bomb` grows memory 1 MiB at a time, touching every new page, and traps when memory.grow fails (like a C
# program whose malloc returned NULL); `grow_only` grows page by page until memory.grow fails.
BOMB_WAT = """
(module
  (memory (export "memory") 1)
  (func (export "bomb") (local $old i32)
    (loop $l
      (local.set $old (memory.grow (i32.const 16)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (unreachable)))
      (memory.fill (i32.mul (local.get $old) (i32.const 65536)) (i32.const 7) (i32.const 1048576))
      (br $l)))
  (func (export "grow_only") (result i32)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    (memory.size))
)
"""

STATE_WAT = """
(module
  (memory (export "memory") 1)
  (global $count (mut i32) (i32.const 0))
  (func (export "bump") (result i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1))) (global.get $count))
  (func (export "sum") (param $ptr i32) (param $len i32) (result i32) (local $acc i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $len)))
      (local.set $acc (i32.add (local.get $acc) (i32.load8_u (local.get $ptr))))
      (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
      (local.set $len (i32.sub (local.get $len) (i32.const 1)))
      (br $l)))
    (local.get $acc))
)
"""

HOST_WAT = """
(module
  (import "wasmlab" "log" (func $log (param i32 i32)))
  (import "wasmlab" "now_ms" (func $now (result f64)))
  (import "wasmlab" "random" (func $random (result f64)))
  (import "wasmlab" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (import "wasmlab" "kv_set" (func $kv_set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hello from wasm")
  (data (i32.const 32) "visits")
  (func (export "hello") (call $log (i32.const 0) (i32.const 15)))
  (func (export "now") (result f64) (call $now))
  (func (export "random") (result f64) (call $random))
  (func (export "visit") (result i32)
    (if (i32.eq (call $kv_get (i32.const 32) (i32.const 6) (i32.const 64) (i32.const 1)) (i32.const -1))
      (then (i32.store8 (i32.const 64) (i32.const 0))))
    (i32.store8 (i32.const 64) (i32.add (i32.load8_u (i32.const 64)) (i32.const 1)))
    (call $kv_set (i32.const 32) (i32.const 6) (i32.const 64) (i32.const 1))
    (i32.load8_u (i32.const 64)))
)
"""

WASI_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hi\\n")
  (func $say (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start") (call $say))
  (func (export "hi") (result i32) (call $say) (i32.const 5))
  (func (export "quit") (param i32) (call $say) (call $exit (local.get 0)))
)
"""

FIB_C = "int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }"
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
    return 3;
}
"""
CRASH_C = r"""
#include <stdio.h>
__attribute__((noinline)) int crash_here(int x) { if (x) __builtin_trap(); return x; }
int main(int argc, char **argv) { printf("before\n"); fflush(stdout); return crash_here(argc > 1); }
"""
MALLOC_BOMB_C = r"""
#include <stdlib.h>
#include <string.h>
char *volatile keep;  /* or the compiler drops the unused allocations, and the loop never ends */
int bomb(void) {  /* MiB allocated before malloc returned NULL */
    int n = 0;
    for (;;) { char *p = malloc(1 << 20); if (!p) return n; memset(p, 1, 1 << 20); keep = p; n++; }
}
"""

FILES_C = r"""
#include <stdio.h>
int main(void) {
    char buf[64] = "";
    FILE *f = fopen("/data/in.txt", "r");
    if (f && fgets(buf, sizeof buf, f)) printf("read: %s\n", buf);
    FILE *out = fopen("/data/out.txt", "w");
    if (out) { fputs("written by wasm", out); fclose(out); }
    return 0;
}
"""

SPECS = ["wasmer", "wasmer:singlepass", "wasmer:llvm"]


@pytest.fixture(params=SPECS)
def spec(request: pytest.FixtureRequest) -> str:
    reason = WasmerRuntime(request.param.partition(":")[2] or None).unavailable_reason()
    if reason:  # the LLVM variant is probed in a throwaway process first
        pytest.skip(f"{request.param}: {reason}")
    return request.param


def wat(text: str) -> Module:
    return wasmlab.compile(text, lang="wat")


def compiled(source: str, kind: str = "library") -> Module:
    try:
        return wasmlab.compile(source, lang="c", kind=kind)
    except ToolchainUnavailable as exc:
        pytest.skip(f"no C toolchain: {exc}")


@pytest.fixture(scope="module")
def values() -> Module:
    return wat(VALUES_WAT)


@pytest.fixture(scope="module")
def traps() -> Module:
    return wat(TRAPS_WAT)


def test_registry_version_capabilities() -> None:
    runtime = get_runtime("wasmer")
    assert runtime.name == "wasmer" and runtime.variants == ("cranelift", "singlepass", "llvm")
    assert runtime.version() == "wasmer-python 1.1.0 (cranelift)"
    assert get_runtime("wasmer:llvm").version() == "wasmer-python 1.1.0 (llvm)"
    assert get_runtime("wasmer:singlepass").label == "wasmer:singlepass"
    assert {"exports", "wasi", "memory", "instances", "timeout", "max_memory", "builtin_host"} == set(
        runtime.capabilities
    )
    row = next(r for r in wasmlab.runtimes.list_runtimes() if r.name == "wasmer")
    assert row.available and row.variants == runtime.variants


def test_unavailable_reasons(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WASMLAB_WASMER_PYTHON", str(tmp_path / "no-such-python"))
    reason = WasmerRuntime().unavailable_reason()
    assert "CPython 3.10 only" in reason and ".venv-py310" in reason
    import sys

    monkeypatch.setenv("WASMLAB_WASMER_PYTHON", sys.executable)  # a Python without wasmer-python
    reason = WasmerRuntime("llvm").unavailable_reason()
    assert "3.10 only" in reason and f"Python {sys.version_info[0]}.{sys.version_info[1]}" in reason


def test_values(spec: str, values: Module) -> None:
    result = values.run(spec, "add", (2, 40))
    assert result.result == 42 and result.ok and set(result.timings) == {"compile", "instantiate", "call"}
    assert values.run(spec, "add", (0x7FFFFFFF, 1)).result == -(2**31)
    assert values.run(spec, "add", (0xFFFFFFFF, 0)).result == -1
    for big in (2**63 - 1, -(2**63), 0x123456789ABCDEF0, 2**53 + 1):
        assert values.run(spec, "id64", (big,)).result == big
    assert values.run(spec, "mul64", (2**40 + 1, 2**20)).result == 2**60 + 2**20
    assert values.run(spec, "add32f", (1.5, 2.25)).result == 3.75
    f32 = values.run(spec, "idf32", (0.1,)).result
    assert f32 == pytest.approx(0.1, rel=1e-7) and f32 != 0.1  # rounded to f32
    assert values.run(spec, "div64", (1.0, 0.0)).result == math.inf
    assert values.run(spec, "div64", (-1.0, 0.0)).result == -math.inf
    assert math.isnan(values.run(spec, "div64", (0.0, 0.0)).result)
    zero = values.run(spec, "div64", (-0.0, 1.0)).result
    assert zero == 0 and math.copysign(1, zero) < 0
    assert values.run(spec, "nothing").result is None
    multi = wat(MULTI_WAT)
    if spec == "wasmer:singlepass":
        with pytest.raises(RuntimeUnavailable, match="singlepass"):
            multi.run(spec, "swap", (7, 2**62, 0.5))
    else:
        assert multi.run(spec, "swap", (7, 2**62, 0.5)).result == (0.5, 2**62, 7)
    with pytest.raises(UsageError, match="takes 2 argument"):
        values.run(spec, "add", (1,))


def test_fib_from_c_library(spec: str) -> None:
    module = compiled(FIB_C)
    assert module.run(spec, "fib", (20,)).result == 6765
    with module.instantiate(spec) as inst:
        assert inst.call("fib", 25) == 75025 and inst.last_timings["call"] > 0


def test_wasi_command(spec: str) -> None:
    module = compiled(HELLO_C, kind="command")
    result = module.run(spec, argv=["world"], env={"WHO": "me"}, stdin=b"typed\n", check=False)
    assert result.stdout == b"hello world argc=2 env=me stdin=typed\n"
    assert result.stderr == b"to stderr\n" and result.exit_code == 3 and not result.ok
    assert set(result.timings) == {"compile", "instantiate", "run"}
    # wasmer reads fd 0 through Rust's buffered stdin: what a run left unread must not reach the next run
    module.run(spec, argv=["a"], stdin=b"x" * 5000, check=False)
    again = module.run(spec, argv=["again"], check=False)
    assert again.stdout == b"hello again argc=2 env=(null) stdin=\n"


def test_wasi_exports_and_proc_exit(spec: str) -> None:
    module = wat(WASI_WAT)
    assert module.run(spec).stdout == b"hi\n"
    result = module.run(spec, "quit", (4,), check=False)
    assert (result.result, result.stdout, result.exit_code) == (None, b"hi\n", 4)
    with module.instantiate(spec) as inst:
        assert inst.call("hi") == 5
        with pytest.raises(ExitTrap) as info:
            inst.call("quit", 2)
        assert info.value.status == 2 and inst.stdout == b"hi\nhi\n"


def test_preopened_directory(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("file content")
    result = compiled(FILES_C, kind="command").run("wasmer", dirs={"/data": str(tmp_path)})
    assert result.stdout == b"read: file content\n" and result.exit_code == 0
    assert (tmp_path / "out.txt").read_text() == "written by wasm"


def test_trap_codes_and_frames(spec: str, traps: Module) -> None:
    with pytest.raises(Trap) as info:
        traps.run(spec, "unreachable")
    assert info.value.code == "unreachable" and info.value.frames[0].startswith("inner")
    assert traps.run(spec, "div0", (0,), check=False).trap == "integer divide by zero"
    assert traps.run(spec, "div0", (1,)).result == 1
    assert traps.run(spec, "oob", check=False).trap == "out of bounds memory access"


def test_command_trap_frames_match_the_module() -> None:
    module = compiled(CRASH_C, kind="command")
    result = module.run("wasmer", argv=["crash"], check=False)
    assert result.trap == "unreachable" and result.stdout == b"before\n"
    assert result.trap_frames[0].startswith("crash_here (0x") and result.trap_frames[-1].startswith("_start (0x")
    assert module.run("wasmer", argv=["crash"], max_memory=None, check=False).trap_frames == result.trap_frames


def test_deep_recursion_is_stack_overflow(spec: str, traps: Module) -> None:
    result = traps.run(spec, "rec", (0,), check=False)
    assert result.trap == "stack overflow" and result.trap_frames[0].startswith("rec")


def test_timeout_and_next_run(spec: str, traps: Module, values: Module) -> None:
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        traps.run(spec, "spin", timeout=0.5)
    assert info.value.limit == "time" and time.monotonic() - started < 1.0
    assert values.run(spec, "add", (1, 2)).result == 3  # a fresh worker; modules are sent again


def test_memory_bomb_is_stopped(spec: str, values: Module) -> None:
    bomb = wat(BOMB_WAT)
    assert bomb.run(spec, "grow_only", max_memory=8 << 20).result == 128  # memory.grow fails at the cap
    result = bomb.run(spec, "bomb", max_memory=32 << 20, check=False)
    assert result.error_kind == "limit:memory" and "memory.grow failed" in result.error
    mib = compiled(MALLOC_BOMB_C).run(spec, "bomb", max_memory=16 << 20).result
    assert 4 <= mib < 16  # malloc returned NULL at the cap
    with pytest.raises(LimitExceeded, match="initial memory"):
        wat('(module (memory 600) (func (export "f")))').run(spec, "f", max_memory=32 << 20)
    assert values.run(spec, "add", (1, 2)).result == 3


def test_builtin_host_module(spec: str) -> None:
    module = wat(HOST_WAT)
    runtime = get_runtime(spec)
    runtime.kv_clear()
    assert module.run(spec, "hello").stderr == b"hello from wasm\n"
    assert 0 <= module.run(spec, "random").result < 1
    assert module.run(spec, "now").result > 0
    assert [module.run(spec, "visit").result for _ in range(3)] == [1, 2, 3]
    with module.instantiate(spec) as inst:
        assert inst.call("visit") == 4
        inst.call("hello")
        assert inst.stderr == b"hello from wasm\n"
    runtime.kv_clear()
    assert module.run(spec, "visit").result == 1


def test_instance_state_and_memory(spec: str) -> None:
    module = wat(STATE_WAT)
    with module.instantiate(spec) as inst:
        assert [inst.call("bump") for _ in range(3)] == [1, 2, 3]
        assert inst.memory_size() == 65536
        inst.write_memory(100, bytes([1, 2, 3, 250]))
        assert inst.read_memory(99, 6) == bytes([0, 1, 2, 3, 250, 0])
        assert inst.call("sum", 100, 4) == 256


def test_instance_lost_after_timeout(traps: Module) -> None:
    inst = wat(STATE_WAT).instantiate("wasmer")
    assert inst.call("bump") == 1
    with pytest.raises(LimitExceeded):
        traps.run("wasmer", "spin", timeout=0.3)
    with pytest.raises(InstanceLost, match="instantiate again"):
        inst.call("bump")


SPAM_C = '#include <stdio.h>\nint main(void) { for (int i = 0; i < 100000; i++) puts("spam"); }'


def test_output_is_capped(spec: str) -> None:
    result = compiled(SPAM_C, kind="command").run(spec, max_output=1000)
    assert len(result.stdout) == 1000 and result.stdout.startswith(b"spam\nspam\n") and result.exit_code == 0


def test_keyboard_interrupt_stops_the_guest(traps: Module, values: Module) -> None:
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            traps.run("wasmer", "spin", timeout=30)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 3
    assert values.run("wasmer", "add", (2, 3)).result == 5


def test_resident_memory_cap_is_the_safety_net(values: Module) -> None:
    """Without the lowered memory maximum (a raw request), only the worker's RSS cap stops the bomb."""
    bomb = wat(BOMB_WAT)
    runtime = get_runtime("wasmer")
    message = {"op": "run", "sha": bomb.sha256, "invoke": "bomb", "args": [], "max_memory": None}
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        runtime.request(message, module=bomb, timeout=20, max_memory=64 << 20)
    assert info.value.limit == "memory" and "worker memory passed" in str(info.value)
    assert time.monotonic() - started < 10
    assert values.run("wasmer", "add", (1, 2)).result == 3
