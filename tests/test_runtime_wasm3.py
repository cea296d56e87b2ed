"""The wasm3 runtime (pywasm3 in a worker process): real engine, real modules (WAT and C), no mocks."""

from __future__ import annotations

import math
import os
import signal
import threading
import time

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
from wasmlab.runtimes.wasm3 import Wasm3Runtime

REASON = Wasm3Runtime().unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"wasm3: {REASON}")

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

SPEC = "wasm3"


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
    runtime = get_runtime(SPEC)
    assert isinstance(runtime, Wasm3Runtime) and runtime.name == "wasm3" and runtime.variants == ()
    assert runtime.version().startswith("pywasm3 0.") and "(wasm3 " in runtime.version()
    assert {"exports", "wasi", "memory", "instances", "timeout", "max_memory", "builtin_host"} == set(
        runtime.capabilities
    )
    row = next(r for r in wasmlab.runtimes.list_runtimes() if r.name == "wasm3")
    assert row.available and row.version == runtime.version()


def test_values(values: Module) -> None:
    result = values.run(SPEC, "add", (2, 40))
    assert result.result == 42 and result.ok and set(result.timings) == {"compile", "instantiate", "call"}
    assert values.run(SPEC, "add", (0x7FFFFFFF, 1)).result == -(2**31)
    assert values.run(SPEC, "add", (0xFFFFFFFF, 0)).result == -1  # unsigned spelling of -1
    for big in (2**63 - 1, -(2**63), 0x123456789ABCDEF0, 2**53 + 1):
        assert values.run(SPEC, "id64", (big,)).result == big
    assert values.run(SPEC, "mul64", (2**40 + 1, 2**20)).result == 2**60 + 2**20
    assert values.run(SPEC, "add32f", (1.5, 2.25)).result == 3.75
    f32 = values.run(SPEC, "idf32", (0.1,)).result
    assert f32 == pytest.approx(0.1, rel=1e-7) and f32 != 0.1  # rounded to f32
    assert values.run(SPEC, "div64", (1.0, 0.0)).result == math.inf
    assert values.run(SPEC, "div64", (-1.0, 0.0)).result == -math.inf
    assert math.isnan(values.run(SPEC, "div64", (0.0, 0.0)).result)
    assert values.run(SPEC, "div64", (math.inf, 2)).result == math.inf
    assert values.run(SPEC, "nothing").result is None
    with pytest.raises(UsageError, match="takes 2 argument"):
        values.run(SPEC, "add", (1,))
    with pytest.raises(UsageError, match="exports no function"):
        values.run(SPEC, "nope")


def test_refusals(values: Module) -> None:
    with pytest.raises(RuntimeUnavailable, match="fuel"):
        values.run(SPEC, "add", (1, 2), fuel=1000)
    with pytest.raises(RuntimeUnavailable, match="host functions"):
        values.run(SPEC, "add", (1, 2), imports={"env": {"f": print}})
    multi = wat('(module (func (export "two") (result i32 i32) (i32.const 1) (i32.const 2)))')
    with pytest.raises(RuntimeUnavailable, match="multi-value"):
        multi.run(SPEC, "two")


def test_fib_from_c_library() -> None:
    module = compiled(FIB_C)
    assert "_initialize" in module.export_names()  # a WASI reactor: the worker calls _initialize first
    assert module.run(SPEC, "fib", (20,)).result == 6765
    with module.instantiate(SPEC) as inst:
        assert inst.call("fib", 25) == 75025 and inst.last_timings["call"] > 0


def test_wasi_command_through_the_python_shim() -> None:
    module = compiled(HELLO_C, kind="command")  # zig's clang: 5-byte call_indirect LEBs, re-encoded for wasm3
    result = module.run(SPEC, argv=["world"], env={"WHO": "me"}, stdin=b"typed\n", check=False)
    assert result.stdout == b"hello world argc=2 env=me stdin=typed\n"
    assert result.stderr == b"to stderr\n" and result.exit_code == 3 and not result.ok
    assert set(result.timings) == {"compile", "instantiate", "run"}
    again = module.run(SPEC, argv=["again"], check=False)  # stdin does not leak between runs
    assert again.stdout == b"hello again argc=2 env=(null) stdin=\n"
    with pytest.raises(RuntimeUnavailable, match="preopen"):
        module.run(SPEC, dirs={"/data": "."})


def test_wasi_exports_and_proc_exit() -> None:
    module = wat(WASI_WAT)
    assert module.run(SPEC).stdout == b"hi\n"
    result = module.run(SPEC, "quit", (4,), check=False)
    assert (result.result, result.stdout, result.exit_code) == (None, b"hi\n", 4)
    with module.instantiate(SPEC) as inst:
        assert inst.call("hi") == 5
        with pytest.raises(ExitTrap) as info:
            inst.call("quit", 2)
        assert info.value.status == 2 and inst.stdout == b"hi\nhi\n"


def test_trap_codes_and_frames(traps: Module) -> None:
    with pytest.raises(Trap) as info:
        traps.run(SPEC, "unreachable")
    assert info.value.code == "unreachable"
    assert info.value.frames[0].startswith("inner (0x") and info.value.frames[1].startswith("outer (0x")
    assert traps.run(SPEC, "div0", (0,), check=False).trap == "integer divide by zero"
    assert traps.run(SPEC, "div0", (1,)).result == 1  # the worker is fine after a trap
    assert traps.run(SPEC, "oob", check=False).trap == "out of bounds memory access"
    # frames are offsets in the module as given, although the worker runs a copy with a lowered memory max
    assert traps.run(SPEC, "unreachable", max_memory=None, check=False).trap_frames == info.value.frames


def test_command_trap_keeps_output_and_maps_offsets() -> None:
    """wasm3 runs a re-encoded copy (canonical LEBs): frame offsets are mapped back to the original."""
    module = compiled(CRASH_C, kind="command")
    result = module.run(SPEC, argv=["crash"], check=False)
    assert result.trap == "unreachable" and result.stdout == b"before\n"
    assert result.trap_frames[0].startswith("crash_here (0x") and result.trap_frames[-1].startswith("_start (0x")
    offset = int(result.trap_frames[0].split("(")[1].rstrip(")"), 16)
    assert module.bytes[offset] == 0x00  # the `unreachable` opcode in the original bytes


def test_deep_recursion_is_stack_overflow(traps: Module) -> None:
    result = traps.run(SPEC, "rec", (0,), check=False)
    assert result.trap == "stack overflow" and result.trap_frames[0].startswith("rec (0x")


def test_timeout_and_next_run(traps: Module, values: Module) -> None:
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        traps.run(SPEC, "spin", timeout=0.5)
    assert info.value.limit == "time" and time.monotonic() - started < 1.0
    assert values.run(SPEC, "add", (1, 2)).result == 3  # a fresh worker; modules are sent again


def test_memory_bomb_is_stopped(values: Module) -> None:
    bomb = wat(BOMB_WAT)
    assert bomb.run(SPEC, "grow_only", max_memory=8 << 20).result == 128  # memory.grow fails at the cap
    result = bomb.run(SPEC, "bomb", max_memory=32 << 20, check=False)
    assert result.error_kind == "limit:memory" and "memory.grow failed" in result.error
    with pytest.raises(LimitExceeded, match="memory"):
        bomb.run(SPEC, "bomb", max_memory=32 << 20)
    mib = compiled(MALLOC_BOMB_C).run(SPEC, "bomb", max_memory=16 << 20).result
    assert 4 <= mib < 16  # malloc returned NULL at the cap
    with pytest.raises(LimitExceeded, match="initial memory"):
        wat('(module (memory 600) (func (export "f")))').run(SPEC, "f", max_memory=32 << 20)
    assert values.run(SPEC, "add", (1, 2)).result == 3


def test_builtin_host_module() -> None:
    module = wat(HOST_WAT)
    runtime = get_runtime(SPEC)
    runtime.kv_clear()
    assert module.run(SPEC, "hello").stderr == b"hello from wasm\n"
    assert 0 <= module.run(SPEC, "random").result < 1
    assert module.run(SPEC, "now").result > 0
    assert [module.run(SPEC, "visit").result for _ in range(3)] == [1, 2, 3]  # the store outlives instances
    with module.instantiate(SPEC) as inst:
        assert inst.call("visit") == 4
        inst.call("hello")
        assert inst.stderr == b"hello from wasm\n"
    runtime.kv_clear()
    assert module.run(SPEC, "visit").result == 1


def test_instance_state_and_memory() -> None:
    module = wat(STATE_WAT)
    with module.instantiate(SPEC) as inst:
        assert [inst.call("bump") for _ in range(3)] == [1, 2, 3]
        assert set(inst.export_names()) == {"bump", "sum"}
        assert inst.memory_size() == 65536
        inst.write_memory(100, bytes([1, 2, 3, 250]))
        assert inst.read_memory(99, 6) == bytes([0, 1, 2, 3, 250, 0])
        assert inst.call("sum", 100, 4) == 256
        with pytest.raises(UsageError, match="outside memory"):
            inst.read_memory(65530, 10)
    with pytest.raises(UsageError, match="closed"):
        inst.call("bump")


def test_instance_lost_after_timeout(traps: Module) -> None:
    inst = wat(STATE_WAT).instantiate(SPEC)
    assert inst.call("bump") == 1
    with pytest.raises(LimitExceeded):
        traps.run(SPEC, "spin", timeout=0.3)
    with pytest.raises(InstanceLost, match="instantiate again"):
        inst.call("bump")
    fresh = wat(STATE_WAT).instantiate(SPEC)
    assert fresh.call("bump") == 1
    fresh.close()


SPAM_C = '#include <stdio.h>\nint main(void) { for (int i = 0; i < 100000; i++) puts("spam"); }'


def test_output_is_capped() -> None:
    result = compiled(SPAM_C, kind="command").run(SPEC, max_output=1000)
    assert len(result.stdout) == 1000 and result.stdout.startswith(b"spam\nspam\n") and result.exit_code == 0


def test_keyboard_interrupt_stops_the_guest(traps: Module, values: Module) -> None:
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            traps.run(SPEC, "spin", timeout=30)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 3
    assert values.run(SPEC, "add", (2, 3)).result == 5


def test_resident_memory_cap_is_the_safety_net(values: Module) -> None:
    """Without the lowered memory maximum (a raw request), only the worker's RSS cap stops the bomb."""
    bomb = wat(BOMB_WAT)
    runtime = get_runtime(SPEC)
    message = {"op": "run", "sha": bomb.sha256, "invoke": "bomb", "args": [], "max_memory": None}
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        runtime.request(message, module=bomb, timeout=20, max_memory=64 << 20)
    assert info.value.limit == "memory" and "worker memory passed" in str(info.value)
    assert time.monotonic() - started < 10
    assert values.run(SPEC, "add", (1, 2)).result == 3
