"""The runtime conformance suite: what every engine does the same, as one test parametrized over the engines
that can do it (real engines, real modules, no mocks).

Engines come from `list_runtimes()` and their capabilities; wasmer also runs on its other compilers (they
generate different code). An engine that cannot run here is a skip with its reason (the browser runtime and
an uninstallable WasmEdge are checked elsewhere: `checked_elsewhere`). Where engines differ on
purpose (in process or in a worker, what a message says), the test says so next to the assertion. What only
one engine does (its registry entry, its variants, its quirks) stays in `test_runtime_<engine>.py`.
"""

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
from wasmlab.runtimes import get_runtime, list_runtimes

# ------------------------------------------------------------------------------------------------- guests

VALUES_WAT = """
(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "add64") (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1)))
  (func (export "id64") (param i64) (result i64) (local.get 0))
  (func (export "mul64") (param i64 i64) (result i64) (i64.mul (local.get 0) (local.get 1)))
  (func (export "mul32") (param f32 f32) (result f32) (f32.mul (local.get 0) (local.get 1)))
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
  (func $remainder (export "rem0") (param i32) (result i32) (i32.rem_u (i32.const 1) (local.get 0)))
  (func $load (export "oob") (result i32) (i32.load (i32.const 70000)))
  (func $rec (export "rec") (param i32) (result i32)
    (i32.add (call $rec (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func $spin (export "spin") (loop $l (br $l)))
)
"""

# `bomb` grows memory 1 MiB at a time and writes every new page (so resident memory really grows), and traps
# when memory.grow fails, like a C program whose malloc returned NULL; `grow_only` grows page by page without
# touching until memory.grow fails; `grow` grows by its argument (pages) and returns memory.grow's answer.
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
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
)
"""

STATE_WAT = """
(module
  (memory (export "memory") 1)
  (global $count (mut i32) (i32.const 0))
  (data (i32.const 16) "hello\\00")
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
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
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
  (data (i32.const 96) "greeting")
  (data (i32.const 112) "hi there")
  (func (export "hello") (call $log (i32.const 0) (i32.const 15)))
  (func (export "now") (result f64) (call $now))
  (func (export "random") (result f64) (call $random))
  ;; visits += 1 in the kv store (one byte), returns the new count
  (func (export "visit") (result i32)
    (if (i32.eq (call $kv_get (i32.const 32) (i32.const 6) (i32.const 64) (i32.const 1)) (i32.const -1))
      (then (i32.store8 (i32.const 64) (i32.const 0))))
    (i32.store8 (i32.const 64) (i32.add (i32.load8_u (i32.const 64)) (i32.const 1)))
    (call $kv_set (i32.const 32) (i32.const 6) (i32.const 64) (i32.const 1))
    (i32.load8_u (i32.const 64)))
  ;; greeting = "hi there"; get(cap) copies at most cap bytes of it to 128 and returns its full length (-1: absent)
  (func (export "put") (call $kv_set (i32.const 96) (i32.const 8) (i32.const 112) (i32.const 8)))
  (func (export "get") (param $cap i32) (result i32)
    (call $kv_get (i32.const 96) (i32.const 8) (i32.const 128) (local.get $cap)))
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
SPAM_C = '#include <stdio.h>\nint main(void) { for (int i = 0; i < 100000; i++) puts("spam"); }'
CRASH_C = r"""
#include <stdio.h>
__attribute__((noinline)) int crash_here(int x) { if (x) __builtin_trap(); return x; }
int main(int argc, char **argv) { printf("before\n"); fflush(stdout); return crash_here(argc > 1); }
"""
FILES_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((noinline)) int crash_here(int x) { if (x) __builtin_trap(); return x; }
int main(void) {
    char buf[64] = "";
    FILE *f = fopen("/data/in.txt", "r");
    if (f && fgets(buf, sizeof buf, f)) printf("read: %s\n", buf);
    FILE *out = fopen("/data/out.txt", "w");
    if (out) { fputs("written by wasm", out); fclose(out); }
    fflush(stdout);
    return crash_here(getenv("CRASH") != 0);
}
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
TICK_C = (
    "#include <stdio.h>\nint counter;\n"
    'int tick(void) { printf("tick %d\\n", ++counter); fflush(stdout); return counter; }'
)

# ------------------------------------------------------------------------------------------------ engines

ROWS = list_runtimes()
# Variants the shared behaviours also run on: wasmer's compilers generate different code. node's tiers and
# wasmtime's other compilers are compared in their own files (test_variants_agree, test_variants_run_fib).
VARIANTS = {"wasmer": ("singlepass", "llvm"), "jsc": ("bbq", "ipint"), "spidermonkey": ("baseline", "ion")}
# The JS shells' tiers (JavaScriptCore's BBQ and in-place interpreter, SpiderMonkey's baseline and Ion) run
# everything too. Variants share one way to run and to stop a guest (one worker each): the tests of that
# machinery (Ctrl-C, instances lost, the resident-memory cap) run on the default variant only.


def checked_elsewhere(row) -> str | None:
    """Why an engine is not parametrized here, when it is not: the browser runtime needs a JupyterLab page (the UI
    tests run it against wasmtime in headless Chromium); WasmEdge has no build installable from PyPI, apt or npm,
    so CI cannot have it (its unavailability is checked below); where it is installed, it runs here."""
    if row.name == "browser":
        return "runs in a JupyterLab page: ui-tests/test_lab_ui.py checks it against wasmtime in headless Chromium"
    if row.name == "wasmedge" and not row.available:
        return f"not installable here: {row.reason}"
    return None


def engines(*needs: str, variants: bool = True, workers_only: bool = False) -> list:
    """The engines (as "name" or "name:variant") whose capabilities include `needs`: a param each, marked skip
    with the reason when the engine cannot run here. `workers_only`: engines that run guests in a worker process."""
    params = []
    for row in ROWS:
        if checked_elsewhere(row):
            continue
        # a backend that failed to load lists no capabilities: it shows as a skip everywhere, never vanishes
        if row.capabilities and not set(needs) <= set(row.capabilities):
            continue
        if workers_only and row.available and not hasattr(get_runtime(row.name), "worker"):
            continue
        names = [row.name, *(f"{row.name}:{v}" for v in VARIANTS.get(row.name, ()) if variants)]
        for name in names:
            marks = [] if row.available else [pytest.mark.skip(reason=f"{name} unavailable: {row.reason}")]
            params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.fixture
def spec(request: pytest.FixtureRequest) -> str:
    """The engine under test; a variant that cannot run here (wasmer's LLVM is probed first) is a skip."""
    try:
        get_runtime(request.param)
    except RuntimeUnavailable as exc:
        pytest.skip(f"{request.param}: {exc}")
    return request.param


def over(*needs: str, **kw: bool) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("spec", engines(*needs, **kw), indirect=True)


def test_every_registered_runtime_is_checked_here_or_says_where() -> None:
    covered = {param.values[0] for param in engines()}
    for row in ROWS:
        assert row.name in covered or checked_elsewhere(row), row.name
    if any(row.name == "wasmedge" and not row.available for row in ROWS):
        assert "no installable WasmEdge" in checked_elsewhere(next(r for r in ROWS if r.name == "wasmedge"))


def in_worker(spec: str) -> bool:
    """node, wasm3 and wasmer run the guest in a worker process and stop it by killing the worker; wasmtime
    runs it in this process and interrupts it (epoch), so nothing is restarted."""
    return hasattr(get_runtime(spec), "worker")


def restarts(spec: str) -> int:
    return get_runtime(spec).worker.restarts


# How engines name trap frames: "name (0xOFFSET)", innermost first, offsets in the module as given; except
# wasmer's LLVM compiler and JavaScriptCore (every tier), which give names without offsets, and wasmer's
# singlepass compiler, which gives the innermost frame only.
NO_OFFSETS = {"wasmer:llvm", "jsc", "jsc:bbq", "jsc:ipint"}
INNERMOST_ONLY = {"wasmer:singlepass"}


def assert_frames(spec: str, frames: list[str], *names: str) -> None:
    """`frames` begin with the functions `names` (innermost first), as `spec` reports frames."""
    if spec in INNERMOST_ONLY:
        assert len(frames) == 1
        names = names[:1]
    assert len(frames) >= len(names), frames
    for frame, name in zip(frames[: len(names)], names, strict=True):
        if spec in NO_OFFSETS:
            assert frame == name, frames
        else:
            assert frame.startswith(f"{name} (0x"), frames


def assert_outermost(spec: str, frames: list[str], name: str) -> None:
    """The outermost frame is function `name` (where the engine reports more than the innermost frame)."""
    if spec in NO_OFFSETS:
        assert frames[-1] == name, frames
    elif spec not in INNERMOST_ONLY:
        assert frames[-1].startswith(f"{name} (0x"), frames


# ----------------------------------------------------------------------------------------------- modules


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


@pytest.fixture(scope="module")
def bomb() -> Module:
    return wat(BOMB_WAT)


@pytest.fixture(scope="module")
def state() -> Module:
    return wat(STATE_WAT)


@pytest.fixture(scope="module")
def host() -> Module:
    return wat(HOST_WAT)


@pytest.fixture(scope="module")
def multi() -> Module:
    return wat(MULTI_WAT)


@pytest.fixture(scope="module")
def wasi() -> Module:
    return wat(WASI_WAT)


@pytest.fixture(scope="module")
def fib() -> Module:
    return compiled(FIB_C)


@pytest.fixture(scope="module")
def tick() -> Module:
    return compiled(TICK_C)


@pytest.fixture(scope="module")
def malloc_bomb() -> Module:
    return compiled(MALLOC_BOMB_C)


@pytest.fixture(scope="module")
def hello() -> Module:
    return compiled(HELLO_C, kind="command")


@pytest.fixture(scope="module")
def spam() -> Module:
    return compiled(SPAM_C, kind="command")


@pytest.fixture(scope="module")
def crash() -> Module:
    return compiled(CRASH_C, kind="command")


@pytest.fixture(scope="module")
def files() -> Module:
    return compiled(FILES_C, kind="command")


# --------------------------------------------------------------------------------------------- the list


def test_the_suite_covers_every_full_engine() -> None:
    """The four engines with exports, WASI, instances and limits are listed (so none drops out unnoticed)."""
    full = {"exports", "wasi", "memory", "instances", "timeout", "max_memory", "builtin_host"}
    names = {row.name for row in ROWS if full <= set(row.capabilities)}
    assert {"wasmtime", "node", "wasm3", "wasmer"} <= names
    params = {p.values[0] for p in engines(*full)}
    assert {"wasmtime", "node", "wasm3", "wasmer", "wasmer:singlepass", "wasmer:llvm"} <= params


# ----------------------------------------------------------------------------------------------- values


@over("exports")
def test_values(spec: str, values: Module) -> None:
    result = values.run(spec, "add", (2, 40))
    assert result.result == 42 and result.ok and set(result.timings) == {"compile", "instantiate", "call"}
    assert all(v >= 0 for v in result.timings.values())
    assert values.run(spec, "add", (0x7FFFFFFF, 1)).result == -(2**31)  # wraps like i32
    assert values.run(spec, "add", (0xFFFFFFFF, 0)).result == -1  # unsigned spelling of -1
    for big in (2**63 - 1, -(2**63), 0x123456789ABCDEF0, 2**53 + 1, -1):  # exact, even past 2**53
        assert values.run(spec, "id64", (big,)).result == big
        assert values.run(spec, "add64", (big, 0)).result == big
    assert values.run(spec, "add64", (2**63 - 1, 1)).result == -(2**63)
    assert values.run(spec, "mul64", (2**40 + 1, 2**20)).result == 2**60 + 2**20
    assert values.run(spec, "mul32", (1.5, 2.0)).result == 3.0
    assert values.run(spec, "add32f", (1.5, 2.25)).result == 3.75
    f32 = values.run(spec, "idf32", (0.1,)).result
    assert f32 == pytest.approx(0.1, rel=1e-7) and f32 != 0.1  # rounded to f32
    assert values.run(spec, "div64", (1.0, 0.0)).result == math.inf
    assert values.run(spec, "div64", (-1.0, 0.0)).result == -math.inf
    assert math.isnan(values.run(spec, "div64", (0.0, 0.0)).result)
    assert math.isnan(values.run(spec, "div64", (math.nan, 1.0)).result)
    assert values.run(spec, "div64", (math.inf, 2.0)).result == math.inf
    assert values.run(spec, "div64", (math.inf, 2)).result == math.inf  # an int for an f64 parameter
    zero = values.run(spec, "div64", (-0.0, 1.0)).result
    assert zero == 0 and math.copysign(1, zero) < 0
    assert isinstance(values.run(spec, "div64", (4, 2)).result, float)
    assert values.run(spec, "nothing").result is None
    with pytest.raises(UsageError, match="takes 2 argument"):
        values.run(spec, "add", (1,))
    with pytest.raises(UsageError, match="exports no function"):
        values.run(spec, "nope")


@over("exports")
def test_multi_value(spec: str, multi: Module) -> None:
    # engines without multi-value results refuse the module up front, naming why
    if spec == "wasm3":
        with pytest.raises(RuntimeUnavailable, match="multi-value"):
            multi.run(spec, "swap", (7, 2**62, 0.5))
    elif spec == "wasmer:singlepass":
        with pytest.raises(RuntimeUnavailable, match="singlepass"):
            multi.run(spec, "swap", (7, 2**62, 0.5))
    else:
        assert multi.run(spec, "swap", (7, 2**62, 0.5)).result == (0.5, 2**62, 7)


@over("exports")
def test_compile_timings(spec: str) -> None:
    """A run reports the compile time the first time; the engine keeps the code, so the next run reports 0."""
    unique = (time.time_ns() ^ hash(spec)) & 0xFFFFFFF
    module = wat(f'(module (func (export "f") (result i32) (i32.const {unique})))')
    first, second = module.run(spec, "f"), module.run(spec, "f")
    assert first.result == second.result == unique
    assert first.timings["compile"] > 0 and second.timings["compile"] == 0.0
    assert get_runtime(spec).compiled_ms[module.sha256] == first.timings["compile"]


@over("exports")
def test_refusals(spec: str, values: Module) -> None:
    """What an engine cannot do is refused with the reason (RuntimeUnavailable), before anything runs."""
    runtime = get_runtime(spec)
    if "fuel" not in runtime.capabilities:
        with pytest.raises(RuntimeUnavailable, match="fuel"):
            values.run(spec, "add", (1, 2), fuel=1000)
    if "host_functions" not in runtime.capabilities:  # the guest runs in a worker process
        with pytest.raises(RuntimeUnavailable, match=r"Python host functions are unsupported.*'wasmlab' host"):
            values.run(spec, "add", (1, 2), imports={"env": {"f": print}})
    if "components" not in runtime.capabilities:
        with pytest.raises(RuntimeUnavailable, match=r"components are unsupported: use wasmtime"):
            Module(b"\0asm\x0d\x00\x01\x00").run(spec)
    needs_env = wat('(module (import "env" "f" (func)) (func (export "g") (call 0)))')
    with pytest.raises(UsageError, match=r"env\.f"):  # no such import here: a usage error, not a crash
        needs_env.run(spec, "g")


# ----------------------------------------------------------------------------------------- compiled code


@over("exports", "instances")
def test_fib_from_c_library(spec: str, fib: Module) -> None:
    assert "_initialize" in fib.export_names()  # a WASI reactor: _initialize runs before the first call
    result = fib.run(spec, "fib", (20,))
    assert result.ok and result.result == 6765
    with fib.instantiate(spec) as inst:
        assert [inst.call("fib", n) for n in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
        assert inst.call("fib", 25) == 75025 and inst.last_timings["call"] > 0


@over("exports", "instances", "wasi")
def test_c_library_prints_through_wasi(spec: str, tick: Module) -> None:
    assert tick.wasi_imports and not tick.is_command
    result = tick.run(spec, "tick")
    assert result.ok and result.result == 1 and result.stdout == b"tick 1\n"
    with tick.instantiate(spec) as inst:
        assert inst.call("tick") == 1 and inst.call("tick") == 2
        assert inst.stdout == b"tick 1\ntick 2\n"


# ------------------------------------------------------------------------------------------------- WASI


@over("wasi")
def test_wasi_command(spec: str, hello: Module) -> None:
    result = hello.run(spec, argv=["world"], env={"WHO": "me"}, stdin=b"typed\n", check=False)
    assert result.stdout == b"hello world argc=2 env=me stdin=typed\n"
    assert result.stderr == b"to stderr\n" and result.exit_code == 3 and not result.ok
    assert set(result.timings) == {"compile", "instantiate", "run"}
    # stdin does not leak between runs, not even what a run left unread (wasmer reads fd 0 through a buffer)
    hello.run(spec, argv=["a"], stdin=b"x" * 5000, check=False)
    again = hello.run(spec, argv=["again"], check=False)
    assert again.stdout == b"hello again argc=2 env=(null) stdin=\n"


@over("wasi")
def test_output_is_capped(spec: str, spam: Module) -> None:
    result = spam.run(spec, max_output=1002)  # cut to the byte, mid-line
    assert result.stdout == b"spam\n" * 200 + b"sp" and result.exit_code == 0


@over("wasi")
def test_command_trap_keeps_output_and_frames(spec: str, crash: Module) -> None:
    result = crash.run(spec, argv=["crash"], check=False)
    assert result.trap == "unreachable" and result.stdout == b"before\n"
    assert_frames(spec, result.trap_frames, "crash_here")
    assert_outermost(spec, result.trap_frames, "_start")
    if spec not in NO_OFFSETS:
        offset = int(result.trap_frames[0].split("(")[1].rstrip(")"), 16)  # in the module as given
        if spec == "wasmtime":  # cranelift turns `br_if; unreachable` into one conditional trap, at the br_if
            assert crash.bytes[offset : offset + 3] == b"\x0d\x00\x00"
        else:  # the `unreachable` opcode (wasm3 runs a re-encoded copy: its offsets are mapped back)
            assert crash.bytes[offset] == 0x00
    with pytest.raises(Trap):
        crash.run(spec, argv=["crash"])
    if "max_memory" in get_runtime(spec).capabilities:
        # the same frames when the engine runs a copy with a lowered memory maximum (node, wasm3, wasmer do)
        assert crash.run(spec, argv=["crash"], max_memory=None, check=False).trap_frames == result.trap_frames


# Engines whose WASI cannot preopen host directories, and what they say.
NO_PREOPENS = {
    "wasm3": "wasm3 cannot preopen host directories",  # pywasm3's WASI has no preopens
    "wasmer-sdk": r"preopened host directories \(dirs=\) are unsupported",
    "jsc": r"preopened host directories \(dirs=\) are unsupported: jsc's shell has no file system",
    "spidermonkey": r"preopened host directories \(dirs=\) are unsupported: spidermonkey's shell has no file",
}


@over("wasi")
def test_preopened_directory(spec: str, files: Module, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("file content")
    engine = spec.partition(":")[0]
    if engine in NO_PREOPENS:  # refused, never run without the files
        with pytest.raises(RuntimeUnavailable, match=NO_PREOPENS[engine]):
            files.run(spec, dirs={"/data": str(tmp_path)})
        return
    result = files.run(spec, dirs={"/data": str(tmp_path)})
    assert result.stdout == b"read: file content\n" and result.exit_code == 0
    assert (tmp_path / "out.txt").read_text() == "written by wasm"
    result = files.run(spec, dirs={"/data": str(tmp_path)}, env={"CRASH": "1"}, check=False)
    assert result.trap == "unreachable" and result.stdout == b"read: file content\n"
    assert_frames(spec, result.trap_frames, "crash_here")
    assert_outermost(spec, result.trap_frames, "_start")
    missing = "is not a directory" if spec == "wasmtime" else "no such directory"  # wasmtime checks on its own
    with pytest.raises(UsageError, match=missing):
        files.run(spec, dirs={"/data": str(tmp_path / "missing")})


@over("exports", "wasi", "instances")
def test_wasi_exports_and_proc_exit(spec: str, wasi: Module) -> None:
    assert wasi.run(spec).stdout == b"hi\n"
    result = wasi.run(spec, "hi")
    assert (result.result, result.stdout, result.exit_code) == (5, b"hi\n", None)
    result = wasi.run(spec, "quit", (4,), check=False)
    assert (result.result, result.stdout, result.exit_code) == (None, b"hi\n", 4)
    with wasi.instantiate(spec) as inst:
        assert inst.call("hi") == 5
        with pytest.raises(ExitTrap) as info:
            inst.call("quit", 2)
        assert info.value.status == 2 and inst.stdout == b"hi\nhi\n"
        assert inst.call("quit", 0) is None  # exit(0) is a normal return
        assert inst.stdout == b"hi\nhi\nhi\n"


# ------------------------------------------------------------------------------------------------ traps


@over("exports")
def test_trap_codes_and_frames(spec: str, traps: Module) -> None:
    with pytest.raises(Trap) as info:
        traps.run(spec, "unreachable")
    assert info.value.code == "unreachable"
    assert_frames(spec, info.value.frames, "inner", "outer")
    result = traps.run(spec, "div0", (0,), check=False)
    assert result.trap == "integer divide by zero"
    assert_frames(spec, result.trap_frames, "divide")
    assert traps.run(spec, "div0", (2,)).result == 0  # the engine is fine after a trap
    assert traps.run(spec, "rem0", (0,), check=False).trap == "integer divide by zero"
    assert traps.run(spec, "oob", check=False).trap == "out of bounds memory access"
    # frames are offsets in the module as given, although worker engines run a copy with a lowered memory max
    capped = traps.run(spec, "unreachable", max_memory=1 << 20, check=False).trap_frames
    plain = traps.run(spec, "unreachable", max_memory=None, check=False).trap_frames
    assert capped == plain == info.value.frames


@over("exports", "instances")
def test_instance_traps_and_stays_usable(spec: str, traps: Module) -> None:
    with traps.instantiate(spec) as inst:
        with pytest.raises(Trap) as info:
            inst.call("div0", 0)
        assert info.value.code == "integer divide by zero"
        assert_frames(spec, info.value.frames, "divide")
        with pytest.raises(Trap) as info:
            inst.call("unreachable")
        assert info.value.code == "unreachable"
        assert_frames(spec, info.value.frames, "inner", "outer")
        with pytest.raises(Trap) as info:
            inst.call("oob")
        assert info.value.code == "out of bounds memory access"
        with pytest.raises(Trap) as info:
            inst.call("rec", 0)
        assert info.value.code == "stack overflow" and info.value.frames[0].startswith("rec")
        assert inst.call("div0", 1) == 1  # the instance survives its traps, a stack overflow too


@over("exports")
def test_deep_recursion_is_stack_overflow(spec: str, traps: Module) -> None:
    result = traps.run(spec, "rec", (0,), check=False)
    assert result.trap == "stack overflow"
    frames = result.trap_frames
    if spec == "wasmtime":  # detected in rec's prologue, before any instruction: the innermost has no offset
        assert frames[0] == "rec"
        frames = frames[1:]
    assert frames
    assert_frames(spec, frames, *["rec"] * len(frames))  # every frame is rec


# ----------------------------------------------------------------------------------------------- limits


@over("exports", "timeout")
def test_timeout_stops_infinite_loop_and_next_run_works(spec: str, traps: Module, values: Module) -> None:
    assert values.run(spec, "add", (1, 2)).result == 3
    before = restarts(spec) if in_worker(spec) else None
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        traps.run(spec, "spin", timeout=0.5)
    # bound as the per-engine tests had it (wasmtime's own test bounds its timeout more tightly)
    assert info.value.limit == "time" and time.monotonic() - started < 1.0
    result = traps.run(spec, "spin", timeout=0.3, check=False)
    assert result.error_kind == "limit:time"
    assert values.run(spec, "add", (1, 2)).result == 3
    if before is not None:  # worker engines stopped the guest by killing the worker: a fresh one, modules re-sent
        assert restarts(spec) == before + 2
    else:  # wasmtime interrupted the guest in this process: no worker to restart
        assert not hasattr(get_runtime(spec), "worker")


@over("exports", "instances", "timeout", variants=False)
def test_instances_after_a_timeout(spec: str, traps: Module, state: Module) -> None:
    """A time limit in an instance's own call, then in another run: worker engines lose their instances (the
    worker is killed), wasmtime's instances live on."""
    kept = state.instantiate(spec)
    own = traps.instantiate(spec, timeout=0.3)
    assert kept.call("bump") == 1 and own.call("div0", 1) == 1
    with pytest.raises(LimitExceeded) as info:
        own.call("spin")
    assert info.value.limit == "time"
    if in_worker(spec):
        with pytest.raises(InstanceLost, match=r"restarted after the time limit.*instantiate again"):
            own.call("div0", 1)
        with pytest.raises(InstanceLost, match="instantiate again"):
            kept.call("bump")
    else:
        assert own.call("div0", 1) == 1 and kept.call("bump") == 2
    kept.close()
    own.close()

    kept = state.instantiate(spec)
    assert kept.call("bump") == 1
    with pytest.raises(LimitExceeded):
        traps.run(spec, "spin", timeout=0.3)
    if in_worker(spec):
        with pytest.raises(InstanceLost, match=r"restarted after the time limit.*instantiate again"):
            kept.call("bump")
    else:
        assert kept.call("bump") == 2
    kept.close()
    with traps.instantiate(spec) as fresh:
        assert fresh.call("div0", 1) == 1


# What engines say when a module needs more memory to start than max_memory allows (wasm3 and wasmer: "the
# module's initial memory (N MiB) is over the limit").
TOO_BIG_TO_START = {
    "node": "to start",
    "jsc": "to start",
    "spidermonkey": "to start",
    "wasmtime": "needs more linear memory than",
}


@over("exports", "max_memory")
def test_memory_bomb_is_stopped(spec: str, bomb: Module, malloc_bomb: Module, values: Module) -> None:
    # the module's memory maximum is lowered to max_memory: memory.grow fails at the cap, on every engine
    assert bomb.run(spec, "grow_only", max_memory=8 << 20).result == 128
    assert bomb.run(spec, "grow_only", max_memory=64 << 20).result == 1024
    started = time.monotonic()
    result = bomb.run(spec, "bomb", max_memory=64 << 20, check=False)
    elapsed = time.monotonic() - started
    assert result.error_kind == "limit:memory", result
    assert "memory.grow failed" in result.error and "max_memory" in result.error
    if spec == "node":  # the one engine whose bomb was timed before (no new timed assertions)
        assert elapsed < 5
    with pytest.raises(LimitExceeded, match="memory"):
        bomb.run(spec, "bomb", max_memory=32 << 20)
    mib = malloc_bomb.run(spec, "bomb", max_memory=16 << 20).result
    assert 4 <= mib < 16  # malloc returned NULL at the cap
    too_big = wat('(module (memory (export "memory") 600) (func (export "f")))')  # 37.5 MiB to start
    message = TOO_BIG_TO_START.get(spec.partition(":")[0], r"initial memory \(37 MiB\) is over")
    with pytest.raises(LimitExceeded, match=message) as info:
        too_big.run(spec, "f", max_memory=32 << 20)
    assert info.value.limit == "memory" and "raise max_memory=" in str(info.value)
    assert values.run(spec, "add", (1, 2)).result == 3


@over("exports", "instances", "max_memory")
def test_instance_memory_limit(spec: str, bomb: Module) -> None:
    with bomb.instantiate(spec, max_memory=32 << 20) as inst:
        assert inst.call("grow", 8) == 1  # 1 -> 9 pages
        assert inst.call("grow", 1000) == -1  # would pass 32 MiB: memory.grow fails
        assert inst.memory_size() == 9 * 65536
        assert inst.call("grow_only") == 512
        with pytest.raises(LimitExceeded) as info:
            inst.call("bomb")
        assert info.value.limit == "memory"
        assert inst.memory_size() == 32 << 20 and inst.call("size") == 512  # still usable
    with pytest.raises(LimitExceeded) as info:
        wat("(module (memory 600))").instantiate(spec, max_memory=32 << 20)
    assert info.value.limit == "memory"


@over("exports", "max_memory", variants=False, workers_only=True)
def test_resident_memory_cap_is_the_safety_net(spec: str, bomb: Module, values: Module) -> None:
    """Without the lowered memory maximum (a raw request to the worker), only the worker's RSS cap stops the
    bomb: the worker is killed. (wasmtime runs guests in this process: its store limit is the only cap.)"""
    runtime = get_runtime(spec)
    message = {"op": "run", "sha": bomb.sha256, "invoke": "bomb", "args": [], "max_output": 1000}
    # the protocols differ: node's worker reads no memory cap from a run request, the Python workers do
    if spec != "node":
        message["max_memory"] = None
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        runtime.request(message, module=bomb, timeout=20, max_memory=64 << 20)
    assert info.value.limit == "memory" and "worker memory passed" in str(info.value)
    assert time.monotonic() - started < 10
    assert values.run(spec, "add", (1, 2)).result == 3


@over("exports", "timeout", variants=False)
def test_keyboard_interrupt_stops_the_guest(spec: str, traps: Module, values: Module) -> None:
    previous = signal.getsignal(signal.SIGINT)  # wasmtime swaps in its own handler while a guest runs
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            traps.run(spec, "spin", timeout=30)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    # bound as the per-engine tests had it (wasmtime's own test bounds it more tightly)
    assert time.monotonic() - started < 3
    assert values.run(spec, "add", (2, 3)).result == 5


# ---------------------------------------------------------------------------------------------- instances


# What engines say about a read past the end of memory (wasm3 and wasmer: "outside memory of N bytes").
OUTSIDE = {
    "node": "outside the 65536-byte memory",
    "jsc": "outside the 65536-byte memory",
    "spidermonkey": "outside the 65536-byte memory",
    "wasmtime": "outside linear memory",
}


@over("exports", "instances", "memory")
def test_instance_state_and_memory(spec: str, state: Module) -> None:
    with state.instantiate(spec) as inst:
        assert [inst.call("bump") for _ in range(3)] == [1, 2, 3]
        functions = ["bump", "sum", "fill", "store"]
        # the Python workers (wasm3, wasmer) list exported functions; node and wasmtime every export, in order
        python_worker = spec.partition(":")[0] in ("wasm3", "wasmer")
        assert inst.export_names() == (functions if python_worker else ["memory", *functions])
        assert inst.memory_size() == 65536
        inst.write_memory(100, bytes([1, 2, 3, 250]))
        assert inst.read_memory(99, 6) == bytes([0, 1, 2, 3, 250, 0])
        assert inst.call("sum", 100, 4) == 256
        inst.call("fill", 200, 3)
        assert inst.read_memory(199, 5) == b"\0AAA\0"
        assert inst.last_timings["call"] >= 0
        with pytest.raises(UsageError, match=OUTSIDE.get(spec.partition(":")[0], "outside memory of 65536 bytes")):
            inst.read_memory(65530, 10)
        # the views every Instance has, over read_memory/write_memory
        assert inst.read_cstring(16) == "hello"
        before = inst.snapshot()
        assert len(before) == 65536
        inst.call("store", 400, 0x01020304)
        inst.write_memory(500, b"\xff\xfe")
        inst.write_array(600, [1.5, -2.0], "f64")
        assert inst.read_array(400, 1, "u32") == [0x01020304]
        assert inst.read_array(400, 4, "u8") == [4, 3, 2, 1]
        assert inst.read_array(600, 2, "f64") == [1.5, -2.0]
        assert inst.read_memory(500, 2) == b"\xff\xfe"
        changes = inst.diff_memory(before, inst.snapshot())
        assert [start for start, _, _ in changes] == [400, 500, 606, 615]  # f64 1.5 and -2.0: high bytes only
        assert changes[0] == (400, b"\0\0\0\0", b"\x04\x03\x02\x01")
    with pytest.raises(UsageError, match="closed"):
        inst.call("bump")
    other = state.instantiate(spec)  # a second instance starts from scratch
    assert other.call("bump") == 1
    other.close()
    other.close()  # idempotent
    with pytest.raises(UsageError, match="closed"):
        other.call("bump")


# ----------------------------------------------------------------------------------------- builtin host


@over("exports", "instances", "builtin_host")
def test_builtin_host_module(spec: str, host: Module) -> None:
    runtime = wasmlab.runtimes.get_runtime(spec)
    runtime.kv_clear()
    assert runtime.kv_items() == {}
    result = host.run(spec, "hello")
    assert result.ok and result.stderr == b"hello from wasm\n"
    assert host.run(spec, "now").result > 0
    assert 0 <= host.run(spec, "random").result < 1
    assert [host.run(spec, "visit").result for _ in range(3)] == [1, 2, 3]  # the store outlives instances
    with host.instantiate(spec) as inst:
        assert inst.call("visit") == 4
        inst.call("hello")
        assert inst.stderr == b"hello from wasm\n"
        t1 = inst.call("now")
        assert inst.call("now") >= t1  # monotonic
        assert 0.0 <= inst.call("random") < 1.0
    assert runtime.kv_items() == {b"visits": b"\x04"}
    with host.instantiate(spec) as inst:
        assert inst.call("get", 32) == -1  # absent
        inst.call("put")
    with host.instantiate(spec) as inst:
        assert inst.call("get", 2) == 8  # the full length; only 2 bytes copied
        assert inst.read_memory(128, 8) == b"hi" + bytes(6)
        assert inst.call("get", 32) == 8 and inst.read_memory(128, 8) == b"hi there"
    assert runtime.kv_items() == {b"visits": b"\x04", b"greeting": b"hi there"}
    runtime.kv_clear()
    assert runtime.kv_items() == {}
    assert host.run(spec, "visit").result == 1
    runtime.kv_clear()
