"""Numbers about processes, read from Linux's /proc: resident memory and proportional set size.

One place for them: the worker processes' memory cap, the density benchmark, the fuzzer's leak checks and the
edge's per-deployment figures all read the same fields the same way.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["proc_bytes", "pss_bytes", "rss_bytes"]


def proc_bytes(pid: int, file: str, field: str) -> int:
    """A "Field:  N kB" line of /proc/PID/FILE in bytes (0 when the process or the field is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (0 when it is gone)."""
    return proc_bytes(pid, "status", "VmRSS")


def pss_bytes(pid: int) -> int:
    """Proportional set size of a process (its private pages plus its share of shared ones), 0 when gone."""
    return proc_bytes(pid, "smaps_rollup", "Pss")
