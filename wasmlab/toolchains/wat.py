"""WAT text -> Wasm with wasmtime's wat2wasm (in process, ~2 ms)."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import CompileError
from .base import CompileOptions, Toolchain


class WatToolchain(Toolchain):
    lang = "wat"
    extensions = (".wat", ".wast")
    install = "pip install wasmtime"

    def unavailable_reason(self) -> str | None:
        try:
            import wasmtime  # noqa: F401
        except ImportError:
            return "the wasmtime package is not installed"
        return None

    def version(self) -> str:
        import wasmtime

        return f"wasmtime {getattr(wasmtime, '__version__', '') or _dist_version('wasmtime')}"

    def build(self, source: str, options: CompileOptions, workdir: Path, filename: str) -> bytes:
        import wasmtime

        try:
            data = bytes(wasmtime.wat2wasm(source))
            if not data.startswith(b"\0asm\x0d"):  # components are validated by the component runtime
                wasmtime.Module.validate(wasmtime.Engine(), data)
            return data
        except wasmtime.WasmtimeError as exc:
            text = str(exc).replace("<anon>", filename)
            first = next((line for line in text.splitlines() if line.strip()), text)
            location = re.search(rf"{re.escape(filename)}:\d+:\d+", text)
            where = f" ({location.group(0)})" if location and location.group(0) not in first else ""
            raise CompileError(f"wat compile error: {first.strip()}{where}", diagnostics=text, lang="wat") from None


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
