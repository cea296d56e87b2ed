"""The node (V8) runtime: real node, real modules (WAT and compiled snippets), no mocks. What node shares with
the other engines (values, traps, limits, WASI, instances, the built-in host module) is in test_conformance.py;
here: its registry entry, its tiers, V8's messages, compilers only node is tested with, and measurements."""

from __future__ import annotations

import os
import statistics
import time

import pytest

import wasmlab
from wasmlab.errors import ToolchainUnavailable
from wasmlab.module import Module
from wasmlab.runtimes import get_runtime
from wasmlab.runtimes.node import NodeRuntime, trap_code

from .test_conformance import FIB_C, VALUES_WAT

pytestmark = pytest.mark.skipif(
    NodeRuntime().unavailable_reason() is not None, reason=f"node: {NodeRuntime().unavailable_reason()}"
)


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


# --------------------------------------------------------------------------------------------- identity


def test_registry_and_version(node: NodeRuntime) -> None:
    assert node.name == "node" and node.variants == ("default", "liftoff", "turbofan")
    assert node.version().startswith("node v") and "(V8 " in node.version()
    assert {"exports", "wasi", "memory", "instances", "timeout", "max_memory", "builtin_host"} <= node.capabilities
    assert "fuel" not in node.capabilities and "host_functions" not in node.capabilities
    assert get_runtime("node:turbofan").label == "node:turbofan"


# --------------------------------------------------------------------------------------- compiled code


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


# ------------------------------------------------------------------------------------------------ traps


def test_v8_trap_messages() -> None:
    assert trap_code("RuntimeError: remainder by zero") == "integer divide by zero"
    assert trap_code("Maximum call stack size exceeded") == "stack overflow"
    # NaN and overflow alike: both codes, never one picked (tests/test_js_traps.py runs the real traps)
    assert trap_code("float unrepresentable in integer range") == "invalid conversion to integer or integer overflow"
    assert trap_code("divide result unrepresentable") == "integer overflow"
    assert trap_code("table index is out of bounds") == "out of bounds table access"


# ---------------------------------------------------------------------------------------------- instances


def test_large_memory_transfer() -> None:
    data = os.urandom(8 << 20)
    with wat('(module (memory (export "memory") 256))').instantiate("node") as inst:
        started = time.monotonic()
        inst.write_memory(1000, data)
        assert inst.read_memory(1000, len(data)) == data
        assert time.monotonic() - started < 3


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
