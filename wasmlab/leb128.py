"""LEB128, the variable-length integers of the Wasm binary format, written once: the encoders, and a decoder for
bytes already known to be a valid module (rewriting a parsed module's sections).

`wasmlab.binary` reads untrusted modules with its own checked decoder (the spec's length and range limits,
errors that name the offset); the engine workers' `worker/scripts/pyserve.py` keeps a copy because it runs on
another Python without wasmlab. Written here rather than taken from PyPI's `leb128`: three loops.
"""

from __future__ import annotations

__all__ = ["read_uleb", "sleb", "uleb"]


def uleb(value: int) -> bytes:
    """Unsigned LEB128 of `value` (>= 0)."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def sleb(value: int) -> bytes:
    """Signed LEB128 of `value`."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)


def read_uleb(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """(value, position after it) of the unsigned LEB128 at `pos` of valid bytes (IndexError past the end)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
