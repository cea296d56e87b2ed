"""Conveniences over any `Instance`, built only on its abstract methods (call, export_names, memory_size,
read_memory, write_memory): `instance.exports.NAME(...)`, C strings, typed arrays, memory snapshots and diffs."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import UsageError

DTYPES = {
    "i8": "b",
    "u8": "B",
    "i16": "h",
    "u16": "H",
    "i32": "i",
    "u32": "I",
    "i64": "q",
    "u64": "Q",
    "f32": "f",
    "f64": "d",
}


class ExportsProxy:
    """`instance.exports.NAME(*args)`: attribute access to exported functions (`dir()` lists them). The bound
    callable is cached on first use, so later lookups are plain attribute reads."""

    _instance: Any

    def __init__(self, instance: Any) -> None:
        object.__setattr__(self, "_instance", instance)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):
            raise AttributeError(name)
        instance = self._instance
        names = instance.export_names()
        if name not in names:
            raise AttributeError(f"no export {name!r}: exports are {', '.join(names) or 'none'}")
        getter = getattr(instance, "_export_callable", None)
        fn = getter(name) if getter else (lambda *args: instance.call(name, *args))
        object.__setattr__(self, name, fn)
        return fn

    def __getitem__(self, name: str) -> Callable[..., Any]:
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def __dir__(self) -> list[str]:
        return [n for n in self._instance.export_names() if n.isidentifier()]

    def __repr__(self) -> str:
        return f"<exports {', '.join(self._instance.export_names())}>"


class InstanceHelpers:
    """Conveniences over the abstract `Instance` methods: the exports proxy, C strings, typed arrays and
    memory snapshots with diffs. Mix into any `Instance` subclass."""

    @property
    def exports(self) -> ExportsProxy:
        proxy = self.__dict__.get("_exports_proxy")
        if proxy is None:
            proxy = self.__dict__["_exports_proxy"] = ExportsProxy(self)
        return proxy

    def read_cstring(self, address: int, max_length: int = 1 << 20, memory: str | None = None) -> str:
        """The NUL-terminated UTF-8 string at `address` (at most `max_length` bytes, and not past memory)."""
        inst: Any = self
        end = min(inst.memory_size(memory), address + max_length)
        out = bytearray()
        pos = address
        while pos < end:
            chunk = inst.read_memory(pos, min(256, end - pos), memory)
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                break
            out += chunk
            pos += len(chunk)
        return out.decode(errors="replace")

    def read_array(self, address: int, count: int, dtype: str = "i32", memory: str | None = None) -> list[Any]:
        """`count` little-endian values of `dtype` (i8 u8 i16 u16 i32 u32 i64 u64 f32 f64) at `address`."""
        code = _dtype(dtype)
        size = struct.calcsize("<" + code)
        data = self.read_memory(address, count * size, memory)  # type: ignore[attr-defined]
        return list(struct.unpack(f"<{count}{code}", data))

    def write_array(self, address: int, values: Iterable[Any], dtype: str = "i32", memory: str | None = None) -> None:
        values = list(values)
        code = _dtype(dtype)
        self.write_memory(address, struct.pack(f"<{len(values)}{code}", *values), memory)  # type: ignore[attr-defined]

    def snapshot(self, memory: str | None = None) -> bytes:
        """A copy of the whole linear memory, to compare with `diff_memory` after some calls."""
        inst: Any = self
        return inst.read_memory(0, inst.memory_size(memory), memory)

    @staticmethod
    def diff_memory(before: bytes, after: bytes) -> list[tuple[int, bytes, bytes]]:
        return diff_memory(before, after)


def _dtype(dtype: str) -> str:
    try:
        return DTYPES[dtype]
    except KeyError:
        raise UsageError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}") from None


def diff_memory(before: bytes, after: bytes, block: int = 256) -> list[tuple[int, bytes, bytes]]:
    """Changed byte ranges between two memory snapshots: `[(start, old_bytes, new_bytes)]`, in address order.
    A snapshot taken after `memory.grow` is longer: the missing tail of the shorter one counts as zeros (new
    pages are zeroed), so only bytes written since show up."""
    size = max(len(before), len(after))
    a = memoryview(bytes(before).ljust(size, b"\0"))
    b = memoryview(bytes(after).ljust(size, b"\0"))
    ranges: list[tuple[int, bytes, bytes]] = []
    start = -1
    for base in range(0, size, block):
        stop = min(base + block, size)
        if a[base:stop] == b[base:stop]:
            if start >= 0:
                ranges.append((start, bytes(a[start:base]), bytes(b[start:base])))
                start = -1
            continue
        for i in range(base, stop):
            if a[i] != b[i]:
                if start < 0:
                    start = i
            elif start >= 0:
                ranges.append((start, bytes(a[start:i]), bytes(b[start:i])))
                start = -1
    if start >= 0:
        ranges.append((start, bytes(a[start:size]), bytes(b[start:size])))
    return ranges
