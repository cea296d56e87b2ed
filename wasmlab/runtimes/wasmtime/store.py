"""Stores and their limits: what wasmlab keeps next to each `wasmtime.Store` (`_StoreState`: the limits, the
call in flight, the captured output), the weak registries the C callbacks find it through, and `Store.set_limits`
for `max_memory`."""

from __future__ import annotations

import contextlib
import os
import tempfile
import weakref
from typing import TYPE_CHECKING, Any

from ...errors import WasmlabError
from ..base import RunOptions

if TYPE_CHECKING:
    from ...module import Module

FUEL_UNLIMITED = (1 << 64) - 1
PAGE = 65536
OUTPUT_DISK_LIMIT = 256 << 20  # bytes of stdout+stderr a guest may write (to unlinked files) before it is stopped

# ------------------------------------------------------------------------------------------ per-store state
# Weak registries (an instance dropped without close() frees its state, its Store and its capture files):
_STATES: dict[int, weakref.ref[_StoreState]] = {}  # epoch-callback data id -> state
_BY_CONTEXT: dict[int, weakref.ref[_StoreState]] = {}  # wasmtime_context_t address -> state (host functions)


def _register(table: dict[int, weakref.ref[_StoreState]], key: int, state: _StoreState) -> None:
    def gone(ref: weakref.ref[_StoreState]) -> None:
        if table.get(key) is ref:
            table.pop(key, None)

    table[key] = weakref.ref(state, gone)


def _lookup(table: dict[int, weakref.ref[_StoreState]], key: int) -> _StoreState | None:
    ref = table.get(key)
    return ref() if ref is not None else None


def _unregister(table: dict[int, weakref.ref[_StoreState]], key: int, state: _StoreState) -> None:
    ref = table.get(key)
    if ref is not None and ref() in (state, None):
        table.pop(key, None)


_next_id = iter(range(1, 1 << 62))


class _StoreState:
    """What wasmlab keeps next to one `wasmtime.Store`: limits, the in-flight call, captured output."""

    __slots__ = (
        "__weakref__",
        "closed",
        "context",
        "fuel",
        "id",
        "last_call",
        "log",
        "max_memory",
        "max_output",
        "memory",
        "output_fds",
        "reason",
        "store",
        "t0",
        "timeout",
        "watched",
    )

    def __init__(self, watched: dict[int, weakref.ref[_StoreState]], options: RunOptions) -> None:
        self.watched = watched  # the registry of the watchdog that ticks for this store
        self.timeout = options.timeout if options.timeout and options.timeout > 0 else None
        self.fuel = options.fuel
        self.max_memory = options.max_memory or None
        self.max_output = options.max_output
        self.t0 = 0.0  # perf_counter() when the running call started, 0.0 when no call runs
        self.last_call = 0.0  # seconds of the last call
        self.reason: str | None = None  # why the epoch callback stopped the guest: "time" or "interrupt"
        self.log = bytearray()  # lines of the built-in wasmlab.log, appended to stderr
        self.output_fds: dict[str, int] = {}  # "stdout"/"stderr" -> fd of the (unlinked) capture file
        self.memory: Any = None  # the wasmtime.Memory used for the memory-limit diagnosis
        self.closed = False
        self.store: Any = None
        self.context = 0
        self.id = next(_next_id)

    def capture(self, config: Any) -> None:
        """Send the guest's stdout and stderr to files that wasmtime opens now; keep a read descriptor and
        unlink them at once (nothing is left behind). Files, not Python callbacks: WASI writes happen on
        wasmtime's tokio threads, where a Python callback could outlive the interpreter at exit."""
        for stream in ("stdout", "stderr"):
            fd, path = tempfile.mkstemp(prefix=f"wasmlab-{stream}-")
            os.close(fd)
            try:
                setattr(config, f"{stream}_file", path)
                self.output_fds[stream] = os.open(path, os.O_RDONLY)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def output(self, stream: str) -> bytes:
        """The first max_output bytes the guest wrote to `stream` (stderr: then the wasmlab.log lines)."""
        fd = self.output_fds.get(stream)
        data = os.pread(fd, self.max_output, 0) if fd is not None else b""
        if stream == "stderr" and self.log:
            data = (data + bytes(self.log))[: self.max_output]
        return data

    def output_size(self) -> int:
        return sum(os.fstat(fd).st_size for fd in self.output_fds.values())

    def write_log(self, data: bytes) -> None:
        room = self.max_output - len(self.log)
        if room > 0:
            self.log += data[:room]

    def memory_bytes(self) -> int:
        if self.memory is None or self.store is None:
            return 0
        try:
            return self.memory.data_len(self.store)
        except Exception:
            return 0

    def release(self) -> None:
        """Forget the store (idempotent); the Store itself is freed when its last reference goes."""
        self.closed = True
        self._close_files()
        _unregister(_BY_CONTEXT, self.context, self)
        _unregister(self.watched, self.id, self)
        self.store = None
        self.memory = None

    def _close_files(self) -> None:
        fds, self.output_fds = self.output_fds, {}
        for fd in fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._close_files()


def _fmt_bytes(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / 1024:.0f} KiB"
    return f"{n} bytes"


def _store_limits(module: Module, max_memory: int) -> dict[str, int]:
    """`Store.set_limits` arguments for `max_memory`. wasmtime's limits are per memory and per table, so the
    budget is split between the memories a module defines (together they stay under max_memory), and its tables
    (8 bytes an element) get as much again: without a table limit one `table.grow` allocates gigabytes."""
    try:
        memories, tables = (1, 1) if module.is_component else (len(module.memories), len(module.tables))
    except WasmlabError:
        memories = tables = 1
    return {
        "memory_size": max_memory // max(1, memories),
        "table_elements": max(1, max_memory // 8 // max(1, tables)),
    }


def _keep_output(exc: BaseException, state: _StoreState) -> None:
    """Attach what the guest printed to an exception raised while instantiating (run() reports it)."""
    if isinstance(exc, WasmlabError):
        exc.stdout, exc.stderr = state.output("stdout"), state.output("stderr")  # type: ignore[attr-defined]
