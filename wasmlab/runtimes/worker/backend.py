"""`WorkerRuntime`: the base of the backends whose engine runs in a worker process (node, wasm3, wasmer).

`WorkerRuntime` starts the worker on first use (and again after it was stopped), caps its resident memory per
request, remembers why it was last stopped (for lost-instance messages), frees instances dropped without
`close()`, and reads the built-in `wasmlab` host module's key-value store, which lives in the worker.

`WorkerInstance` is an instance kept in the worker under a number (`key` names it in the protocol): closed and
lost states (a worker restarted since it was made, or a memory limit that made the worker drop it), guest output
capped at `max_output`, worker-measured timings, and memory access. Backends add how arguments and answers travel.

Preopened directories: the WASI of these engines follows symlinks out of a preopened directory, so
`check_confined` refuses a directory holding such a link, when the instance starts and again before every
call, since a guest on wasmtime (or anything else) sharing the directory may have made one since.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from ...errors import EngineCrashed, ExitTrap, InstanceLost, LimitExceeded, UsageError
from ...procfs import rss_bytes
from ..base import Instance, RunOptions, Runtime
from ..preopens import check_confined, confined_directory
from .process import Worker
from .protocol import CONTROL_TIMEOUT, b64, timings, unb64

if TYPE_CHECKING:
    from ...module import Module

__all__ = ["CONTROL_TIMEOUT", "WorkerInstance", "WorkerRuntime"]

RSS_REFRESH_S = 1.0  # reading /proc costs ~50 us: a fresh resident-memory value per second is enough


class WorkerInstance(Instance):
    """An instance kept in a worker under a number (`key` names it in the protocol). `stdout`/`stderr` collect
    the guest's output (capped at max_output); `timings` holds the instantiation's, `last_timings` the last
    call's worker-measured milliseconds."""

    key = "id"

    def __init__(
        self, runtime: Any, module: Module, options: RunOptions, answer: dict[str, Any], exports: list[str]
    ) -> None:
        self.runtime = runtime.label
        self._runtime, self.module, self.options = runtime, module, options
        self._worker = runtime.worker
        self._proc = self._worker.proc
        self.number: int = answer[self.key]
        self._exports = exports
        # guest path -> the host directory as resolved when the instance started
        self._grants = {guest: os.path.realpath(os.path.expanduser(host)) for guest, host in options.dirs.items()}
        self.timings = timings(answer)
        self.last_timings: dict[str, float] = {}
        self.stdout = unb64(answer.get("stdout"))
        self.stderr = unb64(answer.get("stderr"))
        self._closed = False
        self._lost: str | None = None
        self._finalizer = weakref.finalize(self, runtime._garbage.append, (self._proc, self.number))

    def __repr__(self) -> str:
        state = "closed" if self._closed else "lost" if self._lost or not self._live() else "live"
        return f"<{type(self).__name__} {self.module.name!r} on {self.runtime} {self.key}={self.number} {state}>"

    def _live(self) -> bool:
        return self._worker.proc is self._proc and self._worker.alive

    def _lose(self, why: str) -> None:
        self._lost = f"instance lost: {why}"
        self._finalizer.detach()

    def _request(self, message: dict[str, Any], timeout: float | None = CONTROL_TIMEOUT, **kw: Any) -> dict[str, Any]:
        if self._closed:
            raise UsageError(f"instance of {self.module.name} on {self.runtime} is closed")
        if self._lost:
            raise InstanceLost(self._lost)
        if not self._live():
            why = self._runtime._stopped_because
            self._lose(f"the {self.runtime} worker was restarted after {why}; instantiate again")
            raise InstanceLost(self._lost or "")
        answer = self._runtime.request({**message, self.key: self.number}, timeout=timeout, **kw)
        self._take_output(answer)
        self._check(answer, message)
        return answer

    def _check(self, answer: dict[str, Any], message: dict[str, Any]) -> None:
        """Raise the error (or trap) an answer to `message` carries."""
        raise NotImplementedError

    def _take_output(self, answer: dict[str, Any]) -> None:
        room = self.options.max_output
        if answer.get("stdout"):
            self.stdout = (self.stdout + unb64(answer["stdout"]))[:room]
        if answer.get("stderr"):
            self.stderr = (self.stderr + unb64(answer["stderr"]))[:room]
        if "timings" in answer:
            self.last_timings = timings(answer)

    def _call(self, name: str, values: list[Any]) -> dict[str, Any] | None:
        """Run export `name` in the worker: its answer, or None when the guest called WASI exit(0) (ExitTrap for
        other exit codes)."""
        for guest, host in self._grants.items():
            check_confined(self.runtime, guest, host)
        answer = self._request(
            {"op": "call", "name": name, "args": values},
            timeout=self.options.timeout,
            max_memory=self.options.max_memory,
        )
        exit_code = answer.get("exit_code")
        if exit_code:
            raise ExitTrap(exit_code)
        return None if exit_code is not None else answer

    def export_names(self) -> list[str]:
        return list(self._exports)

    def memory_size(self, memory: str | None = None) -> int:
        return int(self._request({"op": "memory_size", "memory": memory})["size"])

    def read_memory(self, address: int, length: int, memory: str | None = None) -> bytes:
        return unb64(self._request({"op": "read", "address": address, "length": length, "memory": memory})["data"])

    def write_memory(self, address: int, data: bytes, memory: str | None = None) -> None:
        self._request({"op": "write", "address": address, "data": b64(bytes(data)), "memory": memory})

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        if not self._lost and self._live():
            self._runtime.request({"op": "close", self.key: self.number})


class WorkerRuntime(Runtime):
    """A backend whose engine runs in a `Worker` process. Subclasses make the worker (`_new_worker`) and may
    change how dropped instances are freed (`_release`) and the memory allowances."""

    rss_allowance = 64 << 20  # memory one request may add besides max_memory (compiled code, engine objects)

    def __init__(self, variant: str | None = None) -> None:
        super().__init__(variant)
        self._worker: Worker | None = None
        self._lock = threading.Lock()
        self._garbage: list[tuple[Any, int]] = []  # (worker process, number) of instances dropped unclosed
        self._rss_seen: tuple[Any, float, int] = (None, 0.0, 0)  # (worker process, when, resident bytes)
        self._stopped_because = "it stopped"  # why the worker was last stopped, for lost-instance messages

    def _new_worker(self) -> Worker:
        raise NotImplementedError

    def _setup(self, module: Module, options: RunOptions) -> dict[str, Any]:
        """The request fields every instantiation shares: the guest's argv, env, stdin, preopened directories
        (checked for symlinks out of them) and output cap."""
        return {
            "argv": [module.name, *options.argv],
            "env": dict(options.env),
            "stdin": b64(options.stdin),
            "dirs": {guest: confined_directory(self.label, guest, host) for guest, host in options.dirs.items()},
            "max_output": options.max_output,
        }

    @property
    def worker_info(self) -> dict[str, Any]:
        """What the worker said when it last started (versions...): empty before it ever started."""
        return self._worker.info if self._worker is not None else {}

    def baseline_rss(self) -> int:
        """Resident memory of an idle worker."""
        return 64 << 20

    @property
    def worker(self) -> Worker:
        with self._lock:
            if self._worker is None:
                self._worker = self._new_worker()
            return self._worker

    def close(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._stopped_because = "the runtime was closed"
            worker.kill()

    def _max_rss(self, max_memory: int | None) -> int | None:
        """The worker's resident-memory cap for one request: what it holds now (at least its baseline) plus the
        guest's allowance, so live instances of earlier requests do not count against this one."""
        if not max_memory:
            return None
        worker, now = self._worker, time.monotonic()
        proc = worker.proc if worker is not None else None
        if proc is None or proc.poll() is not None:
            current = 0
        elif self._rss_seen[0] is proc and now - self._rss_seen[1] < RSS_REFRESH_S:
            current = self._rss_seen[2]
        else:
            current = rss_bytes(proc.pid)
            self._rss_seen = (proc, now, current)
        return max(current, self.baseline_rss()) + max_memory + self.rss_allowance

    def _release(self, worker: Worker, numbers: list[int], message: dict[str, Any]) -> dict[str, Any]:
        """Free instances dropped without close(): by default they ride along with the next request."""
        return {**message, "release": numbers}

    def request(
        self,
        message: dict[str, Any],
        *,
        module: Any = None,
        timeout: float | None = CONTROL_TIMEOUT,
        max_memory: int | None = None,
    ) -> dict[str, Any]:
        """One request to the worker; records why the worker was stopped when a limit, Ctrl-C or a crash kills
        it (the next request starts a new one)."""
        worker = self.worker
        garbage = self._garbage[:]
        del self._garbage[: len(garbage)]  # in place: finalizers hold this list
        numbers = [n for proc, n in garbage if proc is worker.proc and worker.alive]
        if numbers:
            message = self._release(worker, numbers, message)
        try:
            return worker.request(message, timeout=timeout, max_rss=self._max_rss(max_memory), module=module)
        except LimitExceeded as exc:
            self._stopped_because = f"the {exc.limit} limit stopped a guest ({exc})"
            raise
        except EngineCrashed as exc:
            self._stopped_because = f"a crash ({exc})"
            raise
        except KeyboardInterrupt:
            self._stopped_because = "an interrupt (Ctrl-C)"
            raise

    def kv_clear(self) -> None:
        """Empty the built-in host module's key-value store (it lives in the worker: a restart empties it too)."""
        if self._worker is not None and self._worker.alive:
            self.request({"op": "kv_clear"})

    def kv_items(self) -> dict[bytes, bytes]:
        """The built-in host module's key-value store."""
        if self._worker is None or not self._worker.alive:
            return {}
        answer = self.request({"op": "kv_items"})
        return {unb64(k): unb64(v) for k, v in answer.get("items", {}).items()}
