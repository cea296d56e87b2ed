"""The wasmtime backend, for real: wasmtime-py, modules built by wasmlab.compile (WAT, C through zig). What
wasmtime shares with the other engines (values, traps, limits, WASI, instances, the built-in host module) is in
test_conformance.py; here: the in-process fast paths, fuel, host functions, components, variants, artefacts."""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time

import pytest

import wasmlab
from wasmlab.errors import ExitTrap, LimitExceeded, Trap, UsageError
from wasmlab.module import Module
from wasmlab.runtimes import RunOptions, get_runtime
from wasmlab.runtimes import run as registry_run
from wasmlab.runtimes.views import diff_memory
from wasmlab.runtimes.wasmtime import WasmtimeRuntime

from .snippets import FIB_C

wasmtime = pytest.importorskip("wasmtime")

WAT = r"""
(module
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "add64") (param i64 i64) (result i64) local.get 0 local.get 1 i64.add)
  (func (export "scale") (param f64 f32) (result f64) local.get 0 local.get 1 f64.promote_f32 f64.mul)
  (func (export "half") (param f32) (result f32) local.get 0 f32.const 0.5 f32.mul)
  (func (export "swap") (param i32 i64) (result i64 i32) local.get 1 local.get 0)
  (func (export "noop"))
  (func $inner (unreachable))
  (func (export "outer") call $inner)
  (func (export "div") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
  (func (export "spin") (loop br 0))
  (func (export "is_null") (param externref) (result i32) local.get 0 ref.is_null)
)
"""

HOST_WAT = r"""
(module
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (import "env" "halve" (func $halve (param f64) (result f64)))
  (import "env" "fail" (func $fail))
  (import "wasmlab" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "logged line")
  (func (export "use_twice") (param i32) (result i32) local.get 0 call $twice i32.const 1 i32.add)
  (func (export "use_halve") (param f64) (result f64) local.get 0 call $halve)
  (func (export "use_fail") call $fail)
  (func (export "log") i32.const 32 i32.const 11 call $log)
)
"""

COMMAND_C = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    printf("argc=%d argv0=%s", argc, argv[0]);
    for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    const char *g = getenv("GREETING");
    printf("env=%s\n", g ? g : "(none)");
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, stdin);
    buf[n] = 0;
    printf("stdin=%s\n", buf);
    fprintf(stderr, "to stderr\n");
    return argc > 1 ? atoi(argv[1]) : 0;
}
"""

CAT_C = r"""
#include <stdio.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "r");
        if (!f) { printf("%s: denied\n", argv[i]); continue; }
        char b[128];
        size_t n = fread(b, 1, sizeof b - 1, f);
        b[n] = 0;
        printf("%s: %s\n", argv[i], b);
        fclose(f);
    }
    return 0;
}
"""


COMPONENT_WAT = r"""
(component
  (core module $m
    (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
    (func (export "run") (result i32) i32.const 0)
    (func (export "spin") (loop br 0)))
  (core instance $i (instantiate $m))
  (func (export "add") (param "a" s32) (param "b" s32) (result s32) (canon lift (core func $i "add")))
  (func (export "spin") (canon lift (core func $i "spin")))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli))
)
"""


# A command component that prints through wasi:cli/stdout (what wasm-tools prints for componentize-py's
# imports, cut down to the one method it uses).
PRINTING_COMPONENT_WAT = r"""
(component
  (type $err_i (instance (export "error" (type (sub resource)))))
  (import "wasi:io/error@0.2.0" (instance $err (type $err_i)))
  (alias export $err "error" (type $error))
  (type $streams_i (instance
    (export "output-stream" (type (sub resource)))
    (alias outer 1 $error (type))
    (export "error" (type (eq 1)))
    (type (own 2))
    (type (variant (case "last-operation-failed" 3) (case "closed")))
    (export "stream-error" (type (eq 4)))
    (type (borrow 0))
    (type (list u8))
    (type (result (error 5)))
    (type (func (param "self" 6) (param "contents" 7) (result 8)))
    (export "[method]output-stream.blocking-write-and-flush" (func (type 9)))))
  (import "wasi:io/streams@0.2.0" (instance $streams (type $streams_i)))
  (alias export $streams "output-stream" (type $ostream))
  (type $stdout_i (instance
    (alias outer 1 $ostream (type))
    (export "output-stream" (type (eq 0)))
    (type (own 1))
    (type (func (result 2)))
    (export "get-stdout" (func (type 3)))))
  (import "wasi:cli/stdout@0.2.0" (instance $stdout (type $stdout_i)))
  (core module $mem (memory (export "memory") 1))
  (core instance $memi (instantiate $mem))
  (alias core export $memi "memory" (core memory $m))
  (alias export $stdout "get-stdout" (func $get_stdout_f))
  (alias export $streams "[method]output-stream.blocking-write-and-flush" (func $write_f))
  (core func $get_stdout (canon lower (func $get_stdout_f)))
  (core func $write (canon lower (func $write_f) (memory $m)))
  (core module $main
    (import "host" "get-stdout" (func $get (result i32)))
    (import "host" "write" (func $write (param i32 i32 i32 i32)))
    (import "host" "memory" (memory 1))
    (data (i32.const 16) "hello from a component\n")
    (func (export "run") (result i32)
      (call $write (call $get) (i32.const 16) (i32.const 23) (i32.const 64))
      i32.const 0))
  (core instance $maini (instantiate $main
    (with "host" (instance
      (export "get-stdout" (func $get_stdout))
      (export "write" (func $write))
      (export "memory" (memory $m))))))
  (func $run (result (result)) (canon lift (core func $maini "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli))
)
"""


@pytest.fixture(scope="module")
def rt() -> WasmtimeRuntime:
    runtime = WasmtimeRuntime()
    assert runtime.unavailable_reason() is None
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def wat() -> Module:
    return wasmlab.compile(WAT, lang="wat", name="lab")


@pytest.fixture(scope="module")
def inst(rt: WasmtimeRuntime, wat: Module):
    instance = rt.instantiate(wat, RunOptions(timeout=5))
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def fib() -> Module:
    return wasmlab.compile(FIB_C, lang="c", name="fib")


@pytest.fixture(scope="module")
def command() -> Module:
    return wasmlab.compile(COMMAND_C, lang="c", kind="command", name="hello")


def opts(**kw) -> RunOptions:
    return RunOptions(**kw)


# ----------------------------------------------------------------------------------------------- basics


def test_identity(rt: WasmtimeRuntime) -> None:
    assert rt.name == "wasmtime" and rt.variant == "cranelift"
    assert rt.version().startswith("wasmtime ")
    assert {"fuel", "timeout", "components", "builtin_host", "host_functions"} <= rt.capabilities
    assert get_runtime("wasmtime").unavailable_reason() is None


def test_unknown_variant() -> None:
    with pytest.raises(UsageError, match="no variant"):
        WasmtimeRuntime("v8")


def test_number_exports(inst) -> None:
    assert inst.call("add", 2, 3) == 5
    assert inst.call("add", 0x7FFFFFFF, 1) == -(1 << 31)  # i32 wraps, results are signed
    assert inst.call("add", 0xFFFFFFFF, 1) == 0  # unsigned spelling of -1 is accepted
    assert inst.call("add64", 1 << 62, 1 << 62) == -(1 << 63)
    assert inst.call("add64", (1 << 64) - 1, 2) == 1
    assert inst.call("scale", 1.5, 2) == 3.0  # an int for an f32 parameter is fine
    assert inst.call("half", 3.0) == 1.5
    assert inst.call("swap", 7, 1 << 40) == (1 << 40, 7)
    assert inst.call("noop") is None
    assert inst.exports.add(20, 22) == 42
    assert inst.exports["add64"](1, 2) == 3
    assert "add" in dir(inst.exports)


def test_bad_arguments(inst) -> None:
    with pytest.raises(UsageError, match="takes 2 argument"):
        inst.call("add", 1)
    with pytest.raises(UsageError, match="float"):
        inst.call("add", 1.5, 2)
    with pytest.raises(UsageError, match="does not fit"):
        inst.call("add", 1 << 40, 2)
    with pytest.raises(UsageError, match="exports no function"):
        inst.call("nope")
    with pytest.raises(AttributeError):
        inst.exports.nope  # noqa: B018


def test_non_numeric_signature_takes_the_slow_path(inst) -> None:
    assert inst.call("is_null", None) == 1
    assert inst.call("is_null", "anything") == 0


def test_run_invoke_with_timings(rt: WasmtimeRuntime, wat: Module) -> None:
    first = WasmtimeRuntime()
    result = first.run(wat, opts(invoke="add", args=(40, 2)))
    assert result.ok and result.result == 42 and result.exit_code is None
    assert set(result.timings) == {"compile", "instantiate", "call"}
    assert result.timings["compile"] > 0
    again = first.run(wat, opts(invoke="add", args=(1, 2)))
    assert again.timings["compile"] == 0.0  # cached: no compile in this run
    assert first.compiled_ms[wat.sha256] == result.timings["compile"]
    first.close()


def test_registry_and_module_api(fib: Module, wat: Module) -> None:
    assert fib.run("wasmtime", "fib", (10,)).result == 55
    with pytest.raises(Trap) as info:
        wat.run("wasmtime", "div", (1, 0))
    assert info.value.code == "integer divide by zero"
    result = registry_run(wat, "wasmtime", opts(invoke="spin", timeout=0.2), check=False)
    assert result.error_kind == "limit:time"


# ----------------------------------------------------------------------------------------------- WASI


def test_wasi_command(rt: WasmtimeRuntime, command: Module) -> None:
    result = rt.run(command, opts(argv=("3", "x y"), env={"GREETING": "hej"}, stdin=b"from stdin"))
    assert result.stdout.decode().splitlines() == [
        "argc=3 argv0=hello 3 x y",
        "env=hej",
        "stdin=from stdin",
    ]
    assert result.stderr == b"to stderr\n"
    assert result.exit_code == 3 and not result.ok
    assert "run" in result.timings and "call" not in result.timings
    ok = rt.run(command, opts())
    assert ok.exit_code == 0 and ok.ok and b"env=(none)" in ok.stdout


def test_preopened_dir(rt: WasmtimeRuntime, tmp_path) -> None:
    (tmp_path / "in.txt").write_text("secret data")
    cat = wasmlab.compile(CAT_C, lang="c", kind="command", name="cat")
    result = rt.run(
        cat, opts(argv=("/data/in.txt", "/etc/hostname", "/data/../../etc/hostname"), dirs={"/data": str(tmp_path)})
    )
    assert result.stdout.decode().splitlines() == [
        "/data/in.txt: secret data",
        "/etc/hostname: denied",
        "/data/../../etc/hostname: denied",
    ]
    with pytest.raises(UsageError, match="not a directory"):
        rt.run(cat, opts(dirs={"/x": str(tmp_path / "missing")}))


# ----------------------------------------------------------------------------------------------- traps


def test_trap_in_run_is_a_result(rt: WasmtimeRuntime, wat: Module) -> None:
    result = rt.run(wat, opts(invoke="outer"))
    assert result.trap == "unreachable" and result.trap_frames[0].startswith("inner")
    with pytest.raises(Trap):
        result.raise_for_error()


def test_dwarf_gives_file_and_line(rt: WasmtimeRuntime) -> None:
    m = wasmlab.compile(
        "int boom(int x) {\n  if (x > 1) __builtin_trap();\n  return x;\n}\n",
        lang="c",
        strip=False,
        opt="O1",
        flags=("-g",),
        name="dwarf",
    )
    result = rt.run(m, opts(invoke="boom", args=(5,)))
    assert result.trap == "unreachable"
    assert ".c:2" in result.trap_frames[0], result.trap_frames


# ----------------------------------------------------------------------------------------------- limits


def test_timeout_stops_a_loop(rt: WasmtimeRuntime, wat: Module) -> None:
    t0 = time.monotonic()
    result = rt.run(wat, opts(invoke="spin", timeout=0.3))
    elapsed = time.monotonic() - t0
    assert result.error_kind == "limit:time" and "timeout=" in result.error
    assert 0.3 <= elapsed < 0.6
    with rt.instantiate(wat, opts(timeout=0.2)) as instance:
        t0 = time.monotonic()
        with pytest.raises(LimitExceeded) as info:
            instance.exports.spin()
        assert info.value.limit == "time" and time.monotonic() - t0 < 0.4
        assert instance.call("add", 2, 2) == 4  # the same instance keeps working
        with pytest.raises(LimitExceeded):
            instance.call("spin")


def test_timeout_in_start_function(rt: WasmtimeRuntime) -> None:
    m = wasmlab.compile('(module (func $s (loop br 0)) (start $s) (func (export "f")))', lang="wat")
    result = rt.run(m, opts(invoke="f", timeout=0.2))
    assert result.error_kind == "limit:time"
    with pytest.raises(LimitExceeded):
        rt.instantiate(m, opts(timeout=0.2))


def test_fuel(rt: WasmtimeRuntime, wat: Module, fib: Module) -> None:
    result = rt.run(wat, opts(invoke="spin", fuel=100_000))
    assert result.error_kind == "limit:fuel" and result.fuel_used == 100_000
    ok = rt.run(fib, opts(invoke="fib", args=(15,), fuel=10_000_000))
    assert ok.ok and ok.result == 610 and 0 < ok.fuel_used < 10_000_000
    again = rt.run(fib, opts(invoke="fib", args=(15,), fuel=10_000_000))
    assert again.fuel_used == ok.fuel_used  # deterministic
    with rt.instantiate(fib, opts(fuel=1_000_000)) as instance:
        assert instance.call("fib", 10) == 55
        small = instance.last_fuel_used
        assert instance.call("fib", 12) == 144 and instance.last_fuel_used > small  # budget per call
        with pytest.raises(LimitExceeded) as info:
            instance.call("fib", 30)
        assert info.value.limit == "fuel"


def test_keyboard_interrupt_stops_the_guest(rt: WasmtimeRuntime, wat: Module) -> None:
    previous = signal.getsignal(signal.SIGINT)
    try:
        with rt.instantiate(wat, opts(timeout=10)) as instance:
            timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
            t0 = time.monotonic()
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                instance.call("spin")
            assert time.monotonic() - t0 < 2.0
            assert instance.call("add", 1, 2) == 3
        timer = threading.Timer(0.3, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
        t0 = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            rt.run(wat, opts(invoke="spin", timeout=10))
        assert time.monotonic() - t0 < 2.0
        with pytest.raises(KeyboardInterrupt):  # outside wasm, Ctrl-C still behaves as usual
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_keyboard_interrupt_in_a_host_function(rt: WasmtimeRuntime) -> None:
    m = wasmlab.compile(HOST_WAT, lang="wat", name="host")
    imports = {"env": {"twice": lambda x: time.sleep(5) or x, "halve": lambda x: x, "fail": lambda: None}}
    previous = signal.getsignal(signal.SIGINT)
    try:
        with rt.instantiate(m, opts(imports=imports)) as instance:
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
            t0 = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                instance.call("use_twice", 1)
            assert time.monotonic() - t0 < 2.0
    finally:
        signal.signal(signal.SIGINT, previous)


# ----------------------------------------------------------------------------------------------- host functions


def test_host_functions(rt: WasmtimeRuntime) -> None:
    m = wasmlab.compile(HOST_WAT, lang="wat", name="host")
    calls = []

    def fail() -> None:
        raise ValueError("boom from Python")

    imports = {"env": {"twice": lambda x: calls.append(x) or x * 2, "halve": lambda x: x / 2, "fail": fail}}
    with rt.instantiate(m, opts(imports=imports)) as instance:
        assert instance.call("use_twice", 20) == 41 and calls == [20]
        assert instance.call("use_halve", 5) == 2.5
        with pytest.raises(Trap) as info:
            instance.call("use_fail")
        assert info.value.code == "host function error"
        assert "env.fail raised ValueError: boom from Python" in str(info.value)
        assert instance.call("use_twice", 1) == 3  # still usable
    result = rt.run(m, opts(invoke="log", imports=imports))  # the built-in host module next to Python's
    assert result.ok and result.stderr == b"logged line\n"


# ----------------------------------------------------------------------------------------------- instances


def test_diff_memory_after_growth() -> None:
    assert diff_memory(b"\0" * 4, b"\0\0\1\0" + b"\0" * 4 + b"\7") == [(2, b"\0", b"\1"), (8, b"\0", b"\7")]
    assert diff_memory(b"abc", b"abc") == []


def test_fast_call_is_fast(inst) -> None:
    add = inst.exports.add
    timings = []
    for _ in range(3000):
        t0 = time.perf_counter()
        add(1, 2)
        timings.append(time.perf_counter() - t0)
    assert statistics.median(timings) < 10e-6  # ~1-2 us here; the bound leaves room for a loaded machine


def test_reinstantiation_is_cheap(rt: WasmtimeRuntime, wat: Module) -> None:
    rt.instantiate(wat, opts()).close()
    samples = []
    for _ in range(200):
        instance = rt.instantiate(wat, opts())
        samples.append(instance.timings["instantiate"])
        instance.close()
    assert statistics.median(samples) < 1.0  # ms; ~0.02 here


# ----------------------------------------------------------------------------------------------- variants


@pytest.mark.parametrize("variant", ["winch", "pulley"])
def test_variants_run_fib(variant: str, fib: Module) -> None:
    runtime = WasmtimeRuntime(variant)
    reason = runtime.unavailable_reason()
    if reason:
        assert variant in reason or "wasmtime" in reason
        pytest.skip(reason)
    assert runtime.label == f"wasmtime:{variant}"
    assert runtime.run(fib, opts(invoke="fib", args=(15,))).result == 610
    runtime.close()


# ----------------------------------------------------------------------------------------------- components


def test_component(rt: WasmtimeRuntime) -> None:
    component = Module(wasmtime.wat2wasm(COMPONENT_WAT), name="comp")
    assert component.is_component
    result = rt.run(component, opts(invoke="add", args=(2, 40)))
    assert result.ok and result.result == 42
    command = rt.run(component, opts())
    assert command.exit_code == 0 and "run" in command.timings
    stopped = rt.run(component, opts(invoke="spin", timeout=0.2))
    assert stopped.error_kind == "limit:time"


QUOTA_COMPONENT_WAT = r"""
(component
  (core module $m
    (func (export "limit") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 60))))
  (core instance $i (instantiate $m))
  (func $limit (param "tier" u32) (result u32) (canon lift (core func $i "limit")))
  (instance $quota (export "limit" (func $limit)))
  (export "wasmlab:edge/quota@0.1.0" (instance $quota))
)
"""


def test_component_interface_functions(rt: WasmtimeRuntime) -> None:
    """Functions inside an exported interface are listed and called as INTERFACE#FUNC (full or short name)."""
    component = Module(wasmtime.wat2wasm(QUOTA_COMPONENT_WAT), name="quota")
    with rt.instantiate(component, opts()) as instance:
        assert instance.export_names() == ["wasmlab:edge/quota@0.1.0", "wasmlab:edge/quota@0.1.0#limit"]
        assert instance.call("wasmlab:edge/quota@0.1.0#limit", 3) == 180
        assert instance.call("quota#limit", 2) == 120
        assert instance.exports["wasmlab:edge/quota@0.1.0#limit"](1) == 60
        with pytest.raises(UsageError, match=r"exports no interface 'billing': it exports wasmlab:edge/quota@0\.1\.0$"):
            instance.call("billing#limit", 1)
        with pytest.raises(UsageError, match="exports no function 'burst'"):
            instance.call("quota#burst", 1)
        with pytest.raises(UsageError, match=r"quota#limit\(tier: u32\) -> u32 cannot take \('gold',\)"):
            instance.call("quota#limit", "gold")
        with pytest.raises(UsageError, match="given 0, expected 1"):
            instance.call("quota#limit")
        assert instance.call("quota#limit", 4) == 240  # still usable
    assert rt.run(component, opts(invoke="quota#limit", args=(5,))).result == 300


def test_component_prints_through_wasi_p2(rt: WasmtimeRuntime) -> None:
    component = Module(wasmtime.wat2wasm(PRINTING_COMPONENT_WAT), name="hello-component")
    result = rt.run(component, opts())
    assert result.exit_code == 0 and result.stdout == b"hello from a component\n"
    with rt.instantiate(component, opts()) as instance:
        assert instance.run_command() == 0
        assert instance.stdout == b"hello from a component\n"


# ----------------------------------------------------------------------------------------------- artefacts


def test_serialize_and_load(rt: WasmtimeRuntime, fib: Module) -> None:
    data = rt.serialize(fib)
    assert isinstance(data, bytes) and len(data) > 100
    fresh = WasmtimeRuntime()
    timings = fresh.load_serialized(fib, data)
    assert timings["deserialize"] >= 0
    result = fresh.run(fib, opts(invoke="fib", args=(12,)))
    assert result.result == 144 and result.timings["compile"] == 0.0
    fresh.close()


def test_exit_trap_from_instance(rt: WasmtimeRuntime, command: Module) -> None:
    with rt.instantiate(command, opts(argv=("4",))) as instance:
        with pytest.raises(ExitTrap) as info:
            instance.call("_start")
        assert info.value.status == 4
