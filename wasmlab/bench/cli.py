"""`wasmlab bench startup|throughput|size|sweep|suite|crosscheck|density`: the benchmarks from the command line.

`wasmlab bench startup MODULE_OR_SRC [--invoke F ARGS...]` and `wasmlab bench throughput MODULE_OR_SRC --invoke F
ARGS... [--native/--no-native]` measure your own code (a .wasm module or a source file); without one, the
kernel suite.

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
    p.add_argument(
        "source",
        nargs="?",
        metavar="MODULE_OR_SRC",
        help="startup/throughput: your .wasm module or source file to measure (default: the kernel suite)",
    )
    p.add_argument("--invoke", nargs="+", metavar=("F", "ARGS"), help="your code: call export F with ARGS")
    p.add_argument("--lang", help="your code: the source language (default: from the file extension)")
    p.add_argument(
        "--native",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="throughput of your code: the same source built natively as the baseline (default: when it is C, "
        "C++, Rust, Zig or Go)",
    )
    p.add_argument(
        "--batch",
        choices=("auto", "guest", "host"),
        default="auto",
        help="throughput of your code: batch calls in an in-guest loop or in host loops (default auto: in-guest "
        "when the signature allows)",
    )
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


def _own_code(args: argparse.Namespace) -> dict[str, Any] | None:
    """The keywords naming your own code (module, invoke, args, lang, argv), or None for the kernel suite."""
    from ..errors import UsageError

    guest_argv = tuple(getattr(args, "guest_argv", ()) or ())
    if args.source is None:
        if args.invoke or args.lang or guest_argv or args.native is not None or args.batch != "auto":
            raise UsageError(f"--invoke, --lang, --native, --batch and -- ARGV need a module: bench {args.what} FILE")
        return None
    if args.what not in ("startup", "throughput"):
        raise UsageError(f"bench {args.what} runs the lab's own code: your module goes to bench startup or throughput")
    if args.kernels:
        raise UsageError("--kernels is for the kernel suite, not for your module")
    from ..runtimes.values import parse_cli_value

    invoke = args.invoke[0] if args.invoke else None
    values = tuple(parse_cli_value(a) for a in (args.invoke or [])[1:])
    if args.what == "throughput" and invoke is None:
        raise UsageError("bench throughput FILE needs --invoke F ARGS: the call to time")
    if args.what == "throughput":
        return {"what": args.source, "invoke": invoke, "args": values, "lang": args.lang}
    return {"module": args.source, "invoke": invoke, "args": values, "argv": guest_argv, "lang": args.lang}


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
    own = _own_code(args)
    if own is not None:
        if args.what == "startup":
            result = startup(runtimes=args.runtimes, opt=opt, **own, **common)
        else:
            result = throughput(runtimes=args.runtimes, opt=opt, native=args.native, batch=args.batch, **own, **common)
    elif args.what == "startup":
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
            if "subject" in part.params:
                out.append(f"== {name} of {_what(part.params['subject'])}")
            out.append(show(f"== {name}: warm, median ms", part.pivot("warm")))
            out.append(show(f"== {name}: cold (fresh engine / worker), median ms", part.pivot("cold")))
        elif isinstance(part, ThroughputResult) and part.subject is not None:
            out.append(_own_throughput_text(part, show))
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


def _what(subject: dict[str, Any]) -> str:
    """`fib(25) in fib.c (c -O2, 281 B, sha256 e8f4e496e4e6)`."""
    built = f"{subject['lang']} -{subject['opt']}, " if subject.get("opt") else ""
    where = subject.get("source_name") or subject["name"]
    return f"{subject['label']} in {where} ({built}{subject['size']:,} B, sha256 {subject['sha256'][:12]})"


def _own_throughput_text(result: Any, show: Any) -> str:
    """Time per call of your own code per runtime, its ratio to native, calls per sample, the host's overhead."""
    s = result.summary.copy()
    if not len(s):
        return show(f"== throughput of {_what(result.subject)}", s)
    s["us_per_call"] = s["ns_per_op"] / 1000.0
    s = s.rename(columns={"iterations": "calls_per_sample"})
    cols = ["runtime", "n", "calls_per_sample", "us_per_call", "cv_pct", "noisy", "ratio_to_native", "ratio_ci_low"]
    cols += ["ratio_ci_high", "ratio_of_minima", "correct", "timer"]
    parts = [show(f"== throughput of {_what(result.subject)}: time per call (median)", s, cols)]
    if result.overhead is not None and len(result.overhead):
        o = result.overhead.groupby("runtime", sort=False)[["host_us_per_call", "engine_us_per_call"]].median()
        parts.append(show("== the host's cost of an empty call, median µs (not in the times above)", o.reset_index()))
    return "\n\n".join(parts)
