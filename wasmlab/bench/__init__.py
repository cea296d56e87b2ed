"""Benchmarks you can trust: startup phase by phase, throughput against a native baseline, size vs speed and
sweeps, on the engines of this machine, as tidy tables and plotly figures.

    >>> from wasmlab import bench
    >>> result = bench.throughput(["wasmtime"], ["fib"], quick=True)  # doctest: +SKIP
    >>> result.ratios  # wasm/native geometric mean with a 95% bootstrap CI  # doctest: +SKIP
    >>> result.figure()  # plotly: throughput with error bars  # doctest: +SKIP
    >>> result.to_html("report.html")  # a self-contained report  # doctest: +SKIP
    >>> mine = bench.throughput("fib.c", "fib", (25,))  # your own code: time per call vs native  # doctest: +SKIP
    >>> bench.startup(module="fib.wat", invoke="fib", args=(10,))  # its startup phases  # doctest: +SKIP

Method (modelled on Sightglass): phases timed apart, next to the engine; warm-ups; 30 samples (quick: 5) with
runtimes interleaved in a seeded random order; medians with IQR and min; CV over 5% flagged; every kernel's
checksum checked against the native build on every engine; environment recorded. See `method` (the sampling
plan: `Sampling` are the keywords every benchmark takes, `samples`, `quick`, `seed`, `progress`), `stats`
(robust statistics, ratios to native), `kernels` (the C suite, its builds, calibration and native checksums),
and the private modules `_startup`, `_throughput`, `_crosscheck`, `_size`, `_sweep`, `_suite`, `_density`,
`_cluster` (the suite on a Dask cluster) behind the functions of the same names.

Your own code (a Module, a .wasm or source path, source text): `subject` (what is measured: the module, the
call, the source), `batch` (calls too short to time: the in-guest loop added to the module, host loops, the
checksum of n calls), `native` (the same source built for this machine with a harness that calls F the same
way), `_calls` (throughput of one call, and `throughput` itself, which hands the kernel suite to
`_throughput`); `startup` and `size_vs_speed` take your code too.

Everything heavy (pandas, numpy, plotly, engines) loads on first use: `import wasmlab.bench` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "startup": "_startup",
    "StartupResult": "_startup",
    "throughput": "_calls",
    "ThroughputResult": "_throughput",
    "ChecksumMismatch": "kernels",
    "crosscheck": "_crosscheck",
    "CrossCheckResult": "_crosscheck",
    "size_vs_speed": "_size",
    "SizeResult": "_size",
    "sweep": "_sweep",
    "SweepResult": "_sweep",
    "suite": "_suite",
    "density": "_density",
    "DensityResult": "_density",
    "SuiteResult": "_suite",
    "ClusterSuiteResult": "_cluster",
    "BenchResult": "results",
    "KERNELS": "kernels",
    "PALETTE": "figures",
    "colour": "figures",
    "startup_figure": "figures",
    "throughput_figure": "figures",
    "ratio_figure": "figures",
    "overhead_figure": "figures",
    "size_figure": "figures",
    "scaling_figure": "figures",
    "tiers_figure": "figures",
    "fuel_figure": "figures",
    "density_figure": "figures",
    "call_figure": "figures",
    "Subject": "subject",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wasmlab.bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
