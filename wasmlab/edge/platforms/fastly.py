"""Fastly Compute's local host, Viceroy, not installable here (`fastly compute serve` downloads it)."""

from __future__ import annotations

from pathlib import Path

from .base import ElsewherePlatform


class FastlyPlatform(ElsewherePlatform):
    name = "fastly"
    title = "Fastly Compute (Viceroy)"
    install = "cargo install --locked viceroy (or the Fastly CLI: fastly compute serve --file handler.wasm)"
    reason = "Viceroy has no package on PyPI, npm or apt; `fastly compute serve` downloads it and fails offline"

    def command(self, path: Path, port: int) -> list[str]:
        return ["viceroy", "serve", "--addr", f"127.0.0.1:{port}", str(path)]
