"""Startup, phase by phase, per runtime (engine-side timings, as RunResult.timings measures them).

Phases (one row per sample in `StartupResult.table`, `time_ms`):

    compile              compile a module the engine has never seen (same code, fresh bytes: a nonce custom
                         section defeats every engine's cache)
    deserialize          load the engine's precompiled artefact of that module (wasmtime serialize/deserialize);
                         "not supported" where the backend exposes none
    instantiate_first    the first instance of the freshly compiled module (WASI reactor `_initialize` included)
    instantiate_repeat   another instance of a module compiled long ago (wasmtime: its cached InstancePre)
    instantiate_linker   wasmtime only: `Linker.instantiate` with no InstancePre (raw wasmtime-py, same config)
    first_call           the first call of an empty export on that first instance
    first_run_wall       the host's wall clock around that whole first run (worker round trips included)
    command_first        a WASI command the engine has never seen: compile + instantiate + run (engine side)
    command_run          a WASI command already compiled: instantiate + run (engine side)

`state` is "cold" for samples taken on a fresh engine object (a new worker process for worker backends, a new
wasmtime Engine in this process) and "warm" for the others; cold samples are few and reported apart.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import WasmlabError
from ..runtimes import RunOptions
from . import env as envmod
from .figures import startup_figure
from .kernels import PROBE, SuiteBuild, with_nonce
from .method import Clock, Plan, Progress, interleaved, resolve, runtime_list
from .results import BenchResult, table_html
from .stats import describe

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .method import Sampling

PHASES = (
    "compile",
    "deserialize",
    "instantiate_first",
    "instantiate_repeat",
    "instantiate_linker",
    "first_call",
    "first_run_wall",
    "command_first",
    "command_run",
)
COLD_SAMPLES = 3


class StartupResult(BenchResult):
    kind = "startup"
    title = "startup, phase by phase"

    def summarise(self):
        import pandas as pd

        df = self.table
        rows = []
        if len(df):
            for (runtime, phase, state), group in df.groupby(["runtime", "phase", "state"], sort=False):
                supported = bool(group["supported"].iloc[0])
                d = describe(group["time_ms"].dropna()) if supported else describe([])
                notes = "; ".join(sorted({str(n) for n in group["note"] if n}))
                rows.append(
                    {
                        "runtime": runtime,
                        "phase": phase,
                        "state": state,
                        "supported": supported,
                        "n": d["n"],
                        "median_ms": d["median"],
                        "q1_ms": d["q1"],
                        "q3_ms": d["q3"],
                        "iqr_ms": d["iqr"],
                        "min_ms": d["min"],
                        "cv_pct": d["cv"] * 100 if d["n"] else float("nan"),
                        "noisy": d["noisy"],
                        "note": notes,
                    }
                )
        out = pd.DataFrame(rows)
        if len(out):
            order = {p: i for i, p in enumerate(PHASES)}
            out["_o"] = out["phase"].map(order)
            out = out.sort_values(["runtime", "state", "_o"], kind="stable").drop(columns="_o")
            out = out.reset_index(drop=True)
        return out

    def pivot(self, state: str = "warm"):
        """Median ms: one row per runtime, one column per phase ("not supported" where the engine has none)."""
        s = self.summary
        if not len(s):
            return s
        s = s[s["state"] == state]
        table = s.pivot_table(index="runtime", columns="phase", values="median_ms", aggfunc="first")
        table = table.reindex(columns=[p for p in PHASES if p in table.columns])
        unsupported = s[~s["supported"]]
        table = table.astype(object)
        for _, row in unsupported.iterrows():
            table.loc[row["runtime"], row["phase"]] = "not supported"
        return table.reset_index()

    def figures(self):
        if not len(self.table):
            return {}
        return {"Startup phases": startup_figure(self.summary)}

    def html_sections(self):
        return [
            ("Warm startup, median ms per phase", table_html(self.pivot("warm"))),
            ("Cold startup (fresh engine / worker process), median ms", table_html(self.pivot("cold"))),
            ("Summary", table_html(self.summary)),
        ]


def _row(runtime: str, phase: str, state: str, sample: int, ms: float | None, note: str = "", supported=True):
    return {
        "runtime": runtime,
        "phase": phase,
        "state": state,
        "sample": sample,
        "time_ms": float(ms) if ms is not None else float("nan"),
        "supported": supported,
        "note": note,
    }


class _Raw:
    """wasmtime-py directly, configured like the lab's engine, for `Linker.instantiate` vs InstancePre."""

    def __init__(self, module) -> None:
        import wasmtime

        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        self.module = wasmtime.Module(self.engine, module.bytes)
        self.linker = wasmtime.Linker(self.engine)
        self.wasmtime = wasmtime

    def instantiate_ms(self) -> float:
        store = self.wasmtime.Store(self.engine)
        store.set_fuel(1 << 40)
        store.set_epoch_deadline(1 << 30)
        t0 = time.perf_counter()
        inst = self.linker.instantiate(store, self.module)
        inst.exports(store)["_initialize"](store)
        return (time.perf_counter() - t0) * 1000.0


def _library_sample(engine, lib, state: str, sample: int, raw: _Raw | None) -> list[dict[str, Any]]:
    label = engine.label
    rows = []
    fresh = with_nonce(lib, uuid.uuid4().hex)
    t0 = time.perf_counter()
    result = engine.run(fresh, RunOptions(invoke=PROBE, args=(7,)))
    wall = (time.perf_counter() - t0) * 1000.0
    result.raise_for_error()
    if result.result != 7:
        raise WasmlabError(f"{label}: {PROBE}(7) returned {result.result!r}, not 7")
    t = result.timings
    rows += [
        _row(label, "compile", state, sample, t.get("compile")),
        _row(label, "instantiate_first", state, sample, t.get("instantiate")),
        _row(label, "first_call", state, sample, t.get("call")),
        _row(label, "first_run_wall", state, sample, wall, "host wall clock of compile+instantiate+call"),
    ]
    if "precompiled" in engine.capabilities:
        data = engine.serialize(fresh)
        ms = engine.load_serialized(fresh, data)["deserialize"]
        rows.append(_row(label, "deserialize", state, sample, ms, f"artefact {len(data):,} B"))
    else:
        rows.append(_row(label, "deserialize", state, sample, None, "no precompiled-artefact API here", False))
    with contextlib.closing(engine.instantiate(lib, RunOptions())) as inst:
        rows.append(_row(label, "instantiate_repeat", state, sample, inst.timings.get("instantiate")))
    if raw is not None:
        rows.append(_row(label, "instantiate_linker", state, sample, raw.instantiate_ms(), "Linker, no InstancePre"))
    return rows


def _command_sample(engine, cmd, state: str, sample: int) -> list[dict[str, Any]]:
    label = engine.label
    argv = ("nop", "1", "0", "1")
    fresh = with_nonce(cmd, uuid.uuid4().hex)
    first = engine.run(fresh, RunOptions(argv=argv)).raise_for_error()
    again = engine.run(cmd, RunOptions(argv=argv)).raise_for_error()
    for r in (first, again):
        if not r.output.startswith("nop 1 "):
            raise WasmlabError(f"{label}: the suite command printed {r.output[:80]!r}")
    t1, t2 = first.timings, again.timings
    return [
        _row(label, "command_first", state, sample, sum(t1.get(p, 0.0) for p in ("compile", "instantiate", "run"))),
        _row(label, "command_run", state, sample, t2.get("instantiate", 0.0) + t2.get("run", 0.0)),
    ]


def _sample(engine, lib, cmd, state: str, sample: int, raw: _Raw | None) -> list[dict[str, Any]]:
    rows = []
    caps = engine.capabilities
    if "exports" in caps:
        rows += _library_sample(engine, lib, state, sample, raw)
    else:
        for phase in ("compile", "deserialize", "instantiate_first", "instantiate_repeat", "first_call"):
            rows.append(_row(engine.label, phase, state, sample, None, "runs WASI commands only", False))
    if "wasi" in caps:
        rows += _command_sample(engine, cmd, state, sample)
    return rows


def startup(
    runtimes: str | list[str] | None = None,
    *,
    cold: int | None = None,
    opt: str = "O2",
    **sampling: Unpack[Sampling],
) -> StartupResult:
    """Measure startup phases on each runtime (default: every available one): `samples` warm samples per phase
    (30, or 5 with `quick`; `sampling`: see `method.Sampling`), runtimes interleaved in a seeded random order,
    plus `cold` samples (3, quick 1) on fresh engine objects. Ctrl-C stops early and returns what was measured
    (`.interrupted`)."""
    plan = Plan.make(**sampling)
    cold = (1 if plan.quick else COLD_SAMPLES) if cold is None else cold
    clock = Clock()
    engines, skipped = resolve(runtime_list(runtimes), need=("exports", "wasi"))
    build = SuiteBuild(opt)
    lib, cmd = build.library(), build.command()
    labels = [e.label for e in engines]
    env = envmod.snapshot(labels, wasm_flags=f"-{opt} (zig cc, wasm32-wasi reactor/command)")
    notes = [f"skipped {k}: {v}" for k, v in skipped.items()]
    notes.append(
        f"library: the kernel suite ({lib.size:,} B, no imports); command: the suite program ({cmd.size:,} B, WASI); "
        "every 'first' phase uses fresh bytes (a nonce custom section) so no engine cache helps"
    )
    raws = {e.label: _Raw(lib) for e in engines if e.label == "wasmtime"}
    rows: list[dict[str, Any]] = []
    interrupted = False
    bar = Progress(len(engines) * (cold + plan.samples), "startup", plan.progress)
    try:
        for engine in engines:  # cold: a new engine object each sample (a new worker process)
            for i in range(cold):
                fresh = type(engine)(engine.variant)
                try:
                    rows += _sample(fresh, lib, cmd, "cold", i, None)
                finally:
                    fresh.close()
                bar.update()
        for engine in engines:  # warm-up: compile the shared modules, start workers
            for _ in range(plan.warmup):
                _sample(engine, lib, cmd, "warm", -1, raws.get(engine.label))
        for r, engine in interleaved(engines, plan.samples, plan.seed):
            rows += _sample(engine, lib, cmd, "warm", r, raws.get(engine.label))
            bar.update(runtime=engine.label)
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted by Ctrl-C: partial results")
    finally:
        bar.close()
    import pandas as pd

    table = pd.DataFrame(rows, columns=["runtime", "phase", "state", "sample", "time_ms", "supported", "note"])
    params = {
        "runtimes": labels,
        "samples": plan.samples,
        "cold": cold,
        "quick": plan.quick,
        "seed": plan.seed,
        "opt": opt,
    }
    return StartupResult({"samples": table}, envmod.finish(env, clock.started, notes), params, notes, interrupted)
