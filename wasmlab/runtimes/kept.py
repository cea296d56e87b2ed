"""State held inside an engine worker process (node, wasm3, wasmer): kept instances and the key-value store.

`WorkerInstance` holds what those backends share: closed and lost states (a worker restarted since the
instance was made, or a memory limit that made the worker drop it), instances dropped without `close()` (the
finalizer hands their number to the runtime, which frees them on its next request), guest output capped at
`max_output`, worker-measured timings, and memory access. Backends add how arguments and answers travel.

Preopened directories: the WASI of these engines follows symlinks out of a preopened directory, so
`check_confined` refuses a directory holding such a link, when the instance starts and again before every
call, since a guest on wasmtime (or anything else) sharing the directory may have made one since.
"""

from __future__ import annotations

import os
import weakref
from typing import TYPE_CHECKING, Any

from ..errors import ExitTrap, InstanceLost, UsageError
from .base import Instance, RunOptions, check_confined
from .worker import b64, unb64

if TYPE_CHECKING:
    from ..module import Module

CONTROL_TIMEOUT = 30.0  # seconds for requests that run no guest code


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
        self.timings = {k: float(v) for k, v in answer.get("timings", {}).items()}
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
            self.last_timings = {k: float(v) for k, v in answer["timings"].items()}

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


class WorkerKeyValue:
    """The built-in `wasmlab` host module's key-value store of a worker runtime: it lives in the worker, shared
    by that runtime's instances, so a worker restart empties it."""

    _worker: Any
    request: Any  # the runtime's request(message, ...) to its worker

    def kv_clear(self) -> None:
        if self._worker is not None and self._worker.alive:
            self.request({"op": "kv_clear"})

    def kv_items(self) -> dict[bytes, bytes]:
        if self._worker is None or not self._worker.alive:
            return {}
        answer = self.request({"op": "kv_items"})
        return {unb64(k): unb64(v) for k, v in answer.get("items", {}).items()}
