"""Per-call cost of a component function as an MCP tool, against calling it directly.

One tool, `add(a: s32, b: s32) -> s32`, of a WAT component (or, with --python, of a componentize-py component), called:

  direct       `instance.call("add", 1, 2)` on a wasmtime instance in this process: the guest call alone;
  host         `ToolHost.call("add", {"a": 1, "b": 2})` in this process: + JSON Schema check, value conversion,
               outcome (wasmlab.mcp's own work, no MCP);
  mcp-stdio    the MCP SDK's `Client.call_tool` on `wasmlab mcp serve` over stdio, awaited in the client's event
               loop as an assistant would: + JSON-RPC, the pipe, the server's dispatch and worker thread, the
               client's output-schema check;
  mcp-http     the same over streamable HTTP on 127.0.0.1;
  session      `wasmlab.mcp.session(...).call(...)` from synchronous code (a notebook): + one hop into the
               client's event-loop thread per call.

Each sample times a batch of calls and divides; the table shows the median and IQR, and the MCP overhead (median
minus `direct`). The server runs in its own process, so the figures include two processes sharing the machine.

    .venv/bin/python benchmarks/bench_mcp.py [--samples N] [--batch N] [--python] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import wasmlab
from wasmlab.mcp import ToolHost, session

ADD_COMPONENT = """(component
  (core module $m (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
  (core instance $i (instantiate $m))
  (func (export "add") (param "a" s32) (param "b" s32) (result s32) (canon lift (core func $i "add"))))
"""
ADD_PY = "def add(a: int, b: int) -> int:\n    return a + b\n"  # componentize-py: add(a: s64, b: s64) -> s64


def sample(fn: Callable[[], Any], samples: int, batch: int) -> list[float]:
    """Microseconds per call, one value per batch of `batch` calls."""
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        out.append((time.perf_counter() - t0) / batch * 1e6)
    return out


def sample_async(portal: Any, fn: Callable[[], Awaitable[Any]], samples: int, batch: int) -> list[float]:
    """As `sample`, for a coroutine function, timed inside the event loop `portal` runs."""

    async def batches() -> list[float]:
        out = []
        for _ in range(samples):
            t0 = time.perf_counter()
            for _ in range(batch):
                await fn()
            out.append((time.perf_counter() - t0) / batch * 1e6)
        return out

    return portal.call(batches)


def summary(name: str, values: list[float]) -> dict[str, Any]:
    q1, median, q3 = statistics.quantiles(values, n=4)
    return {"name": name, "median_us": median, "iqr_us": q3 - q1, "samples": len(values)}


def measure(module: wasmlab.Module, runtime: str, samples: int, batch: int) -> list[dict[str, Any]]:
    arguments = {"a": 1, "b": 2}
    rows = []
    with module.instantiate(runtime) as instance:
        assert instance.call("add", 1, 2) == 3
        rows.append(summary("direct", sample(lambda: instance.call("add", 1, 2), samples, batch)))
    with ToolHost(module, runtime=runtime) as host:
        assert host.call("add", arguments).value == 3
        rows.append(summary("host", sample(lambda: host.call("add", arguments), samples, batch)))
    for transport in ("stdio", "http"):
        with session(module, runtime=runtime, transport=transport) as s:
            assert s.value("add", arguments) == 3
            rows.append(
                summary(
                    f"mcp-{transport}",
                    sample_async(s.portal, lambda s=s: s.client.call_tool("add", arguments), samples, batch),
                )
            )
            if transport == "stdio":
                rows.append(summary("session", sample(lambda s=s: s.call("add", arguments), samples, batch)))
    direct = rows[0]["median_us"]
    for row in rows:
        row["overhead_us"] = row["median_us"] - direct
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30, help="batches per row")
    parser.add_argument("--batch", type=int, default=50, help="calls per batch")
    parser.add_argument("--python", action="store_true", help="a componentize-py component instead of WAT")
    parser.add_argument("--runtime", default="wasmtime", help="wasmtime or wasmtime:winch")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if args.python:
        module = wasmlab.compile(ADD_PY, "python", name="add-py")
    else:
        module = wasmlab.compile(ADD_COMPONENT, "wat", name="add-wat")
    rows = measure(module, args.runtime, args.samples, args.batch)
    if args.json:
        info = {"python": platform.python_version(), "machine": platform.machine(), "module": module.name}
        print(json.dumps({"info": info, "rows": rows}, indent=2))
        return
    print(f"{module.name} ({module.size:,} bytes) on {args.runtime}; microseconds per call")
    print(f"{'path':<11} {'median us':>10} {'IQR us':>8} {'overhead us':>12}")
    for row in rows:
        print(f"{row['name']:<11} {row['median_us']:>10.1f} {row['iqr_us']:>8.1f} {row['overhead_us']:>12.1f}")


if __name__ == "__main__":
    main()
