"""Per-call cost of calling a Wasm export from Python on wasmtime, and the cost of a fresh instance.

Rows: `add(i32, i32) -> i32` through wasmtime-py's `Func.__call__`, through wasmlab's `instance.call` (the cached
raw-FFI path), through `instance.exports.add`, the same with a fuel budget (two more FFI calls per call), and
`runtime.instantiate` of an already compiled module (the cached InstancePre: a new Store and instance). Each
sample times a batch of calls and divides; the table shows the median and the interquartile range over samples.

    .venv/bin/python benchmarks/bench_calls.py [--samples N] [--batch N] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import wasmtime

import wasmlab
from wasmlab.runtimes import RunOptions
from wasmlab.runtimes.wasmtime import WasmtimeRuntime

ADD_WAT = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'


def sample(fn: Callable[[], Any], samples: int, batch: int) -> list[float]:
    """Microseconds per call, one value per batch of `batch` calls."""
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        out.append((time.perf_counter() - t0) / batch * 1e6)
    return out


def summary(name: str, values: list[float]) -> dict[str, Any]:
    q1, median, q3 = statistics.quantiles(values, n=4)
    return {"name": name, "median_us": median, "iqr_us": q3 - q1, "q1_us": q1, "q3_us": q3, "samples": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300, help="batches per row")
    parser.add_argument("--batch", type=int, default=200, help="calls per batch")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    module = wasmlab.compile(ADD_WAT, lang="wat", name="add")

    # (a) wasmtime-py as a user would write it: default engine, Func.__call__.
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    func = wasmtime.Instance(store, wasmtime.Module(engine, module.bytes), []).exports(store)["add"]
    assert func(store, 1, 2) == 3

    runtime = WasmtimeRuntime()
    instance = runtime.instantiate(module, RunOptions())
    fueled = runtime.instantiate(module, RunOptions(fuel=1_000_000))
    exports = instance.exports
    assert instance.call("add", 1, 2) == 3 and exports.add(1, 2) == 3 and fueled.call("add", 1, 2) == 3

    def call() -> Any:
        return instance.call("add", 1, 2)

    def attribute() -> Any:
        return exports.add(1, 2)

    def with_fuel() -> Any:
        return fueled.call("add", 1, 2)

    def wasmtime_py() -> Any:
        return func(store, 1, 2)

    def reinstantiate() -> None:
        runtime.instantiate(module, RunOptions()).close()

    rows = [
        summary("wasmtime-py Func.__call__", sample(wasmtime_py, args.samples, max(1, args.batch // 10))),
        summary("wasmlab instance.call", sample(call, args.samples, args.batch)),
        summary("wasmlab instance.exports.add", sample(attribute, args.samples, args.batch)),
        summary("wasmlab instance.call, fuel set", sample(with_fuel, args.samples, args.batch)),
        summary("instantiate again + close", sample(reinstantiate, args.samples, max(1, args.batch // 20))),
    ]
    inner = []  # the instantiate phase alone, as RunResult timings report it
    for _ in range(args.samples):
        fresh = runtime.instantiate(module, RunOptions())
        inner.append(fresh.timings["instantiate"] * 1000.0)
        fresh.close()
    rows.append(summary("instantiate phase (timings)", inner))
    instance.close()
    fueled.close()
    runtime.close()

    if args.json:
        info = {"python": platform.python_version(), "wasmtime": runtime.version(), "machine": platform.machine()}
        print(json.dumps({"info": info, "rows": rows}, indent=2))
        return
    print(f"{runtime.version()}, Python {platform.python_version()}; microseconds per operation")
    print(f"{'path':<34} {'median us':>10} {'IQR us':>8}")
    for row in rows:
        print(f"{row['name']:<34} {row['median_us']:>10.2f} {row['iqr_us']:>8.2f}")


if __name__ == "__main__":
    main()
