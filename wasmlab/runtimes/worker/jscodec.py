"""The value codecs and trap reading shared by every engine that runs guests through JavaScript's WebAssembly
API: node's worker, the JS shells (JavaScriptCore, SpiderMonkey) and the browser page.

Values travel as JSON: i32/f32/f64 as numbers; i64 as decimal strings (exact: JSON numbers lose bits past
2**53; BigInt on the JS side); NaN, infinities and -0 as {"f": "nan"|"inf"|"-inf"|"-0"}; references as null or
{"ref": description}. Traps travel as the engine's message with frames [{name, index, offset}], innermost first.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ...errors import UsageError, WasmlabError
from ..traps import function_names, normalize_trap
from ..values import coerce_args

if TYPE_CHECKING:
    from ...module import Module

__all__ = [
    "JS_TRAPS",
    "decode_results",
    "decode_value",
    "encode_args",
    "encode_value",
    "frame_names",
    "read_trap",
    "trap_code",
    "trap_codes",
]

MEMORY, TABLE = "out of bounds memory access", "out of bounds table access"
CONVERSION, OVERFLOW = "invalid conversion to integer", "integer overflow"
SIGNATURE = "indirect call type mismatch"

# JS engines' trap messages (lower-case substrings, first match wins) -> the canonical codes they can mean,
# checked before traps.TRAP_CODES. More than one code: the message cannot tell them apart.
JS_TRAPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("null function or function signature mismatch", (TABLE, SIGNATURE)),  # V8: a null entry, or the wrong type
    ("float unrepresentable", (CONVERSION, OVERFLOW)),  # V8: NaN and out-of-range alike
    ("out of bounds trunc", (CONVERSION, OVERFLOW)),  # JavaScriptCore: NaN and out-of-range alike
    ("remainder by zero", ("integer divide by zero",)),  # V8
    ("call_indirect to a null table entry", (TABLE,)),  # JavaScriptCore
    ("out of bounds call_indirect", (TABLE,)),  # JavaScriptCore
    ("signature that does not match", (SIGNATURE,)),  # JavaScriptCore
    ("indirect call to null", (TABLE,)),  # SpiderMonkey
    ("index out of bounds", (MEMORY, TABLE)),  # SpiderMonkey: memory and table accesses alike
    ("unreachable code should not be executed", ("unreachable",)),  # JavaScriptCore
    ("too much recursion", ("stack overflow",)),  # SpiderMonkey
    ("invalid data segment initialization", (MEMORY,)),  # JavaScriptCore: a data segment past the memory
    ("out of bounds table index", (TABLE,)),  # JavaScriptCore: an element segment past the table
)

# Instructions that access a table or a memory (first opcode byte; 0xFC: the second byte), to tell
# SpiderMonkey's "index out of bounds" apart from the instruction at the trapping offset.
_TABLE_OPS = {0x11, 0x13, 0x25, 0x26}  # call_indirect, return_call_indirect, table.get, table.set
_TABLE_FC = {0x0C, 0x0E, 0x0F, 0x10, 0x11}  # table.init, table.copy, table.grow, table.size, table.fill
_MEMORY_FC = {0x08, 0x0A, 0x0B}  # memory.init, memory.copy, memory.fill


def _accessed(module: Module, offset: int) -> str | None:
    """Which store the instruction at `offset` of the module's bytes accesses: MEMORY, TABLE or None."""
    data = module.bytes
    if not 0 <= offset < len(data):
        return None
    op = data[offset]
    second = data[offset + 1] if offset + 1 < len(data) else -1
    if op in _TABLE_OPS or (op == 0xFC and second in _TABLE_FC):
        return TABLE
    if 0x28 <= op <= 0x3E or op in (0xFD, 0xFE) or (op == 0xFC and second in _MEMORY_FC):
        return MEMORY  # loads, stores, SIMD and atomic memory instructions, bulk memory
    return None


def trap_codes(message: str, module: Module | None = None, offset: int | None = None) -> tuple[str, ...]:
    """The canonical trap codes a JS engine's trap message can mean: one, or several when the engine's message
    cannot tell them apart. `offset` (of the innermost frame, in `module`'s bytes) settles a memory-or-table
    message by the instruction there."""
    text = message.lower()
    codes = next((codes for needle, codes in JS_TRAPS if needle in text), None) or (normalize_trap(message),)
    if set(codes) == {MEMORY, TABLE} and module is not None and offset is not None:
        accessed = _accessed(module, offset)
        codes = (accessed,) if accessed else codes
    return codes


def trap_code(message: str, module: Module | None = None, offset: int | None = None) -> str:
    """The canonical trap code for a JS engine's trap message; when the message fits several codes, all of them
    joined by " or " (never one picked): e.g. "invalid conversion to integer or integer overflow"."""
    return " or ".join(trap_codes(message, module, offset))


def read_trap(
    module: Module, answer: dict[str, Any], shift: tuple[int, int] = (0, 0)
) -> tuple[tuple[str, ...], list[str]]:
    """(candidate codes, frames) of a worker's trap answer; `shift` as in `frame_names`."""
    raw = answer.get("frames") or []
    offset = raw[0].get("offset") if raw and isinstance(raw[0], dict) else None
    if offset is not None and offset >= shift[0]:
        offset -= shift[1]
    return trap_codes(str(answer["trap"]), module, offset), frame_names(module, raw, shift)


def encode_value(value: Any, valtype: str) -> Any:
    """A Python argument as the worker expects it for a parameter of `valtype`."""
    if valtype == "i32":
        v = int(value) & 0xFFFFFFFF
        return v - (1 << 32) if v >= 1 << 31 else v
    if valtype == "i64":
        return str(int(value))  # exact: JSON numbers lose bits past 2**53
    if valtype in ("f32", "f64"):
        f = float(value)
        if math.isnan(f):
            return {"f": "nan"}
        if math.isinf(f):
            return {"f": "inf" if f > 0 else "-inf"}
        if f == 0 and math.copysign(1.0, f) < 0:
            return {"f": "-0"}
        return f
    if value is None:  # a null reference
        return None
    raise UsageError(f"a JS engine cannot pass {value!r} as a {valtype} argument: only numbers and null references")


_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "-0": -0.0}


def decode_value(value: Any, valtype: str) -> Any:
    if isinstance(value, dict):
        if "f" in value:
            return _FLOATS[value["f"]]
        return value.get("ref")
    if valtype in ("f32", "f64") and value is not None:
        return float(value)
    if valtype in ("i32", "i64") and value is not None:
        return int(value)
    return value


def decode_results(value: Any, results: tuple[str, ...]) -> Any:
    if not results:
        return None
    if len(results) == 1:
        return decode_value(value, results[0])
    return tuple(decode_value(v, t) for v, t in zip(value, results, strict=True))


def encode_args(module: Module, name: str, args: tuple[Any, ...]) -> tuple[list[Any], tuple[str, ...]]:
    """(arguments for the worker, result types) for a call of export `name`; UsageError on a wrong count."""
    ftype = module.func_type(name)
    values = coerce_args(name, ftype.params, args)
    return [encode_value(a, t) for a, t in zip(values, ftype.params, strict=True)], ftype.results


def frame_names(module: Module, frames: list[dict[str, Any]], shift: tuple[int, int] = (0, 0)) -> list[str]:
    """Worker frames -> 'func_name (0xOFFSET)', innermost first; names from the JS engine, else the name section,
    else the export name, else func[N] (as wasmtime). `shift` (boundary, delta): offsets past `boundary` come from
    a copy of the module `delta` bytes longer (see `jsshell.cap_memories`) and are mapped back to the module's own
    bytes."""
    names = function_names(module)
    try:
        prefix = f"{module.parsed.module_name}." if module.parsed.module_name else ""
    except WasmlabError:
        prefix = ""
    out = []
    for frame in frames:
        index = frame.get("index")
        name = frame.get("name") or (names.get(index) if isinstance(index, int) else None) or f"func[{index}]"
        if prefix and name.startswith(prefix):  # V8 writes "module.function" when the module has a name
            name = name[len(prefix) :]
        offset = frame.get("offset")
        if offset is None:  # JavaScriptCore's frames have no code offsets
            out.append(name)
            continue
        if offset >= shift[0]:
            offset -= shift[1]
        out.append(f"{name} ({offset:#x})")
    return out
