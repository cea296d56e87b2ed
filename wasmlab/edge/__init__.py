"""wasmlab.edge: serve HTTP requests with Wasm handlers on loopback, the way an edge platform does, and measure it.

    from wasmlab import edge

    hello = edge.compile_handler('''
    void on_request(const edge_request *req, edge_response *res) {
        edge_set_header(res, "content-type", "text/plain");
        edge_write_str(res, "hello from the edge\\n");
    }''', lang="c")
    hello.invoke("GET /").text                          # one request, no server: 'hello from the edge\\n'

    with edge.EdgeServer() as server:                    # 127.0.0.1, free port, background thread
        server.route("/hello", hello, strategy="pooled")
        report = edge.load(server.url + "/hello", requests=2000, rate=200, duration=10)
        report.summary()                                 # requests/s, p50/p90/p99 ms

The pieces, each one file:

    abi/       the wasmlab-edge/1 ABI (request/response encoding, alloc/handle) and per-language helpers
    handler    Handler, compile_handler: source or module -> a checked handler
    strategies fresh / pooled / reused instance strategies with per-request limits -> Outcome
    http       a minimal HTTP/1.1 on asyncio streams (server and client halves)
    server     EdgeServer: routes, hot swap, simulated network delay, origins, stats
    loadgen    load(), benchmark(), compare_urls(): LoadReport / LoadComparison (DataFrames, plotly figures)
    platforms/ edge platforms by name (wasmlab, workerd, jco; wasmtime-serve, spin, fastly listed), each a process
    compare    compare_platforms(): one handler on several platforms, agreement and speed (PlatformComparison)
    cli        `wasmlab edge serve` and `wasmlab edge load`
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names load on first use (PEP 562), so `wasmlab edge --help` and `import wasmlab.edge.cli` stay light.
_EXPORTS = {
    "ABI_VERSION": "abi",
    "BadResponse": "abi",
    "Request": "abi",
    "Response": "abi",
    "decode_response": "abi",
    "encode_request": "abi",
    "helper_source": "abi",
    "STRATEGIES": "strategies",
    "Deployment": "strategies",
    "Limits": "strategies",
    "Outcome": "strategies",
    "deploy": "strategies",
    "Handler": "handler",
    "compile_handler": "handler",
    "PlatformComparison": "compare",
    "compare_platforms": "compare",
    "LoadComparison": "loadgen",
    "LoadReport": "loadgen",
    "benchmark": "loadgen",
    "compare_urls": "loadgen",
    "load": "loadgen",
    "EdgeServer": "server",
    "Route": "server",
}

__all__ = [
    "ABI_VERSION",
    "STRATEGIES",
    "BadResponse",
    "Deployment",
    "EdgeServer",
    "Handler",
    "Limits",
    "LoadComparison",
    "LoadReport",
    "Outcome",
    "PlatformComparison",
    "Request",
    "Response",
    "Route",
    "benchmark",
    "compare_platforms",
    "compare_urls",
    "compile_handler",
    "decode_response",
    "deploy",
    "encode_request",
    "helper_source",
    "load",
]

if TYPE_CHECKING:
    from .abi import ABI_VERSION, BadResponse, Request, Response, decode_response, encode_request, helper_source
    from .compare import PlatformComparison, compare_platforms
    from .handler import Handler, compile_handler
    from .loadgen import LoadComparison, LoadReport, benchmark, compare_urls, load
    from .server import EdgeServer, Route
    from .strategies import STRATEGIES, Deployment, Limits, Outcome, deploy


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wasmlab.edge' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
