"""`wasmlab bench startup|throughput|size|sweep|suite|crosscheck|density`: the benchmarks from the command line.

Importing this module is cheap (argument definitions only): pandas, numpy and plotly load when a benchmark runs.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

WHAT = ("startup", "throughput", "size", "sweep", "suite", "crosscheck", "density")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `bench` subcommand's arguments (its `--json` comes from the shared command helper)."""
    p.add_argument("what", choices=WHAT, help="which benchmark")
    p.add_argument("--runtimes", help="comma-separated runtimes, e.g. wasmtime,node:liftoff (default: all available)")
    p.add_argument(
        "--kernels", help="comma-separated kernels (default: all: fib,hash,memstream,matmul,mandel,parse,sort)"
    )
    p.add_argument("--quick", action="store_true", help="few samples and short calls (the whole suite in < 30 s)")
    p.add_argument("--samples", type=int, help="samples per measurement (default 30, quick 5; sweeps 10 / 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the randomised runtime order (default 0)")
    p.add_argument(
        "-O", dest="opt", default="O2", help="optimisation level of the kernels, wasm and native (default 2)"
    )
    p.add_argument("--langs", help="size: comma-separated languages (default: every installed one)")
    p.add_argument("--sweeps", default="fuel,tiers,scaling", help="sweep: which sweeps (default: fuel,tiers,scaling)")
    p.add_argument("--include", help="suite: parts to run (default: startup,throughput,crosscheck; also size,sweep)")
    p.add_argument("--kernel", default="mandel", help="crosscheck (and suite): the kernel to cross-check")
    p.add_argument(
        "--counts", help="density: comma-separated numbers of copies kept at once (default 1,10,100; quick 1,10)"
    )
    p.add_argument(
        "--native-flags", default="", help="throughput/suite: extra gcc flags, e.g. --native-flags=-fno-tree-vectorize"
    )
    p.add_argument("--scheduler", metavar="ADDR", help="suite: run on the workers of this Dask scheduler, per host")
    p.add_argument("--csv", metavar="OUT", help="write the samples as CSV (suite: other parts next to it)")
    p.add_argument("--html", metavar="OUT", help="write a self-contained HTML report with the figures")
    p.add_argument("--json-out", metavar="OUT", help="write the whole result as JSON (--json prints it instead)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _counts(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        from ..errors import UsageError

        raise UsageError(f"--counts takes comma-separated integers, not {text!r}") from None


def _opt(value: str) -> str:
    return value if value.startswith("O") else f"O{value}"


@contextlib.contextmanager
def _cluster_client(scheduler: str | None):
    """A Dask client for `--scheduler` (closed afterwards), or None to run here."""
    if not scheduler:
        yield None
        return
    from ..errors import UsageError

    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--scheduler needs Dask: pip install 'wasmlab[fleet]'") from None
    try:
        client = Client(scheduler, timeout=10, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise UsageError(
            f"no Dask scheduler answers at {scheduler} ({type(exc).__name__}): start one or leave --scheduler out"
        ) from None
    with client:
        yield client


def run(args: argparse.Namespace) -> int:
    """Run the benchmark the arguments name, print it (text or --json), write the requested files."""
    from . import crosscheck, density, size_vs_speed, startup, suite, sweep, throughput
    from .method import Sampling

    common = Sampling(samples=args.samples, quick=args.quick, seed=args.seed, progress=not args.no_progress)
    opt = _opt(args.opt)
    native_extra = tuple(args.native_flags.split())
    if args.what == "startup":
        result = startup(args.runtimes, opt=opt, **common)
    elif args.what == "throughput":
        result = throughput(args.runtimes, args.kernels, opt=opt, native_extra=native_extra, **common)
    elif args.what == "size":
        result = size_vs_speed(args.langs, **common)
    elif args.what == "sweep":
        result = sweep(args.sweeps, runtimes=args.runtimes, kernels=args.kernels, opt=opt, **common)
    elif args.what == "crosscheck":
        result = crosscheck(args.kernel, opt=opt, **common)
    elif args.what == "density":
        result = density(args.runtimes, _counts(args.counts), **common)
    else:
        include = args.include or "startup,throughput,crosscheck"
        with _cluster_client(args.scheduler) as client:
            result = suite(
                args.runtimes,
                args.kernels,
                opt=opt,
                include=include,
                crosscheck_kernel=args.kernel,
                native_extra=native_extra,
                client=client,
                **common,
            )
    if args.json_out:
        result.to_json(args.json_out, indent=1)
    if args.csv:
        result.to_csv(args.csv)
    if args.html:
        result.to_html(args.html)
    if args.json:
        print(result.to_json(indent=1))
    else:
        print(report_text(result))
    if result.interrupted:
        print("wasmlab: interrupted: partial results", file=sys.stderr)
        return 130
    return 0


def report_text(result: Any) -> str:
    """A plain-text rendering of a result's headline tables."""
    import pandas as pd

    from ._crosscheck import CrossCheckResult
    from ._density import DensityResult
    from ._size import SizeResult
    from ._startup import StartupResult
    from ._suite import SuiteResult
    from ._sweep import SweepResult
    from ._throughput import ThroughputResult

    def show(title: str, df: Any, columns: list[str] | None = None) -> str:
        if df is None or not len(df):
            return f"{title}: (no rows)"
        if columns:
            df = df[[c for c in columns if c in df.columns]]
        with pd.option_context("display.width", 200, "display.max_columns", 40, "display.max_colwidth", 40):
            return f"{title}\n{df.to_string(index=False, float_format=lambda v: f'{v:.4g}')}"

    if hasattr(result, "hosts"):  # the suite on a cluster: each host's report
        return "\n\n".join(f"=== host {label}\n\n{report_text(r)}" for label, r in result.hosts.items())
    out: list[str] = []
    parts = result.parts if isinstance(result, SuiteResult) else {result.kind: result}
    if isinstance(result, SuiteResult):
        out.append(show("== headline (per runtime)", result.summary))
    for name, part in parts.items():
        if isinstance(part, StartupResult):
            out.append(show(f"== {name}: warm, median ms", part.pivot("warm")))
            out.append(show(f"== {name}: cold (fresh engine / worker), median ms", part.pivot("cold")))
        elif isinstance(part, ThroughputResult):
            out.append(show(f"== {name}: wasm/native geomean (95% bootstrap CI)", part.ratios))
            cols = [
                "runtime",
                "kernel",
                "n",
                "iterations",
                "median_ms",
                "iqr_ms",
                "min_ms",
                "cv_pct",
                "noisy",
                "ops_per_s",
                "mb_per_s",
                "ratio_to_native",
                "ratio_ci_low",
                "ratio_ci_high",
                "ratio_of_minima",
                "correct",
            ]
            out.append(show(f"== {name}: per kernel", part.summary, cols))
            if part.overhead is not None and len(part.overhead):
                o = part.overhead.groupby("runtime", sort=False)[["host_us_per_call", "engine_us_per_call"]].median()
                out.append(show(f"== {name}: per-call overhead, median µs", o.reset_index()))
        elif isinstance(part, CrossCheckResult):
            out.append(show(f"== {name}: agreement {part.agreement * 100:.2f}%", part.summary))
        elif isinstance(part, SizeResult):
            out.append(show(f"== {name}", part.summary))
        elif isinstance(part, DensityResult):
            out.append(show(f"== {name}: one more copy, at the largest count (medians)", part.per_copy()))
            out.append(show(f"== {name}: by number of copies", part.summary))
        elif isinstance(part, SweepResult):
            for title, df in (
                ("fuel", part.fuel_summary()),
                ("tiers", part.tiers_summary()),
                ("scaling", part.scaling_summary()),
            ):
                if len(df):
                    out.append(show(f"== {name}: {title}", df.drop(columns="sweep")))
    for note in result.notes:
        out.append(f"note: {note}")
    env = result.env
    out.append(
        f"env: {env.get('cpu')} ({env.get('cores', {}).get('usable')} cores), load {env.get('load_before')} -> "
        f"{env.get('load_after')}, harness {env.get('harness_s')} s"
    )
    return "\n\n".join(out)
