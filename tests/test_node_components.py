"""Components on node through `jco transpile` (wasmlab.runtimes.node_component): the same results as wasmtime,
and `compare` of a component covers both. A small C component (zig cc + wasm-tools); the JavaScript ones are
in test_toolchain_javascript.py."""

from __future__ import annotations

import pytest

import wasmlab
from wasmlab.errors import RuntimeUnavailable, UsageError
from wasmlab.runtimes import available_runtimes
from wasmlab.runtimes.node_component import unavailable_reason

from .conftest import need_toolchain

WIT = """package demo:calc;

world calc {
  export fib: func(n: u32) -> u32;
  export greet: func(name: string) -> string;
}
"""
SOURCE = """#include <stdint.h>
#include <stdlib.h>
#include <string.h>

__attribute__((export_name("fib"))) uint32_t fib(uint32_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t size) { return realloc(old, size); }

static uint32_t answer[2];  // a string result: (pointer, length), returned through memory

__attribute__((export_name("greet"))) uint32_t *greet(const char *name, uint32_t length) {
    char *out = malloc(length + 6);
    memcpy(out, "hello ", 6);
    memcpy(out + 6, name, length);
    answer[0] = (uint32_t)(uintptr_t)out;
    answer[1] = length + 6;
    return answer;
}
"""


@pytest.fixture(scope="module")
def calc() -> wasmlab.Module:
    if "node" not in available_runtimes(["node"], note=False) or unavailable_reason():
        pytest.skip(unavailable_reason() or "node is not available")
    need_toolchain("c")
    return wasmlab.compile(SOURCE, "c", wit=WIT, name="calc")


def test_a_c_component_gives_the_same_results_on_node(calc: wasmlab.Module) -> None:
    assert calc.is_component
    for name, args in [("fib", (20,)), ("greet", ("edge",))]:
        assert calc.run("node", name, args).result == calc.run("wasmtime", name, args).result
    assert calc.run("node", "greet", ("edge",)).result == "hello edge"


def test_compare_of_a_component_covers_wasmtime_and_node(calc: wasmlab.Module) -> None:
    comparison = wasmlab.compare(calc, "fib", (15,), runtimes=["wasmtime", "node"], repeat=1)
    assert {r.runtime: r.result for r in comparison.results} == {"wasmtime": 610, "node": 610}
    assert not comparison.skipped


def test_what_node_cannot_do_with_a_component_says_so(calc: wasmlab.Module) -> None:
    with pytest.raises(UsageError, match=r"no function .nope."):
        calc.run("node", "nope", ())
    with pytest.raises(RuntimeUnavailable, match="use run"):
        calc.instantiate("node")
