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
from typing import Any

from ..errors import WasmlabError
from ..runtimes import RunOptions
from . import env as envmod
from .figures import overhead_figure, ratio_figure, throughput_figure
from .kernels import (
    KERNELS,
    PROBE,
    export_name,
    kernel_names,
    native_executable,
    native_flags,
    parse_lines,
    run_native,
    wasm_command,
    wasm_library,
)
from .method import Clock, Plan, Progress, call_ms, interleaved, resolve, runtime_list
from .results import BenchResult, table_html
from .stats import describe, geomean_ci, ratio_ci

MASK = 0xFFFFFFFF
TARGET_MS = {"full": 10.0, "quick": 2.0}  # one native call, after calibration
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


class ChecksumMismatch(WasmlabError):
    """An engine computed a different checksum than the native build: its numbers cannot be trusted."""


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

    def figures(self):
        if not len(self.table):
            return {}
        figs = {"Throughput": throughput_figure(self.summary)}
        if (self.summary["runtime"] == "native").any():
            figs["Ratio to native"] = ratio_figure(self.summary, self.ratios)
        if self.overhead is not None and len(self.overhead):
            figs["Per-call overhead"] = overhead_figure(self.overhead)
        return figs

    def html_sections(self):
        sections = [("Wasm/native geometric mean per runtime", table_html(self.ratios))]
        sections.append(("Summary per runtime and kernel", table_html(self.summary)))
        if self.overhead is not None and len(self.overhead):
            o = self.overhead.groupby("runtime", sort=False)[["host_us_per_call", "engine_us_per_call"]].median()
            sections.append(("Per-call overhead (median µs)", table_html(o.reset_index())))
        if "calibration" in self.tables:
            sections.append(("Iterations (calibrated natively)", table_html(self.tables["calibration"])))
        return sections


# ------------------------------------------------------------------------------------------ statistics
def _ratio_rows(df: Any, seed: int) -> dict[tuple[str, str], tuple[float, float, float, Any]]:
    """(runtime, kernel) -> (ratio, low, high, bootstrap replicates) of median ns/op against native."""
    out = {}
    native = {k: g["ns_per_op"].to_numpy() for k, g in df[df["runtime"] == "native"].groupby("kernel")}
    for i, ((runtime, kernel), group) in enumerate(df[df["runtime"] != "native"].groupby(["runtime", "kernel"])):
        if kernel in native and len(group):
            out[(runtime, kernel)] = ratio_ci(group["ns_per_op"].to_numpy(), native[kernel], seed=seed + i)
    return out


def _order(df: Any, order: list[str] | None) -> list[str]:
    """Runtimes in the order asked for (native first), then any others in order of appearance."""
    return list(dict.fromkeys(["native", *(order or []), *df["runtime"]]))


def summarise_throughput(df: Any, seed: int = 0, order: list[str] | None = None):
    import pandas as pd

    rows = []
    if not len(df):
        return pd.DataFrame()
    ratios = _ratio_rows(df, seed)
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
    runtimes = _order(df, order)
    out["_r"] = out["runtime"].map({r: i for i, r in enumerate(runtimes)})
    out["_k"] = out["kernel"].map(lambda k: kernel_rank.get(k, len(kernel_rank)))
    return out.sort_values(["_r", "_k"]).drop(columns=["_r", "_k"]).reset_index(drop=True)


def geomeans(df: Any, seed: int = 0, order: list[str] | None = None):
    """Per runtime: geomean over kernels of the ratio of medians to native, with a 95% bootstrap CI, and the
    geomean of the ratios of minima (the least disturbed estimate on a busy machine)."""
    import numpy as np
    import pandas as pd

    ratios = _ratio_rows(df, seed) if len(df) else {}
    minima = df.groupby(["runtime", "kernel"])["ns_per_op"].min().to_dict() if len(df) else {}
    rows = []
    present = {r for r, _ in ratios}
    for runtime in [r for r in _order(df, order) if r in present] if len(df) else []:
        items = [(k, v) for (r, k), v in ratios.items() if r == runtime]
        point, low, high = geomean_ci([v[0] for _, v in items], [v[3] for _, v in items])
        of_minima = [minima[(runtime, k)] / minima[("native", k)] for k, _ in items]
        rows.append(
            {
                "runtime": runtime,
                "geomean_ratio": point,
                "ci_low": low,
                "ci_high": high,
                "kernels": len(items),
                "native_speed_pct": 100.0 / point if point == point and point > 0 else float("nan"),
                "geomean_ratio_of_minima": float(np.exp(np.mean(np.log(of_minima)))),
            }
        )
    columns = [
        "runtime",
        "geomean_ratio",
        "ci_low",
        "ci_high",
        "kernels",
        "native_speed_pct",
        "geomean_ratio_of_minima",
    ]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------------------ measuring
def calibrate(exe, kernels: list[str], target_ms: float) -> dict[str, int]:
    """Iterations per kernel so that one native call takes about `target_ms` (two short native runs each)."""
    counts = {}
    for kernel in kernels:
        n = max(1, round(target_ms * 1e6 / 8 / KERNELS[kernel].guess_ns_per_op))  # ~1/8 of the target first
        for _ in range(3):
            ns = min(t for _, t in run_native(exe, kernel, n, warmup=max(1, n // 10), repeats=2))
            if ns >= target_ms * 1e6 / 10:
                break
            n *= 4
        counts[kernel] = max(1, round(n * target_ms * 1e6 / max(ns, 1)))
    return counts


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


def _overhead(participant: _Participant, batches: int, batch: int) -> list[dict[str, Any]]:
    inst = participant.instance
    rows = []
    for b in range(batches):
        engine_ms = 0.0
        t0 = time.perf_counter()
        for _ in range(batch):
            inst.call(PROBE, 1)
            engine_ms += call_ms(inst)
        host = (time.perf_counter() - t0) / batch * 1e6
        rows.append(
            {
                "runtime": participant.label,
                "batch": b,
                "calls": batch,
                "host_us_per_call": host,
                "engine_us_per_call": engine_ms / batch * 1000.0,
            }
        )
    return rows


def throughput(
    runtimes: str | list[str] | None = None,
    kernels: str | list[str] | None = None,
    *,
    samples: int | None = None,
    quick: bool = False,
    seed: int = 0,
    opt: str = "O2",
    iterations: int | dict[str, int] | None = None,
    target_ms: float | None = None,
    expected: dict[str, int] | None = None,
    check: bool = True,
    overhead: bool = True,
    native_extra: tuple[str, ...] | list[str] = (),
    progress: bool = True,
) -> ThroughputResult:
    """Run every kernel on every runtime and natively, `samples` times each (30, quick 5), interleaved in a
    seeded random order per round. Iterations are calibrated so one native call takes `target_ms` (10 ms, quick
    2 ms) unless `iterations` is given. `expected` overrides the native checksums (for testing the check): a
    wrong result raises ChecksumMismatch, or with `check=False` is kept as `correct=False`. `native_extra`: more
    gcc flags for the baseline (e.g. "-fno-tree-vectorize"). Ctrl-C returns the samples so far, marked
    `.interrupted`."""
    import pandas as pd

    plan = Plan.make(samples, quick, seed, progress)
    clock = Clock()
    names = kernel_names(kernels)
    engines, skipped = resolve(runtime_list(runtimes), need=("exports", "wasi"))
    labels = [e.label for e in engines]
    lib, cmd, exe = wasm_library(opt), wasm_command(opt), native_executable(opt, native_extra)
    flags = native_flags(opt, native_extra)
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
    target = target_ms or TARGET_MS["quick" if quick else "full"]
    if iterations is None:
        counts = calibrate(exe, names, target)
    elif isinstance(iterations, int):
        counts = dict.fromkeys(names, iterations)
    else:
        counts = {k: int(iterations.get(k, 1)) for k in names}
    native_cache: dict[tuple[str, int], int] = {}

    def expect(kernel: str, n: int) -> int:
        if expected and kernel in expected:
            return int(expected[kernel]) & MASK
        if (kernel, n) not in native_cache:
            native_cache[(kernel, n)] = run_native(exe, kernel, n, warmup=0, repeats=1)[0][0]
        return native_cache[(kernel, n)]

    participants = [_Participant("native")]
    rows: list[dict[str, Any]] = []
    overhead_rows: list[dict[str, Any]] = []
    interrupted = False
    sizes: dict[str, float] = {}
    try:
        for engine in engines:
            divisor = SLOW_DIVISOR.get(engine.label, 1)
            cap = min(plan.samples, SLOW_SAMPLES) if divisor > 1 and not quick else plan.samples
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
                        _verify(p.label, kernel, p.iterations(n), checksum, expect, check=check)
                        spent, calls = spent + ms, calls + 1
                for r, p in interleaved(participants, plan.samples, seed + ki):
                    if p.cap and p.taken.get(kernel, 0) >= p.cap:
                        continue
                    m = p.iterations(n)
                    checksum, ms = p.measure(kernel, m, exe)
                    want = expect(kernel, m)
                    ok = _verify(p.label, kernel, m, checksum, expect, check=check)
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
                batches, batch = (plan.samples, 10 if quick else 100)
                for p in participants[1:]:
                    if p.instance is not None:
                        overhead_rows += _overhead(p, batches, batch)
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
    over = pd.DataFrame(overhead_rows, columns=["runtime", "batch", "calls", "host_us_per_call", "engine_us_per_call"])
    calib = pd.DataFrame(
        [{"kernel": k, "iterations": counts[k], "op": KERNELS[k].op, "what": KERNELS[k].what} for k in names]
    )
    params = {
        "runtimes": labels,
        "kernels": names,
        "samples": plan.samples,
        "quick": quick,
        "seed": seed,
        "opt": opt,
        "target_ms": target,
        "iterations": counts,
        "warmup_calls": plan.warmup,
        "native_flags": flags,
    }
    tables = {"samples": table, "overhead": over, "calibration": calib}
    return ThroughputResult(tables, envmod.finish(env, clock.started, notes), params, notes, interrupted)


def _verify(label: str, kernel: str, n: int, checksum: int, expect, *, check: bool) -> bool:
    want = expect(kernel, n)
    if checksum == want:
        return True
    if check:
        raise ChecksumMismatch(
            f"{label} computed a wrong checksum for {kernel}({n}): {checksum} instead of {want} (the native "
            "build's): its timings cannot be trusted"
        )
    return False
