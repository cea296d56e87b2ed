"""A content-addressed cache of compiled modules.

An entry is two files named by its key: `KEY.wasm` (the module) and `KEY.json` (its sha256 and provenance).
Both are written to a temporary name and renamed into place, so two processes compiling at once never see
half an entry; the JSON is written last and is the commit point. A read checks the sha256: a truncated or
corrupt entry is dropped and reported as a miss, so the caller simply compiles again; so is anything but a regular
file under an entry's name (a FIFO or a symlink to /dev/zero would hang the read). A cache directory that
cannot be written to turns the cache into a no-op rather than an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = 1  # bump when the key's meaning changes
MAX_ENTRY = 1 << 30  # bytes: a larger file under an entry's name is not one of ours


def cache_dir() -> Path:
    """The cache location: `$WASMLAB_CACHE`, else `~/.cache/wasmlab`."""
    env = os.environ.get("WASMLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "wasmlab"


def cache_key(**parts: Any) -> str:
    """A stable key for everything that determines a build (language, source, options, toolchain version)."""
    blob = json.dumps({"schema": SCHEMA, **parts}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_regular(path: Path) -> bytes:
    """The bytes of a regular file; OSError for anything else planted under the name (a FIFO would block the
    read forever, a symlink to /dev/zero would never end, a directory cannot be read) or for a huge file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY:
            raise OSError(f"{path} is not a cache entry")
        return f.read()


class ModuleCache:
    """Compiled modules by key, under `root` (default: `cache_dir() / "modules"`)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_dir() / "modules"

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.wasm", self.root / f"{key}.json"

    def get(self, key: str) -> tuple[bytes, dict[str, Any]] | None:
        """The module bytes and metadata stored under `key`, or None on a miss or a corrupt entry."""
        wasm_path, meta_path = self._paths(key)
        try:
            meta = json.loads(_read_regular(meta_path))
            data = _read_regular(wasm_path)
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            self.discard(key)
            return None
        return data, meta

    def put(self, key: str, data: bytes, meta: dict[str, Any]) -> bool:
        """Store an entry; returns False (and stores nothing) when the directory is not writable."""
        wasm_path, meta_path = self._paths(key)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            _atomic_write(wasm_path, data)
            _atomic_write(meta_path, json.dumps({**meta, "sha256": hashlib.sha256(data).hexdigest()}).encode())
        except OSError:
            return False
        return True

    def discard(self, key: str) -> None:
        for path in self._paths(key):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
