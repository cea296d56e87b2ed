"""The node (V8) runtime: real node, real modules (WAT and compiled snippets), no mocks."""

from __future__ import annotations

import math
import os
import signal
import statistics
import threading
import time

import pytest

import wasmlab
from wasmlab.errors import (
    InstanceLost,
    LimitExceeded,
    RuntimeUnavailable,
    ToolchainUnavailable,
    Trap,
    UsageError,
)
from wasmlab.module import Module
from wasmlab.runtimes import RunOptions, get_runtime
from wasmlab.runtimes.node import NodeRuntime, trap_code

pytestmark = pytest.mark.skipif(
    NodeRuntime().unavailable_reason() is not None, reason=f"node: {NodeRuntime().unavailable_reason()}"
)

VALUES_WAT = """
(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "add64") (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1)))
  (func (export "id64") (param i64) (result i64) (local.get 0))
  (func (export "mul32") (param f32 f32) (result f32) (f32.mul (local.get 0) (local.get 1)))
  (func (export "div64") (param f64 f64) (result f64) (f64.div (local.get 0) (local.get 1)))
  (func (export "idf32") (param f32) (result f32) (local.get 0))
  (func (export "swap") (param i32 i64 f64) (result f64 i64 i32) (local.get 2) (local.get 1) (local.get 0))
  (func (export "nothing"))
)
"""

TRAPS_WAT = """
(module
  (memory (export "memory") 1)
  (func $inner (unreachable))
  (func $outer (export "unreachable") (call $inner))
  (func $divide (export "div0") (param i32) (result i32) (i32.div_s (i32.const 1) (local.get 0)))
  (func $remainder (export "rem0") (param i32) (result i32) (i32.rem_u (i32.const 1) (local.get 0)))
  (func $load (export "oob") (result i32) (i32.load (i32.const 70000)))
  (func $rec (export "rec") (param i32) (result i32) (call $rec (i32.add (local.get 0) (i32.const 1))))
  (func $spin (export "spin") (loop $l (br $l)))
)
"""

# Grows memory 1 MiB at a time and writes every new page, so the worker's resident memory really grows.
# `bomb` grows memory 1 MiB at a time and writes every new page (so resident memory really grows), and traps
# when memory.grow fails, like a C program whose malloc returned NULL; `grow_only` grows without touching.
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
  (func (export "size") (result i32) (memory.size))
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
  (func (export "fill") (param $ptr i32) (param $len i32)
    (memory.fill (local.get $ptr) (i32.const 65) (local.get $len)))
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
  ;; visits += 1 in the kv store (one byte), returns the new count
  (func (export "visit") (result i32) (local $n i32)
    (if (i32.eq (call $kv_get (i32.const 32) (i32.const 6) (i32.const 64) (i32.const 1)) (i32.const -1))
      (then (i32.store8 (i32.const 64) (i32.const 0))))
    (i32.store8 (i32.const 64) (i32.add (i32.load8_u (i32.const 64)) (i32.const 1)))
    (call $kv_set (i32.const 32) (i32.const 6) (i32.const 64) (i32.const 1))
    (i32.load8_u (i32.const 64)))
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


@pytest.fixture(scope="module")
def node() -> NodeRuntime:
    return get_runtime("node")


def wat(text: str) -> Module:
    return wasmlab.compile(text, lang="wat")


def compiled(source: str, lang: str, kind: str = "library") -> Module:
    try:
        return wasmlab.compile(source, lang=lang, kind=kind)
    except ToolchainUnavailable as exc:
        pytest.skip(f"no {lang} toolchain: {exc}")


@pytest.fixture(scope="module")
def values() -> Module:
    return wat(VALUES_WAT)


@pytest.fixture(scope="module")
def traps() -> Module:
    return wat(TRAPS_WAT)


# --------------------------------------------------------------------------------------------- identity


def test_registry_and_version(node: NodeRuntime) -> None:
    assert node.name == "node" and node.variants == ("default", "liftoff", "turbofan")
    assert node.version().startswith("node v") and "(V8 " in node.version()
    assert {"exports", "wasi", "memory", "instances", "timeout", "max_memory", "builtin_host"} <= node.capabilities
    assert "fuel" not in node.capabilities and "host_functions" not in node.capabilities
    assert get_runtime("node:turbofan").label == "node:turbofan"


# ----------------------------------------------------------------------------------------------- values


def test_i32_and_timings(values: Module) -> None:
    result = values.run("node", "add", (2, 40))
    assert result.result == 42 and result.ok
    assert {"compile", "instantiate", "call"} <= set(result.timings)
    assert all(v >= 0 for v in result.timings.values())
    assert values.run("node", "add", (0x7FFFFFFF, 1)).result == -(2**31)  # wraps like i32


@pytest.mark.parametrize("a", [2**63 - 1, -(2**63), 0x123456789ABCDEF0, 2**53 + 1, -1])
def test_i64_exact(values: Module, a: int) -> None:
    assert values.run("node", "id64", (a,)).result == a
    assert values.run("node", "add64", (a, 0)).result == a
    assert values.run("node", "add64", (2**63 - 1, 1)).result == -(2**63)


def test_floats_nan_inf(values: Module) -> None:
    assert values.run("node", "mul32", (1.5, 2.0)).result == 3.0
    assert values.run("node", "idf32", (0.1,)).result == pytest.approx(0.1, rel=1e-7)  # rounded to f32
    assert values.run("node", "idf32", (0.1,)).result != 0.1
    assert values.run("node", "div64", (1.0, 0.0)).result == math.inf
    assert values.run("node", "div64", (-1.0, 0.0)).result == -math.inf
    assert math.isnan(values.run("node", "div64", (0.0, 0.0)).result)
    assert math.isnan(values.run("node", "div64", (math.nan, 1.0)).result)
    assert values.run("node", "div64", (math.inf, 2.0)).result == math.inf
    zero = values.run("node", "div64", (-0.0, 1.0)).result
    assert zero == 0 and math.copysign(1, zero) < 0
    assert isinstance(values.run("node", "div64", (4, 2)).result, float)


def test_multi_value_and_void(values: Module) -> None:
    assert values.run("node", "swap", (7, 2**62, 0.5)).result == (0.5, 2**62, 7)
    assert values.run("node", "nothing").result is None


def test_wrong_arity_and_unknown_export(values: Module) -> None:
    with pytest.raises(UsageError, match="takes 2 argument"):
        values.run("node", "add", (1,))
    with pytest.raises(UsageError, match="exports no function"):
        values.run("node", "nope")


# --------------------------------------------------------------------------------------- compiled code


def test_fib_from_c_library() -> None:
    module = compiled(FIB_C, "c")
    assert "_initialize" in module.export_names()  # a WASI reactor: the worker calls _initialize
    assert module.run("node", "fib", (20,)).result == 6765


def test_fib_from_rust() -> None:
    source = '#[no_mangle]\npub extern "C" fn fib(n: i32) -> i32 { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }'
    assert compiled(source, "rust").run("node", "fib", (20,)).result == 6765


def test_fib_from_assemblyscript() -> None:
    source = "export function fib(n: i32): i32 { return n < 2 ? n : fib(n - 1) + fib(n - 2); }"
    assert compiled(source, "assemblyscript").run("node", "fib", (20,)).result == 6765


def test_variants_agree() -> None:
    module = compiled(FIB_C, "c")
    results = {v: module.run(v, "fib", (25,)) for v in ("node", "node:liftoff", "node:turbofan")}
    assert {r.result for r in results.values()} == {75025}
    assert [r.runtime for r in results.values()] == ["node", "node:liftoff", "node:turbofan"]
    flags = get_runtime("node:liftoff").worker.info["flags"]
    assert "--liftoff" in flags and "--no-wasm-tier-up" in flags
    assert "--no-liftoff" in get_runtime("node:turbofan").worker.info["flags"]


def test_wasi_command() -> None:
    module = compiled(HELLO_C, "c", kind="command")
    result = module.run("node", argv=["world"], env={"WHO": "me"}, stdin=b"typed\n", check=False)
    assert result.stdout == b"hello world argc=2 env=me stdin=typed\n"
    assert result.stderr == b"to stderr\n"
    assert result.exit_code == 3 and not result.ok
    assert {"compile", "instantiate", "run"} <= set(result.timings)


def test_wasi_output_is_capped() -> None:
    module = compiled(
        '#include <stdio.h>\nint main(void) { for (int i = 0; i < 100000; i++) puts("spam"); }', "c", "command"
    )
    result = module.run("node", max_output=1000)
    assert len(result.stdout) == 1000 and result.stdout.startswith(b"spam\nspam\n")
    assert result.exit_code == 0


FILES_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) int crash_here(int x) { if (x) __builtin_trap(); return x; }
int main(void) {
    char buf[64] = "";
    FILE *f = fopen("/data/in.txt", "r");
    if (f && fgets(buf, sizeof buf, f)) printf("read: %s\n", buf);
    return crash_here(getenv("CRASH") != 0);
}
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


def test_preopened_dir_and_command_trap(tmp_path) -> None:
    (tmp_path / "in.txt").write_text("file content")
    module = compiled(FILES_C, "c", kind="command")
    result = module.run("node", dirs={"/data": str(tmp_path)})
    assert result.stdout == b"read: file content\n" and result.exit_code == 0
    result = module.run("node", dirs={"/data": str(tmp_path)}, env={"CRASH": "1"}, check=False)
    assert result.trap == "unreachable" and result.stdout == b"read: file content\n"
    assert result.trap_frames[0].startswith("crash_here (0x") and result.trap_frames[-1].startswith("_start ")
    with pytest.raises(UsageError, match="no such directory"):
        module.run("node", dirs={"/data": str(tmp_path / "missing")})


def test_wasi_exports_and_proc_exit() -> None:
    module = wat(WASI_WAT)
    assert module.run("node").stdout == b"hi\n"
    result = module.run("node", "hi")
    assert (result.result, result.stdout, result.exit_code) == (5, b"hi\n", None)
    result = module.run("node", "quit", (4,), check=False)
    assert (result.result, result.stdout, result.exit_code) == (None, b"hi\n", 4)
    with module.instantiate("node") as inst:
        assert inst.call("hi") == 5
        with pytest.raises(wasmlab.ExitTrap) as info:
            inst.call("quit", 2)
        assert info.value.status == 2
        assert inst.call("quit", 0) is None
        assert inst.stdout == b"hi\nhi\nhi\n"


# ------------------------------------------------------------------------------------------------ traps


def test_trap_codes_and_frames(traps: Module) -> None:
    with pytest.raises(Trap) as info:
        traps.run("node", "unreachable")
    assert info.value.code == "unreachable"
    assert info.value.frames[0].startswith("inner (0x") and info.value.frames[1].startswith("outer ")

    result = traps.run("node", "div0", (0,), check=False)
    assert result.trap == "integer divide by zero" and result.trap_frames[0].startswith("divide ")
    assert traps.run("node", "div0", (2,)).result == 0  # the worker is fine after a trap
    assert traps.run("node", "rem0", (0,), check=False).trap == "integer divide by zero"
    assert traps.run("node", "oob", check=False).trap == "out of bounds memory access"


def test_frame_offsets_are_the_modules_own(traps: Module) -> None:
    """The worker runs a copy with lowered memory maxima (a longer memory section): offsets are mapped back."""
    capped = traps.run("node", "unreachable", max_memory=1 << 20, check=False).trap_frames
    plain = traps.run("node", "unreachable", max_memory=None, check=False).trap_frames
    assert capped == plain and plain[0].startswith("inner (0x")


def test_v8_trap_messages() -> None:
    assert trap_code("RuntimeError: remainder by zero") == "integer divide by zero"
    assert trap_code("Maximum call stack size exceeded") == "stack overflow"
    assert trap_code("float unrepresentable in integer range") == "invalid conversion to integer"
    assert trap_code("divide result unrepresentable") == "integer overflow"
    assert trap_code("table index is out of bounds") == "out of bounds table access"


def test_deep_recursion_is_stack_overflow(traps: Module) -> None:
    result = traps.run("node", "rec", (0,), check=False)
    assert result.trap == "stack overflow"
    assert result.trap_frames and all(f.startswith("rec ") for f in result.trap_frames)


# ----------------------------------------------------------------------------------------------- limits


def test_timeout_stops_infinite_loop_and_worker_restarts(traps: Module, values: Module) -> None:
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        traps.run("node", "spin", timeout=0.5)
    elapsed = time.monotonic() - started
    assert info.value.limit == "time" and elapsed < 1.0
    result = traps.run("node", "spin", timeout=0.3, check=False)
    assert result.error_kind == "limit:time"
    assert values.run("node", "add", (1, 2)).result == 3  # a fresh worker, modules re-sent


def test_memory_bomb_is_stopped(node: NodeRuntime, values: Module) -> None:
    bomb = wat(BOMB_WAT)
    # the module's memory maximum is lowered to max_memory: memory.grow fails at the cap, as under wasmtime
    assert bomb.run("node", "grow_only", max_memory=64 << 20).result == 1024
    started = time.monotonic()
    result = bomb.run("node", "bomb", max_memory=64 << 20, check=False)
    assert result.error_kind == "limit:memory" and "memory.grow failed" in result.error, result
    assert time.monotonic() - started < 5
    with pytest.raises(LimitExceeded, match="to start"):
        wat('(module (memory (export "memory") 2000) (func (export "f")))').run("node", "f", max_memory=64 << 20)
    assert values.run("node", "add", (1, 2)).result == 3


def test_resident_memory_cap_is_the_safety_net(node: NodeRuntime, values: Module) -> None:
    """Without the lowered maximum (a raw request), only the worker's RSS cap stops the bomb: it is killed."""
    bomb = wat(BOMB_WAT)
    message = {"op": "run", "sha": bomb.sha256, "invoke": "bomb", "args": [], "max_output": 1000}
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        node.request(message, module=bomb, timeout=20, max_memory=64 << 20)
    assert info.value.limit == "memory" and "worker memory passed" in str(info.value)
    assert time.monotonic() - started < 10
    assert values.run("node", "add", (1, 2)).result == 3


def test_compile_timings_like_wasmtime(node: NodeRuntime) -> None:
    module = wat(f'(module (func (export "f") (result i32) (i32.const {time.time_ns() & 0xFFFFFFF})))')
    first, second = module.run("node", "f"), module.run("node", "f")
    assert first.timings["compile"] > 0 and second.timings["compile"] == 0.0  # 0 when the code was cached
    assert node.compiled_ms[module.sha256] == first.timings["compile"]


def test_keyboard_interrupt_stops_the_guest(traps: Module, values: Module) -> None:
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            traps.run("node", "spin", timeout=20)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 3
    assert values.run("node", "add", (2, 3)).result == 5


# ---------------------------------------------------------------------------------------------- instances


def test_instance_state_and_memory(node: NodeRuntime) -> None:
    module = wat(STATE_WAT)
    with module.instantiate("node") as inst:
        assert [inst.call("bump") for _ in range(3)] == [1, 2, 3]
        assert set(inst.export_names()) == {"memory", "bump", "sum", "fill"}
        assert inst.memory_size() == 65536
        inst.write_memory(100, bytes([1, 2, 3, 250]))
        assert inst.read_memory(100, 4) == bytes([1, 2, 3, 250])
        assert inst.call("sum", 100, 4) == 256
        inst.call("fill", 200, 3)
        assert inst.read_memory(199, 5) == b"\0AAA\0"
        assert inst.last_timings["call"] >= 0
        with pytest.raises(UsageError, match="outside"):
            inst.read_memory(65530, 10)
    # a second instance starts from scratch
    other = module.instantiate("node")
    assert other.call("bump") == 1
    other.close()
    other.close()  # idempotent
    with pytest.raises(UsageError, match="closed"):
        other.call("bump")


def test_large_memory_transfer() -> None:
    data = os.urandom(8 << 20)
    with wat('(module (memory (export "memory") 256))').instantiate("node") as inst:
        started = time.monotonic()
        inst.write_memory(1000, data)
        assert inst.read_memory(1000, len(data)) == data
        assert time.monotonic() - started < 3


def test_instance_traps_and_stays_usable(traps: Module) -> None:
    inst = traps.instantiate("node")
    with pytest.raises(Trap) as info:
        inst.call("div0", 0)
    assert info.value.code == "integer divide by zero" and info.value.frames[0].startswith("divide ")
    assert inst.call("div0", 1) == 1
    inst.close()


def test_c_library_instance_with_stdout() -> None:
    source = (
        "#include <stdio.h>\nint counter;\n"
        'int tick(void) { printf("tick %d\\n", ++counter); fflush(stdout); return counter; }'
    )
    inst = compiled(source, "c").instantiate("node")
    assert inst.call("tick") == 1 and inst.call("tick") == 2
    assert inst.stdout == b"tick 1\ntick 2\n"
    inst.close()


def test_instance_lost_after_timeout(traps: Module) -> None:
    inst = traps.instantiate("node", timeout=0.3)
    assert inst.call("div0", 1) == 1
    with pytest.raises(LimitExceeded):
        inst.call("spin")
    with pytest.raises(InstanceLost, match=r"restarted after the time limit.*instantiate again"):
        inst.call("div0", 1)
    fresh = traps.instantiate("node")
    assert fresh.call("div0", 1) == 1
    fresh.close()


def test_instance_memory_limit(node: NodeRuntime) -> None:
    with wat(BOMB_WAT).instantiate("node", max_memory=32 << 20) as inst:
        assert inst.call("grow_only") == 512
        with pytest.raises(LimitExceeded) as info:
            inst.call("bomb")
        assert info.value.limit == "memory"
        assert inst.memory_size() == 32 << 20 and inst.call("size") == 512  # still usable


# ----------------------------------------------------------------------------------------- builtin host


def test_builtin_host_log_clock_random_kv(node: NodeRuntime) -> None:
    module = wat(HOST_WAT)
    node.kv_clear()
    assert module.run("node", "hello").stderr == b"hello from wasm\n"
    assert module.run("node", "now").result > 0
    assert 0 <= module.run("node", "random").result < 1
    assert [module.run("node", "visit").result for _ in range(3)] == [1, 2, 3]  # the store outlives instances
    with module.instantiate("node") as inst:
        assert inst.call("visit") == 4
        inst.call("hello")
        assert inst.stderr == b"hello from wasm\n"
    assert node.kv_items() == {b"visits": b"\x04"}
    node.kv_clear()
    assert module.run("node", "visit").result == 1


# ------------------------------------------------------------------------------------------ unsupported


def test_unsupported_requests(node: NodeRuntime, values: Module) -> None:
    with pytest.raises(RuntimeUnavailable, match="components unsupported: use wasmtime"):
        node.run(Module(b"\0asm\x0d\x00\x01\x00"), RunOptions())
    with pytest.raises(RuntimeUnavailable, match=r"built-in 'wasmlab' host module"):
        values.run("node", "add", (1, 2), imports={"env": {"f": print}})
    with pytest.raises(RuntimeUnavailable, match="fuel"):
        values.run("node", "add", (1, 2), fuel=1000)
    needs_env = wat('(module (import "env" "f" (func)) (func (export "g") (call 0)))')
    with pytest.raises(UsageError, match=r"env\.f"):
        needs_env.run("node", "g")


# ------------------------------------------------------------------------------------------ measurements


def test_call_round_trip_is_fast(values: Module) -> None:
    """Round trip of instance.call through the pipe (median), next to the time measured in the worker."""
    with values.instantiate("node") as inst:
        for _ in range(50):
            inst.call("add", 1, 2)
        trips, inside = [], []
        for _ in range(500):
            t = time.perf_counter()
            inst.call("add", 1, 2)
            trips.append(time.perf_counter() - t)
            inside.append(inst.last_timings["call"])
    median_us = statistics.median(trips) * 1e6
    print(f"node add(i32,i32): round trip {median_us:.0f} us, in worker {statistics.median(inside) * 1000:.2f} us")
    assert median_us < 5000
    assert statistics.median(inside) < statistics.median(trips) * 1000
