"""Throughput of the kernel suite on each runtime against the same C compiled natively (gcc, same -O level).

Each sample is ONE call that runs the whole work loop inside the guest (`run_<kernel>(iterations)`), timed next
to the engine (RunResult-style `call` milliseconds, measured inside the worker for worker backends), so the host
call costs microseconds against a ~10 ms sample. Runtimes that only run WASI commands (wasmer-sdk) run the suite
program with the iteration count as argv and report the guest's own clock_gettime around the loop, exactly like
the native program. The per-call cost itself is measured apart, on an empty export (`overhead`).

Every sample's checksum is compared with the native build's for the same (kernel, iterations): a mismatch
raises `ChecksumMismatch` (or, with `check=False`, is kept with `correct=False` and noted).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from ..runtimes import RunOptions
from . import env as envmod
from .figures import call_figure, overhead_figure, ratio_figure, throughput_figure
from .kernels import (
    KERNELS,
    MASK,
    PROBE,
    TARGET_MS,
    ChecksumMismatch,
    NativeBaseline,
    SuiteBuild,
    export_name,
    kernel_names,
    parse_lines,
    run_native,
)
from .method import Clock, Plan, Progress, call_ms, interleaved, resolve, runtime_list
from .results import BenchResult, table_html
from .stats import describe, geomeans, ratios_to_native, runtime_order

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .method import Sampling

__all__ = ["ChecksumMismatch", "ThroughputResult", "kernel_throughput", "summarise_throughput"]

# Interpreters run ~10-30x slower than native: fewer iterations per call (per-op times stay comparable) and
# fewer samples, so the suite fits its time budget.
SLOW_DIVISOR = {"wasm3": 8, "wasmtime:pulley": 8}
SLOW_SAMPLES = 10
WARMUP_MS = 50.0  # warm-up calls continue until this much guest time has run (JIT tier-up), at most 10 calls
SAMPLE_COLUMNS = [
    "runtime",
    "kernel",
    "round",
    "iterations",
    "time_ms",
    "ns_per_op",
    "ops_per_s",
    "mb_per_s",
    "bytes_per_op",
    "checksum",
    "expected",
    "correct",
    "timer",
]


class ThroughputResult(BenchResult):
    kind = "throughput"
    title = "throughput and the native baseline"

    def summarise(self):
        return summarise_throughput(self.table, self.params.get("seed", 0), self.params.get("runtimes"))

    @property
    def ratios(self):  # -> pandas.DataFrame
        """Per runtime: the geometric mean over kernels of wasm/native time, with a 95% bootstrap CI."""
        return geomeans(self.table, self.params.get("seed", 0), self.params.get("runtimes"))

    @property
    def overhead(self):  # -> pandas.DataFrame | None
        return self.tables.get("overhead")

    @property
    def subject(self) -> dict[str, Any] | None:
        """What was measured, for your own code (module name, sha256, size, the call): None for the suite."""
        return self.params.get("subject")

    def figures(self):
        if not len(self.table):
            return {}
        own = self.subject is not None
        if own:
            figs = {"Time per call": call_figure(self.summary, self.subject["label"])}
        else:
            figs = {"Throughput": throughput_figure(self.summary)}
        if (self.summary["runtime"] == "native").any():
            figs["Ratio to native"] = ratio_figure(self.summary, None if own else self.ratios)
        if self.overhead is not None and len(self.overhead):
            figs["Per-call overhead"] = overhead_figure(self.overhead)
        return figs

    def html_sections(self):
        if self.subject is not None:
            import pandas as pd

            what = pd.DataFrame([{k: v for k, v in self.subject.items() if k not in ("call", "argv")}])
            sections = [("What was measured", table_html(what))]
            if "batching" in self.tables:
                sections.append(("Calls per sample (calibrated per runtime)", table_html(self.tables["batching"])))
            sections.append(("Summary per runtime", table_html(self.summary)))
        else:
            sections = [("Wasm/native geometric mean per runtime", table_html(self.ratios))]
            sections.append(("Summary per runtime and kernel", table_html(self.summary)))
        if self.overhead is not None and len(self.overhead):
            o = self.overhead.groupby("runtime", sort=False)[["host_us_per_call", "engine_us_per_call"]].median()
            sections.append(("Per-call overhead (median µs)", table_html(o.reset_index())))
        if "calibration" in self.tables:
            sections.append(("Iterations (calibrated natively)", table_html(self.tables["calibration"])))
        return sections


# ------------------------------------------------------------------------------------------ statistics
def summarise_throughput(df: Any, seed: int = 0, order: list[str] | None = None):
    import pandas as pd

    rows = []
    if not len(df):
        return pd.DataFrame()
    ratios = ratios_to_native(df, seed)
    native_min = df[df["runtime"] == "native"].groupby("kernel")["ns_per_op"].min().to_dict()
    kernel_rank = {k: i for i, k in enumerate(KERNELS)}
    for (runtime, kernel), group in df.groupby(["runtime", "kernel"], sort=False):
        t = describe(group["time_ms"])
        per_op = describe(group["ns_per_op"])
        iterations = int(group["iterations"].iloc[0])
        bytes_per_op = group["bytes_per_op"].iloc[0]
        ops = 1e9 / per_op["median"] if per_op["median"] > 0 else float("nan")
        ratio, low, high, _ = ratios.get((runtime, kernel), (float("nan"),) * 3 + (None,))
        rows.append(
            {
                "runtime": runtime,
                "kernel": kernel,
                "n": t["n"],
                "iterations": iterations,
                "median_ms": t["median"],
                "q1_ms": t["q1"],
                "q3_ms": t["q3"],
                "iqr_ms": t["iqr"],
                "min_ms": t["min"],
                "cv_pct": t["cv"] * 100,
                "noisy": t["noisy"],
                "ns_per_op": per_op["median"],
                "ops_per_s": ops,
                "ops_per_s_q1": 1e9 / per_op["q3"] if per_op["q3"] > 0 else float("nan"),
                "ops_per_s_q3": 1e9 / per_op["q1"] if per_op["q1"] > 0 else float("nan"),
                "mb_per_s": ops * bytes_per_op / 1e6 if bytes_per_op == bytes_per_op else float("nan"),
                "ratio_to_native": ratio,
                "ratio_ci_low": low,
                "ratio_ci_high": high,
                "ratio_of_minima": per_op["min"] / native_min[kernel] if kernel in native_min else float("nan"),
                "correct": bool(group["correct"].all()),
                "timer": group["timer"].iloc[0],
            }
        )
    out = pd.DataFrame(rows)
    runtimes = runtime_order(df, order)
    out["_r"] = out["runtime"].map({r: i for i, r in enumerate(runtimes)})
    out["_k"] = out["kernel"].map(lambda k: kernel_rank.get(k, len(kernel_rank)))
    return out.sort_values(["_r", "_k"]).drop(columns=["_r", "_k"]).reset_index(drop=True)


# ------------------------------------------------------------------------------------------ measuring
def bytes_per_op(engine, instance) -> dict[str, float]:
    """Bytes each op touches, for MB/s (the parse text's length is asked from the module itself)."""
    out = {k: float(v.bytes_per_op) if v.bytes_per_op else float("nan") for k, v in KERNELS.items()}
    if instance is not None:
        with contextlib.suppress(Exception):
            out["parse"] = float(instance.call("bench_text_bytes"))
    return out


class _Participant:
    """One runtime (or native) taking samples of every kernel."""

    def __init__(self, label: str, engine=None, instance=None, command=None, divisor: int = 1, cap: int = 0):
        self.label, self.engine, self.instance, self.command = label, engine, instance, command
        self.divisor, self.cap = divisor, cap
        self.taken: dict[str, int] = {}

    @property
    def timer(self) -> str:
        if self.engine is None:
            return "native clock_gettime"
        return "engine call time" if self.instance is not None else "guest clock_gettime"

    def iterations(self, n: int) -> int:
        return max(1, n // self.divisor)

    def measure(self, kernel: str, n: int, exe) -> tuple[int, float]:
        """(checksum, ms) of one call running `n` ops."""
        if self.engine is None:
            checksum, ns = run_native(exe, kernel, n, warmup=max(1, n // 10), repeats=1)[0]
            return checksum, ns / 1e6
        if self.instance is not None:
            value = self.instance.call(export_name(kernel), n)
            return int(value) & MASK, call_ms(self.instance)
        result = self.engine.run(self.command, RunOptions(argv=(kernel, str(n), "1", "1"))).raise_for_error()
        checksum, ns = parse_lines(result.output, kernel)[0]
        return checksum, ns / 1e6

    def close(self) -> None:
        if self.instance is not None:
            with contextlib.suppress(Exception):
                self.instance.close()


OVERHEAD_COLUMNS = ["runtime", "batch", "calls", "host_us_per_call", "engine_us_per_call"]


def call_overhead(label: str, inst, batches: int, batch: int, probe: str = PROBE, args=(1,)) -> list[dict[str, Any]]:
    """The cost of calling an export that does nothing (`probe(*args)`), `batches` times `batch` calls: per
    call from the host (wall clock around the call) and inside the engine (its own call time)."""
    rows = []
    for b in range(batches):
        engine_ms = 0.0
        t0 = time.perf_counter()
        for _ in range(batch):
            inst.call(probe, *args)
            engine_ms += call_ms(inst)
        host = (time.perf_counter() - t0) / batch * 1e6
        rows.append(
            {
                "runtime": label,
                "batch": b,
                "calls": batch,
                "host_us_per_call": host,
                "engine_us_per_call": engine_ms / batch * 1000.0,
            }
        )
    return rows


def kernel_throughput(
    runtimes: str | list[str] | None = None,
    kernels: str | list[str] | None = None,
    *,
    opt: str = "O2",
    iterations: int | dict[str, int] | None = None,
    target_ms: float | None = None,
    expected: dict[str, int] | None = None,
    check: bool = True,
    overhead: bool = True,
    native_extra: tuple[str, ...] | list[str] = (),
    **sampling: Unpack[Sampling],
) -> ThroughputResult:
    """Run every kernel on every runtime and natively, `samples` times each (30, quick 5), interleaved in a
    seeded random order per round (`sampling`: samples, quick, seed, progress; see `method.Sampling`).
    Iterations are calibrated so one native call takes `target_ms` (10 ms, quick 2 ms) unless `iterations` is
    given. `expected` overrides the native checksums (for testing the check): a wrong result raises
    ChecksumMismatch, or with `check=False` is kept as `correct=False`. `native_extra`: more gcc flags for the
    baseline (e.g. "-fno-tree-vectorize"). Ctrl-C returns the samples so far, marked `.interrupted`."""
    import pandas as pd

    plan = Plan.make(**sampling)
    build = SuiteBuild(opt, tuple(native_extra))
    clock = Clock()
    names = kernel_names(kernels)
    engines, skipped = resolve(runtime_list(runtimes), need=("exports", "wasi"))
    labels = [e.label for e in engines]
    lib, cmd, exe = build.library(), build.command(), build.native()
    flags = build.native_flags
    env = envmod.snapshot(
        labels, native_flags=" ".join(["gcc", *flags]), wasm_flags=f"-{opt} (zig cc, wasm32-wasi, no SIMD)"
    )
    notes = [f"skipped {k}: {v}" for k, v in skipped.items()]
    vectorised = [k for k in ("memstream", "matmul") if k in names]
    if vectorised and "-fno-tree-vectorize" not in flags and opt in ("O2", "O3"):
        notes.append(
            f"gcc -{opt} auto-vectorises {' and '.join(vectorised)} with SSE2 while the wasm32 builds use no SIMD: "
            "part of their ratio is SIMD, not the engine (native_extra=('-fno-tree-vectorize',) gives a scalar "
            "baseline)"
        )
    target = target_ms or TARGET_MS[plan.mode]
    counts = build.iterations(names, iterations, target)
    baseline = NativeBaseline(exe, dict(expected or {}))

    participants = [_Participant("native")]
    rows: list[dict[str, Any]] = []
    overhead_rows: list[dict[str, Any]] = []
    interrupted = False
    sizes: dict[str, float] = {}
    try:
        for engine in engines:
            divisor = SLOW_DIVISOR.get(engine.label, 1)
            cap = min(plan.samples, SLOW_SAMPLES) if divisor > 1 and not plan.quick else plan.samples
            if "exports" in engine.capabilities:
                p = _Participant(engine.label, engine, engine.instantiate(lib, RunOptions()), None, divisor, cap)
                sizes = sizes or bytes_per_op(engine, p.instance)
            else:
                p = _Participant(engine.label, engine, None, cmd, divisor, cap)
            participants.append(p)
            if divisor > 1:
                notes.append(
                    f"{engine.label} is an interpreter: {divisor}x fewer iterations per call (ratios use time per op)"
                    + (f" and {cap} samples instead of {plan.samples}" if cap < plan.samples else "")
                )
        sizes = sizes or bytes_per_op(None, None)
        planned = sum(min(p.cap or plan.samples, plan.samples) for p in participants) * len(names)
        bar = Progress(planned, "throughput", plan.progress)
        try:
            for ki, kernel in enumerate(names):
                n = counts[kernel]
                for p in participants[1:]:  # warm-up (tier-up, buffers), checked like samples
                    spent, calls = 0.0, 0
                    while calls < plan.warmup or (spent < WARMUP_MS and calls < 10):
                        checksum, ms = p.measure(kernel, p.iterations(n), exe)
                        baseline.verify(p.label, kernel, p.iterations(n), checksum, check=check)
                        spent, calls = spent + ms, calls + 1
                for r, p in interleaved(participants, plan.samples, plan.seed + ki):
                    if p.cap and p.taken.get(kernel, 0) >= p.cap:
                        continue
                    m = p.iterations(n)
                    checksum, ms = p.measure(kernel, m, exe)
                    want = baseline.expected(kernel, m)
                    ok = baseline.verify(p.label, kernel, m, checksum, check=check)
                    p.taken[kernel] = p.taken.get(kernel, 0) + 1
                    ns_op = ms * 1e6 / m
                    bpo = sizes.get(kernel, float("nan"))
                    rows.append(
                        {
                            "runtime": p.label,
                            "kernel": kernel,
                            "round": r,
                            "iterations": m,
                            "time_ms": ms,
                            "ns_per_op": ns_op,
                            "ops_per_s": 1e9 / ns_op if ns_op > 0 else float("nan"),
                            "mb_per_s": 1e3 * bpo / ns_op if ns_op > 0 else float("nan"),
                            "bytes_per_op": bpo,
                            "checksum": checksum,
                            "expected": want,
                            "correct": ok,
                            "timer": p.timer,
                        }
                    )
                    bar.update(kernel=kernel)
            if overhead:
                batches, batch = (plan.samples, 10 if plan.quick else 100)
                for p in participants[1:]:
                    if p.instance is not None:
                        overhead_rows += call_overhead(p.label, p.instance, batches, batch)
        finally:
            bar.close()
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted by Ctrl-C: partial results")
    finally:
        for p in participants:
            p.close()
    bad = [r for r in rows if not r["correct"]]
    if bad:
        notes.append(f"{len(bad)} sample(s) computed a wrong checksum (check=False kept them): see `correct`")
    table = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    for col in ("checksum", "expected", "iterations", "round"):
        table[col] = table[col].astype("int64")
    table["correct"] = table["correct"].astype(bool)
    over = pd.DataFrame(overhead_rows, columns=OVERHEAD_COLUMNS)
    calib = pd.DataFrame(
        [{"kernel": k, "iterations": counts[k], "op": KERNELS[k].op, "what": KERNELS[k].what} for k in names]
    )
    params = {
        "runtimes": labels,
        "kernels": names,
        "samples": plan.samples,
        "quick": plan.quick,
        "seed": plan.seed,
        "opt": opt,
        "target_ms": target,
        "iterations": counts,
        "warmup_calls": plan.warmup,
        "native_flags": flags,
    }
    tables = {"samples": table, "overhead": over, "calibration": calib}
    return ThroughputResult(tables, envmod.finish(env, clock.started, notes), params, notes, interrupted)
