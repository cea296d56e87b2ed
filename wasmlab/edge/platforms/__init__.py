"""Edge platforms by name: the same standard wasi:http handler served by the lab, by Cloudflare's workerd, by
jco, and (listed with what they need) by hosts that cannot be installed here.

    from wasmlab.edge import platforms

    platforms.list_platforms()                   # DataFrame: name, available, reason, version, install
    with platforms.get("workerd").start(handler) as server:   # a process on 127.0.0.1, stopped by its PID
        server.url, server.cold_start_s, server.rss_bytes()

Each platform is one file with a `base.Platform` subclass, listed in `BUILTIN` as `{name: (module, class)}`;
`base` describes the protocol. Platforms never import each other.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from ...errors import UsageError
from .base import Artefact, Platform, PlatformFailed, PlatformUnavailable, Server, artefact

__all__ = [
    "BUILTIN",
    "Artefact",
    "Platform",
    "PlatformFailed",
    "PlatformUnavailable",
    "Server",
    "artefact",
    "available",
    "get",
    "list_platforms",
    "names",
]

BUILTIN: dict[str, tuple[str, str]] = {
    "wasmlab": ("lab", "LabPlatform"),
    "workerd": ("workerd", "WorkerdPlatform"),
    "jco": ("jco", "JcoPlatform"),
    "wasmtime-serve": ("wasmtime_serve", "WasmtimeServePlatform"),
    "spin": ("spin", "SpinPlatform"),
    "fastly": ("fastly", "FastlyPlatform"),
}
DEFAULT = ("wasmlab", "workerd", "jco")


def names() -> list[str]:
    return list(BUILTIN)


@cache
def get(name: str) -> Platform:
    """The platform called `name` (one shared object); UsageError naming the known ones otherwise."""
    key = name.strip().lower()
    if key not in BUILTIN:
        raise UsageError(f"unknown platform {name!r}: use one of {', '.join(BUILTIN)}")
    module, cls = BUILTIN[key]
    return getattr(importlib.import_module(f".{module}", __name__), cls)()


def available(requested: Any = None) -> list[str]:
    """The requested platforms (default: wasmlab, workerd, jco) that can run here."""
    wanted = parse(requested) if requested is not None else list(DEFAULT)
    return [name for name in wanted if get(name).unavailable_reason() is None]


def parse(platforms: Any) -> list[str]:
    """ "a,b" or ["a", "b"] -> checked names, in order, without repeats."""
    items = platforms.split(",") if isinstance(platforms, str) else list(platforms)
    out = []
    for item in (str(i).strip() for i in items):
        if item and get(item).name not in out:
            out.append(get(item).name)
    if not out:
        raise UsageError(f"no platform given: use some of {', '.join(BUILTIN)}")
    return out


def list_platforms(handler_path: str = "handler.wasm", port: int = 8080):  # -> pandas.DataFrame
    """Every platform: available here or why not, its version, how to get it, and the command that serves
    `handler_path` on it (for the ones not installable here: what to run elsewhere)."""
    from pathlib import Path

    import pandas as pd

    rows = []
    for name in BUILTIN:
        platform = get(name)
        reason = platform.unavailable_reason()
        rows.append(
            {
                "platform": name,
                "title": platform.title,
                "available": reason is None,
                "reason": reason or "",
                "version": platform.version() if reason is None else "",
                "install": platform.install,
                "command": " ".join(platform.command(Path(handler_path), port)) if not platform.installable else "",
            }
        )
    return pd.DataFrame(rows)
