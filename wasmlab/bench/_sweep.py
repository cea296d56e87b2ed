"""Sweeps: what engine features and compiler tiers cost.

fuel      wasmtime with and without fuel metering and epoch interruption (raw wasmtime-py engines built
          for each config, nothing else different), per kernel, as time relative to a plain engine
tiers     every compiler tier (wasmtime cranelift/winch/pulley, wasmer cranelift/singlepass/llvm, node
          default/liftoff/turbofan, wasm3): compile time of the suite module vs run time against native
scaling   compile time against module size, on generated modules of growing size (ms per MB)
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import WasmlabError
from ..module import Module
from ..runtimes import RunOptions
from . import env as envmod
from ._throughput import kernel_throughput
from .figures import fuel_figure, scaling_figure, tiers_figure
from .generate import module_bytes
from .kernels import (
    KERNELS,
    MASK,
    PROBE,
    TARGET_MS,
    NativeBaseline,
    SuiteBuild,
    export_name,
    kernel_names,
    with_nonce,
)
from .method import Clock, Plan, Progress, interleaved, resolve, runtime_list
from .results import BenchResult, table_html
from .stats import describe, geomeans, ratio_ci

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .method import Sampling

SWEEPS = ("fuel", "tiers", "scaling")
TIERS = (
    "wasmtime",
    "wasmtime:winch",
    "wasmtime:pulley",
    "wasmer",
    "wasmer:singlepass",
    "wasmer:llvm",
    "node",
    "node:liftoff",
    "node:turbofan",
    "wasm3",
)
FUEL_CONFIGS = ("plain", "epoch", "fuel", "fuel+epoch")
SWEEP_SAMPLES = (10, 3)  # (full, quick) samples per point
COMPILE_SAMPLES = {"full": 5, "quick": 2}
SIZES_MB = {"full": (0.05, 0.2, 0.5, 1.0), "quick": (0.02, 0.1)}
STOP_GROWING_MS = 2000.0  # a tier whose compile median passes this is not tried on bigger modules


class SweepResult(BenchResult):
    kind = "sweep"
    title = "sweeps: fuel and epochs, compiler tiers, module size"

    main = "fuel"

    def __init__(self, tables: dict[str, Any], *args: Any, **kw: Any) -> None:
        super().__init__(tables, *args, **kw)
        # `.table` is the first sweep that ran
        self.main = next((s for s in ("fuel", "tiers_compile", "scaling") if s in self.tables), "fuel")

    def fuel_summary(self):
        import pandas as pd

        df = self.tables.get("fuel")
        if df is None or not len(df):
            return pd.DataFrame()
        rows = []
        for (kernel, config), group in df.groupby(["kernel", "config"], sort=False):
            plain = df[(df["kernel"] == kernel) & (df["config"] == "plain")]["time_ms"].to_numpy()
            d = describe(group["time_ms"])
            ratio, low, high, _ = ratio_ci(group["time_ms"].to_numpy(), plain, seed=self.params.get("seed", 0))
            rows.append(
                {
                    "sweep": "fuel",
                    "config": config,
                    "kernel": kernel,
                    "n": d["n"],
                    "median_ms": d["median"],
                    "iqr_ms": d["iqr"],
                    "cv_pct": d["cv"] * 100,
                    "noisy": d["noisy"],
                    "ratio_to_plain": ratio,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
        out = pd.DataFrame(rows)
        kernels = {k: i for i, k in enumerate(KERNELS)}
        configs = {c: i for i, c in enumerate(FUEL_CONFIGS)}
        out["_k"], out["_c"] = out["kernel"].map(kernels), out["config"].map(configs)
        return out.sort_values(["_k", "_c"]).drop(columns=["_k", "_c"]).reset_index(drop=True)

    def tiers_summary(self):
        import pandas as pd

        compile_df, run_df = self.tables.get("tiers_compile"), self.tables.get("tiers_run")
        if compile_df is None or not len(compile_df):
            return pd.DataFrame()
        seed, order = self.params.get("seed", 0), self.params.get("runtimes")
        g = geomeans(run_df, seed, order) if run_df is not None and len(run_df) else None
        rows = []
        for runtime, group in compile_df.groupby("runtime", sort=False):
            d = describe(group["compile_ms"])
            row = {
                "sweep": "tiers",
                "runtime": runtime,
                "n": d["n"],
                "compile_ms": d["median"],
                "compile_iqr_ms": d["iqr"],
                "geomean_ratio": float("nan"),
                "ci_low": float("nan"),
                "ci_high": float("nan"),
            }
            if g is not None and runtime in set(g["runtime"]):
                hit = g[g["runtime"] == runtime].iloc[0]
                row.update(geomean_ratio=hit["geomean_ratio"], ci_low=hit["ci_low"], ci_high=hit["ci_high"])
            rows.append(row)
        return self._in_order(pd.DataFrame(rows))

    def _in_order(self, df, then: str | None = None):
        """Rows in the order the runtimes were asked for (then by `then`)."""
        rank = {r: i for i, r in enumerate(self.params.get("runtimes") or [])}
        df["_r"] = df["runtime"].map(lambda r: rank.get(r, len(rank)))
        keys = ["_r", then] if then else ["_r"]
        return df.sort_values(keys, kind="stable").drop(columns="_r").reset_index(drop=True)

    def scaling_summary(self):
        import numpy as np
        import pandas as pd

        df = self.tables.get("scaling")
        if df is None or not len(df):
            return pd.DataFrame()
        rows = []
        for (runtime, size), group in df.groupby(["runtime", "module_bytes"], sort=False):
            d = describe(group["compile_ms"])
            rows.append(
                {
                    "sweep": "scaling",
                    "runtime": runtime,
                    "module_bytes": int(size),
                    "module_mb": size / 1e6,
                    "n": d["n"],
                    "compile_ms": d["median"],
                    "compile_q1_ms": d["q1"],
                    "compile_q3_ms": d["q3"],
                    "cv_pct": d["cv"] * 100,
                    "noisy": d["noisy"],
                }
            )
        out = pd.DataFrame(rows)
        slopes = {}
        for runtime, group in out.groupby("runtime", sort=False):
            if len(group) >= 2:
                slopes[runtime] = float(np.polyfit(group["module_mb"], group["compile_ms"], 1)[0])
        out["compile_ms_per_mb"] = out["runtime"].map(slopes)
        return self._in_order(out, "module_bytes")

    def summarise(self):
        import pandas as pd

        parts = [p for p in (self.fuel_summary(), self.tiers_summary(), self.scaling_summary()) if len(p)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def figures(self):
        figs = {}
        fuel, tiers, scaling = self.fuel_summary(), self.tiers_summary(), self.scaling_summary()
        if len(fuel):
            figs["Fuel and epoch interruption (wasmtime)"] = fuel_figure(fuel)
        if len(tiers):
            figs["Compiler tiers"] = tiers_figure(tiers.dropna(subset=["geomean_ratio"]))
        if len(scaling):
            figs["Compile time vs module size"] = scaling_figure(scaling)
        return figs

    def html_sections(self):
        out = []
        for title, df in (
            ("Fuel and epochs", self.fuel_summary()),
            ("Compiler tiers", self.tiers_summary()),
            ("Scaling with module size", self.scaling_summary()),
        ):
            if len(df):
                out.append((title, table_html(df.drop(columns="sweep"))))
        return out

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in self.tables.items())
        return f"<SweepResult {sizes}{' interrupted' if self.interrupted else ''}>"


# ------------------------------------------------------------------------------------------ fuel
def _raw_engine(config_name: str, lib: Module):
    import wasmtime

    config = wasmtime.Config()
    config.consume_fuel = "fuel" in config_name
    config.epoch_interruption = "epoch" in config_name
    engine = wasmtime.Engine(config)
    module = wasmtime.Module(engine, lib.bytes)
    store = wasmtime.Store(engine)
    if "fuel" in config_name:
        store.set_fuel((1 << 64) - 1)
    if "epoch" in config_name:
        store.set_epoch_deadline(1 << 40)
    instance = wasmtime.Linker(engine).instantiate(store, module)
    exports = instance.exports(store)

    def func_of(name: str) -> wasmtime.Func:
        func = exports[name]
        assert isinstance(func, wasmtime.Func), name
        return func

    func_of("_initialize")(store)

    def call(kernel: str, n: int) -> tuple[int, float]:
        func = func_of(export_name(kernel))
        t0 = time.perf_counter()
        value = func(store, n)
        return int(value) & MASK, (time.perf_counter() - t0) * 1000.0

    return call


def _fuel(names, counts, baseline: NativeBaseline, plan: Plan, lib: Module, bar, rows) -> None:
    engines = {c: _raw_engine(c, lib) for c in FUEL_CONFIGS}
    for ki, kernel in enumerate(names):
        n = counts[kernel]
        for config, call in engines.items():
            for _ in range(plan.warmup):
                baseline.verify(f"wasmtime ({config})", kernel, n, call(kernel, n)[0])
        for r, config in interleaved(list(engines), plan.samples, plan.seed + ki):
            checksum, ms = engines[config](kernel, n)
            baseline.verify(f"wasmtime ({config})", kernel, n, checksum)
            rows.append({"config": config, "kernel": kernel, "round": r, "iterations": n, "time_ms": ms})
            bar.update(sweep="fuel")


# ------------------------------------------------------------------------------------------ compile samples
def _compile_ms(engine, module: Module) -> float:
    result = engine.run(with_nonce(module, uuid.uuid4().hex), RunOptions(invoke=_probe(module), args=(1,)))
    result.raise_for_error()
    if "compile" not in result.timings:
        raise WasmlabError(f"{engine.label} reported no compile time")
    return float(result.timings["compile"])


def _probe(module: Module) -> str:
    return PROBE if PROBE in module.export_names() else "f0"


def sweep(
    which: str | list[str] | tuple[str, ...] = SWEEPS,
    *,
    runtimes: str | list[str] | None = None,
    kernels: str | list[str] | None = None,
    opt: str = "O2",
    sizes_mb: tuple[float, ...] | list[float] | None = None,
    iterations: int | dict[str, int] | None = None,
    **sampling: Unpack[Sampling],
) -> SweepResult:
    """Run the sweeps in `which` ("fuel", "tiers", "scaling"). `runtimes` are the tiers (default: every
    available one of `TIERS`); `samples` per point (10, quick 3: sweeps compare configurations of one engine,
    where 10 interleaved samples resolve differences of a few %; `sampling`: see `method.Sampling`); `sizes_mb`
    the generated module sizes."""
    import pandas as pd

    chosen = [which] if isinstance(which, str) else list(which)
    chosen = [s.strip() for part in chosen for s in part.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SWEEPS]
    if unknown:
        raise WasmlabError(f"unknown sweep(s) {', '.join(unknown)}: use any of {', '.join(SWEEPS)}")
    plan = Plan.make(**sampling, defaults=SWEEP_SAMPLES)
    mode = plan.mode
    build = SuiteBuild(opt)
    clock = Clock()
    names = kernel_names(kernels)
    engines, skipped = resolve(runtime_list(runtimes, default=TIERS), need=("exports",))
    labels = [e.label for e in engines]
    env = envmod.snapshot(labels)
    notes = [f"skipped {k}: {v}" for k, v in skipped.items()]
    notes.append(f"sweeps take {plan.samples} interleaved samples per point (they compare configurations)")
    counts = build.iterations(names, iterations, TARGET_MS[mode])
    baseline = build.baseline()

    tables: dict[str, Any] = {}
    interrupted = False
    sizes = list(sizes_mb or SIZES_MB[mode])
    compiles = COMPILE_SAMPLES[mode]
    total = (
        ("fuel" in chosen) * len(FUEL_CONFIGS) * len(names) * plan.samples
        + ("tiers" in chosen) * len(engines) * compiles
        + ("scaling" in chosen) * len(engines) * len(sizes) * compiles
    )
    bar = Progress(total, "sweep", plan.progress)
    fuel_rows: list[dict[str, Any]] = []
    compile_rows: list[dict[str, Any]] = []
    scaling_rows: list[dict[str, Any]] = []
    try:
        if "fuel" in chosen:
            _fuel(names, counts, baseline, plan, build.library(), bar, fuel_rows)
        if "tiers" in chosen and engines:
            lib = build.library()
            for r, engine in interleaved(engines, compiles, plan.seed):
                compile_rows.append(
                    {
                        "runtime": engine.label,
                        "sample": r,
                        "module_bytes": lib.size,
                        "compile_ms": _compile_ms(engine, lib),
                    }
                )
                bar.update(sweep="tiers")
            bar.close()  # throughput shows its own bar
            run = kernel_throughput(labels, names, opt=opt, iterations=counts, overhead=False, **plan.sampling())
            tables["tiers_run"] = run.table
            notes += [f"tiers: {n}" for n in run.notes]
            interrupted = interrupted or run.interrupted
            bar = Progress(total - len(fuel_rows) - len(compile_rows), "sweep", plan.progress)
        if "scaling" in chosen and engines and not interrupted:
            stopped: set[str] = set()
            for size in sizes:
                module = Module(module_bytes(int(size * 1e6)), name=f"generated-{size:g}MB")
                medians: dict[str, list[float]] = {}
                for r, engine in interleaved([e for e in engines if e.label not in stopped], compiles, plan.seed):
                    ms = _compile_ms(engine, module)
                    medians.setdefault(engine.label, []).append(ms)
                    scaling_rows.append(
                        {"runtime": engine.label, "sample": r, "module_bytes": module.size, "compile_ms": ms}
                    )
                    bar.update(sweep="scaling")
                for label, values in medians.items():
                    if sorted(values)[len(values) // 2] > STOP_GROWING_MS:
                        stopped.add(label)
                        notes.append(
                            f"scaling: {label} compiled {module.size:,} B in over "
                            f"{STOP_GROWING_MS / 1000:g} s: not tried on bigger modules"
                        )
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted by Ctrl-C: partial results")
    finally:
        bar.close()
    if "fuel" in chosen:
        tables["fuel"] = pd.DataFrame(fuel_rows, columns=["config", "kernel", "round", "iterations", "time_ms"])
        notes.append(
            "fuel: raw wasmtime-py engines (cranelift), one long call per sample timed by the host "
            "(~40 µs of call overhead against ~10 ms); the lab's own wasmtime engine is 'fuel+epoch'"
        )
    if "tiers" in chosen:
        tables["tiers_compile"] = pd.DataFrame(
            compile_rows, columns=["runtime", "sample", "module_bytes", "compile_ms"]
        )
    if "scaling" in chosen:
        tables["scaling"] = pd.DataFrame(scaling_rows, columns=["runtime", "sample", "module_bytes", "compile_ms"])
        if any(e.name == "node" for e in engines):
            notes.append(
                "scaling: V8 (node) compiles lazily, function by function at first call, so its "
                "'compile' is mostly validation"
            )
        if any(e.name == "wasm3" for e in engines):
            notes.append("scaling: wasm3 translates each function at its first call: its 'compile' is parsing")
    params = {
        "sweeps": chosen,
        "runtimes": labels,
        "kernels": names,
        "samples": plan.samples,
        "compile_samples": compiles,
        "sizes_mb": sizes,
        "iterations": counts,
        "quick": plan.quick,
        "seed": plan.seed,
        "opt": opt,
    }
    return SweepResult(tables, envmod.finish(env, clock.started, notes), params, notes, interrupted)
