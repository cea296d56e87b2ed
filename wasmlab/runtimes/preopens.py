"""Preopened directories (WASI `dirs=`) on engines whose WASI follows symlinks out of a preopened directory:
the checks that keep a guest inside what it was granted."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import RuntimeUnavailable, UsageError

__all__ = ["MAX_PREOPEN_ENTRIES", "check_confined", "confined_directory"]

MAX_PREOPEN_ENTRIES = 20_000  # directory entries `check_confined` inspects before it gives up (and refuses)


def confined_directory(runtime: str, guest: str, host: str) -> str:
    """`host` resolved, for preopening as `guest` on an engine whose WASI follows symlinks (see
    `check_confined`); UsageError when it is not a directory."""
    path = Path(host).expanduser().resolve()
    if not path.is_dir():
        raise UsageError(f"no such directory {host!r} to preopen as {guest!r}")
    check_confined(runtime, guest, str(path))
    return str(path)


def check_confined(runtime: str, guest: str, host: str) -> None:
    """Refuse to preopen `host` on an engine whose WASI follows symlinks out of a preopened directory (node's
    uvwasi, wasmer-python 1.1, measured; wasmtime refuses to follow them): RuntimeUnavailable when a symlink
    under `host` leads outside it, since the guest could read and write through it. Guests on those engines
    cannot create symlinks, so checking before the run is enough."""
    root = os.path.realpath(host)
    pending, seen = [root], 0
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue  # unreadable for us: unreadable for the guest too
        for entry in entries:
            seen += 1
            if seen > MAX_PREOPEN_ENTRIES:
                raise RuntimeUnavailable(
                    runtime,
                    f"dirs={{{guest!r}: {host!r}}} holds over {MAX_PREOPEN_ENTRIES:,} entries, too many to check for "
                    f"symlinks leading out of it ({runtime}'s WASI follows them); grant a smaller directory",
                    "run on wasmtime (it never follows a symlink out of a preopened directory)",
                )
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if target != root and not target.startswith(root + os.sep):
                    raise RuntimeUnavailable(
                        runtime,
                        f"dirs={{{guest!r}: {host!r}}}: {os.path.relpath(entry.path, root)} is a symlink to {target}, "
                        f"outside the granted directory, and {runtime}'s WASI would follow it; remove the link",
                        "run on wasmtime (it never follows a symlink out of a preopened directory)",
                    )
            elif entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
