"""Fermyon Spin (`spin up`), which runs a wasi:http component file as an app, not installable here."""

from __future__ import annotations

from pathlib import Path

from .base import ElsewherePlatform


class SpinPlatform(ElsewherePlatform):
    name = "spin"
    title = "Fermyon Spin"
    install = "curl -fsSL https://spinframework.dev/downloads/install.sh | bash"
    reason = "Spin has no package on PyPI, npm or apt (its installer downloads a binary)"

    def command(self, path: Path, port: int) -> list[str]:
        return ["spin", "up", "--from", str(path), "--listen", f"127.0.0.1:{port}"]
