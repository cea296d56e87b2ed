"""A fast, exact, pure-Python parser for WebAssembly binaries.

    from wasmlab.binary import parse
    module = parse(open("app.wasm", "rb").read())
    module.imports, module.exports, module.functions, module.sections

`parse` reads the whole structure of a core module (every section of the current spec plus the post-MVP
proposals met in real modules: multi-value, reference types, bulk memory, SIMD, memory64, threads, exception
handling, GC / typed function references, custom page sizes, compact imports, custom descriptors) without
decoding function bodies: those are skipped by size, so an 18 MB module parses in a fraction of a second.
A component (layer 1) is recognised and its top-level sections listed; nested modules are not parsed.

Any malformed input raises `InvalidModule` with the byte offset where parsing stopped and what was expected.
The parser is not a validator: it checks what it needs to read the module exactly (encodings, sizes, counts,
section order, UTF-8 names, the type of every import and export) but not function bodies or most index
references. Malformed contents of the `name` and `producers` custom sections are ignored, as the spec asks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import NoReturn

from .errors import InvalidModule

__all__ = [
    "Export",
    "FuncType",
    "Function",
    "GlobalType",
    "Import",
    "Limits",
    "MemoryType",
    "ParsedModule",
    "Section",
    "TableType",
    "TagType",
    "ValType",
    "parse",
]

ValType = str
"""A value type as wasm-tools prints it: "i32", "v128", "funcref", "(ref null 3)", "(ref (shared any))"..."""


# --------------------------------------------------------------------------------------------- public types


def _results(types: tuple[str, ...]) -> str:
    return types[0] if len(types) == 1 else f"({', '.join(types)})"


@dataclass(frozen=True, slots=True)
class FuncType:
    """A function signature."""

    params: tuple[str, ...]
    results: tuple[str, ...]

    def __str__(self) -> str:
        return f"({', '.join(self.params)}) -> {_results(self.results)}"


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits of a memory (in pages) or a table (in elements); `max` is None when unbounded."""

    min: int
    max: int | None
    shared: bool = False
    index64: bool = False

    def __str__(self) -> str:
        return f"{self.min}..{'' if self.max is None else self.max}"


@dataclass(frozen=True, slots=True)
class MemoryType:
    """A linear memory. `page_size_log2` is set only by the custom-page-sizes proposal (default 64 KiB)."""

    limits: Limits
    page_size_log2: int | None = None

    def __str__(self) -> str:
        extra = [flag for flag, on in (("shared", self.limits.shared), ("i64", self.limits.index64)) if on]
        if self.page_size_log2 is not None:
            extra.append(f"page size {1 << min(self.page_size_log2, 64)}")
        return f"memory {self.limits} pages" + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True, slots=True)
class TableType:
    """A table of references."""

    element: str
    limits: Limits

    def __str__(self) -> str:
        extra = [flag for flag, on in (("shared", self.limits.shared), ("i64", self.limits.index64)) if on]
        return f"table {self.limits} {self.element}" + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True, slots=True)
class GlobalType:
    """A global variable's type."""

    valtype: str
    mutable: bool

    def __str__(self) -> str:
        return f"mut {self.valtype}" if self.mutable else self.valtype


@dataclass(frozen=True, slots=True)
class TagType:
    """An exception tag: the signature of its payload."""

    func: FuncType

    def __str__(self) -> str:
        return f"tag {self.func}"


def _describe(kind: str, ty: object) -> str:
    text = str(ty)
    return text if text.startswith(kind) else f"{kind} {text}"


ExternType = FuncType | TableType | MemoryType | GlobalType | TagType


@dataclass(frozen=True, slots=True)
class Import:
    """One import. `kind` is "func", "table", "memory", "global" or "tag"."""

    module: str
    name: str
    kind: str
    type: ExternType

    def __str__(self) -> str:
        return f"{self.module}.{self.name}: {_describe(self.kind, self.type)}"


@dataclass(frozen=True, slots=True)
class Export:
    """One export; `type` is resolved through the imports and definitions of its index space."""

    name: str
    kind: str
    index: int
    type: ExternType

    def __str__(self) -> str:
        return f"{self.name}: {_describe(self.kind, self.type)} (index {self.index})"


@dataclass(frozen=True, slots=True)
class Section:
    """A top-level section. `offset` is the id byte; `size` the payload length; `name` "custom:NAME" for customs."""

    id: int
    name: str
    offset: int
    size: int
    payload_offset: int

    @property
    def end(self) -> int:
        """Offset just past the section's payload."""
        return self.payload_offset + self.size


@dataclass(frozen=True, slots=True)
class Function:
    """A defined function: its index (imports first), name from the name section, body size and offset."""

    index: int
    name: str | None
    size: int
    offset: int


@dataclass(frozen=True)
class ParsedModule:
    """Everything `parse` read from a module. For a component only kind, version and sections are filled.

    `types` holds one entry per type index: a FuncType, or "struct" / "array" / "cont" for GC and
    stack-switching types. `tags` lists the defined exception tags.
    """

    kind: str
    version: int
    sections: tuple[Section, ...]
    types: tuple[FuncType | str, ...]
    imports: tuple[Import, ...]
    exports: tuple[Export, ...]
    functions: tuple[Function, ...]
    memories: tuple[MemoryType, ...]
    tables: tuple[TableType, ...]
    globals: tuple[GlobalType, ...]
    start: int | None
    data_segments: int
    element_segments: int
    custom_sections: tuple[Section, ...]
    function_names: dict[int, str]
    module_name: str | None
    producers: dict[str, list[tuple[str, str]]]
    has_dwarf: bool
    tags: tuple[TagType, ...] = ()


# ------------------------------------------------------------------------------------------------ encodings

_MAGIC = b"\x00asm"
_MODULE_VERSION = b"\x01\x00\x00\x00"
_COMPONENT_VERSION = b"\x0d\x00\x01\x00"

_SECTION_NAMES = {
    1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global", 7: "export",
    8: "start", 9: "element", 10: "code", 11: "data", 12: "data_count", 13: "tag",
}  # fmt: skip
# The order the spec requires for non-custom sections (the tag section sits between memory and global).
_SECTION_RANK = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}
_COMPONENT_SECTION_NAMES = {
    1: "core_module", 2: "core_instance", 3: "core_type", 4: "component", 5: "instance", 6: "alias",
    7: "type", 8: "canon", 9: "start", 10: "import", 11: "export", 12: "value",
}  # fmt: skip

_KINDS = ("func", "table", "memory", "global", "tag")

# Abstract heap types: byte -> (heap type, the nullable reference type's short name).
_ABSTRACT = {
    0x70: ("func", "funcref"), 0x6F: ("extern", "externref"), 0x6E: ("any", "anyref"),
    0x6D: ("eq", "eqref"), 0x6C: ("i31", "i31ref"), 0x6B: ("struct", "structref"),
    0x6A: ("array", "arrayref"), 0x71: ("none", "nullref"), 0x72: ("noextern", "nullexternref"),
    0x73: ("nofunc", "nullfuncref"), 0x69: ("exn", "exnref"), 0x74: ("noexn", "nullexnref"),
    0x68: ("cont", "contref"), 0x75: ("nocont", "nullcontref"),
}  # fmt: skip
_NUMERIC = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128"}
# Value types that are one byte: numbers, vectors and the nullable abstract references.
_SIMPLE_VALTYPES = {**_NUMERIC, **{code: short for code, (_, short) in _ABSTRACT.items()}}
_PACKED = {0x78: "i8", 0x77: "i16"}

# Instructions allowed in constant expressions that carry no immediate (extended-const arithmetic).
_CONST_BINOPS = frozenset((0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E))
# 0xFB-prefixed (GC) constant instructions: sub-opcode -> number of u32 immediates.
_CONST_GC_OPS = {0x00: 1, 0x01: 1, 0x06: 1, 0x07: 1, 0x08: 2, 0x1A: 0, 0x1B: 0, 0x1C: 0, 0x20: 1, 0x21: 1}


def _hex(byte: int) -> str:
    return f"0x{byte:02x}"


# --------------------------------------------------------------------------------------------------- reader


class _Reader:
    """A cursor over `data[pos:end]`; `where` names the enclosing structure for error messages."""

    __slots__ = ("b", "end", "pos", "where")

    def __init__(self, b: bytes, pos: int, end: int, where: str) -> None:
        self.b, self.pos, self.end, self.where = b, pos, end, where

    def fail(self, problem: str, offset: int | None = None) -> NoReturn:
        raise InvalidModule(problem, self.pos if offset is None else offset)

    def eof(self, what: str, offset: int | None = None) -> NoReturn:
        self.fail(f"unexpected end of {self.where} while reading {what}", offset)

    def byte(self, what: str) -> int:
        p = self.pos
        if p >= self.end:
            self.eof(what)
        self.pos = p + 1
        return self.b[p]

    def peek(self, what: str) -> int:
        if self.pos >= self.end:
            self.eof(what)
        return self.b[self.pos]

    def skip(self, n: int, what: str) -> None:
        if n > self.end - self.pos:
            self.fail(f"{what} needs {n} bytes but the {self.where} has only {self.end - self.pos} left")
        self.pos += n

    def u32(self, what: str) -> int:
        p, b = self.pos, self.b
        if p + 2 < self.end:  # fast paths for one to three bytes
            x = b[p]
            if x < 0x80:
                self.pos = p + 1
                return x
            y = b[p + 1]
            if y < 0x80:
                self.pos = p + 2
                return (x & 0x7F) | (y << 7)
            z = b[p + 2]
            if z < 0x80:
                self.pos = p + 3
                return (x & 0x7F) | ((y & 0x7F) << 7) | (z << 14)
        return self._uleb(what, 5, 4)

    def u64(self, what: str) -> int:
        return self._uleb(what, 10, 1)

    def _uleb(self, what: str, max_bytes: int, last_bits: int) -> int:
        """An unsigned LEB128 of at most `max_bytes`, whose last byte may use only `last_bits` bits."""
        b, start, end = self.b, self.pos, self.end
        p, result, shift = start, 0, 0
        while True:
            if p >= end:
                self.eof(f"{what} (unterminated LEB128)", start)
            x = b[p]
            p += 1
            if p - start == max_bytes:
                if x & 0x80:
                    self.fail(f"{what}: LEB128 longer than {max_bytes} bytes", start)
                if x >> last_bits:
                    self.fail(f"{what}: LEB128 value out of range for a u{7 * (max_bytes - 1) + last_bits}", start)
            result |= (x & 0x7F) << shift
            if x < 0x80:
                self.pos = p
                return result
            shift += 7

    def sleb(self, what: str, bits: int) -> int:
        """A signed LEB128 for an iN (N = 32 or 64), range-checked like the spec does."""
        b, start, end = self.b, self.pos, self.end
        max_bytes = (bits + 6) // 7
        p, result, shift = start, 0, 0
        while True:
            if p >= end:
                self.eof(f"{what} (unterminated LEB128)", start)
            x = b[p]
            p += 1
            result |= (x & 0x7F) << shift
            shift += 7
            if x < 0x80:
                break
            if p - start == max_bytes:
                self.fail(f"{what}: LEB128 longer than {max_bytes} bytes", start)
        if p - start == max_bytes:
            # the unused high bits of the last byte must all copy the sign bit
            used = bits - 7 * (max_bytes - 1)
            rest = x >> (used - 1)
            if rest not in (0, 0x7F >> (used - 1)):
                self.fail(f"{what}: LEB128 value out of range for an i{bits}", start)
        if result >> (shift - 1) & 1:
            result -= 1 << shift
        self.pos = p
        return result

    def count(self, what: str, min_size: int = 1) -> int:
        """A vector length; each item takes at least `min_size` bytes, so it must fit what is left."""
        start = self.pos
        n = self.u32(f"{what} count")
        if n * min_size > self.end - self.pos:
            self.fail(
                f"{what} count {n} is larger than the {self.end - self.pos} bytes left in the {self.where}",
                start,
            )
        return n

    def name(self, what: str) -> str:
        n = self.u32(f"{what} length")
        p = self.pos
        if n > self.end - p:
            self.fail(f"{what} of {n} bytes runs past the end of the {self.where} ({self.end - p} bytes left)")
        raw = self.b[p : p + n]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.fail(f"{what} is not valid UTF-8", p + exc.start)
        self.pos = p + n
        return text

    # ---- types

    def heap_type(self) -> tuple[str, bool]:
        """A heap type as printed by wasm-tools, and whether it is a plain (unshared) abstract type."""
        p = self.pos
        x = self.byte("heap type")
        ab = _ABSTRACT.get(x)
        if ab is not None:
            return ab[0], True
        if x == 0x65:  # shared abstract heap type
            y = self.byte("shared heap type")
            ab = _ABSTRACT.get(y)
            if ab is None:
                self.fail(f"invalid shared heap type {_hex(y)}", p + 1)
            return f"(shared {ab[0]})", False
        if x == 0x62:  # exact type index (custom descriptors)
            return f"(exact {self.u32('exact type index')})", False
        self.pos = p
        index = self.u32("heap type index")
        if self.b[self.pos - 1] & 0x40:  # s33 sign bit: a negative value that is not an abstract type
            self.fail(f"invalid heap type {_hex(x)}", p)
        return str(index), False

    def ref_type_after(self, nullable: bool) -> str:
        heap, abstract = self.heap_type()
        if nullable:
            if abstract:
                return _ABSTRACT_SHORT[heap]
            return f"(ref null {heap})"
        return f"(ref {heap})"

    def valtype(self, what: str = "value type") -> str:
        p = self.pos
        if p >= self.end:
            self.eof(what)
        x = self.b[p]
        self.pos = p + 1
        simple = _SIMPLE_VALTYPES.get(x)
        if simple is not None:
            return simple
        if x == 0x63 or x == 0x64:
            return self.ref_type_after(x == 0x63)
        if x == 0x65:  # nullable shared abstract reference, e.g. (ref null (shared any))
            y = self.byte("shared heap type")
            ab = _ABSTRACT.get(y)
            if ab is None:
                self.fail(f"invalid shared heap type {_hex(y)}", p + 1)
            return f"(ref null (shared {ab[0]}))"
        self.fail(f"unknown {what} {_hex(x)}", p)

    def ref_type(self, what: str) -> str:
        p = self.pos
        t = self.valtype(what)
        if self.b[p] in _NUMERIC:
            self.fail(f"{what} must be a reference type, found {t}", p)
        return t

    def storage_type(self) -> str:
        x = self.peek("field type")
        if x in _PACKED:
            self.pos += 1
            return _PACKED[x]
        return self.valtype("field type")

    def field_type(self) -> None:
        self.storage_type()
        p = self.pos
        m = self.byte("field mutability")
        if m > 1:
            self.fail(f"invalid field mutability {_hex(m)} (expected 0x00 or 0x01)", p)

    def composite_type(self) -> FuncType | str:
        seen: set[int] = set()
        while True:
            p = self.pos
            form = self.byte("type form")
            if form in (0x4C, 0x4D, 0x65) and form not in seen:  # describes / descriptor / shared prefixes
                seen.add(form)
                if form != 0x65:
                    self.u32("descriptor type index")
                continue
            break
        if form == 0x60:
            n = self.count("parameter")
            params = tuple([self.valtype() for _ in range(n)])
            n = self.count("result")
            results = tuple([self.valtype() for _ in range(n)])
            return FuncType(params, results)
        if form == 0x5F:
            n = self.count("struct field", 2)
            for _ in range(n):
                self.field_type()
            return "struct"
        if form == 0x5E:
            self.field_type()
            return "array"
        if form == 0x5D:
            self.u32("continuation function type index")
            return "cont"
        self.fail(f"expected a type form (0x60 func, 0x5f struct, 0x5e array, 0x5d cont), found {_hex(form)}", p)

    def sub_type(self) -> FuncType | str:
        x = self.peek("type form")
        if x == 0x50 or x == 0x4F:
            self.pos += 1
            for _ in range(self.count("supertype")):
                self.u32("supertype index")
        return self.composite_type()

    def limits(self, what: str, memory: bool) -> tuple[Limits, int | None]:
        p = self.pos
        flags = self.byte(f"{what} limits flags")
        if flags & ~(0x0F if memory else 0x07):
            self.fail(f"invalid {what} limits flags {_hex(flags)}", p)
        index64 = bool(flags & 0x04)
        read = self.u64 if index64 else self.u32
        lo = read(f"{what} minimum")
        hi = read(f"{what} maximum") if flags & 0x01 else None
        page = self.u32("page size log2") if flags & 0x08 else None
        return Limits(lo, hi, bool(flags & 0x02), index64), page

    def table_type(self) -> TableType:
        element = self.ref_type("table element type")
        limits, _ = self.limits("table", memory=False)
        return TableType(element, limits)

    def memory_type(self) -> MemoryType:
        limits, page = self.limits("memory", memory=True)
        return MemoryType(limits, page)

    def global_type(self) -> GlobalType:
        t = self.valtype("global type")
        p = self.pos
        m = self.byte("global mutability")
        if m > 3:  # bit 0: mutable, bit 1: shared (shared-everything threads)
            self.fail(f"invalid global mutability {_hex(m)}", p)
        return GlobalType(t, bool(m & 1))

    def const_expr(self, what: str) -> None:
        """Skip a constant expression, decoding each instruction so that `end` is found exactly."""
        b, end = self.b, self.end
        while True:
            p = self.pos
            if p >= end:
                self.eof(f"{what} (a constant expression ending with 0x0b)")
            op = b[p]
            self.pos = p + 1
            if op == 0x0B:
                return
            if op == 0x41:
                self.sleb("i32.const immediate", 32)
            elif op == 0x42:
                self.sleb("i64.const immediate", 64)
            elif op == 0x23:
                self.u32("global.get index")
            elif op == 0x43:
                self.skip(4, "f32.const immediate")
            elif op == 0x44:
                self.skip(8, "f64.const immediate")
            elif op == 0xD2:
                self.u32("ref.func index")
            elif op == 0xD0:
                self.heap_type()
            elif op in _CONST_BINOPS:
                pass
            elif op == 0xFD:
                sub = self.u32("SIMD opcode")
                if sub != 12:
                    self.fail(f"SIMD instruction 0xfd {sub} is not allowed in {what}", p)
                self.skip(16, "v128.const immediate")
            elif op == 0xFB:
                sub = self.u32("GC opcode")
                immediates = _CONST_GC_OPS.get(sub)
                if immediates is None:
                    self.fail(f"GC instruction 0xfb {sub} is not allowed in {what}", p)
                for _ in range(immediates):
                    self.u32("GC instruction immediate")
            elif op == 0xFE:
                sub = self.u32("threads opcode")
                if sub != 0x72:  # ref.i31_shared
                    self.fail(f"instruction 0xfe {sub} is not allowed in {what}", p)
            else:
                self.fail(f"instruction {_hex(op)} is not allowed in {what} (a constant expression)", p)


_ABSTRACT_SHORT = {heap: short for heap, short in _ABSTRACT.values()}


# ---------------------------------------------------------------------------------------------- the parser


class _ModuleBuilder:
    """Accumulates what the section parsers read."""

    def __init__(self) -> None:
        self.types: list[FuncType | str] = []
        self.imports: list[Import] = []
        self.import_func_types: list[FuncType] = []
        self.func_type_indices: list[int] = []  # type index of each defined function
        self.tables: list[TableType] = []
        self.memories: list[MemoryType] = []
        self.globals: list[GlobalType] = []
        self.tags: list[TagType] = []
        # the index spaces (imports first) of tables, memories, globals and tags
        self.spaces: dict[str, list[ExternType]] = {"table": [], "memory": [], "global": [], "tag": []}
        self.raw_exports: list[tuple[str, int, int, int]] = []  # name, kind, index, offset
        self.start: int | None = None
        self.start_offset = 0
        self.data_count: int | None = None
        self.data_segments: int | None = None
        self.element_segments = 0
        self.bodies: list[tuple[int, int]] | None = None  # (offset, size) of each body
        self.function_names: dict[int, str] = {}
        self.module_name: str | None = None
        self.producers: dict[str, list[tuple[str, str]]] = {}

    def func_type(self, r: _Reader, what: str, offset: int) -> FuncType:
        index = r.u32(f"{what} type index")
        if index >= len(self.types):
            r.fail(f"{what} uses type {index} but only {len(self.types)} types are defined", offset)
        t = self.types[index]
        if not isinstance(t, FuncType):
            r.fail(f"{what} uses type {index}, which is a {t} type, not a function type", offset)
        return t

    # ---- sections

    def type_section(self, r: _Reader) -> None:
        types = self.types
        for _ in range(r.count("type")):
            if r.peek("type") == 0x4E:  # rec group
                r.pos += 1
                for _ in range(r.count("recursion group member")):
                    types.append(r.sub_type())
            else:
                types.append(r.sub_type())

    def import_type(self, r: _Reader, offset: int) -> tuple[str, ExternType]:
        p = r.pos
        kind = r.byte("import kind")
        if kind == 0x00 or kind == 0x20:  # func, exact func (custom descriptors)
            return "func", self.func_type(r, "imported function", offset)
        if kind == 0x01:
            return "table", r.table_type()
        if kind == 0x02:
            return "memory", r.memory_type()
        if kind == 0x03:
            return "global", r.global_type()
        if kind == 0x04:
            return "tag", self.tag_type(r, offset)
        r.fail(f"unknown import kind {_hex(kind)} (expected 0x00-0x04)", p)

    def add_import(self, module: str, name: str, kind: str, ty: ExternType) -> None:
        self.imports.append(Import(module, name, kind, ty))
        if kind == "func":
            self.import_func_types.append(ty)  # type: ignore[arg-type]
        else:
            self.spaces[kind].append(ty)

    def import_section(self, r: _Reader) -> None:
        for _ in range(r.count("import", 3)):
            offset = r.pos
            module = r.name("import module name")
            name = r.name("import name")
            x = r.peek("import kind")
            if name == "" and x in (0x7F, 0x7E):  # compact import encodings
                r.pos += 1
                if x == 0x7E:  # one module and type, many names
                    kind, ty = self.import_type(r, offset)
                    for _ in range(r.count("compact import")):
                        self.add_import(module, r.name("import name"), kind, ty)
                else:  # one module, many names and types
                    for _ in range(r.count("compact import", 2)):
                        item = r.pos
                        name = r.name("import name")
                        kind, ty = self.import_type(r, item)
                        self.add_import(module, name, kind, ty)
                continue
            kind, ty = self.import_type(r, offset)
            self.add_import(module, name, kind, ty)

    def function_section(self, r: _Reader) -> None:
        n = r.count("function")
        b, p, end = r.b, r.pos, r.end
        indices = self.func_type_indices
        for _ in range(n):
            x = b[p] if p < end else 0x80
            if x < 0x80:  # one-byte fast path
                p += 1
                indices.append(x)
            else:
                r.pos = p
                indices.append(r.u32("function type index"))
                p = r.pos
        r.pos = p
        ntypes = len(self.types)
        if indices and max(indices) >= ntypes:
            bad = next(i for i in indices if i >= ntypes)
            r.fail(f"a function uses type {bad} but only {ntypes} types are defined")
        for i in set(indices):
            if not isinstance(self.types[i], FuncType):
                r.fail(f"a function uses type {i}, which is a {self.types[i]} type, not a function type")

    def table_section(self, r: _Reader) -> None:
        for _ in range(r.count("table", 3)):
            if r.peek("table") == 0x40:  # a table with an initializer expression
                p = r.pos
                r.pos += 1
                if r.byte("table reserved byte") != 0x00:
                    r.fail("expected 0x00 after 0x40 in a table with an initializer", p + 1)
                t = r.table_type()
                r.const_expr("table initializer")
            else:
                t = r.table_type()
            self.tables.append(t)
            self.spaces["table"].append(t)

    def memory_section(self, r: _Reader) -> None:
        for _ in range(r.count("memory", 2)):
            m = r.memory_type()
            self.memories.append(m)
            self.spaces["memory"].append(m)

    def tag_type(self, r: _Reader, offset: int) -> TagType:
        p = r.pos
        attribute = r.byte("tag attribute")
        if attribute != 0x00:
            r.fail(f"invalid tag attribute {_hex(attribute)} (expected 0x00, exception)", p)
        return TagType(self.func_type(r, "tag", offset))

    def tag_section(self, r: _Reader) -> None:
        for _ in range(r.count("tag", 2)):
            t = self.tag_type(r, r.pos)
            self.tags.append(t)
            self.spaces["tag"].append(t)

    def global_section(self, r: _Reader) -> None:
        for _ in range(r.count("global", 3)):
            g = r.global_type()
            r.const_expr("global initializer")
            self.globals.append(g)
            self.spaces["global"].append(g)

    def export_section(self, r: _Reader) -> None:
        exports = self.raw_exports
        for _ in range(r.count("export", 3)):
            offset = r.pos
            name = r.name("export name")
            p = r.pos
            kind = r.byte("export kind")
            if kind > 4:
                r.fail(f"unknown export kind {_hex(kind)} (expected 0x00-0x04)", p)
            exports.append((name, kind, r.u32("export index"), offset))

    def start_section(self, r: _Reader) -> None:
        self.start_offset = r.pos
        self.start = r.u32("start function index")

    def element_section(self, r: _Reader) -> None:
        n = r.count("element segment")
        for _ in range(n):
            p = r.pos
            flags = r.u32("element segment flags")
            if flags > 7:
                r.fail(f"invalid element segment flags {flags} (expected 0-7)", p)
            if not flags & 1:  # active
                if flags & 2:
                    r.u32("element segment table index")
                r.const_expr("element segment offset")
            if flags & 4:  # initializer expressions
                if flags & 3:
                    r.ref_type("element segment type")
                for _ in range(r.count("element expression")):
                    r.const_expr("element expression")
            else:  # function indices
                if flags & 3:
                    q = r.pos
                    if r.byte("element kind") != 0x00:
                        r.fail("invalid element kind (expected 0x00, funcref)", q)
                count = r.count("element function index")
                b, q, end = r.b, r.pos, r.end
                for _ in range(count):
                    if q < end and b[q] < 0x80:
                        q += 1
                    else:
                        r.pos = q
                        r.u32("element function index")
                        q = r.pos
                r.pos = q
        self.element_segments = n

    def data_count_section(self, r: _Reader) -> None:
        self.data_count = r.u32("data count")

    def code_section(self, r: _Reader) -> None:
        n = r.count("function body")
        if n != len(self.func_type_indices):
            r.fail(
                f"the code section has {n} function bodies but the function section declares "
                f"{len(self.func_type_indices)} functions",
                r.pos - 1,
            )
        b, p, end = r.b, r.pos, r.end
        bodies: list[tuple[int, int]] = []
        append = bodies.append
        for _ in range(n):
            x = b[p] if p < end else 0x80
            if x < 0x80:
                size = x
                p += 1
            elif p + 1 < end and b[p + 1] < 0x80:
                size = (x & 0x7F) | (b[p + 1] << 7)
                p += 2
            else:
                r.pos = p
                size = r.u32("function body size")
                p = r.pos
            if size > end - p:
                r.fail(f"function body of {size} bytes runs past the end of the code section", p)
            if size == 0 or b[p + size - 1] != 0x0B:
                r.fail(f"function body {len(bodies)} does not end with the `end` opcode 0x0b", p)
            append((p, size))
            p += size
        r.pos = p
        self.bodies = bodies

    def data_section(self, r: _Reader) -> None:
        n = r.count("data segment")
        if self.data_count is not None and n != self.data_count:
            r.fail(f"the data section has {n} segments but the data count section says {self.data_count}")
        b = r.b
        for _ in range(n):
            p = r.pos
            flags = r.u32("data segment flags")
            if flags == 0:
                r.const_expr("data segment offset")
            elif flags == 2:
                r.u32("data segment memory index")
                r.const_expr("data segment offset")
            elif flags != 1:
                r.fail(f"invalid data segment flags {flags} (expected 0, 1 or 2)", p)
            q = r.pos
            x = b[q] if q < r.end else 0x80
            if x < 0x80:
                size = x
                q += 1
            else:
                size = r.u32("data segment size")
                q = r.pos
            if size > r.end - q:
                r.fail(f"data segment of {size} bytes runs past the end of the data section", q)
            r.pos = q + size
        self.data_segments = n

    # ---- custom sections

    def name_section(self, b: bytes, start: int, end: int) -> None:
        """The `name` section: module name (subsection 0) and function names (subsection 1).

        Each subsection is kept only if it is well-formed; the caller ignores the error raised by a bad one."""
        r = _Reader(b, start, end, "name section")
        while r.pos < end:
            sub = r.byte("name subsection id")
            size = r.u32("name subsection size")
            if size > end - r.pos:
                r.fail("name subsection runs past the end of the name section")
            sub_end = r.pos + size
            if sub == 0:
                self.module_name = _Reader(b, r.pos, sub_end, "module name subsection").name("module name")
            elif sub == 1:
                names: dict[int, str] = {}
                s = _Reader(b, r.pos, sub_end, "function name subsection")
                u32 = s.u32
                for _ in range(s.count("function name", 2)):
                    index = u32("function index")
                    p = s.pos
                    n = b[p] if p < sub_end else 0x80
                    if n < 0x80:  # names shorter than 128 bytes: a one-byte length
                        p += 1
                    else:
                        n = u32("function name length")
                        p = s.pos
                    if n > sub_end - p:
                        s.fail("function name runs past the end of the name subsection")
                    s.pos = p + n
                    try:
                        names[index] = b[p : p + n].decode("utf-8")
                    except UnicodeDecodeError:
                        s.fail("function name is not valid UTF-8", p)
                self.function_names = names
            r.pos = sub_end

    def producers_section(self, b: bytes, start: int, end: int) -> None:
        r = _Reader(b, start, end, "producers section")
        producers: dict[str, list[tuple[str, str]]] = {}
        for _ in range(r.count("producers field", 2)):
            field = r.name("producers field name")
            values = producers.setdefault(field, [])
            for _ in range(r.count("producers value", 2)):
                values.append((r.name("producer name"), r.name("producer version")))
        if r.pos != end:
            r.fail("trailing bytes in the producers section")
        self.producers = producers

    # ---- the end

    def resolve_exports(self) -> list[Export]:
        imported, types, defined = self.import_func_types, self.types, self.func_type_indices
        nimported = len(imported)
        nfuncs = nimported + len(defined)
        out = []
        for name, kind, index, offset in self.raw_exports:
            kind_name = _KINDS[kind]
            if kind == 0:
                if index >= nfuncs:
                    raise InvalidModule(
                        f"export {name!r} refers to function {index} but only {nfuncs} functions exist", offset
                    )
                ty: ExternType = imported[index] if index < nimported else types[defined[index - nimported]]  # type: ignore[assignment]
            else:
                space = self.spaces[kind_name]
                if index >= len(space):
                    raise InvalidModule(
                        f"export {name!r} refers to {kind_name} {index} but only {len(space)} exist", offset
                    )
                ty = space[index]
            out.append(Export(name, kind_name, index, ty))
        return out


_SECTION_PARSERS = {
    1: _ModuleBuilder.type_section,
    2: _ModuleBuilder.import_section,
    3: _ModuleBuilder.function_section,
    4: _ModuleBuilder.table_section,
    5: _ModuleBuilder.memory_section,
    6: _ModuleBuilder.global_section,
    7: _ModuleBuilder.export_section,
    8: _ModuleBuilder.start_section,
    9: _ModuleBuilder.element_section,
    10: _ModuleBuilder.code_section,
    11: _ModuleBuilder.data_section,
    12: _ModuleBuilder.data_count_section,
    13: _ModuleBuilder.tag_section,
}


def _section_header(b: bytes, pos: int, n: int, names: dict[int, str]) -> tuple[int, int, int, str]:
    """Read a section header at `pos`: (id, payload size, payload offset, section name)."""
    sid = b[pos]
    if sid != 0 and sid not in names:
        raise InvalidModule(f"unknown section id {sid}", pos)
    r = _Reader(b, pos + 1, n, "input")
    name = names.get(sid, "custom")
    size = r.u32(f"{name} section size")
    if size > n - r.pos:
        raise InvalidModule(
            f"{name} section of {size} bytes runs past the end of the input ({n - r.pos} bytes left)", pos + 1
        )
    return sid, size, r.pos, name


def _custom_name(b: bytes, payload: int, end: int) -> tuple[str, int]:
    r = _Reader(b, payload, end, "custom section")
    name = r.name("custom section name")
    return name, r.pos


def _parse_module(b: bytes) -> ParsedModule:
    n = len(b)
    m = _ModuleBuilder()
    sections: list[Section] = []
    customs: list[Section] = []
    last_rank, last_name = 0, ""
    pos = 8
    while pos < n:
        sid, size, payload, name = _section_header(b, pos, n, _SECTION_NAMES)
        end = payload + size
        if sid == 0:
            cname, data = _custom_name(b, payload, end)
            section = Section(0, f"custom:{cname}", pos, size, payload)
            customs.append(section)
            if cname == "name":
                with contextlib.suppress(InvalidModule):  # the spec says: ignore a malformed name section
                    m.name_section(b, data, end)
            elif cname == "producers":
                with contextlib.suppress(InvalidModule):
                    m.producers_section(b, data, end)
        else:
            rank = _SECTION_RANK[sid]
            if rank <= last_rank:
                if rank == last_rank:
                    raise InvalidModule(f"duplicate {name} section", pos)
                raise InvalidModule(f"{name} section out of order: it must come before the {last_name} section", pos)
            last_rank, last_name = rank, name
            section = Section(sid, name, pos, size, payload)
            r = _Reader(b, payload, end, f"{name} section")
            _SECTION_PARSERS[sid](m, r)
            if r.pos != end:
                raise InvalidModule(
                    f"{name} section has {end - r.pos} unexpected bytes after its contents (declared size {size})",
                    r.pos,
                )
        sections.append(section)
        pos = end

    # cross-section checks
    ndefined = len(m.func_type_indices)
    if m.bodies is None and ndefined:
        raise InvalidModule(f"the function section declares {ndefined} functions but there is no code section", n)
    if m.data_count is not None and m.data_segments is None and m.data_count:
        raise InvalidModule(f"the data count section says {m.data_count} segments but there is no data section", n)
    nfuncs = len(m.import_func_types) + ndefined
    if m.start is not None and m.start >= nfuncs:
        raise InvalidModule(f"start function {m.start} does not exist ({nfuncs} functions)", m.start_offset)
    exports = m.resolve_exports()

    names = m.function_names
    first = len(m.import_func_types)
    functions = tuple(
        [Function(first + i, names.get(first + i), size, offset) for i, (offset, size) in enumerate(m.bodies or ())]
    )
    return ParsedModule(
        kind="module",
        version=1,
        sections=tuple(sections),
        types=tuple(m.types),
        imports=tuple(m.imports),
        exports=tuple(exports),
        functions=functions,
        memories=tuple(m.memories),
        tables=tuple(m.tables),
        globals=tuple(m.globals),
        start=m.start,
        data_segments=m.data_segments or 0,
        element_segments=m.element_segments,
        custom_sections=tuple(customs),
        function_names=names,
        module_name=m.module_name,
        producers=m.producers,
        has_dwarf=any(s.name.startswith("custom:.debug_") for s in customs),
        tags=tuple(m.tags),
    )


def _parse_component(b: bytes) -> ParsedModule:
    n = len(b)
    m = _ModuleBuilder()
    sections: list[Section] = []
    customs: list[Section] = []
    pos = 8
    while pos < n:
        sid, size, payload, name = _section_header(b, pos, n, _COMPONENT_SECTION_NAMES)
        end = payload + size
        if sid == 0:
            cname, data = _custom_name(b, payload, end)
            section = Section(0, f"custom:{cname}", pos, size, payload)
            customs.append(section)
            if cname == "producers":
                with contextlib.suppress(InvalidModule):
                    m.producers_section(b, data, end)
        else:
            section = Section(sid, name, pos, size, payload)
        sections.append(section)
        pos = end
    return ParsedModule(
        kind="component",
        version=0x0D,
        sections=tuple(sections),
        types=(),
        imports=(),
        exports=(),
        functions=(),
        memories=(),
        tables=(),
        globals=(),
        start=None,
        data_segments=0,
        element_segments=0,
        custom_sections=tuple(customs),
        function_names={},
        module_name=None,
        producers=m.producers,
        has_dwarf=any(s.name.startswith("custom:.debug_") for s in customs),
    )


def parse(data: bytes | bytearray | memoryview) -> ParsedModule:
    """Parse a WebAssembly module or component; raise `InvalidModule` (with the byte offset) if malformed."""
    if isinstance(data, bytes):
        b = data
    else:
        try:
            b = memoryview(data).tobytes()  # bytearray, memoryview, mmap, array...
        except TypeError:
            raise TypeError(f"parse() needs bytes, bytearray or memoryview, not {type(data).__name__}") from None
    header = b[:8]
    if not _MAGIC.startswith(header[:4]):
        raise InvalidModule(f"expected the magic bytes 00 61 73 6d (\\0asm), found {header[:4].hex(' ')}", 0)
    if len(header) < 8:
        raise InvalidModule(f"unexpected end of input in the 8-byte header (got {len(b)} bytes)", len(b))
    version = header[4:8]
    try:
        if version == _MODULE_VERSION:
            return _parse_module(b)
        if version == _COMPONENT_VERSION:
            return _parse_component(b)
    except InvalidModule:
        raise
    except Exception as exc:  # a parser bug must still surface as InvalidModule, never as IndexError & co
        raise InvalidModule(f"unreadable module ({type(exc).__name__}: {exc})", None) from exc
    if version[2:] == b"\x01\x00":
        raise InvalidModule(f"unsupported component version {int.from_bytes(version[:2], 'little'):#x}", 4)
    raise InvalidModule(f"unsupported version {version.hex(' ')} (expected 01 00 00 00)", 4)
