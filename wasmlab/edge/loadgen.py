"""A load generator for loopback HTTP servers: requests/s and latency percentiles, as tables and figures.

    report = load(server.url + "/hello", requests=2000, concurrency=8, rate=200, duration=10)
    report.summary()        # {"requests": 2000, "ok": 2000, "rps": 199.9, "p50_ms": 0.4, "p99_ms": 1.2, ...}
    report.samples          # one row per request: start_s, latency_ms, service_ms, status, bytes, error
    report.figure()         # latency histogram with p50/p90/p99 marked (plotly)

Closed loop (`rate=None`): `concurrency` connections each send the next request as soon as the previous
answer arrives, which finds the saturation throughput. Open loop (`rate=R`): request i is due at i/R seconds;
`concurrency` keep-alive connections send them. A request that falls due while every connection is still busy
counts its latency from when it was due, so a server that falls behind shows it in the percentiles instead of
hiding it (no coordinated omission); a connection that was idle counts from the actual send, so the client's
own timer slack is not charged to the server. `service_ms` is always send-to-answer.

Every run is bounded: at most `requests` requests (<= 1,000,000) and `duration` seconds (<= 600) of sending,
each request at most `timeout` seconds. Only loopback URLs (127.0.0.0/8, ::1, localhost) are accepted.
`benchmark()` runs a handler under every strategy and runtime on a fresh server; `compare_urls()` contrasts
routes (e.g. an edge handler nearby vs an origin far away). Both return a `LoadComparison`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import threading
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import UsageError
from .http import format_request, read_response
from .server import percentile

MAX_REQUESTS = 1_000_000
MAX_DURATION = 600.0
SUMMARY_COLUMNS = (
    "label",
    "requests",
    "ok",
    "failed",
    "duration_s",
    "rps",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "max_ms",
)
SAMPLE_COLUMNS = ("start_s", "latency_ms", "service_ms", "status", "bytes", "error")


def _need_plotly():
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise UsageError("figures need plotly: pip install plotly (or wasmlab[notebook])") from None
    return go


@dataclass
class LoadReport:
    """One load run: every request's timing and status, and what was asked (`meta`)."""

    url: str
    label: str
    records: list[tuple[float, float, float, int, int, str]]  # SAMPLE_COLUMNS
    duration_s: float
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"<LoadReport {self.label or self.url}: {s['requests']} requests, {s['failed']} failed, "
            f"{s['rps']:.0f}/s, p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms>"
        )

    @property
    def samples(self):  # -> pandas.DataFrame
        """One row per request: start_s (since the run began), latency_ms, service_ms, status, bytes, error."""
        import pandas as pd

        return pd.DataFrame(self.records, columns=list(SAMPLE_COLUMNS))

    def latencies(self, ok_only: bool = True) -> list[float]:
        return [r[1] for r in self.records if not ok_only or 0 < r[3] < 500]

    def summary(self) -> dict[str, Any]:
        """requests, ok (status < 500), failed, duration_s, rps (answers per second), latency percentiles of
        the ok requests, plus `meta` (strategy, runtime, rate, concurrency...)."""
        ok = self.latencies()
        done = len(self.records)
        return {
            "label": self.label,
            "requests": done,
            "ok": len(ok),
            "failed": done - len(ok),
            "duration_s": self.duration_s,
            "rps": done / self.duration_s if self.duration_s > 0 else float("nan"),
            "p50_ms": percentile(ok, 50),
            "p90_ms": percentile(ok, 90),
            "p99_ms": percentile(ok, 99),
            "mean_ms": sum(ok) / len(ok) if ok else float("nan"),
            "max_ms": max(ok) if ok else float("nan"),
            **self.meta,
        }

    @property
    def table(self):  # -> pandas.DataFrame
        import pandas as pd

        return pd.DataFrame([self.summary()])

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False, float_format=lambda v: f"{v:.3f}")

    def to_dict(self) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for record in self.records:
            statuses[str(record[3])] = statuses.get(str(record[3]), 0) + 1
        errors = sorted({r[5] for r in self.records if r[5]})[:5]
        return {"url": self.url, **self.summary(), "statuses": statuses, "errors": errors}

    def figure(self):  # -> plotly Figure
        """Latency histogram of the ok requests, with p50, p90 and p99 marked."""
        go = _need_plotly()
        s = self.summary()
        fig = go.Figure(go.Histogram(x=self.latencies(), nbinsx=80, name="latency"))
        for key, dash in (("p50_ms", "dot"), ("p90_ms", "dash"), ("p99_ms", "solid")):
            if s[key] == s[key]:
                fig.add_vline(x=s[key], line_dash=dash, annotation_text=f"{key[:3]} {s[key]:.2f} ms")
        fig.update_layout(
            title=f"{self.label or self.url}: {s['requests']} requests, {s['rps']:.0f}/s",
            xaxis_title="latency (ms)",
            yaxis_title="requests",
            showlegend=False,
        )
        return fig

    def timeline_figure(self):  # -> plotly Figure
        """Latency of each request against when it started (errors in red)."""
        go = _need_plotly()
        ok = [r for r in self.records if 0 < r[3] < 500]
        bad = [r for r in self.records if not 0 < r[3] < 500]
        fig = go.Figure(
            [
                go.Scattergl(x=[r[0] for r in ok], y=[r[1] for r in ok], mode="markers", name="ok"),
                go.Scattergl(
                    x=[r[0] for r in bad], y=[r[1] for r in bad], mode="markers", name="failed", marker_color="red"
                ),
            ]
        )
        fig.update_layout(title=self.label or self.url, xaxis_title="time (s)", yaxis_title="latency (ms)")
        return fig


@dataclass
class LoadComparison:
    """Several load runs side by side: `table` (one row per run), `figure()` (p50/p90/p99 bars),
    `throughput_figure()` (requests/s), `latency_figure()` (latency percentile curves)."""

    reports: list[LoadReport]
    skipped: dict[str, str] = field(default_factory=dict)  # label -> why it did not run

    @property
    def table(self):  # -> pandas.DataFrame
        import pandas as pd

        rows = [r.summary() for r in self.reports]
        frame = pd.DataFrame(rows)
        if frame.empty:
            return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
        first = [c for c in ("label", "runtime", "strategy", "mode") if c in frame.columns]
        return frame[first + [c for c in frame.columns if c not in first]]

    def _repr_html_(self) -> str:
        skipped = "".join(f"<p>skipped {name}: {why}</p>" for name, why in self.skipped.items())
        return self.table.to_html(index=False, float_format=lambda v: f"{v:.3f}") + skipped

    def to_dict(self) -> dict[str, Any]:
        return {"runs": [r.to_dict() for r in self.reports], "skipped": self.skipped}

    def figure(self):  # -> plotly Figure
        """Grouped bars: p50, p90 and p99 latency (ms) per run."""
        go = _need_plotly()
        labels = [r.label for r in self.reports]
        summaries = [r.summary() for r in self.reports]
        fig = go.Figure(
            [go.Bar(name=key[:3], x=labels, y=[s[key] for s in summaries]) for key in ("p50_ms", "p90_ms", "p99_ms")]
        )
        fig.update_layout(barmode="group", title="latency per run", yaxis_title="ms", yaxis_type="log")
        return fig

    def throughput_figure(self):  # -> plotly Figure
        go = _need_plotly()
        fig = go.Figure(go.Bar(x=[r.label for r in self.reports], y=[r.summary()["rps"] for r in self.reports]))
        fig.update_layout(title="throughput per run", yaxis_title="requests/s")
        return fig

    def latency_figure(self):  # -> plotly Figure
        """One curve per run: latency at each percentile (log scale), the shape of the tail."""
        go = _need_plotly()
        qs = [q / 10 for q in range(0, 1000)] + [99.5, 99.9, 100.0]
        traces = []
        for report in self.reports:
            values = report.latencies()
            if values:
                traces.append(go.Scatter(x=qs, y=[percentile(values, q) for q in qs], name=report.label))
        fig = go.Figure(traces)
        fig.update_layout(title="latency by percentile", xaxis_title="percentile", yaxis_title="ms", yaxis_type="log")
        return fig


# the generator -------------------------------------------------------------------------------------------------
def _target(url: str) -> tuple[str, int, str, str]:
    """(host, port, request target, Host header) of a loopback http URL; UsageError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise UsageError(f"load takes http:// URLs on loopback, got {url!r}")
    host = parts.hostname or ""
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise UsageError(f"load only targets loopback (127.0.0.1, ::1, localhost), not {host!r}")
    port = parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host, port, target, parts.netloc


def _check_bounds(requests: int, duration: float, concurrency: int, rate: float | None) -> None:
    if not 1 <= requests <= MAX_REQUESTS:
        raise UsageError(f"requests must be 1..{MAX_REQUESTS:,}, got {requests}")
    if not 0 < duration <= MAX_DURATION:
        raise UsageError(f"duration must be in (0, {MAX_DURATION:g}] seconds, got {duration}")
    if not 1 <= concurrency <= 1024:
        raise UsageError(f"concurrency must be 1..1024, got {concurrency}")
    if rate is not None and not rate > 0:
        raise UsageError(f"rate must be positive requests/s (or None for as fast as possible), got {rate}")


async def aload(
    url: str,
    requests: int = 1000,
    concurrency: int = 8,
    rate: float | None = None,
    duration: float = 30.0,
    *,
    method: str = "GET",
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    warmup: int = 0,
    label: str = "",
    meta: dict[str, Any] | None = None,
) -> LoadReport:
    """`load` for a running event loop (await it)."""
    _check_bounds(requests, duration, concurrency, rate)
    host, port, target, netloc = _target(url)
    data = body.encode() if isinstance(body, str) else bytes(body)
    wire = format_request(method.upper(), target, netloc, headers, data)
    head_only = method.upper() == "HEAD"
    records: list[tuple[float, float, float, int, int, str]] = []
    issued = 0
    t0 = 0.0
    deadline = 0.0

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection(host, port), timeout)

    async def one(conn: Any) -> tuple[Any, int, int, str]:
        try:
            if conn is None:
                conn = await connect()
            reader, writer = conn
            writer.write(wire)
            status, answer_headers, answer = await asyncio.wait_for(read_response(reader, head_only), timeout)
            if answer_headers.get("connection", "").lower() == "close":
                writer.close()
                conn = None
            return conn, status, len(answer), ""
        except Exception as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn[1].close()
            reason = "timeout" if isinstance(exc, asyncio.TimeoutError) else f"{type(exc).__name__}: {exc}"
            return None, 0, 0, reason[:200]

    async def worker() -> None:
        nonlocal issued
        conn = None
        try:
            while True:
                now = time.perf_counter()
                if issued >= requests or now >= deadline:
                    return
                index = issued
                issued += 1
                due = t0 + index / rate if rate else now
                late = due <= now  # this connection was still busy when the request fell due: count the wait
                if not late:
                    if due >= deadline:
                        return
                    await asyncio.sleep(due - now)  # timer slack after an idle wait is the client's, not counted
                start = time.perf_counter()
                conn, status, size, error = await one(conn)
                end = time.perf_counter()
                begin = min(due, start) if late else start
                records.append((start - t0, (end - begin) * 1000.0, (end - start) * 1000.0, status, size, error))
        finally:
            if conn is not None:
                conn[1].close()

    if warmup:
        conn = None
        for _ in range(min(warmup, MAX_REQUESTS)):
            conn, *_ = await one(conn)
        if conn is not None:
            conn[1].close()
    t0 = time.perf_counter()
    deadline = t0 + duration
    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    try:
        await asyncio.wait_for(asyncio.gather(*workers), duration + timeout + 5)
    finally:
        for task in workers:
            task.cancel()
    elapsed = time.perf_counter() - t0
    info = {"rate": rate, "concurrency": concurrency, **(meta or {})}
    return LoadReport(url, label or target, sorted(records), elapsed, info)


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run `coro` to completion on a fresh event loop in a helper thread (works inside a notebook, whose own
    loop is already running); Ctrl-C cancels it."""
    box: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            box["task"] = task = loop.create_task(coro)
            box["result"] = loop.run_until_complete(task)
        except BaseException as exc:
            box["error"] = exc
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="wasmlab-edge-load", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
    except KeyboardInterrupt:
        task = box.get("task")
        if task is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        thread.join(10)
        raise
    if "error" in box:
        raise box["error"]
    return box["result"]


def load(
    url: str,
    requests: int = 1000,
    concurrency: int = 8,
    rate: float | None = None,
    duration: float = 30.0,
    *,
    client: str = "thread",
    **kw: Any,
) -> LoadReport:
    """Send at most `requests` requests to a loopback `url` within `duration` seconds, over `concurrency`
    keep-alive connections, at `rate` requests/s (None: as fast as the server answers). Returns a LoadReport.
    Options: method, body, headers, timeout (s per request), warmup (requests sent first, not counted), label,
    meta. `client="process"` runs the generator in its own Python process (`wasmlab edge load`), so it does not
    share the GIL with a server in this process; "thread" (default) runs it on a helper thread here."""
    if client == "process":
        return _load_in_process(url, requests, concurrency, rate, duration, **kw)
    if client != "thread":
        raise UsageError(f"unknown client {client!r}: use 'thread' or 'process'")
    return run_coroutine(aload(url, requests, concurrency, rate, duration, **kw))


def _load_in_process(
    url: str,
    requests: int,
    concurrency: int,
    rate: float | None,
    duration: float,
    *,
    method: str = "GET",
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    warmup: int = 0,
    label: str = "",
    meta: dict[str, Any] | None = None,
) -> LoadReport:
    """`load` in a child process: the same generator, its own interpreter."""
    import json
    import subprocess
    import sys

    _check_bounds(requests, duration, concurrency, rate)
    _target(url)
    text = body.decode() if isinstance(body, bytes) else body
    cmd = [sys.executable, "-m", "wasmlab", "edge", "load", url, "--json", "--records"]
    cmd += ["--requests", str(requests), "--concurrency", str(concurrency), "--duration", str(duration)]
    cmd += ["--method", method, "--body", text, "--timeout", str(timeout), "--warmup", str(warmup)]
    if rate is not None:
        cmd += ["--rate", str(rate)]
    for name, value in (headers or {}).items():
        cmd += ["--header", f"{name}: {value}"]
    limit = duration + timeout + 60 + warmup * timeout
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise UsageError(f"the load process failed: {(done.stderr or done.stdout).strip()[-300:]}")
    data = json.loads(done.stdout)
    records = [tuple(r) for r in data["records"]]
    info = {"rate": rate, "concurrency": concurrency, "client": "process", **(meta or {})}
    return LoadReport(url, label or data["label"], records, data["duration_s"], info)  # type: ignore[arg-type]


def compare_urls(urls: dict[str, str], requests: int = 500, concurrency: int = 4, **kw: Any) -> LoadComparison:
    """Load each URL in turn ({label: url}), e.g. an edge handler nearby vs an origin far away."""
    reports = [load(url, requests, concurrency, label=label, **kw) for label, url in urls.items()]
    return LoadComparison(reports)


def _mode(rate: float | None) -> str:
    return "saturation" if rate is None else f"{rate:g}/s"


def benchmark(
    handler: Any,
    strategies: Iterable[str] = ("fresh", "pooled", "reused"),
    runtimes: Iterable[str] = ("wasmtime",),
    rates: Iterable[float | None] = (200.0, None),
    *,
    requests: int = 2000,
    duration: float = 10.0,
    concurrency: int = 8,
    warmup: int = 50,
    method: str = "GET",
    body: bytes | str = b"",
    pool_size: int = 4,
    timeout: float = 1.0,
    execution: str = "threads",
    client: str = "thread",
    progress: Any = None,
    **handler_options: Any,
) -> LoadComparison:
    """Serve `handler` (a Handler, Module, source file, or text with lang=) under every strategy x runtime on
    one fresh loopback server, and load each route at every rate (None: saturation). Unavailable runtimes are
    skipped with the reason. `execution` is the server's ("threads" or "inline"), `client` the load generator's
    ("thread" or "process", see `load`). `progress(label)` is called before each run. Each row also has
    `instances` (made during the run), `cold` (pooled requests that found no ready instance) and the server's
    own p50/p99 (`server_p50_ms`, `server_p99_ms`: request parsed to response ready, no client, no kernel)."""
    from .handler import Handler, compile_handler
    from .server import EdgeServer

    lang = handler_options.pop("lang", None)
    if not isinstance(handler, Handler):
        handler = compile_handler(handler, lang, **handler_options)
    reports: list[LoadReport] = []
    skipped: dict[str, str] = {}
    workers = max(4, min(concurrency, 16))
    with EdgeServer(pool_size=pool_size, timeout=timeout, workers=workers, execution=execution) as server:
        for runtime in runtimes:
            for strategy in strategies:
                name = f"{runtime}/{strategy}"
                path = "/" + name.replace(":", "-")
                try:
                    server.route(path, handler, strategy=strategy, runtime=runtime)
                except Exception as exc:  # an engine that is not installed, or cannot run this handler
                    skipped[name] = str(exc).splitlines()[0]
                    continue
                for rate in rates:
                    label = f"{name} @ {_mode(rate)}"
                    if progress is not None:
                        progress(label)
                    meta = {"runtime": runtime, "strategy": strategy, "mode": _mode(rate), "execution": execution}
                    route = server.routes[path]
                    deployment = route.deployment
                    before = deployment.stats() if deployment is not None else {}
                    seen = route.requests
                    report = load(
                        server.url + path,
                        requests,
                        concurrency,
                        rate,
                        duration,
                        method=method,
                        body=body,
                        warmup=warmup,
                        label=label,
                        meta=meta,
                        client=client,
                    )
                    after = deployment.stats() if deployment is not None else {}
                    # instances made and requests that found the pool empty, during this run (warm-up included)
                    for key in ("instances", "cold"):
                        report.meta[key] = after.get(key, 0) - before.get(key, 0)
                    # the server's own view: request read to response ready, without the client and the kernel
                    measured = route.requests - seen - warmup
                    served = list(route.latencies)[-measured:] if measured > 0 else []
                    report.meta["server_p50_ms"] = percentile(served, 50)
                    report.meta["server_p99_ms"] = percentile(served, 99)
                    reports.append(report)
                server.remove(path)
    return LoadComparison(reports, skipped)
