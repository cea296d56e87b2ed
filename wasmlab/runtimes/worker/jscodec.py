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

__all__ = ["JS_TRAPS", "decode_results", "decode_value", "encode_args", "encode_value", "frame_names", "trap_code"]

# JS engines' trap messages that traps.TRAP_CODES does not know (lower case -> canonical code).
JS_TRAPS = {"remainder by zero": "integer divide by zero"}  # V8


def trap_code(message: str) -> str:
    """The canonical trap code for a JS engine's trap message."""
    text = message.lower()
    for needle, code in JS_TRAPS.items():
        if needle in text:
            return code
    return normalize_trap(message)


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
        offset = frame.get("offset", 0)
        if offset >= shift[0]:
            offset -= shift[1]
        out.append(f"{name} ({offset:#x})")
    return out
