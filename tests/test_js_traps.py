"""Trap codes from the JavaScript engines (node's V8, JavaScriptCore, SpiderMonkey; the browser page uses the
same mapping, `worker.jscodec`): every trap gets a canonical code, the same as wasmtime's where the engine's
message says enough, and where it cannot tell two codes apart the result says so (`trap_candidates`, `trap`
joins them with " or ") instead of picking one. Real engines, real traps."""

from __future__ import annotations

import pytest

import wasmlab
from wasmlab.errors import Trap
from wasmlab.module import Module
from wasmlab.runtimes import get_runtime, list_runtimes
from wasmlab.runtimes.worker.jscodec import trap_codes

TRAPS_WAT = """
(module
  (memory (export "memory") 1)
  (type $t (func (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $other)
  (func $other)
  (func (export "nan") (result i32) (i32.trunc_f32_s (f32.const nan)))
  (func (export "big") (result i32) (i32.trunc_f64_u (f64.const 1e30)))
  (func (export "overflow") (result i32) (i32.div_s (i32.const 0x80000000) (i32.const -1)))
  (func (export "null_entry") (result i32) (call_indirect (type $t) (i32.const 0) (i32.const 1)))
  (func (export "wrong_type") (result i32) (call_indirect (type $t) (i32.const 0) (i32.const 0)))
  (func (export "past_table") (result i32) (call_indirect (type $t) (i32.const 0) (i32.const 9)))
  (func (export "table_copy") (table.copy (i32.const 0) (i32.const 1) (i32.const 5)))
  (func (export "table_init") (table.init 0 (i32.const 0) (i32.const 0) (i32.const 5)))
  (func (export "memory_fill") (memory.fill (i32.const 65530) (i32.const 0) (i32.const 100)))
  (func (export "load") (result i32) (i32.load (i32.const 70000)))
)
"""
MEMORY, TABLE = "out of bounds memory access", "out of bounds table access"
CONVERSION, OVERFLOW, SIGNATURE = "invalid conversion to integer", "integer overflow", "indirect call type mismatch"

# What each engine's messages allow, per trap: one code, or the candidates it cannot tell apart.
EXPECTED = {
    "wasmtime": {"nan": CONVERSION, "big": OVERFLOW, "null_entry": TABLE, "wrong_type": SIGNATURE},
    "spidermonkey": {"nan": CONVERSION, "big": OVERFLOW, "null_entry": TABLE, "wrong_type": SIGNATURE},
    "jsc": {"nan": (CONVERSION, OVERFLOW), "big": (CONVERSION, OVERFLOW), "null_entry": TABLE, "wrong_type": SIGNATURE},
    "node": {
        "nan": (CONVERSION, OVERFLOW),  # "float unrepresentable in integer range"
        "big": (CONVERSION, OVERFLOW),
        "null_entry": (TABLE, SIGNATURE),  # "null function or function signature mismatch"
        "wrong_type": (TABLE, SIGNATURE),
    },
}
SAME_EVERYWHERE = {
    "overflow": OVERFLOW,
    "past_table": TABLE,
    "table_copy": TABLE,
    "table_init": TABLE,
    "memory_fill": MEMORY,
    "load": MEMORY,
}
ROWS = {row.name: row for row in list_runtimes()}


def engine(name: str):
    row = ROWS.get(name.partition(":")[0])
    reason = f"{name} unavailable: {row.reason}" if row and not row.available else None
    return pytest.param(name, id=name, marks=[pytest.mark.skip(reason=reason)] if reason else [])


@pytest.fixture(scope="module")
def traps() -> Module:
    return wasmlab.compile(TRAPS_WAT, lang="wat")


@pytest.mark.parametrize(
    "spec", [engine(n) for n in ("wasmtime", "node", "jsc", "jsc:ipint", "spidermonkey", "spidermonkey:ion")]
)
def test_every_trap_gets_a_code_or_says_it_cannot_tell(spec: str, traps: Module) -> None:
    expected = {**SAME_EVERYWHERE, **EXPECTED[spec.partition(":")[0]]}
    for name, want in expected.items():
        result = traps.run(spec, name, check=False)
        candidates = list(want) if isinstance(want, tuple) else [want]
        assert result.trap_candidates == candidates, (name, result.trap, result.trap_candidates)
        assert result.trap == " or ".join(candidates) and result.trap_ambiguous == (len(candidates) > 1)
        assert result.to_dict()["trap_candidates"] == candidates
    with pytest.raises(Trap) as info:  # a raised trap carries the same
        traps.run(spec, "nan")
    told_apart = spec.startswith(("wasmtime", "spidermonkey"))
    assert info.value.candidates == ([CONVERSION] if told_apart else [CONVERSION, OVERFLOW])
    if "instances" in get_runtime(spec).capabilities:
        with traps.instantiate(spec) as inst, pytest.raises(Trap) as info:
            inst.call("table_init")
        assert info.value.code == TABLE and not info.value.ambiguous


def test_spidermonkey_index_out_of_bounds_is_read_from_the_instruction(traps: Module) -> None:
    """SpiderMonkey says "index out of bounds" for memory and table alike: the instruction at the trapping
    offset settles it; without an offset (or at an instruction that is neither) both codes stay."""
    assert trap_codes("index out of bounds") == (MEMORY, TABLE)
    load = traps.bytes.index(bytes([0x41, 0xF0, 0xA2, 0x04, 0x28]))  # i32.const 70000; i32.load
    assert trap_codes("index out of bounds", traps, load + 4) == (MEMORY,)
    copy = traps.bytes.index(bytes([0xFC, 0x0E]))
    assert trap_codes("index out of bounds", traps, copy) == (TABLE,)
    assert trap_codes("index out of bounds", traps, 0) == (MEMORY, TABLE)


SEGMENTS_WAT = {  # traps while instantiating: an active segment past the end of its memory or table
    MEMORY: '(module (memory 1) (data (i32.const 70000) "x"))',
    TABLE: "(module (table 1 funcref) (func $f) (elem (i32.const 5) $f))",
}


@pytest.mark.parametrize("spec", [engine(n) for n in ("wasmtime", "node", "jsc", "spidermonkey")])
@pytest.mark.parametrize("code", SEGMENTS_WAT)
def test_a_segment_out_of_bounds_at_instantiation_gets_its_code(spec: str, code: str) -> None:
    module = wasmlab.compile(SEGMENTS_WAT[code], lang="wat")
    with pytest.raises(Trap) as info:
        module.instantiate(spec).close()
    # SpiderMonkey says "index out of bounds" for both, and no instruction is trapping: it says it cannot tell
    assert info.value.candidates == ([MEMORY, TABLE] if spec == "spidermonkey" else [code]), str(info.value)


def test_messages_of_every_js_engine() -> None:
    assert trap_codes("too much recursion") == ("stack overflow",)  # SpiderMonkey
    assert trap_codes("Maximum call stack size exceeded.") == ("stack overflow",)  # V8, JavaScriptCore
    assert trap_codes("Unreachable code should not be executed") == ("unreachable",)  # JavaScriptCore
    assert trap_codes("Out of bounds Trunc operation") == (CONVERSION, OVERFLOW)  # JavaScriptCore
    assert trap_codes("indirect call to null") == (TABLE,)  # SpiderMonkey
    assert trap_codes("something new") == ("trap",)
