"""Traps as every engine reports them: one canonical code per kind of trap, and backtraces as
"func_name (0xOFFSET)" strings, innermost first, with the same function names on every engine."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..errors import WasmlabError

if TYPE_CHECKING:
    from ..module import Module

__all__ = ["TRAP_CODES", "frame_names", "function_names", "normalize_trap", "parse_frames"]

# Canonical trap codes, and the engine messages that mean them (lower-cased substrings, first match wins).
TRAP_CODES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("stack overflow", ("stack overflow", "call stack exhausted", "maximum call stack", "stack exhausted")),
    ("integer divide by zero", ("divide by zero", "division by zero", "divide-by-zero", "remainder by zero")),
    ("integer overflow", ("integer overflow", "divide result unrepresentable")),
    (
        "invalid conversion to integer",
        ("invalid conversion", "float unrepresentable", "invalid conversion to integer", "integer conversion"),
    ),
    (
        "out of bounds memory access",
        (
            "out of bounds memory",
            "memory access out of bounds",
            "memory out of bounds",
            "heap access out of bounds",
            "out-of-bounds memory",
            "data segment is out of bounds",  # V8, instantiating
            "data segment out of bounds",  # wasm3, loading
        ),
    ),
    (
        "out of bounds table access",
        (
            "undefined element",
            "out of bounds table",
            "table index is out of bounds",
            "table out of bounds",
            "table access out of bounds",
            "uninitialized element",
            "null table element",  # wasm3: call_indirect to a null entry
        ),
    ),
    (
        "indirect call type mismatch",
        ("indirect call type mismatch", "signature mismatch", "indirect call signature", "function signature mismatch"),
    ),
    ("null reference", ("null reference", "null function", "dereferencing a null")),
    ("unreachable", ("unreachable",)),
)


def normalize_trap(message: str) -> str:
    """The canonical trap code for an engine's trap message ("trap" when none matches)."""
    text = message.lower()
    for code, needles in TRAP_CODES:
        if any(n in text for n in needles):
            return code
    return "trap"


_FRAME = re.compile(r"^\s*\d+:\s*(.*)$")


def parse_frames(text: str) -> list[str]:
    """Backtrace lines of the form '  0: 0x1234 - name' from engine messages, innermost first."""
    return [m.group(1).strip() for line in text.splitlines() if (m := _FRAME.match(line))]


def function_names(module: Module, *, exports: bool = True) -> dict[int, str]:
    """Function index -> name: the module's name section, else (with `exports`) the export name, as V8 and
    wasmtime name functions; empty for bytes that do not parse."""
    names: dict[int, str] = {}
    try:
        if exports:
            for export in module.exports:
                if export.kind == "func":
                    names.setdefault(export.index, export.name)
        names.update(module.parsed.function_names)
    except WasmlabError:
        pass
    return names


def frame_names(module: Module, frames: list[Any]) -> list[str]:
    """Frames a worker reports ({"name", "index", "offset"}) -> 'func_name (0xOFFSET)', innermost first. Names
    come from the module's name section (as V8 and wasmtime use), else the engine, else the export names, else
    wasm-function[N]: the same function gets the same name on every engine."""
    section, named = function_names(module, exports=False), function_names(module)
    out = []
    for frame in frames:
        if isinstance(frame, str):
            out.append(frame)
            continue
        index, offset = frame.get("index"), frame.get("offset")
        name = section.get(index) or frame.get("name") or named.get(index)
        name = name or (f"wasm-function[{index}]" if index is not None else "<unknown>")
        out.append(f"{name} ({offset:#x})" if offset is not None else name)
    return out
