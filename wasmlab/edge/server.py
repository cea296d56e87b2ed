"""`EdgeServer`: an HTTP/1.1 edge worker on loopback whose routes are Wasm handlers.

    with EdgeServer(runtime="wasmtime") as server:        # 127.0.0.1, a free port, a background thread
        server.route("/hello", "hello.c", strategy="pooled", timeout=0.5)
        server.origin("/far", delay_ms=80)                 # a simulated far-away origin, for contrast
        print(server.url)                                  # curl it, or wasmlab.edge.load(server.url + "/hello")
        server.swap("/hello", "hello_v2.c")                # hot swap: in-flight requests finish on the old module

The server runs its own asyncio event loop in a daemon thread (a notebook's loop is left alone). Wasm calls
run in a thread pool (`execution="threads"`, the default), so a slow or looping guest never blocks other
connections; `execution="inline"` runs them on the event loop itself, which saves two thread hand-offs per
request (the lowest latency in CPython) but lets one slow guest stall every connection until its timeout.
`stop()` (also at interpreter exit, and on leaving the `with` block) closes connections, the pool and every
instance.

Routes match by path prefix at a segment boundary ("/api" serves "/api" and "/api/x"; "/" serves everything
else); the longest match wins. Each route has its own deployment (handler, runtime, strategy, limits) and an
optional simulated network delay (`delay_ms`, `jitter_ms`) added before the handler runs.

Responses carry `x-wasmlab-route`, `-strategy`, `-runtime`, `-module` (sha256 prefix), `-instance` (serial
number: the same number twice means a reused instance) and `server-timing` (delay, instantiate, handler,
total). Failures are one line of text: 500 for traps and malformed responses, 503 for limits (time, fuel,
memory), 502 when a worker engine died, with `x-wasmlab-error` naming the kind. `GET /_edge/stats` and
`/_edge/health` report on the server itself.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import json
import random
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..module import Module
from .abi import Response, encode_request
from .handler import Handler, compile_handler
from .http import HEAD_TIMEOUT, MAX_BODY, MAX_HEAD, HttpError, ServerConnection
from .standard import EdgeHandler
from .strategies import DEFAULT_MAX_MEMORY, DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT, Deployment, Limits, Outcome, deploy

LOOPBACK = ("127.0.0.1", "localhost", "::1")
EXECUTIONS = ("threads", "inline")
RECENT = 100_000  # server-side latencies kept per route for stats
_live: weakref.WeakSet[EdgeServer] = weakref.WeakSet()
_UNSET: Any = object()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Origin:
    """A non-Wasm route that answers after `delay_ms` (+ up to `jitter_ms`): a stand-in for a far origin."""

    body: bytes = b"origin\n"
    status: int = 200
    content_type: str = "text/plain"


class Route:
    """One path: the current deployment (or an origin), in-flight counts per deployment, stats."""

    def __init__(
        self, path: str, deployment: Deployment | None, origin: Origin | None, delay_ms: float, jitter_ms: float
    ) -> None:
        self.path = path
        self.deployment = deployment
        self.origin = origin
        self.delay_ms = float(delay_ms)
        self.jitter_ms = float(jitter_ms)
        self.swaps = 0
        self.requests = 0
        self.statuses: collections.Counter[int] = collections.Counter()
        self.latencies: collections.deque[float] = collections.deque(maxlen=RECENT)
        self._random = random.Random(path)
        self._lock = threading.Lock()
        self._inflight: dict[Deployment, int] = {}

    def __repr__(self) -> str:
        what = "origin" if self.origin else repr(self.deployment.handler) if self.deployment else "removed"
        return f"<Route {self.path} {what}>"

    def delay(self) -> float:
        """Seconds of simulated network delay for one request."""
        ms = self.delay_ms + (self._random.uniform(0, self.jitter_ms) if self.jitter_ms else 0.0)
        return ms / 1000.0

    def acquire(self) -> Deployment | None:
        with self._lock:
            deployment = self.deployment
            if deployment is not None:
                self._inflight[deployment] = self._inflight.get(deployment, 0) + 1
            return deployment

    def release(self, deployment: Deployment) -> Deployment | None:
        """Count a request as finished; returns the deployment when it was retired and is now idle (to close)."""
        with self._lock:
            left = self._inflight[deployment] - 1
            if left:
                self._inflight[deployment] = left
                return None
            del self._inflight[deployment]
            return deployment if deployment is not self.deployment else None

    def replace(self, new: Deployment | None) -> Deployment | None:
        """Make `new` current; returns the old deployment if nothing runs on it any more (else the last request
        on it returns it from `release`)."""
        with self._lock:
            old, self.deployment = self.deployment, new
            if new is not None and old is not None:
                self.swaps += 1
            return old if old is not None and old not in self._inflight else None

    def record(self, status: int, ms: float) -> None:
        with self._lock:
            self.requests += 1
            self.statuses[status] += 1
            self.latencies.append(ms)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            latencies = list(self.latencies)
            statuses = dict(self.statuses)
            deployment = self.deployment
        row: dict[str, Any] = {
            "route": self.path,
            "kind": "origin" if self.origin else "wasm",
            "handler": deployment.handler.name if deployment else "",
            "module": deployment.module_id if deployment else "",
            "strategy": deployment.strategy if deployment else "",
            "runtime": deployment.runtime.label if deployment else "",
            "delay_ms": self.delay_ms,
            "requests": self.requests,
            "ok": sum(n for s, n in statuses.items() if s < 400),
            "errors": sum(n for s, n in statuses.items() if s >= 500),
            "swaps": self.swaps,
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
        }
        if deployment is not None:
            counts = deployment.stats()
            row |= {"instances": counts.get("instances", 0), "cold": counts.get("cold", 0)}
            row |= {"resets": counts.get("resets", 0)}
        return row


class EdgeServer:
    """An edge worker on loopback. Defaults (runtime, strategy, pool size, limits, delay) apply to routes that
    do not set their own. `port=0` picks a free port (see `url` once started)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        runtime: str = "wasmtime",
        strategy: str = "pooled",
        pool_size: int = DEFAULT_POOL_SIZE,
        reset: str = "instantiate",
        timeout: float | None = DEFAULT_TIMEOUT,
        fuel: int | None = None,
        max_memory: int | None = DEFAULT_MAX_MEMORY,
        delay_ms: float = 0.0,
        workers: int = 4,
        execution: str = "threads",
        max_body: int = MAX_BODY,
        head_timeout: float = HEAD_TIMEOUT,
    ) -> None:
        if execution not in EXECUTIONS:
            raise UsageError(f"unknown execution {execution!r}: use one of {', '.join(EXECUTIONS)}")
        if host not in LOOPBACK:
            raise UsageError(f"the edge server listens on loopback only (127.0.0.1, ::1, localhost), not {host!r}")
        self.host, self.port = host, port
        self.defaults = {
            "runtime": runtime,
            "strategy": strategy,
            "pool_size": pool_size,
            "reset": reset,
            "timeout": timeout,
            "fuel": fuel,
            "max_memory": max_memory,
            "delay_ms": delay_ms,
            "jitter_ms": 0.0,
        }
        self.workers = max(1, workers)
        self.execution = execution
        self.max_body = max_body
        self.head_timeout = head_timeout
        self.routes: dict[str, Route] = {}
        self._routes_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._stopped = False
        self.started_at = 0.0
        _live.add(self)  # stopped at interpreter exit, started or not (routes hold instances and threads)

    # lifecycle --------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped

    @property
    def url(self) -> str:
        if not self.running:
            raise UsageError("the edge server is not running: call start() (or use it in a with block)")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> EdgeServer:
        """Listen in a background thread; returns once the port is open (self, for chaining)."""
        if self.running:
            return self
        if self._stopped:
            raise UsageError("this edge server was stopped: make a new EdgeServer")
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="wasmlab-edge")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="wasmlab-edge-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise UsageError("the edge server did not start within 30 s")
        if self._start_error is not None:
            self._thread.join(5)
            self._executor.shutdown(wait=False)
            self._stopped = True
            raise UsageError(f"cannot listen on {self.host}:{self.port}: {self._start_error}") from None
        self.started_at = time.monotonic()
        return self

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._connection, self.host, self.port, limit=MAX_HEAD)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except Exception as exc:
            self._start_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def stop(self) -> None:
        """Stop listening, close connections, then free every deployment (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
            thread.join(15)
        executor = self._executor
        if executor is not None:  # wait for running guests (each bounded by its timeout), 15 s at most
            threads = list(getattr(executor, "_threads", ()))
            executor.shutdown(wait=False, cancel_futures=True)
            deadline = time.monotonic() + 15
            for worker in threads:
                worker.join(max(0.0, deadline - time.monotonic()))
        with self._routes_lock:  # routes stay listed (their stats too); their deployments are closed
            routes = list(self.routes.values())
        for route in routes:
            for deployment in {route.deployment, *route._inflight}:
                if deployment is not None:
                    deployment.close()
        _live.discard(self)

    close = stop

    def __enter__(self) -> EdgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped" if self._stopped else "not started"
        return f"<wasmlab.edge.EdgeServer {where} routes={list(self.routes)}>"

    def serve_forever(self, duration: float | None = None) -> None:
        """Start (if needed) and block until Ctrl-C, or for `duration` seconds; then stop."""
        self.start()
        try:
            deadline = None if duration is None else time.monotonic() + duration
            while self.running and (deadline is None or time.monotonic() < deadline):
                time.sleep(0.2)
        finally:
            self.stop()

    def fetch(
        self,
        path: str = "/",
        method: str = "GET",
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Response:
        """One real HTTP request to this server (a new connection), for notebooks: a `Response` whose headers
        include the x-wasmlab-* and server-timing ones."""
        import http.client

        host = self.url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
        data = body.encode() if isinstance(body, str) else bytes(body)
        conn = http.client.HTTPConnection(host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data or None, headers=headers or {})
            answer = conn.getresponse()
            return Response(answer.status, [(k.lower(), v) for k, v in answer.getheaders()], answer.read())
        finally:
            conn.close()

    # routes -----------------------------------------------------------------------------------------------
    def _deployment(self, handler: Any, options: dict[str, Any], compile_options: dict[str, Any]) -> Deployment:
        if not isinstance(handler, Handler):
            lang = compile_options.pop("lang", None)
            if isinstance(handler, (str, Path, Module, EdgeHandler)):
                handler = compile_handler(handler, lang, **compile_options)
            else:
                raise UsageError(f"a route needs a Handler, a Module, source text or a file; got {handler!r}")
        elif compile_options:
            raise UsageError(f"compile options {sorted(compile_options)} apply to source, not to a Handler")
        limits = Limits(options["timeout"], options["fuel"], options["max_memory"])
        return deploy(
            handler,
            options["strategy"],
            options["runtime"],
            limits,
            pool_size=options["pool_size"],
            reset=options["reset"],
        )

    def route(
        self,
        path: str,
        handler: Handler | Module | str | Path,
        lang: str | None = None,
        *,
        strategy: str = _UNSET,
        runtime: str = _UNSET,
        pool_size: int = _UNSET,
        reset: str = _UNSET,
        timeout: float | None = _UNSET,
        fuel: int | None = _UNSET,
        max_memory: int | None = _UNSET,
        delay_ms: float = _UNSET,
        jitter_ms: float = _UNSET,
        **compile_options: Any,
    ) -> Route:
        """Serve `path` with `handler` (a Handler, a Module, source text with `lang`, or a file). The handler is
        compiled and its deployment warmed (the pool filled) before this returns. Options left out take the
        server's defaults. Routing an existing path hot-swaps it (see `swap`)."""
        path = _normalize_path(path)
        self._check_open()
        given = {
            "strategy": strategy,
            "runtime": runtime,
            "pool_size": pool_size,
            "reset": reset,
            "timeout": timeout,
            "fuel": fuel,
            "max_memory": max_memory,
            "delay_ms": delay_ms,
            "jitter_ms": jitter_ms,
        }
        existing = self.routes.get(path)
        if existing is not None and existing.deployment is not None:
            base = self._route_options(existing)
        else:
            base = dict(self.defaults)
        options = base | {k: v for k, v in given.items() if v is not _UNSET}
        if lang is not None:
            compile_options["lang"] = lang
        deployment = self._deployment(handler, options, compile_options)
        with self._routes_lock:
            route = self.routes.get(path)
            if route is None or route.origin is not None:
                old = route.deployment if route is not None else None
                route = self.routes[path] = Route(path, deployment, None, options["delay_ms"], options["jitter_ms"])
                retired = old
            else:
                route.delay_ms = float(options["delay_ms"])
                route.jitter_ms = float(options["jitter_ms"])
                retired = route.replace(deployment)
        if retired is not None:
            retired.close()
        return route

    def swap(self, path: str, handler: Handler | Module | str | Path, lang: str | None = None, **options: Any) -> Route:
        """Hot swap: build and warm a deployment of `handler` (same strategy, runtime and limits unless given),
        then switch the route to it. Requests that arrive after the switch run the new module; requests already
        running finish on the old one, which is closed when the last of them is done. No request fails."""
        path = _normalize_path(path)
        route = self.routes.get(path)
        if route is None or route.origin is not None:
            raise UsageError(f"no Wasm route {path!r} to swap: routes are {', '.join(self.routes) or 'none'}")
        return self.route(path, handler, lang, **options)

    def origin(
        self,
        path: str,
        delay_ms: float = 50.0,
        *,
        body: bytes | str = b"origin\n",
        status: int = 200,
        jitter_ms: float = 0.0,
        content_type: str = "text/plain",
    ) -> Route:
        """A simulated far-away origin: answers `body` after `delay_ms` (+ up to `jitter_ms`), no Wasm."""
        path = _normalize_path(path)
        self._check_open()
        data = body.encode() if isinstance(body, str) else bytes(body)
        route = Route(path, None, Origin(data, status, content_type), delay_ms, jitter_ms)
        with self._routes_lock:
            old = self.routes.get(path)
            self.routes[path] = route
        if old is not None and old.deployment is not None:
            retired = old.replace(None)
            if retired is not None:
                retired.close()
        return route

    def remove(self, path: str) -> None:
        path = _normalize_path(path)
        with self._routes_lock:
            route = self.routes.pop(path, None)
        if route is None:
            raise UsageError(f"no route {path!r}: routes are {', '.join(self.routes) or 'none'}")
        retired = route.replace(None)
        if retired is not None:
            retired.close()

    def _check_open(self) -> None:
        if self._stopped:
            raise UsageError("this edge server was stopped: make a new EdgeServer")

    def _route_options(self, route: Route) -> dict[str, Any]:
        deployment = route.deployment
        assert deployment is not None
        return self.defaults | {
            "strategy": deployment.strategy,
            "runtime": deployment.runtime_name,
            "pool_size": getattr(deployment, "pool_size", self.defaults["pool_size"]),
            "reset": getattr(deployment, "reset_mode", self.defaults["reset"]),
            "timeout": deployment.limits.timeout,
            "fuel": deployment.limits.fuel,
            "max_memory": deployment.limits.max_memory,
            "delay_ms": route.delay_ms,
            "jitter_ms": route.jitter_ms,
        }

    def match(self, path: str) -> Route | None:
        """The route serving `path`: the longest prefix that ends at a segment boundary."""
        routes = self.routes
        candidate = path
        while True:
            route = routes.get(candidate)
            if route is not None:
                return route
            if candidate == "/":
                return None
            candidate = candidate.rsplit("/", 1)[0] or "/"

    def stats(self):  # -> pandas.DataFrame
        """One row per route: requests, ok, errors, swaps, server-side p50/p99 ms, instances made, cold starts."""
        import pandas as pd

        return pd.DataFrame([route.stats() for route in list(self.routes.values())])

    # serving ----------------------------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        http = ServerConnection(reader, writer, self.max_body, self.head_timeout)
        try:
            while True:
                try:
                    request = await http.next_request()
                except HttpError as exc:  # refused: answered once, then this connection (only) is closed
                    writer.write(http.error(exc))
                    await writer.drain()
                    break
                if request is None:
                    break
                status, headers, body = await self._dispatch(request)
                writer.write(http.response(status, headers, body, request.keep_alive, request.method == "HEAD"))
                await writer.drain()
                if not request.keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _dispatch(self, request: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        t0 = time.perf_counter()
        path = request.path
        if path.startswith("/_edge/"):
            return self._admin(path)
        route = self.match(path)
        if route is None:
            known = ", ".join(self.routes) or "none"
            return _text(404, f"no route for {path}: routes are {known}")
        headers = [("server", "wasmlab-edge"), ("x-wasmlab-route", route.path)]
        delay = route.delay()
        if delay:
            await asyncio.sleep(delay)
        if route.origin is not None:
            origin = route.origin
            total = (time.perf_counter() - t0) * 1000.0
            route.record(origin.status, total)
            timing = f"delay;dur={delay * 1000:.3f}, total;dur={total:.3f}"
            headers += [("content-type", origin.content_type), ("server-timing", timing)]
            return origin.status, headers, origin.body
        deployment = route.acquire()
        if deployment is None:
            return _text(404, f"route {route.path} was removed")
        data = encode_request(request.method, request.target, request.headers, request.body)
        loop = asyncio.get_running_loop()
        try:
            if self.execution == "inline":
                outcome: Outcome = deployment.serve(data)
            else:
                outcome = await loop.run_in_executor(self._executor, deployment.serve, data)
        finally:
            retired = route.release(deployment)
            if retired is not None:
                try:
                    loop.run_in_executor(self._executor, retired.close)
                except RuntimeError:  # the executor is shutting down
                    retired.close()
        total = (time.perf_counter() - t0) * 1000.0
        headers += [
            ("x-wasmlab-strategy", deployment.strategy),
            ("x-wasmlab-runtime", deployment.runtime.label),
            ("x-wasmlab-module", outcome.module),
            ("x-wasmlab-instance", str(outcome.instance)),
            (
                "server-timing",
                f"delay;dur={delay * 1000:.3f}, instantiate;dur={outcome.instantiate_ms:.3f}, "
                f"handler;dur={outcome.handler_ms:.3f}, total;dur={total:.3f}",
            ),
        ]
        if outcome.reset:
            headers.append(("x-wasmlab-reset", "instance replaced after a failure: its state is gone"))
        route.record(outcome.status, total)
        if outcome.response is None:
            headers += [("content-type", "text/plain; charset=utf-8"), ("x-wasmlab-error", outcome.error_kind or "")]
            return outcome.status, headers, f"{outcome.error}\n".encode()
        response = outcome.response
        reserved = {name for name, _ in headers} | {"content-length", "connection", "transfer-encoding"}
        headers += [(k, v) for k, v in response.headers if k.lower() not in reserved]
        return response.status, headers, response.body

    def _admin(self, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
        if path == "/_edge/health":
            return _text(200, "ok")
        if path == "/_edge/stats":
            rows = [_clean(route.stats()) for route in list(self.routes.values())]
            body = json.dumps({"uptime_s": time.monotonic() - self.started_at, "routes": rows}).encode()
            return 200, [("content-type", "application/json"), ("server", "wasmlab-edge")], body
        return _text(404, "admin endpoints: /_edge/health, /_edge/stats")


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}  # NaN -> null


def _text(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("content-type", "text/plain; charset=utf-8"), ("server", "wasmlab-edge")], f"{message}\n".encode()


def _normalize_path(path: str) -> str:
    if not path.startswith("/"):
        raise UsageError(f"a route path starts with '/', got {path!r}")
    if path.startswith("/_edge/"):
        raise UsageError("paths under /_edge/ are the server's own (health, stats)")
    return path.rstrip("/") or "/"


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.stop()
