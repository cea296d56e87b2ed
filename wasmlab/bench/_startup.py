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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import RuntimeUnavailable, UsageError, WasmlabError
from ..module import Module
from ..runtimes import RunOptions
from ..runtimes.guest import WASI_MODULES
from . import env as envmod
from .figures import startup_figure
from .kernels import PROBE, ChecksumMismatch, SuiteBuild, with_nonce
from .method import Clock, Plan, Progress, interleaved, resolve, runtime_list
from .results import BenchResult, table_html
from .stats import describe

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .method import Sampling
    from .subject import Call

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
UNRESOLVED = "below the clock's resolution"


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
        table = table.astype(object)
        for _, row in s[~s["supported"]].iterrows():
            table.loc[row["runtime"], row["phase"]] = "not supported"
        for _, row in s[s["supported"] & (s["n"] == 0) & s["note"].str.contains(UNRESOLVED, regex=False)].iterrows():
            resolution = row["note"].split(UNRESOLVED, 1)[1].strip(" ()").split()[0]
            table.loc[row["runtime"], row["phase"]] = f"< {resolution}"  # every reading was under the resolution
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


@dataclass(frozen=True)
class Workload:
    """What one startup sample runs: a library and the call made on its first instance (None: instantiate
    only), and/or a WASI command and its argv. `expect_result` / `expect_output` (a prefix) check the suite's
    answers; a user's module is checked by comparing the engines' answers with each other."""

    library: Module | None = None
    call: Call | None = None
    command: Module | None = None
    argv: tuple[str, ...] = ()
    expect_result: Any = None
    expect_output: str | None = None

    @property
    def need(self) -> tuple[str, ...]:
        return tuple(c for c, m in (("exports", self.library), ("wasi", self.command)) if m is not None)


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
        self.wasi = bool(module.wasi_imports)
        if self.wasi:
            self.linker.define_wasi()
        self.initialize = "_initialize" in module.export_names()
        self.wasmtime = wasmtime

    @classmethod
    def usable(cls, module) -> bool:
        """True when plain wasmtime-py can instantiate `module` (no imports but WASI)."""
        return not module.is_component and all(i.module in WASI_MODULES for i in module.imports)

    def instantiate_ms(self) -> float:
        store = self.wasmtime.Store(self.engine)
        store.set_fuel(1 << 40)
        store.set_epoch_deadline(1 << 30)
        if self.wasi:
            store.set_wasi(self.wasmtime.WasiConfig())
        t0 = time.perf_counter()
        inst = self.linker.instantiate(store, self.module)
        if self.initialize:
            initialize = inst.exports(store)["_initialize"]
            assert isinstance(initialize, self.wasmtime.Func)
            initialize(store)
        return (time.perf_counter() - t0) * 1000.0


def _library_sample(engine, work: Workload, state: str, sample: int, raw: _Raw | None) -> tuple[list, Any]:
    """The library phases of one sample, and the first call's result (None without a call)."""
    label, lib, call = engine.label, work.library, work.call
    rows = []
    fresh = with_nonce(lib, uuid.uuid4().hex)
    t0 = time.perf_counter()
    if call is not None:
        result = engine.run(fresh, RunOptions(invoke=call.name, args=call.args))
        wall = (time.perf_counter() - t0) * 1000.0
        result.raise_for_error()
        answer, t = result.result, result.timings
    else:
        with contextlib.closing(engine.instantiate(fresh, RunOptions())) as first:
            wall = (time.perf_counter() - t0) * 1000.0
            answer, t = None, first.timings
    if work.expect_result is not None and answer != work.expect_result:
        what = call.label if call is not None else "the instance"
        raise WasmlabError(f"{label}: {what} returned {answer!r}, not {work.expect_result!r}")
    what = "compile+instantiate" + ("+call" if call is not None else "")
    rows += [
        _row(label, "compile", state, sample, t.get("compile")),
        _row(label, "instantiate_first", state, sample, t.get("instantiate")),
        _row(label, "first_run_wall", state, sample, wall, f"host wall clock of {what}"),
    ]
    if call is not None:
        rows.append(_row(label, "first_call", state, sample, t.get("call")))
    rows.append(_deserialize(engine, fresh, state, sample))
    with contextlib.closing(engine.instantiate(lib, RunOptions())) as inst:
        rows.append(_row(label, "instantiate_repeat", state, sample, inst.timings.get("instantiate")))
    if raw is not None:
        rows.append(_row(label, "instantiate_linker", state, sample, raw.instantiate_ms(), "Linker, no InstancePre"))
    return rows, answer


def _deserialize(engine, fresh: Module, state: str, sample: int) -> dict[str, Any]:
    """Loading the engine's precompiled artefact of `fresh` (wasmtime serialize/deserialize), where it has one."""
    if "precompiled" in engine.capabilities:
        data = engine.serialize(fresh)
        ms = engine.load_serialized(fresh, data)["deserialize"]
        return _row(engine.label, "deserialize", state, sample, ms, f"artefact {len(data):,} B")
    return _row(engine.label, "deserialize", state, sample, None, "no precompiled-artefact API here", False)


def _command_sample(engine, work: Workload, state: str, sample: int, split: bool) -> tuple[list, Any]:
    """The command phases of one sample (`split`: also compile, instantiate and run of the first run as their
    own phases, for a command measured on its own), and the first run's exit status."""
    label, cmd = engine.label, work.command
    fresh = with_nonce(cmd, uuid.uuid4().hex)
    t0 = time.perf_counter()
    first = engine.run(fresh, RunOptions(argv=work.argv)).raise_for_error()
    wall = (time.perf_counter() - t0) * 1000.0
    again = engine.run(cmd, RunOptions(argv=work.argv)).raise_for_error()
    for r in (first, again):
        if work.expect_output is not None and not r.output.startswith(work.expect_output):
            raise WasmlabError(f"{label}: the suite command printed {r.output[:80]!r}")
    t1, t2 = first.timings, again.timings
    rows = [
        _row(label, "command_first", state, sample, sum(t1.get(p, 0.0) for p in ("compile", "instantiate", "run"))),
        _row(label, "command_run", state, sample, t2.get("instantiate", 0.0) + t2.get("run", 0.0)),
    ]
    if split:
        rows += [
            _row(label, "compile", state, sample, t1.get("compile")),
            _row(label, "instantiate_first", state, sample, t1.get("instantiate")),
            _row(label, "first_call", state, sample, t1.get("run"), "the whole WASI command (_start)"),
            _row(label, "first_run_wall", state, sample, wall, "host wall clock of compile+instantiate+run"),
            _deserialize(engine, with_nonce(cmd, uuid.uuid4().hex), state, sample),
        ]
    return rows, first.exit_code or 0


def _sample(engine, work: Workload, state: str, sample: int, raw: _Raw | None) -> tuple[list, Any]:
    """One sample's rows and the answer (the call's result, else the command's exit status)."""
    rows: list[dict[str, Any]] = []
    answer = None
    caps = engine.capabilities
    if work.library is not None and "exports" in caps:
        rows, answer = _library_sample(engine, work, state, sample, raw)
    elif work.library is not None:
        for phase in ("compile", "deserialize", "instantiate_first", "instantiate_repeat", "first_call"):
            rows.append(_row(engine.label, phase, state, sample, None, "runs WASI commands only", False))
    if work.command is not None and "wasi" in caps:
        more, status = _command_sample(engine, work, state, sample, split=work.library is None)
        rows += more
        answer = status if work.library is None else answer
    return _unresolved(engine, rows), answer


def _unresolved(engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Readings below the engine's clock resolution (a browser's `performance.now()`) are not zeros: they
    become NaN with a note, so no table or figure shows a quantised 0."""
    resolution = getattr(engine, "timer_resolution_ms", None)
    if not resolution:
        return rows
    for row in rows:
        if row["supported"] and row["phase"] != "first_run_wall" and row["time_ms"] < resolution:
            row["time_ms"] = float("nan")
            row["note"] = f"{UNRESOLVED} ({resolution:g} ms)"
    return rows


def startup(
    what: Any = None,
    *,
    module: Any = None,
    invoke: str | None = None,
    args: Sequence[Any] = (),
    argv: Sequence[str] = (),
    lang: str | None = None,
    runtimes: str | list[str] | None = None,
    cold: int | None = None,
    opt: str = "O2",
    check: bool = True,
    **sampling: Unpack[Sampling],
) -> StartupResult:
    """Measure startup phases on each runtime (default: every available one): `samples` warm samples per phase
    (30, or 5 with `quick`; `sampling`: see `method.Sampling`), runtimes interleaved in a seeded random order,
    plus `cold` samples (3, quick 1) on fresh engine objects. Ctrl-C stops early and returns what was measured
    (`.interrupted`).

    Of your own code: `startup(module=..., invoke="f", args=(...))` (or the module first): a Module, a .wasm or
    source path, or source text (`lang=`); with `invoke`, the first call of f(*args) on the first instance,
    else the whole WASI command (`argv`). Engines that cannot run it are skipped with the reason; the engines'
    answers must agree (ChecksumMismatch, or a note with `check=False`). Without a module: the kernel suite's
    library (its empty export `bench_nop(7)`) and command, as the lab's own benchmark.
    """
    from .subject import Call, Subject, is_subject

    if module is None and is_subject(what):
        module, what = what, None
    if what is not None and runtimes is not None:
        raise UsageError("runtimes given twice: pass them positionally or as runtimes=, not both")
    runtimes = what if what is not None else runtimes
    plan = Plan.make(**sampling)
    cold = (1 if plan.quick else COLD_SAMPLES) if cold is None else cold
    clock = Clock()
    params: dict[str, Any] = {}
    if module is not None:
        subject = Subject.make(module, invoke, args, argv=argv, lang=lang, opt=opt)
        m = subject.module
        work = Workload(m, subject.call) if subject.call else Workload(command=m, argv=subject.argv)
        params["subject"] = subject.describe()
        flags = f"-{subject.opt}" if subject.source else ""
        toolchain = {"wasm_toolchain": m.provenance.toolchain, "wasm_flags": flags}
        notes = [
            f"{subject.label} in {m.name} ({m.size:,} B, sha256 {m.sha256[:12]}); every 'first' phase uses fresh "
            "bytes (a nonce custom section) so no engine cache helps"
        ]
    else:
        if invoke or args or argv or lang:
            raise UsageError("invoke, args, argv and lang are for your own code: pass module= too")
        build = SuiteBuild(opt)
        lib, cmd = build.library(), build.command()
        work = Workload(lib, Call(PROBE, (7,)), cmd, ("nop", "1", "0", "1"), expect_result=7, expect_output="nop 1 ")
        toolchain = {"wasm_flags": f"-{opt} (zig cc, wasm32-wasi reactor/command)"}
        notes = [
            f"library: the kernel suite ({lib.size:,} B, no imports); command: the suite program ({cmd.size:,} B, "
            "WASI); every 'first' phase uses fresh bytes (a nonce custom section) so no engine cache helps"
        ]
    engines, skipped = resolve(runtime_list(runtimes), need=work.need)
    lib_ok = work.library is not None and _Raw.usable(work.library)
    raws = {e.label: _Raw(work.library) for e in engines if e.label == "wasmtime" and lib_ok}
    rows: list[dict[str, Any]] = []
    answers: dict[str, Any] = {}
    interrupted = False
    usable: list[Any] = []
    bar = Progress(len(engines) * (cold + plan.samples), "startup", plan.progress)
    try:
        for engine in engines:  # warm-up: compile the shared modules, start workers; and which engine can run it
            try:
                for _ in range(plan.warmup):
                    answers[engine.label] = _sample(engine, work, "warm", -1, raws.get(engine.label))[1]
            except (RuntimeUnavailable, UsageError) as exc:
                skipped[engine.label] = str(exc)
                continue
            usable.append(engine)
        _check_answers(answers, work, check, notes)
        for engine in usable:  # cold: a new engine object each sample (a new worker process)
            for i in range(cold):
                fresh = type(engine)(engine.variant)
                try:
                    rows += _sample(fresh, work, "cold", i, None)[0]
                finally:
                    fresh.close()
                bar.update()
        for r, engine in interleaved(usable, plan.samples, plan.seed):
            rows += _sample(engine, work, "warm", r, raws.get(engine.label))[0]
            bar.update(runtime=engine.label)
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted by Ctrl-C: partial results")
    finally:
        bar.close()
    import pandas as pd

    labels = [e.label for e in usable]
    notes[:0] = [f"skipped {k}: {v}" for k, v in skipped.items()]
    env = envmod.snapshot(labels, **toolchain)
    table = pd.DataFrame(rows, columns=["runtime", "phase", "state", "sample", "time_ms", "supported", "note"])
    params |= {
        "runtimes": labels,
        "samples": plan.samples,
        "cold": cold,
        "quick": plan.quick,
        "seed": plan.seed,
        "opt": opt,
    }
    if module is not None:
        params["answers"] = {k: _plain_answer(v) for k, v in answers.items()}
    return StartupResult({"samples": table}, envmod.finish(env, clock.started, notes), params, notes, interrupted)


def _check_answers(answers: dict[str, Any], work: Workload, check: bool, notes: list[str]) -> None:
    """A user's module: every engine's answer (the call's result, or the command's exit status) must be the
    first engine's."""
    if work.expect_result is not None or not answers:
        return
    first, reference = next(iter(answers.items()))
    differ = {k: v for k, v in answers.items() if v != reference and not (v != v and reference != reference)}
    if not differ:
        return
    what = work.call.label if work.call else "the exit status"
    message = f"the engines disagree on {what}: {first} {reference!r}, " + ", ".join(
        f"{k} {v!r}" for k, v in differ.items()
    )
    if check:
        raise ChecksumMismatch(message)
    notes.append(message)


def _plain_answer(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
