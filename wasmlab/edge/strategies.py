"""Deployments: one handler on one runtime under one instance strategy, serving request bytes in any thread.

    fresh    a new instance per request, closed after it: full isolation, pays instantiation every time
    pooled   `pool_size` instances made ahead; each serves one request and is then reset in the background
             (reset="instantiate": replaced by a new instance; reset="snapshot": its memory is restored from
             a copy taken after instantiation, for modules whose only mutable global is the stack pointer;
             an instance whose memory grew during the request cannot be restored and is replaced instead:
             the C helper serves small requests from a static arena so that its memory does not grow),
             so a request never sees another's state and never waits for instantiation unless the pool ran dry
    reused   one instance kept across requests (state persists: counters, caches), one request at a time

Limits (`Limits`: timeout s, fuel, max_memory bytes) apply to each request's calls into the guest. A request
that traps or exceeds a limit gets an `Outcome` with an HTTP status (500 for traps and malformed responses,
503 for limits) and a one-line reason; the instance it ran on is discarded (so `reused` loses its state and
says so with `reset=True`), and the deployment keeps serving. WASI command handlers run `fresh` only.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..errors import EngineCrashed, InstanceLost, LimitExceeded, Trap, UsageError, WasmlabError
from ..runtimes import RunOptions, get_runtime
from .abi import BadResponse, Response, decode_response
from .handler import MAX_RESPONSE, Handler, call_abi, call_http, call_wasi
from .wasi_http import HttpHost

STRATEGIES = ("fresh", "pooled", "reused")
RESETS = ("instantiate", "snapshot")
DEFAULT_POOL_SIZE = 4
DEFAULT_TIMEOUT = 1.0  # seconds per request: edge handlers are meant to be quick
DEFAULT_MAX_MEMORY = 64 << 20
QUIET_GAP = 0.001  # seconds without requests before a pooled instance is reset in the background...
QUIET_MAX_WAIT = 0.05  # ...but never held back longer than this (nor when fewer than half are ready)


@dataclass(frozen=True)
class Limits:
    """Per-request limits: `timeout` (seconds of wall clock per call), `fuel` (instructions, wasmtime only),
    `max_memory` (bytes of linear memory)."""

    timeout: float | None = DEFAULT_TIMEOUT
    fuel: int | None = None
    max_memory: int | None = DEFAULT_MAX_MEMORY

    def options(self, wasi: bool = False) -> RunOptions:
        """RunOptions for one request. A WASI handler's stdout is its response: one byte over MAX_RESPONSE tells
        that it was cut; an ABI handler's output (wasmlab.log lines) is kept to 64 KiB per instance."""
        output = MAX_RESPONSE + 1 if wasi else 1 << 16
        return RunOptions(timeout=self.timeout, fuel=self.fuel, max_memory=self.max_memory, max_output=output)


@dataclass
class Outcome:
    """What happened to one request. `response` is set when the handler succeeded; otherwise `status` (500 or
    503), `error` (one line) and `error_kind` ("trap", "limit:time", "limit:fuel", "limit:memory",
    "bad-response", "crash", "error") say why. Times in milliseconds, measured in the serving thread."""

    response: Response | None = None
    status: int = 200
    error: str | None = None
    error_kind: str | None = None
    instantiate_ms: float = 0.0  # instantiation paid on this request's path
    handler_ms: float = 0.0  # alloc + write + handle + read
    cold: bool = False  # pooled: no idle instance was ready, one was made for this request
    reset: bool = False  # the instance was discarded after a failure (reused: its state is gone)
    instance: int = 0  # serial number of the instance that served (per deployment)
    module: str = ""  # sha256 prefix of the module that served

    @property
    def ok(self) -> bool:
        return self.response is not None


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(HTTP status, error kind, one-line reason) for an exception raised while serving."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, LimitExceeded):
        return 503, f"limit:{exc.limit}", message
    if isinstance(exc, Trap):
        return 500, "trap", message
    if isinstance(exc, BadResponse):
        return 500, "bad-response", message
    if isinstance(exc, (EngineCrashed, InstanceLost)):
        return 502, "crash", message
    if isinstance(exc, WasmlabError):
        return 500, "error", message
    return 500, "internal", f"internal error: {type(exc).__name__}: {message}"


class Deployment:
    """Base class: `serve(request_bytes) -> Outcome` from any thread; `close()` frees every instance."""

    strategy = ""

    def __init__(self, handler: Handler, runtime: str = "wasmtime", limits: Limits | None = None) -> None:
        if not isinstance(handler, Handler):
            raise UsageError(f"expected a wasmlab.edge.Handler, got {type(handler).__name__}")
        self.handler = handler
        self.runtime_name = runtime
        self.runtime = get_runtime(runtime)
        self.limits = limits or Limits()
        self.options = self.limits.options(wasi=handler.kind == "wasi")
        self.host: HttpHost | None = None
        if handler.kind == "http":  # one wasi:http host per deployment: the engine links its imports once
            if "host_functions" not in self.runtime.capabilities:
                raise UsageError(
                    f"{handler.name} is a standard wasi:http handler: the lab serves it through Python host "
                    f"functions, which {self.runtime.label} cannot call (it runs guests out of process); use "
                    "runtime='wasmtime', or compile_handler(..., standard=False) for the wasmlab-edge/1 ABI"
                )
            self.host = HttpHost()
            self.options = self.options.with_(imports=self.host.imports(handler.module))
        self.call = call_http if handler.kind == "http" else call_abi
        self.closed = False
        self.module_id = handler.module.sha256[:12]
        self._serial = itertools.count(1)
        self._counts_lock = threading.Lock()
        self.counts = collections.Counter()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.handler.name!r} on {self.runtime.label} {self.stats()}>"

    # instances ------------------------------------------------------------------------------------------------
    def _new_instance(self) -> tuple[Any, int, float]:
        """(instance, serial number, ms to make it)."""
        t0 = time.perf_counter()
        instance = self.runtime.instantiate(self.handler.module, self.options)
        if self.host is not None:
            instance = HttpInstance(instance, self.host)
        elif self.handler.kind == "abi":  # look the exports up now (wasmtime builds its fast-call closures here)
            exports = instance.exports
            for name in ("alloc", "handle"):
                getattr(exports, name)
        ms = (time.perf_counter() - t0) * 1000.0
        self._count("instances")
        return instance, next(self._serial), ms

    @staticmethod
    def _close_instance(instance: Any) -> None:
        with contextlib.suppress(Exception):
            instance.close()

    def _count(self, key: str, n: int = 1) -> None:
        with self._counts_lock:
            self.counts[key] += n

    # serving ---------------------------------------------------------------------------------------------------
    def warm(self) -> Deployment:
        """Compile (and for `pooled`, fill the pool) before the first request. Raises what would fail later."""
        instance, _, _ = self._new_instance()
        self._close_instance(instance)
        return self

    def serve(self, data: bytes) -> Outcome:
        """Serve one request (the bytes of `encode_request`); never raises for guest failures."""
        outcome = Outcome(module=self.module_id)
        try:
            raw = self._serve(data, outcome)
            outcome.response = raw if isinstance(raw, Response) else decode_response(raw)
            outcome.status = outcome.response.status
            self._count("ok")
        except Exception as exc:
            outcome.response = None
            outcome.status, outcome.error_kind, outcome.error = classify(exc)
            self._count("failed")
            self._count(f"failed:{outcome.error_kind}")
        self._count("requests")
        return outcome

    def _serve(self, data: bytes, outcome: Outcome) -> bytes | Response:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        with self._counts_lock:
            return {"strategy": self.strategy, **dict(self.counts)}

    def close(self) -> None:
        self.closed = True


class FreshDeployment(Deployment):
    """A new instance per request (WASI commands: a whole run per request)."""

    strategy = "fresh"

    def warm(self) -> Deployment:
        if self.handler.kind == "wasi":
            self.runtime.require("wasi", "WASI command handlers")
            if hasattr(self.runtime, "compile"):
                self.runtime.compile(self.handler.module)
            return self
        return super().warm()

    def _serve(self, data: bytes, outcome: Outcome) -> bytes:
        if self.handler.kind == "wasi":
            out, outcome.instantiate_ms, outcome.handler_ms = call_wasi(
                self.handler.module, self.runtime_name, data, self.options
            )
            self._count("instances")
            outcome.instance = next(self._serial)
            return out
        instance, outcome.instance, outcome.instantiate_ms = self._new_instance()
        try:
            out, outcome.handler_ms = self.call(instance, data)
        finally:
            self._close_instance(instance)
        return out


class ReusedDeployment(Deployment):
    """One instance for every request, in turn; replaced (state lost) after a failure."""

    strategy = "reused"

    def __init__(self, handler: Handler, runtime: str = "wasmtime", limits: Limits | None = None) -> None:
        super().__init__(handler, runtime, limits)
        _need_abi(handler, self.strategy)
        self._lock = threading.Lock()
        self._instance: Any = None
        self._instance_id = 0

    def warm(self) -> Deployment:
        with self._lock:
            if self._instance is None:
                self._instance, self._instance_id, _ = self._new_instance()
        return self

    def _serve(self, data: bytes, outcome: Outcome) -> bytes:
        with self._lock:
            for attempt in (1, 2):
                if self._instance is None:
                    self._instance, self._instance_id, outcome.instantiate_ms = self._new_instance()
                    outcome.cold = True
                outcome.instance = self._instance_id
                try:
                    out, outcome.handler_ms = self.call(self._instance, data)
                    return out
                except InstanceLost:  # its worker was restarted: a new instance, once
                    self._instance = None
                    if attempt == 2:
                        raise
                except BaseException:
                    self._close_instance(self._instance)
                    self._instance = None
                    outcome.reset = True
                    self._count("resets")
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        super().close()
        with self._lock:
            instance, self._instance = self._instance, None
        if instance is not None:
            self._close_instance(instance)


class PooledDeployment(Deployment):
    """`pool_size` ready instances; each used once, then reset off the request path (see the module doc)."""

    strategy = "pooled"

    def __init__(
        self,
        handler: Handler,
        runtime: str = "wasmtime",
        limits: Limits | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        reset: str = "instantiate",
    ) -> None:
        super().__init__(handler, runtime, limits)
        _need_abi(handler, self.strategy)
        if pool_size < 1:
            raise UsageError(f"pool_size must be at least 1, got {pool_size}")
        if reset not in RESETS:
            raise UsageError(f"unknown reset {reset!r}: use one of {', '.join(RESETS)}")
        if reset == "snapshot":
            _check_snapshot(handler)
        self.pool_size = pool_size
        self.reset_mode = reset
        self._idle: collections.deque[tuple[Any, int, bytes | None]] = collections.deque()
        self._jobs: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._pending = 0  # resets queued or running
        self._lock = threading.Lock()
        self._quiet = threading.Condition(self._lock)  # notified when no request is being served
        self._busy = 0  # requests being served now
        self._done_at = 0.0  # monotonic time the last one finished
        self._thread: threading.Thread | None = None

    def _make(self) -> tuple[Any, int, bytes | None]:
        instance, serial, _ = self._new_instance()
        snapshot = instance.snapshot() if self.reset_mode == "snapshot" else None
        return instance, serial, snapshot

    def warm(self) -> Deployment:
        with self._lock:
            missing = self.pool_size - len(self._idle) - self._pending
        for _ in range(max(0, missing)):
            item = self._make()
            with self._lock:
                self._idle.append(item)
        self._start_thread()
        return self

    def _start_thread(self) -> None:
        with self._lock:
            if self._thread is None and not self.closed:
                self._thread = threading.Thread(target=self._refill, name="wasmlab-edge-pool", daemon=True)
                self._thread.start()

    def _take(self, outcome: Outcome) -> tuple[Any, int, bytes | None]:
        with self._lock:
            if self._idle:
                return self._idle.popleft()
        item = self._make()  # the pool ran dry: this request pays for instantiation
        outcome.cold = True
        self._count("cold")
        return item

    def _serve(self, data: bytes, outcome: Outcome) -> bytes:
        with self._quiet:
            self._busy += 1
        try:
            return self._serve_one(data, outcome)
        finally:
            with self._quiet:
                self._busy -= 1
                self._done_at = time.monotonic()
                if not self._busy:
                    self._quiet.notify_all()

    def _wait_for_a_gap(self) -> None:
        """Hold a reset back while requests are being served (its CPU work, in CPython also the GIL, would
        delay them), until QUIET_GAP after the last one, at most QUIET_MAX_WAIT; not when the pool runs low."""
        deadline = time.monotonic() + QUIET_MAX_WAIT
        with self._quiet:
            while not self.closed and len(self._idle) >= max(1, self.pool_size // 2):
                now = time.monotonic()
                if now >= deadline:
                    return
                if self._busy:
                    self._quiet.wait(deadline - now)
                    continue
                gap = self._done_at + QUIET_GAP - now
                if gap <= 0:
                    return
                self._quiet.wait(min(gap, deadline - now))

    def _serve_one(self, data: bytes, outcome: Outcome) -> bytes:
        for attempt in (1, 2):
            t0 = time.perf_counter()
            item = self._take(outcome)
            if outcome.cold:
                outcome.instantiate_ms = (time.perf_counter() - t0) * 1000.0
            outcome.instance = item[1]
            try:
                out, outcome.handler_ms = self.call(item[0], data)
            except InstanceLost:  # a worker restart lost every instance it held: drop them, retry once
                self._drop_idle()
                self._reset(item, failed=True)
                if attempt == 2:
                    raise
                continue
            except BaseException:
                self._reset(item, failed=True)
                raise
            self._reset(item, failed=False)
            return out
        raise AssertionError("unreachable")

    def _drop_idle(self) -> None:
        with self._lock:
            dropped, self._idle = list(self._idle), collections.deque()
            self._pending += len(dropped)
        for item in dropped:
            self._jobs.put(("replace", item))

    def _reset(self, item: tuple[Any, int, bytes | None], failed: bool) -> None:
        if self.closed:
            self._close_instance(item[0])
            return
        with self._lock:
            self._pending += 1
        self._jobs.put(("replace" if failed or item[2] is None else "restore", item))
        if self._thread is None:
            self._start_thread()

    def _refill(self) -> None:
        """The background thread: reset used instances and keep `pool_size` of them idle."""
        while True:
            job = self._jobs.get()
            if job is None:
                return
            kind, (instance, serial, snapshot) = job
            fresh = None
            try:
                self._wait_for_a_gap()
                if kind == "restore" and not self.closed:
                    try:
                        if instance.memory_size() == len(snapshot):
                            instance.write_memory(0, snapshot)
                            fresh = (instance, serial, snapshot)
                            self._count("restores")
                    except WasmlabError:
                        fresh = None
                if fresh is None:
                    self._close_instance(instance)
                    with self._lock:
                        room = len(self._idle) < self.pool_size
                    if room and not self.closed:
                        try:
                            fresh = self._make()
                        except Exception:  # e.g. the worker is restarting; the next request makes one
                            self._count("refill_failed")
                if fresh is not None:
                    with self._lock:
                        if self.closed or len(self._idle) >= self.pool_size:
                            extra, fresh = fresh, None
                        else:
                            self._idle.append(fresh)
                            extra = None
                    if extra is not None:
                        self._close_instance(extra[0])
            finally:
                with self._lock:
                    self._pending -= 1

    def idle(self) -> int:
        """Instances ready to serve now."""
        with self._lock:
            return len(self._idle)

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until every background reset is done (tests and benchmarks); True when it settled."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending == 0:
                    return True
            time.sleep(0.002)
        return False

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "idle": self.idle(), "pool_size": self.pool_size, "reset": self.reset_mode}

    def close(self) -> None:
        super().close()
        self._jobs.put(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        with self._lock:
            items, self._idle = list(self._idle), collections.deque()
        for instance, _, _ in items:
            self._close_instance(instance)


class HttpInstance:
    """An instance of a standard handler's core module with its binding to the deployment's wasi:http host."""

    def __init__(self, instance: Any, host: HttpHost) -> None:
        self.instance, self.host = instance, host
        self.binding = host.bind(instance)

    def __getattr__(self, name: str) -> Any:  # close, snapshot, memory_size, write_memory...
        return getattr(self.instance, name)


def _need_abi(handler: Handler, strategy: str) -> None:
    if handler.kind == "wasi":
        raise UsageError(
            f"{handler.name} is a WASI command handler: its stdin is fixed when an instance is made, so it runs "
            f"with strategy='fresh' only ({strategy!r} needs an alloc/handle handler)"
        )


def _check_snapshot(handler: Handler) -> None:
    mutable = [g for g in handler.module.globals if g.mutable]
    if len(mutable) > 1:
        raise UsageError(
            f"{handler.name} has {len(mutable)} mutable globals: a memory snapshot cannot restore them "
            "(only the shadow stack pointer is known to be back at its start value after each call); "
            "use reset='instantiate'"
        )


def deploy(
    handler: Handler,
    strategy: str = "pooled",
    runtime: str = "wasmtime",
    limits: Limits | None = None,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    reset: str = "instantiate",
    warm: bool = True,
) -> Deployment:
    """A deployment of `handler` with `strategy` ("fresh", "pooled", "reused"), warmed unless `warm=False`."""
    if strategy == "fresh":
        deployment: Deployment = FreshDeployment(handler, runtime, limits)
    elif strategy == "reused":
        deployment = ReusedDeployment(handler, runtime, limits)
    elif strategy == "pooled":
        deployment = PooledDeployment(handler, runtime, limits, pool_size=pool_size, reset=reset)
    else:
        raise UsageError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if warm:
        try:
            deployment.warm()
        except BaseException:
            deployment.close()
            raise
    return deployment


def serve_once(handler: Handler, runtime: str, data: bytes, limits: Limits) -> bytes:
    """One request on a fresh instance, raising Trap / LimitExceeded / BadResponse (no server, no Outcome)."""
    deployment = FreshDeployment(handler, runtime, limits)
    try:
        return deployment._serve(data, Outcome())
    finally:
        deployment.close()


__all__ = [
    "DEFAULT_POOL_SIZE",
    "RESETS",
    "STRATEGIES",
    "Deployment",
    "FreshDeployment",
    "Limits",
    "Outcome",
    "PooledDeployment",
    "ReusedDeployment",
    "classify",
    "deploy",
]
