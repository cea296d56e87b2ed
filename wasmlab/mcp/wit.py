"""WIT types as JSON Schema, and JSON values to and from the Python values wasmtime-py passes to components.

The types come from `wasm-tools component wit --json`: wit-parser's resolve of the component's own type
information (the kept WIT parser, the one wasm-tools and wit-bindgen use), so nothing here parses WIT text.

JSON forms (each one what its schema says):

| WIT                          | JSON                                         | wasmtime-py value            |
|------------------------------|----------------------------------------------|------------------------------|
| bool, s8..u64, f32, f64      | boolean, integer in the type's range, number | bool, int, float             |
| char, string                 | a one-character string, a string             | str                          |
| list<T> (list<u8> too)       | array                                        | list (bytes for list<u8>)    |
| tuple<A, B>                  | array of exactly those items                 | tuple                        |
| record                       | object with every field (WIT field names)    | `Record` with attributes     |
| enum, flags                  | one of the names, array of distinct names    | str, set of str              |
| variant, result<T, E>        | one-key object: `{"case": v}`, `{"ok": v}`   | `Variant(tag, v)`, or bare v |
| option<T>                    | null or T                                    | None or the value            |

A case without a payload is `{"case": null}`; an option of an option is tagged too: `{"some": v}`, `{"none": null}`.

wasmtime-py passes a variant-like value (variant, option, result) bare when the Python classes of its cases
cannot be confused, and as `Variant(tag, payload)` when they can (`_tagged` below follows the same rule), so a
bare `result<u32, string>` value comes back as an int or a str and the case is told by its class.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError

INTEGER_RANGES = {
    "u8": (0, (1 << 8) - 1),
    "u16": (0, (1 << 16) - 1),
    "u32": (0, (1 << 32) - 1),
    "u64": (0, (1 << 64) - 1),
    "s8": (-(1 << 7), (1 << 7) - 1),
    "s16": (-(1 << 15), (1 << 15) - 1),
    "s32": (-(1 << 31), (1 << 31) - 1),
    "s64": (-(1 << 63), (1 << 63) - 1),
}
FLOATS = ("f32", "f64")
Ref = str | int  # a primitive type's name, or an index into the resolve's `types`


class Unsupported(Exception):
    """A type with no JSON form here (resources, futures, streams): its function is not offered as a tool."""


def resolve_component(data: bytes) -> dict[str, Any]:
    """wit-parser's resolve of a component's WIT (with its doc comments, where the component has them)."""
    from ..tools import wasm_tools

    return json.loads(wasm_tools("component", "wit", "--json", data=data))


def resolve_wit(source: str | Path) -> dict[str, Any]:
    """wit-parser's resolve of WIT source: a .wit file, a directory of them (with deps/), or WIT text."""
    from ..errors import WasmlabError
    from ..tools import wasm_tools

    is_text = isinstance(source, str) and "{" in source
    if not is_text and not Path(source).exists():
        raise UsageError(f"no such WIT file or directory: {source}")
    with tempfile.TemporaryDirectory(prefix="wasmlab-wit-") as tmp:
        path = Path(tmp) / "world.wit" if is_text else Path(source)
        if is_text:
            path.write_text(str(source), encoding="utf-8")
        try:
            return json.loads(wasm_tools("component", "wit", "--json", str(path)))
        except WasmlabError as exc:
            message = str(exc).replace(str(path), "world.wit") if is_text else str(exc)
            raise UsageError(f"cannot read {'the WIT text' if is_text else source}: {message}") from None


@dataclass(frozen=True)
class Param:
    name: str
    type: Ref


@dataclass(frozen=True)
class Function:
    """One exported function: `interface` is None for a world-level function, else the interface's full name
    (`demo:tools/text@0.1.0`) or, for a world-local interface, its export name."""

    name: str
    interface: str | None
    short_interface: str | None
    params: tuple[Param, ...]
    result: Ref | None
    docs: str
    kind: str = "freestanding"  # or a resource's "constructor", "method", "static" (not offered as tools)

    @property
    def target(self) -> str:
        """The name an instance call takes: `name` or `INTERFACE#name`."""
        return f"{self.interface}#{self.name}" if self.interface else self.name


class Docs:
    """Doc comments of WIT source, by interface short name (None for world-level functions) and item name.
    Components keep only the docs of their own root package, so `wit=` brings the source's docs back."""

    def __init__(self, resolve: dict[str, Any] | None = None) -> None:
        self.functions: dict[tuple[str | None, str], str] = {}
        self.types: dict[tuple[str | None, str], dict[str, Any]] = {}
        if not resolve:
            return
        for world in resolve.get("worlds", []):
            for key, item in world.get("exports", {}).items():
                if "function" in item:
                    self._function(None, key, item["function"])
        for interface in resolve.get("interfaces", []):
            name = interface.get("name")
            for fname, func in interface.get("functions", {}).items():
                self._function(name, fname, func)
        for typedef in resolve.get("types", []):
            if typedef.get("name"):
                self.types.setdefault((_owner(resolve, typedef), typedef["name"]), typedef)

    def _function(self, interface: str | None, name: str, func: dict[str, Any]) -> None:
        text = _docs(func)
        if text:
            self.functions.setdefault((interface, name), text)

    def function(self, interface: str | None, name: str) -> str:
        return self.functions.get((interface, name), "")

    def typedef(self, interface: str | None, name: str | None) -> dict[str, Any] | None:
        return self.types.get((interface, name)) if name else None


def _owner(resolve: dict[str, Any], typedef: dict[str, Any]) -> str | None:
    """The short name of the interface a type belongs to; None for a type of a world."""
    owner = typedef.get("owner") or {}
    return resolve["interfaces"][owner["interface"]].get("name") if "interface" in owner else None


def _docs(item: dict[str, Any] | None) -> str:
    return ((item or {}).get("docs") or {}).get("contents") or ""


def _single(kind: Any) -> tuple[str, Any]:
    """A typedef's kind as (name, payload): `{"record": {...}}` -> ("record", {...}); "resource" -> (.., None)."""
    if isinstance(kind, str):
        return kind, None
    ((name, payload),) = kind.items()
    return name, payload


class WitTypes:
    """The types of one resolve: JSON Schema for each, and value conversion both ways."""

    def __init__(self, resolve: dict[str, Any], docs: Docs | None = None) -> None:
        self.resolve = resolve
        self.types: list[dict[str, Any]] = resolve.get("types", [])
        self.docs = docs or Docs()
        self._interfaces = resolve.get("interfaces", [])

    # structure --------------------------------------------------------------------------------------------
    def kind(self, ref: Ref) -> tuple[str, Any]:
        """(kind, payload) of `ref` after following `type x = y` aliases; primitives are (name, None)."""
        while isinstance(ref, int):
            kind, payload = _single(self.types[ref]["kind"])
            if kind != "type":
                return kind, payload
            ref = payload
        return ref, None

    def cases(self, ref: Ref) -> list[tuple[str, Ref | None]]:
        """The cases of a variant, option or result."""
        kind, payload = self.kind(ref)
        if kind == "variant":
            return [(c["name"], c.get("type")) for c in payload["cases"]]
        if kind == "option":
            return [("none", None), ("some", payload)]
        if kind == "result":
            return [("ok", payload.get("ok")), ("err", payload.get("err"))]
        raise TypeError(f"{kind} has no cases")

    def _type_docs(self, ref: int) -> tuple[str, dict[str, str]]:
        """A named type's doc comment and its members' (fields, cases): the component's own, else those of the
        same type in the `wit=` source."""
        typedef = self.types[ref]
        source = self.docs.typedef(_owner(self.resolve, typedef), typedef.get("name"))
        return _docs(typedef) or _docs(source), {**_member_docs(source), **_member_docs(typedef)}

    def name(self, ref: Ref) -> str:
        """The WIT spelling of a type: `s32`, `point`, `list<string>`, `result<u32, string>`."""
        if isinstance(ref, int) and self.types[ref].get("name"):
            return self.types[ref]["name"]
        kind, payload = self.kind(ref)
        if kind in ("list", "option"):
            return f"{kind}<{self.name(payload)}>"
        if kind == "tuple":
            return f"tuple<{', '.join(self.name(t) for t in payload['types'])}>"
        if kind == "result":
            ok, err = payload.get("ok"), payload.get("err")
            if ok is None and err is None:
                return "result"
            err_part = f", {self.name(err)}" if err is not None else ""
            return f"result<{self.name(ok) if ok is not None else '_'}{err_part}>"
        if kind == "handle":
            ((how, target),) = payload.items()
            return f"{how}<{self.name(target)}>" if how == "borrow" else self.name(target)
        if kind in ("future", "stream"):
            return f"{kind}<{self.name(payload)}>" if payload is not None else kind
        return kind

    # JSON Schema ------------------------------------------------------------------------------------------
    def schema(self, ref: Ref) -> dict[str, Any]:
        """The JSON Schema (2020-12) of a value of type `ref`; Unsupported for resources, futures, streams."""
        schema = self._schema(ref)
        if isinstance(ref, int) and self.types[ref].get("name"):
            schema = {"title": self.types[ref]["name"], **schema}
            text = self._type_docs(ref)[0]
            if text:
                schema["description"] = text
        return schema

    def _schema(self, ref: Ref) -> dict[str, Any]:
        if isinstance(ref, int) and _single(self.types[ref]["kind"])[0] == "type":
            return self.schema(_single(self.types[ref]["kind"])[1])
        kind, payload = self.kind(ref)
        if kind in INTEGER_RANGES:
            low, high = INTEGER_RANGES[kind]
            return {"type": "integer", "minimum": low, "maximum": high}
        if kind in FLOATS:
            return {"type": "number"}
        if kind == "bool":
            return {"type": "boolean"}
        if kind == "string":
            return {"type": "string"}
        if kind == "char":
            return {"type": "string", "minLength": 1, "maxLength": 1, "description": "one Unicode character"}
        if kind == "list":
            return {"type": "array", "items": self.schema(payload)}
        if kind == "tuple":
            items = [self.schema(t) for t in payload["types"]]
            return {"type": "array", "prefixItems": items, "items": False, "minItems": len(items)}
        if kind == "record":
            member_docs = self._type_docs(ref)[1] if isinstance(ref, int) else {}
            properties = {}
            for field in payload["fields"]:
                prop = self.schema(field["type"])
                text = member_docs.get(field["name"]) or _docs(field)
                properties[field["name"]] = {**prop, "description": text} if text else prop
            return {
                "type": "object",
                "properties": properties,
                "required": [f["name"] for f in payload["fields"]],
                "additionalProperties": False,
            }
        if kind == "enum":
            return {"type": "string", "enum": [c["name"] for c in payload["cases"]]}
        if kind == "flags":
            names = [f["name"] for f in payload["flags"]]
            return {"type": "array", "items": {"enum": names}, "uniqueItems": True}
        if kind == "option" and not self._nullable(payload):
            return {"anyOf": [{"type": "null"}, self.schema(payload)]}
        if kind in ("variant", "option", "result"):
            member_docs = self._type_docs(ref)[1] if isinstance(ref, int) else {}
            alternatives = []
            for case, case_ref in self.cases(ref):
                inner = self.schema(case_ref) if case_ref is not None else {"type": "null"}
                alt: dict[str, Any] = {
                    "type": "object",
                    "properties": {case: inner},
                    "required": [case],
                    "additionalProperties": False,
                }
                if member_docs.get(case):
                    alt["description"] = member_docs[case]
                alternatives.append(alt)
            return {"oneOf": alternatives}
        raise Unsupported(f"{self.name(ref)} ({kind}) has no JSON form")

    def _nullable(self, ref: Ref) -> bool:
        """True when JSON null is a value of `ref` (an option), so option<ref> needs the tagged form."""
        return self.kind(ref)[0] == "option"

    # JSON -> guest ----------------------------------------------------------------------------------------
    def to_guest(self, ref: Ref, value: Any) -> Any:
        """A JSON value (already checked against `schema(ref)`) as the Python value wasmtime-py lowers."""
        from wasmtime.component import Record, Variant

        kind, payload = self.kind(ref)
        if kind in FLOATS:
            return float(value)
        if kind == "list":
            if self.kind(payload)[0] == "u8":
                return bytes(value)
            return [self.to_guest(payload, v) for v in value]
        if kind == "tuple":
            return tuple(self.to_guest(t, v) for t, v in zip(payload["types"], value, strict=True))
        if kind == "record":
            record = Record()
            for field in payload["fields"]:
                setattr(record, field["name"], self.to_guest(field["type"], value[field["name"]]))
            return record
        if kind == "flags":
            return set(value)
        if kind == "option" and not self._nullable(payload):
            return None if value is None else self.to_guest(payload, value)
        if kind in ("variant", "option", "result"):
            ((case, inner),) = value.items()
            case_ref = dict(self.cases(ref))[case]
            lowered = None if case_ref is None else self.to_guest(case_ref, inner)
            return Variant(case, lowered) if self._tagged(ref) else lowered
        return value  # bool, integers, char, string, enum

    # guest -> JSON ----------------------------------------------------------------------------------------
    def from_guest(self, ref: Ref, value: Any) -> Any:
        """A value wasmtime-py lifted, as JSON that `schema(ref)` accepts; ValueError for a non-finite float."""
        kind, payload = self.kind(ref)
        if kind in FLOATS:
            if not math.isfinite(value):
                raise ValueError(f"the {kind} result {value} has no JSON form (JSON numbers are finite)")
            return value
        if kind == "list":
            return [self.from_guest(payload, v) for v in value]  # bytes iterate as ints
        if kind == "tuple":
            return [self.from_guest(t, v) for t, v in zip(payload["types"], value, strict=True)]
        if kind == "record":
            return {f["name"]: self.from_guest(f["type"], getattr(value, f["name"])) for f in payload["fields"]}
        if kind == "flags":
            return [f["name"] for f in payload["flags"] if f["name"] in value]
        if kind == "option" and not self._nullable(payload):
            return None if value is None else self.from_guest(payload, value)
        if kind in ("variant", "option", "result"):
            case, case_ref, inner = self._case_of(ref, value)
            return {case: None if case_ref is None else self.from_guest(case_ref, inner)}
        return value

    def _case_of(self, ref: Ref, value: Any) -> tuple[str, Ref | None, Any]:
        cases = self.cases(ref)
        if self._tagged(ref):
            return value.tag, dict(cases)[value.tag], value.payload
        # Bare: the case whose Python class the value has (cases' classes never overlap, see _tagged).
        for name, case_ref in cases:
            if case_ref is None and value is None:
                return name, None, None
            if case_ref is not None and type(value) in self._classes(case_ref):
                return name, case_ref, value
        for name, case_ref in cases:  # a case holding a bare option (its class set has `object`)
            if case_ref is not None and object in self._classes(case_ref):
                return name, case_ref, value
        raise ValueError(f"the guest returned {value!r}, which is no case of {self.name(ref)}")

    # wasmtime-py's rule for bare or tagged variant-likes (wasmtime/component/_types.py: add_classes, _tagged)
    def _classes(self, ref: Ref) -> frozenset[type]:
        from wasmtime.component import Record, Variant

        kind, payload = self.kind(ref)
        simple = {"bool": bool, "char": str, "string": str, "enum": str, "record": Record, "tuple": tuple}
        if kind in simple:
            return frozenset({simple[kind]})
        if kind in INTEGER_RANGES:
            return frozenset({int})
        if kind in FLOATS:
            return frozenset({float})
        if kind == "list":
            return frozenset({bytes if self.kind(payload)[0] == "u8" else list})
        if kind == "flags":
            return frozenset({set})
        if kind in ("variant", "option", "result"):
            if self._tagged(ref):
                return frozenset({Variant})
            out: set[type] = set()
            for _, case_ref in self.cases(ref):
                out |= {object} if case_ref is None else self._classes(case_ref)
            return frozenset(out)
        return frozenset({object})

    def _tagged(self, ref: Ref) -> bool:
        seen: set[type] = set()
        for _, case_ref in self.cases(ref):
            classes = {object} if case_ref is None else set(self._classes(case_ref))
            if classes & seen:
                return True
            seen |= classes
        return False

    # functions --------------------------------------------------------------------------------------------
    def exported_functions(self) -> Iterator[Function]:
        """Every function the component's world exports, world-level first, then each exported interface's."""
        packages = self.resolve.get("packages", [])
        for world in self.resolve.get("worlds", []):
            interfaces = []
            for key, item in world.get("exports", {}).items():
                if "function" in item:
                    yield self._function(item["function"], None, None)
                elif "interface" in item:
                    interfaces.append((key, self._interfaces[item["interface"]["id"]]))
            for key, interface in interfaces:
                short = interface.get("name")
                if short is None:  # a world-local interface: `export NAME: interface {...}`
                    full = short = key
                else:
                    package = packages[interface["package"]]["name"]
                    base, _, version = package.partition("@")
                    full = f"{base}/{short}" + (f"@{version}" if version else "")
                for func in interface.get("functions", {}).values():
                    yield self._function(func, full, short)

    def _function(self, func: dict[str, Any], interface: str | None, short: str | None) -> Function:
        params = tuple(Param(p["name"], p["type"]) for p in func.get("params", []))
        docs = _docs(func) or self.docs.function(short, func["name"])
        kind, _ = _single(func.get("kind", "freestanding"))
        return Function(func["name"], interface, short, params, func.get("result"), docs, kind)

    def signature(self, func: Function) -> str:
        params = ", ".join(f"{p.name}: {self.name(p.type)}" for p in func.params)
        result = f" -> {self.name(func.result)}" if func.result is not None else ""
        return f"{func.name}: func({params}){result}"


def _member_docs(typedef: dict[str, Any] | None) -> dict[str, str]:
    """Docs of a record's fields, or a variant's or enum's cases, by name."""
    if not typedef:
        return {}
    _, payload = _single(typedef["kind"])
    if not isinstance(payload, dict):
        return {}
    members = payload.get("fields") or payload.get("cases") or []
    return {m["name"]: _docs(m) for m in members if _docs(m)}
