"""What a served module may do: deny-by-default, like Wassette. Nothing is granted unless named here.

* files: only the directories in `dirs` (guest path -> host directory), preopened through WASI; the guest sees
  no other path of the host (wasmtime never follows a symlink out of a preopened directory);
* environment: only the variables in `env` (a name alone grants the host's value of that variable);
* network: none. wasmlab grants no socket address, so a guest's TCP/UDP connects and name lookups fail;
* every call: at most `timeout` seconds of wall clock, `fuel` units of instructions (when set), and
  `max_memory` bytes of linear memory. The guest's stdout and stderr are captured, never sent to the client
  (a trap's message carries the last line of stderr).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

DEFAULT_TIMEOUT = 10.0  # seconds per call
DEFAULT_MAX_MEMORY = 256 << 20  # bytes of linear memory per instance
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Policy:
    """The grants and limits of one server. `Policy()` grants nothing and keeps the default limits."""

    dirs: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = DEFAULT_TIMEOUT
    fuel: int | None = None
    max_memory: int | None = DEFAULT_MAX_MEMORY

    def __post_init__(self) -> None:
        for guest, host in self.dirs.items():
            if not guest.startswith("/"):
                raise UsageError(f"allow-dir: the guest path {guest!r} must be absolute, e.g. /data={host}")
            if not Path(host).is_dir():
                raise UsageError(f"allow-dir: {host!r} (for the guest's {guest}) is not a directory")
        if self.timeout is not None and self.timeout <= 0:
            raise UsageError(f"timeout={self.timeout}: give a positive number of seconds")
        if self.fuel is not None and self.fuel <= 0:
            raise UsageError(f"fuel={self.fuel}: give a positive instruction budget")
        if self.max_memory is not None and self.max_memory < 65536:
            raise UsageError(f"max_memory={self.max_memory}: give at least one 64 KiB page (65536 bytes)")

    @classmethod
    def grant(
        cls,
        allow_dir: Iterable[str] = (),
        allow_env: Iterable[str] = (),
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        fuel: int | None = None,
        max_memory: int | str | None = DEFAULT_MAX_MEMORY,
    ) -> Policy:
        """A policy from command-line style grants: `GUEST=HOST` (or `HOST`, seen at the same path) per
        directory, `NAME` (the host's value) or `NAME=VALUE` per variable; `max_memory` in bytes or "64M"."""
        dirs = {}
        for item in allow_dir:
            guest, sep, host = item.partition("=")
            host = host if sep else guest
            resolved = str(Path(host).expanduser().resolve())
            dirs[guest if sep else resolved] = resolved
        env = {}
        for item in allow_env:
            name, sep, value = item.partition("=")
            if not sep:
                if name not in os.environ:
                    raise UsageError(f"allow-env {name}: the variable is not set here; pass {name}=VALUE")
                value = os.environ[name]
            env[name] = value
        return cls(dirs, env, timeout, fuel, parse_size(max_memory) if max_memory is not None else None)

    def run_options(self) -> dict[str, Any]:
        """Options for `Module.instantiate`."""
        return {
            "dirs": dict(self.dirs),
            "env": dict(self.env),
            "timeout": self.timeout,
            "fuel": self.fuel,
            "max_memory": self.max_memory,
        }

    def describe(self) -> dict[str, Any]:
        """What a client may see: grants by path and name (never the variables' values) and the limits."""
        return {
            "default": "deny",
            "files": [{"guest": g, "host": h} for g, h in self.dirs.items()],
            "environment": sorted(self.env),
            "network": [],
            "limits": {
                "timeout_s": self.timeout,
                "fuel": self.fuel,
                "max_memory_bytes": self.max_memory,
            },
            "output": "the guest's stdout and stderr are captured, not returned; a trap reports stderr's last line",
        }

    def summary(self) -> str:
        """One line for humans (and the server's MCP instructions)."""
        files = ", ".join(f"{h} as {g}" for g, h in self.dirs.items()) or "none"
        env = ", ".join(sorted(self.env)) or "none"
        limits = [f"{self.timeout:g} s" if self.timeout else "no time limit"]
        limits.append(f"{self.fuel:,} fuel" if self.fuel else "no fuel limit")
        limits.append(f"{self.max_memory / (1 << 20):g} MiB memory" if self.max_memory else "no memory cap")
        return f"deny by default; files: {files}; environment: {env}; network: none; per call: {', '.join(limits)}"


def parse_size(value: int | str) -> int:
    """Bytes from 1048576, "64M", "64MiB", "1g" (binary units)."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if not match:
        raise UsageError(f"max-memory {value!r}: give bytes, e.g. 67108864 or 64M")
    number, unit = float(match.group(1)), (match.group(2) or "b").lower()[:1]
    return int(number * {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit])
