"""The lab's own platform: `wasmlab edge serve HANDLER --platform wasmlab`, as a process of its own.

In a notebook the lab's server can run in process, but here it is started exactly like workerd and jco (a
subprocess on loopback, timed from process start to first answer, stopped by its PID), so the comparison is fair.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ... import __version__
from .base import Platform


class LabPlatform(Platform):
    name = "wasmlab"
    title = "wasmlab (its own server, wasmtime)"
    install = "pip install wasmlab (with wasmtime)"

    def unavailable_reason(self) -> str | None:
        from importlib.util import find_spec

        return None if find_spec("wasmtime") else "wasmtime-py is not installed (pip install wasmtime)"

    def version(self) -> str:
        return f"wasmlab {__version__}"

    def command(self, path: Path, port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "wasmlab",
            "edge",
            "serve",
            str(path),
            "--platform",
            "wasmlab",
            "--port",
            str(port),
        ]
