"""wasmlab.edge: serve HTTP requests with Wasm handlers on loopback, the way an edge platform does, and measure it.

Standard handlers (wasi:http/proxy@0.2.0 components, the same bytes any wasi:http host serves):

    h = edge.build("hello.c")            # or build(text, lang="c"), a core .wasm, a component .wasm, bytes
    h.component                          # bytes of the component (validates; exports wasi:http/incoming-handler)
    h.core                               # bytes of its core module, for hosts that take core Wasm (None when the
                                         # component is not one core module underneath, e.g. componentize-py's)
    h.sha256, h.lang, h.name             # sha256 of the component
    h.save("hello.wasm"); h.wit()

    C/C++: define `void on_request(const edge_request *req, edge_response *res)` and the helper
    (sdk/edge.h: edge_query, edge_get_header, edge_status, edge_set_header, edge_write_str...) is added; code
    that declares the standard imports itself (or WAT) is built as it is. WIT: wit/ (wasi:http 0.2.0 + deps).
    CLI: `wasmlab edge build SRC [-o OUT] [--core-out CORE] [--lang L]`.

Serving them (the lab's own platform, `wasmlab edge serve H.wasm --platform wasmlab`): `compile_handler` turns
a component, a standard core module or C/C++ source with `on_request` into a standard `Handler` (kind "http"),
served on wasmtime through the lab's wasi:http host (`wasi_http`) with every instance strategy and limit.
Rust, Go and AssemblyScript handlers (and C with `standard=False`) still use the older lab ABI, wasmlab-edge/1:

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

    standard   build(), EdgeHandler: a handler -> standard wasi:http component (+ its core module)
    wit/, sdk/ the wasi:http 0.2.0 WIT (the world wasmlab:edge/handler) and the C/C++ helper edge.h
    abi/       the wasmlab-edge/1 ABI (request/response encoding, alloc/handle) and per-language helpers
    handler    Handler, compile_handler: source or module -> a checked handler
    strategies fresh / pooled / reused instance strategies with per-request limits -> Outcome
    wasi_http  the lab's wasi:http host: the imports of a standard handler's core module, as host functions
    http       HTTP/1.1 on h11 over asyncio streams (RFC 9112 refusals: 400/408/413/431/501)
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
    "EdgeHandler": "standard",
    "build": "standard",
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
    "EdgeHandler",
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
    "build",
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
    from .standard import EdgeHandler, build
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
