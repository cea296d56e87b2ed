"""wasmlab.edge load generator: bounded runs on loopback, the report (DataFrame columns, figure traces), the
strategy x runtime benchmark, and edge-vs-origin comparisons."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from wasmlab import UsageError
from wasmlab.edge import EdgeServer, LoadComparison, LoadReport, benchmark, compare_urls, compile_handler, load

HELLO_WAT = r"""
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "200\ncontent-type: text/plain\n\nhello")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "handle") (param i32 i32) (result i64) (i64.const 35)))
"""

SPIN_WAT = r"""
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "handle") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0)))
"""


@pytest.fixture(scope="module")
def server():
    with EdgeServer(timeout=0.2) as srv:
        srv.route("/hello", compile_handler(HELLO_WAT, "wat"))
        srv.route("/spin", compile_handler(SPIN_WAT, "wat"))
        srv.origin("/origin", delay_ms=25)
        yield srv


def test_load_report_summary_samples_and_figures(server):
    report = load(server.url + "/hello", requests=200, concurrency=4, duration=10, label="hello")
    assert isinstance(report, LoadReport)
    s = report.summary()
    assert (s["requests"], s["ok"], s["failed"]) == (200, 200, 0)
    assert s["rps"] > 50 and 0 < s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert list(report.samples.columns) == ["start_s", "latency_ms", "service_ms", "status", "bytes", "error"]
    assert set(report.samples["status"]) == {200} and set(report.samples["bytes"]) == {5}
    table = report.table
    for column in ("label", "requests", "ok", "failed", "rps", "p50_ms", "p90_ms", "p99_ms", "concurrency", "rate"):
        assert column in table.columns
    fig = report.figure()
    assert [t.type for t in fig.data] == ["histogram"] and len(fig.data[0].x) == 200
    assert [t.name for t in report.timeline_figure().data] == ["ok", "failed"]
    assert "<table" in report._repr_html_()


def test_open_loop_rate_and_bounds(server):
    report = load(server.url + "/hello", requests=40, concurrency=2, rate=100, duration=5)
    s = report.summary()
    assert s["requests"] == 40 and s["failed"] == 0
    assert 0.35 <= s["duration_s"] < 2.0  # 40 requests at 100/s take ~0.4 s
    t0 = time.monotonic()
    capped = load(server.url + "/hello", requests=1_000_000, concurrency=2, rate=50, duration=0.3)
    assert time.monotonic() - t0 < 3 and capped.summary()["requests"] <= 20  # the duration bound wins


def test_failures_are_counted_not_raised(server):
    report = load(server.url + "/spin", requests=4, concurrency=2, duration=5)
    s = report.summary()
    assert (s["requests"], s["failed"]) == (4, 4)
    assert set(report.samples["status"]) == {503}
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = load(f"http://127.0.0.1:{port}/", requests=3, concurrency=1, duration=5)
    assert refused.summary()["failed"] == 3 and "Connection" in refused.samples["error"][0]


def test_only_bounded_loopback_loads_are_allowed():
    for url in ("http://10.1.2.3/", "http://example.com/", "https://127.0.0.1/"):
        with pytest.raises(UsageError):
            load(url, requests=1)
    for kwargs in ({"requests": 0}, {"requests": 2_000_000}, {"duration": 0}, {"duration": 10_000}, {"rate": 0}):
        with pytest.raises(UsageError):
            load("http://127.0.0.1:9/", **kwargs)


def test_load_runs_inside_a_running_event_loop(server):
    async def notebook_cell():  # a Jupyter kernel's loop is already running when a cell calls load()
        return load(server.url + "/hello", requests=10, concurrency=1)

    assert asyncio.run(notebook_cell()).summary()["ok"] == 10


def test_edge_nearby_vs_origin_far_away(server):
    comparison = compare_urls(
        {"edge nearby": server.url + "/hello", "origin far away": server.url + "/origin"}, requests=20, concurrency=2
    )
    table = comparison.table.set_index("label")
    assert table.loc["origin far away", "p50_ms"] >= 25 > table.loc["edge nearby", "p50_ms"]


def test_benchmark_table_and_figures():
    comparison = benchmark(
        HELLO_WAT,
        lang="wat",
        runtimes=("wasmtime", "wasmedge"),
        rates=(None, 200),
        requests=30,
        duration=2,
        concurrency=2,
        warmup=2,
    )
    assert isinstance(comparison, LoadComparison)
    table = comparison.table
    assert list(table.columns[:4]) == ["label", "runtime", "strategy", "mode"]
    assert len(table) == 6 and set(table["strategy"]) == {"fresh", "pooled", "reused"}
    assert set(table["mode"]) == {"saturation", "200/s"} and (table["failed"] == 0).all()
    assert "wasmtime/fresh @ saturation" in set(table["label"])
    assert "wasmedge/pooled" in comparison.skipped  # not installable here: skipped with the reason
    fig = comparison.figure()
    assert [t.name for t in fig.data] == ["p50", "p90", "p99"] and len(fig.data[0].x) == 6
    assert len(comparison.throughput_figure().data) == 1
    assert len(comparison.latency_figure().data) == 6
