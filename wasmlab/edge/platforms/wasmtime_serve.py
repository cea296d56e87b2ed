"""`wasmtime serve`: the reference wasi:http/proxy host (the Wasmtime CLI), not installable here."""

from __future__ import annotations

from pathlib import Path

from .base import ElsewherePlatform


class WasmtimeServePlatform(ElsewherePlatform):
    name = "wasmtime-serve"
    title = "wasmtime serve"
    install = "curl https://wasmtime.dev/install.sh -sSf | bash (the CLI; PyPI wasmtime is the library only)"
    reason = "the Wasmtime CLI has no package on PyPI, npm or apt (PyPI wasmtime is the embedding library)"

    def command(self, path: Path, port: int) -> list[str]:
        # -S cli: componentize-py (and most language toolchains) import wasi:cli for stdio and the environment
        return ["wasmtime", "serve", "-S", "cli", "--addr", f"127.0.0.1:{port}", str(path)]
