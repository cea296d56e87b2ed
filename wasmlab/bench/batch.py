"""Batching calls too short to time: an in-guest loop added to the module, or host loops.

In-guest (`with_loop`): a copy of the module with one more export, `wasmlab_bench_loop(n: i32) -> i64`, that
calls F n times with ARGS and folds every result into a checksum. The arguments live in mutable globals read
before every call (the Wasm counterpart of the native harness's `volatile` arguments), so no engine can treat
them as constants; each result is folded in (`acc = acc * P + bits`, wrapping at 64 bits), so none is dead.
The loop is appended to the module's own sections (a type, globals, a function, an export): F and everything
it calls stay byte for byte as they were, and the export-section edit is all an engine sees of the harness.
`loop(0)` returns at once: the per-call cost of the engine's host call, measured on the same instance.

Why binary surgery rather than a second module importing F: cross-module linking differs on every engine (and
some have none), while one more export works everywhere an export does.

Host loops (`batch="host"`, or when F's signature cannot be looped in the guest: references, v128, components):
the host calls F k times per sample; the engine's own per-call time is summed, and the host's cost per call is
measured apart, on an empty export (`nop_module()`).

The checksum of n calls whose results are `bits` (each result as an unsigned 64-bit pattern: i32 zero-extended,
floats by their bits) is `checksum(bits, n)`, computed here in closed form: a loop's answer can be checked
for any n without running n iterations in Python, and the native harness folds the same way.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from ..errors import UsageError
from ..leb128 import read_uleb, sleb, uleb
from ..module import Module, Provenance
from ..runtimes.values import coerce_args

LOOP_EXPORT = "wasmlab_bench_loop"
NOP_EXPORT = "wasmlab_bench_nop"
MASK64 = (1 << 64) - 1
OFFSET = 0xCBF29CE484222325  # the checksum's start (FNV-1a's offset basis)
PRIME = 0x100000001B3  # its multiplier (FNV's 64-bit prime): odd, so the fold never loses bits
LOOPABLE = {"i32": 0x7F, "i64": 0x7E, "f32": 0x7D, "f64": 0x7C}


class NotLoopable(UsageError):
    """F cannot be called from an in-guest loop (its signature, or the module is a component)."""


# ------------------------------------------------------------------------------------------ checksums
def result_bits(value: Any, results: Sequence[str]) -> list[int]:
    """F's result as unsigned 64-bit patterns, one per result (i32 zero-extended, floats by their bits)."""
    values = list(value) if isinstance(value, (tuple, list)) else ([] if value is None else [value])
    if len(values) != len(results):
        raise UsageError(f"expected {len(results)} result(s) of types {', '.join(results) or 'none'}, got {value!r}")
    out = []
    for v, t in zip(values, results, strict=True):
        if t == "i32":
            out.append(int(v) & 0xFFFFFFFF)
        elif t == "i64":
            out.append(int(v) & MASK64)
        elif t == "f32":
            out.append(struct.unpack("<I", struct.pack("<f", float(v)))[0])
        elif t == "f64":
            out.append(struct.unpack("<Q", struct.pack("<d", float(v)))[0])
        else:
            raise NotLoopable(f"a {t} result cannot be checksummed")
    return out


def checksum(bits: Sequence[int], n: int) -> int:
    """The loop's answer after n calls that each returned `bits`: acc = acc * PRIME + b for every b, from
    OFFSET, modulo 2**64. One call is an affine map x -> a*x + c; n calls are that map composed n times, by
    repeated squaring (O(log n))."""
    a, c = 1, 0
    for b in bits:  # one call
        a, c = (a * PRIME) & MASK64, (c * PRIME + b) & MASK64
    ra, rc = 1, 0  # the identity; then (a, c)^n
    while n:
        if n & 1:
            ra, rc = (a * ra) & MASK64, (a * rc + c) & MASK64
        a, c = (a * a) & MASK64, (a * c + c) & MASK64
        n >>= 1
    return (ra * OFFSET + rc) & MASK64


# ------------------------------------------------------------------------------------------ the loop
def can_loop(module: Module, name: str) -> str | None:
    """None when `name` can be called from an in-guest loop; else why not (one line)."""
    if module.is_component:
        return "the module is a component (the loop is added to core modules)"
    ftype = module.func_type(name)
    odd = [t for t in (*ftype.params, *ftype.results) if t not in LOOPABLE]
    if odd:
        return f"{name} has {', '.join(dict.fromkeys(odd))} parameters or results (the loop handles i32 i64 f32 f64)"
    if LOOP_EXPORT in module.export_names(None):
        return f"the module already exports {LOOP_EXPORT}"
    return None


def with_loop(module: Module, name: str, args: Sequence[Any]) -> Module:
    """A copy of `module` that also exports `wasmlab_bench_loop(n) -> checksum`, calling `name(*args)` n times
    (see the module docstring). NotLoopable when `can_loop` says no."""
    why = can_loop(module, name)
    if why:
        raise NotLoopable(f"cannot add an in-guest loop: {why}")
    parsed = module.parsed
    ftype = module.func_type(name)
    values = coerce_args(name, ftype.params, tuple(args))
    target = next(e.index for e in parsed.exports if e.name == name and e.kind == "func")
    imported = {kind: sum(1 for i in parsed.imports if i.kind == kind) for kind in ("func", "global")}
    first_global = imported["global"] + len(parsed.globals)
    type_index = len(parsed.types)
    func_index = imported["func"] + len(parsed.functions)

    added = {
        1: _bytes(0x60, *_vec([LOOPABLE["i32"]]), *_vec([LOOPABLE["i64"]])),  # (i32) -> i64
        3: uleb(type_index),
        6: b"".join(bytes([LOOPABLE[t], 1]) + _const(t, v) for t, v in zip(ftype.params, values, strict=True)),
        7: _name(LOOP_EXPORT) + b"\x00" + uleb(func_index),
        10: _sized(_loop_body(ftype.results, target, first_global, len(ftype.params))),
    }
    counts = {1: 1, 3: 1, 6: len(ftype.params), 7: 1, 10: 1}
    data = _append_entries(module.bytes, parsed.sections, added, counts)
    provenance = Provenance("bytes", module.provenance.source_name, module.provenance.lang, module.provenance.kind)
    return Module(data, provenance, module.name)


def _loop_body(results: tuple[str, ...], target: int, first_global: int, nparams: int) -> bytes:
    """locals: 0 = n (param), 1 = acc (i64), 2.. = F's results."""
    temps = _bytes(*uleb(1 + len(results)))  # local groups: acc, then one group per result
    temps += _bytes(1, LOOPABLE["i64"]) + b"".join(_bytes(1, LOOPABLE[t]) for t in results)
    code = bytearray()
    code += _bytes(0x42) + sleb(OFFSET - (1 << 64)) + _bytes(0x21, 1)  # acc = OFFSET
    code += _bytes(0x02, 0x40, 0x20, 0, 0x45, 0x0D, 0)  # block; n == 0 -> out
    code += _bytes(0x03, 0x40)  # loop
    for g in range(nparams):
        code += _bytes(0x23) + uleb(first_global + g)  # global.get arg
    code += _bytes(0x10) + uleb(target)  # call F
    for i in reversed(range(len(results))):
        code += _bytes(0x21) + uleb(2 + i)  # local.set result i
    for i, t in enumerate(results):  # acc = acc * PRIME + bits(result i)
        code += _bytes(0x20, 1, 0x42) + sleb(PRIME) + _bytes(0x7E, 0x20) + uleb(2 + i)
        code += {"i32": _bytes(0xAD), "i64": b"", "f32": _bytes(0xBC, 0xAD), "f64": _bytes(0xBD)}[t]
        code += _bytes(0x7C, 0x21, 1)
    code += _bytes(0x20, 0, 0x41, 1, 0x6B, 0x22, 0, 0x0D, 0)  # n -= 1; loop while n != 0
    code += _bytes(0x0B, 0x0B, 0x20, 1, 0x0B)  # end loop, end block, acc
    return temps + bytes(code)


# Section order of the spec (the tag section, 13, sits between memory and global).
_RANK = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}


def _append_entries(data: bytes, sections: Sequence[Any], added: dict[int, bytes], counts: dict[int, int]) -> bytes:
    """The module with `added[id]` appended to section `id`'s vector (its count raised by `counts[id]`); a
    missing section is created in its place in the spec's order."""
    pending = {sid: body for sid, body in added.items() if counts[sid]}
    out = bytearray(data[:8])

    def emit_new(before_rank: int) -> None:
        for sid in sorted([s for s in pending if _RANK[s] < before_rank], key=_RANK.__getitem__):
            out.extend(_section(sid, uleb(counts[sid]) + pending.pop(sid)))

    for s in sections:
        if s.id != 0:
            emit_new(_RANK[s.id])
        if s.id in pending:
            count, at = read_uleb(data, s.payload_offset)
            rest = data[at : s.end]
            out.extend(_section(s.id, uleb(count + counts[s.id]) + rest + pending.pop(s.id)))
        else:
            out.extend(data[s.offset : s.end])
    emit_new(len(_RANK) + 1)
    return bytes(out)


def nop_module() -> Module:
    """A module exporting one empty function, `wasmlab_bench_nop`: the host's cost of one call on an engine."""
    sections = [
        _section(1, _bytes(1, 0x60, 0, 0)),  # one type: () -> ()
        _section(3, _bytes(1, 0)),  # one function of type 0
        _section(7, _bytes(1) + _name(NOP_EXPORT) + _bytes(0, 0)),  # exported as NOP_EXPORT
        _section(10, _bytes(1) + _sized(_bytes(0, 0x0B))),  # no locals, end
    ]
    return Module(b"\0asm\x01\0\0\0" + b"".join(sections), Provenance("bytes"), "nop")


# ------------------------------------------------------------------------------------------ encodings
def _bytes(*values: int) -> bytes:
    return bytes(values)


def _vec(items: Sequence[int]) -> bytes:
    return uleb(len(items)) + bytes(items)


def _name(text: str) -> bytes:
    raw = text.encode()
    return uleb(len(raw)) + raw


def _sized(body: bytes) -> bytes:
    return uleb(len(body)) + body


def _section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + _sized(payload)


def _const(valtype: str, value: Any) -> bytes:
    """A constant expression of `valtype` holding `value` (as `coerce_args` gave it: signed ints)."""
    if valtype == "i32":
        return b"\x41" + sleb(int(value)) + b"\x0b"
    if valtype == "i64":
        return b"\x42" + sleb(int(value)) + b"\x0b"
    if valtype == "f32":
        return b"\x43" + struct.pack("<f", float(value)) + b"\x0b"
    return b"\x44" + struct.pack("<d", float(value)) + b"\x0b"
