"""The tools a module offers: one per exported function, with JSON Schemas for its arguments and its result.

A component's functions come from its WIT (`wit.WitTypes`); a core module's from its export types (i32, i64,
f32, f64: numbers; no names, so the arguments are `arg0`, `arg1`...). What is left out, and why, is in
`Toolset.skipped` (resource methods, futures, streams, WASI's own exports, componentize-py's start-up hook).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..binary import FuncType
from ..errors import UsageError
from ..module import Module
from .wit import Docs, Function, Unsupported, WitTypes, resolve_component, resolve_wit

TOOL_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")  # what MCP allows in a tool name
CORE_NUMBERS: dict[str, dict[str, Any]] = {
    "i32": {"type": "integer", "minimum": -(1 << 31), "maximum": (1 << 32) - 1},
    "i64": {"type": "integer", "minimum": -(1 << 63), "maximum": (1 << 64) - 1},
    "f32": {"type": "number"},
    "f64": {"type": "number"},
}
CORE_NOT_TOOLS = {"_start", "_initialize", "cabi_realloc"}  # WASI entry points and the canonical ABI's allocator
# componentize-py's pre-initialisation hook (`export exports: interface { init: func(...) }`), run at build time
COMPONENTIZE_PY_HOOK = ("exports", "init")


@dataclass(frozen=True)
class Tool:
    """One tool: `target` is what the instance is called with (`add`, `demo:tools/text@0.1.0#word-stats`)."""

    name: str
    target: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    signature: str
    params: tuple[str, ...]
    lower: Callable[[dict[str, Any]], tuple[Any, ...]] = field(repr=False, compare=False)
    lift: Callable[[Any], Any] = field(repr=False, compare=False)


@dataclass
class Toolset:
    """Every tool of one module, and the exports that are not tools (name -> why)."""

    module: Module
    tools: dict[str, Tool]
    skipped: dict[str, str]

    def __iter__(self):
        return iter(self.tools.values())

    def __len__(self) -> int:
        return len(self.tools)

    def __getitem__(self, name: str) -> Tool:
        return self.tools[name]


def toolset(module: Module, wit: str | Path | None = None) -> Toolset:
    """The tools of `module`: its exported functions with schemas; descriptions from the WIT doc comments (the
    component's own, else those of `wit`, the WIT source it was built from: text, a file or a directory)."""
    if module.is_component:
        docs = Docs(resolve_wit(wit)) if wit is not None else None
        return _component_tools(module, WitTypes(resolve_component(module.bytes), docs))
    if wit is not None:
        raise UsageError(f"{module.name} is a core module: wit= describes components only")
    return _core_tools(module)


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _unique_name(wanted: str, fallback: str, taken: dict[str, Tool]) -> str:
    """`wanted` when MCP allows it and it is free, else `fallback` with what MCP disallows made `_`."""
    if TOOL_NAME.match(wanted) and wanted not in taken:
        return wanted
    name = re.sub(r"[^A-Za-z0-9._-]", "_", fallback)[:128]
    if not name or name in taken:
        raise UsageError(f"cannot make a distinct MCP tool name for {fallback!r}")
    return name


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"the result {value} has no JSON form (JSON numbers are finite)")
    return value


def _component_tools(module: Module, types: WitTypes) -> Toolset:
    tools: dict[str, Tool] = {}
    skipped: dict[str, str] = {}
    for func in types.exported_functions():
        why = _not_a_tool(func)
        if why:
            skipped[func.target] = why
            continue
        try:
            params = {p.name: types.schema(p.type) for p in func.params}
            result = types.schema(func.result) if func.result is not None else {"type": "null"}
        except Unsupported as exc:
            skipped[func.target] = f"not offered: {exc}"
            continue
        signature = types.signature(func)
        name = _unique_name(f"{func.short_interface}.{func.name}" if func.interface else func.name, func.target, tools)
        tools[name] = Tool(
            name=name,
            target=func.target,
            description=func.docs or f"`{signature}` (no doc comment)",
            input_schema=_object(params),
            output_schema=_object({"result": result}),
            signature=(f"{func.interface}#" if func.interface else "") + signature,
            params=tuple(params),
            lower=_component_lowering(types, func),
            lift=_component_lifting(types, func),
        )
    return Toolset(module, tools, skipped)


def _not_a_tool(func: Function) -> str | None:
    if func.kind != "freestanding":
        return f"a resource {func.kind}: resources have no JSON form"
    if (func.interface, func.name) == COMPONENTIZE_PY_HOOK:
        return "componentize-py's start-up hook, run when the component is built"
    if func.interface and func.interface.startswith("wasi:"):
        return "a WASI interface (a command's run, an HTTP handler): not a tool"
    return None


def _component_lowering(types: WitTypes, func: Function) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    def lower(arguments: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(types.to_guest(p.type, arguments[p.name]) for p in func.params)

    return lower


def _component_lifting(types: WitTypes, func: Function) -> Callable[[Any], Any]:
    def lift(value: Any) -> Any:
        return None if func.result is None else types.from_guest(func.result, value)

    return lift


def _core_lowering(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    return lambda arguments: tuple(arguments[n] for n in names)


def _core_lifting(count: int) -> Callable[[Any], Any]:
    def lift(value: Any) -> Any:
        return [_finite(v) for v in value] if count > 1 else _finite(value)

    return lift


def _core_tools(module: Module) -> Toolset:
    tools: dict[str, Tool] = {}
    skipped: dict[str, str] = {}
    for export in module.exports:
        if export.kind != "func":
            continue
        if export.name in CORE_NOT_TOOLS or export.name.startswith("cabi_"):
            skipped[export.name] = "a WASI entry point or the canonical ABI's allocator: not a tool"
            continue
        ftype = export.type
        assert isinstance(ftype, FuncType)  # a func export
        unknown = sorted({t for t in (*ftype.params, *ftype.results) if t not in CORE_NUMBERS})
        if unknown:
            skipped[export.name] = f"takes or returns {', '.join(unknown)}: only numbers have a JSON form"
            continue
        names = tuple(f"arg{i}" for i in range(len(ftype.params)))
        results = [CORE_NUMBERS[t] for t in ftype.results]
        if not results:
            result: dict[str, Any] = {"type": "null"}
        elif len(results) == 1:
            result = results[0]
        else:
            result = {"type": "array", "prefixItems": results, "items": False, "minItems": len(results)}
        name = _unique_name(export.name, export.name, tools)
        signature = f"{export.name}: {ftype}"
        tools[name] = Tool(
            name=name,
            target=export.name,
            description=f"core Wasm function `{signature}` (core modules carry no doc comments)",
            input_schema=_object({n: CORE_NUMBERS[t] for n, t in zip(names, ftype.params, strict=True)}),
            output_schema=_object({"result": result}),
            signature=signature,
            params=names,
            lower=_core_lowering(names),
            lift=_core_lifting(len(results)),
        )
    return Toolset(module, tools, skipped)
