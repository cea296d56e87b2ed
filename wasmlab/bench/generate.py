"""Generated Wasm modules of a chosen size, for compile-time scaling: many functions of integer arithmetic with
locals, a loop and a branch each, all reachable through a table, with one leaf exported as `f0`."""

from __future__ import annotations

from functools import cache

UNIT = """    local.get 1 i32.const {a} i32.mul local.get 0 i32.xor local.set 1
    local.get 2 local.get 1 i32.const {b} i32.rotl i32.add local.set 2
"""


def _function(i: int, units: int) -> str:
    body = "".join(UNIT.format(a=(i * 31 + u * 7) % 1000 + 3, b=(i + u) % 31 + 1) for u in range(units))
    return (
        f"  (func $f{i} (param i32) (result i32) (local i32 i32 i32)\n"
        f"    local.get 0 i32.const {i + 1} i32.add local.set 1\n"
        "    i32.const 4 local.set 3\n"
        f"    (loop\n{body}"
        "      local.get 3 i32.const 1 i32.sub local.tee 3 br_if 0)\n"
        "    local.get 2 local.get 1 i32.add)\n"
    )


@cache
def module_bytes(target_bytes: int, units: int = 24) -> bytes:
    """A valid module of about `target_bytes` (within a few %): as many functions as it takes."""
    import wasmtime

    one = len(wasmtime.wat2wasm(_wat(1, units)))
    two = len(wasmtime.wat2wasm(_wat(2, units)))
    per = max(1, two - one)
    count = max(1, round((target_bytes - (one - per)) / per))
    return bytes(wasmtime.wat2wasm(_wat(count, units)))


def _wat(count: int, units: int) -> str:
    funcs = "".join(_function(i, units) for i in range(count))
    refs = " ".join(f"$f{i}" for i in range(count))
    return f'(module\n{funcs}  (table {count} funcref)\n  (elem (i32.const 0) {refs})\n  (export "f0" (func $f0)))\n'
