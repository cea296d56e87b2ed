"""`Worker`: a long-lived engine process spoken to in JSON lines, for engines that must not run in the kernel:
ones that hold the GIL while the guest runs (wasmer-python, wasm3), need another Python (wasmer: 3.10), or are
another program (node, a JS shell).

The parent enforces what the guest cannot escape: a wall-clock timeout and a resident-memory cap, by killing
the worker. A killed or crashed worker is started afresh on the next request; the caller gets LimitExceeded or
EngineCrashed, never a hang. Ctrl-C (KeyboardInterrupt) while waiting kills the worker too, so interrupting a
notebook cell stops the guest.

Protocol (see `wasmlab.runtimes.worker`): one JSON object per line each way. Requests carry "op"; bytes travel
as base64 strings. Module bytes are sent once per worker process ("load" by sha256) and referred to by hash
afterwards.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from ...errors import EngineCrashed, LimitExceeded
from ...procfs import rss_bytes
from .protocol import b64

__all__ = ["SCRIPTS", "Worker"]

SCRIPTS = Path(__file__).parent / "scripts"  # what runs inside the worker processes
POLL_S = 0.02
START_TIMEOUT = 60.0
_live: weakref.WeakSet[Worker] = weakref.WeakSet()


class Worker:
    """One worker process. Thread-safe: one request at a time."""

    def __init__(self, runtime: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.runtime, self.argv, self.env = runtime, argv, env or {}
        self.proc: subprocess.Popen | None = None
        self.loaded: set[str] = set()
        self.starts = 0
        self._lock = threading.RLock()
        self._buffer = b""
        self._stderr: Any = None
        self.info: dict[str, Any] = {}  # the worker's hello: versions, pid...
        _live.add(self)

    # lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the worker)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        self._buffer = b""
        self.loaded = set()
        hello = self._receive(START_TIMEOUT, None)
        if not hello.get("ready"):
            self.kill()
            raise EngineCrashed(self.runtime, f"worker did not start: {hello}")
        self.info = hello

    @property
    def restarts(self) -> int:
        """How many times the worker was started again after a kill or crash."""
        return max(0, self.starts - 1)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, 9)
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                proc.wait(5)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        self.loaded = set()

    close = kill

    def stderr_tail(self, limit: int = 2000) -> str:
        if self._stderr is None:
            return ""
        with contextlib.suppress(OSError):
            self._stderr.seek(0, 2)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - limit))
            return self._stderr.read().decode(errors="replace").strip()
        return ""

    # requests -------------------------------------------------------------------------------------------
    def request(
        self, message: dict[str, Any], timeout: float | None = None, max_rss: int | None = None, module: Any = None
    ) -> dict[str, Any]:
        """Send one request and wait for its answer, enforcing `timeout` (s) and `max_rss` (bytes) by killing
        the worker. `module` (a wasmlab Module) is loaded into the worker first if it does not have it."""
        with self._lock:
            try:
                return self._request(message, timeout, max_rss, module)
            except KeyboardInterrupt:
                self.kill()  # an answer may be in flight: a fresh worker keeps requests and answers paired
                raise

    def _request(
        self, message: dict[str, Any], timeout: float | None, max_rss: int | None, module: Any
    ) -> dict[str, Any]:
        if not self.alive:
            self.starts += 1
            self.start()
        if module is not None and module.sha256 not in self.loaded:
            self._send({"op": "load", "sha": module.sha256, "wasm": b64(module.bytes)})
            answer = self._receive(max(60.0, timeout or 0), None)
            if not answer.get("ok"):
                return answer
            self.loaded.add(module.sha256)
        self._send(message)
        return self._receive(timeout, max_rss)

    def _running(self) -> subprocess.Popen:
        if self.proc is None:
            raise EngineCrashed(self.runtime, "the worker is not running (it was stopped)")
        return self.proc

    def _send(self, message: dict[str, Any]) -> None:
        stdin = self._running().stdin
        assert stdin is not None  # a PIPE
        try:
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()
        except (OSError, ValueError):
            detail = self._death()
            raise EngineCrashed(self.runtime, detail) from None

    def _receive(self, timeout: float | None, max_rss: int | None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        waited = False  # answers often come within ~100 us: read /proc for the RSS (~50 us) only while waiting
        proc = self._running()
        assert proc.stdout is not None  # a PIPE
        fd = proc.stdout.fileno()
        parts = [self._buffer]  # search only the newest bytes for the newline: answers can be megabytes
        try:
            while b"\n" not in parts[-1]:
                if deadline is not None and time.monotonic() > deadline:
                    self.kill()
                    raise LimitExceeded(
                        "time",
                        f"{self.runtime}: guest ran past the {timeout:g} s time limit "
                        "and was stopped; raise timeout= if it needs longer",
                    )
                if max_rss and waited and rss_bytes(proc.pid) > max_rss:
                    self.kill()
                    raise LimitExceeded(
                        "memory",
                        f"{self.runtime}: worker memory passed {max_rss >> 20} MiB "
                        "and was stopped; raise max_memory= if it needs more",
                    )
                ready, _, _ = select.select([fd], [], [], POLL_S)
                waited = True
                if ready:
                    chunk = os.read(fd, 1 << 16)  # not 1 MiB: a 1 MiB buffer is mmap'ed per read (~40 us)
                    if not chunk:
                        raise EngineCrashed(self.runtime, self._death())
                    parts.append(chunk)
        except KeyboardInterrupt:
            self.kill()  # the only way to stop a guest that holds its process
            raise
        line, _, self._buffer = b"".join(parts).partition(b"\n")
        return json.loads(line)

    def _death(self) -> str:
        proc = self.proc
        code = proc.wait(5) if proc is not None else None
        tail = self.stderr_tail(300).splitlines()
        self.kill()
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        return how + (f": {tail[-1]}" if tail else "")


@atexit.register
def _stop_all() -> None:
    for worker in list(_live):
        worker.kill()
