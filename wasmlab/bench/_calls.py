"""Throughput of your own code: the time per call of F(ARGS) on each engine, with the suite's method, against
the same source built natively.

Each sample is one batch of calls sized so that it takes about `target_ms` (10 ms, quick 2 ms) on that
participant (calibrated apart for each engine and for native: an interpreter gets fewer calls per sample, the
time per call stays comparable). A batch is, in order of preference:

    in-guest loop   `wasmlab_bench_loop(n)` added to the module (`batch.with_loop`): n calls inside the guest,
                    timed by the engine around that one call, so the host's call cost is paid once per sample
    host loop       n calls of F from Python (`batch="host"`, or when F's signature cannot be looped): the
                    engine's own time of each call, summed (at most 2000 calls, and 10x the target on the
                    host's clock, per sample); the host's cost of a call is measured apart
    native loop     the generated harness of `native` calling F n times (volatile arguments, results folded)

Every batch returns a checksum of every result (`batch.checksum`); before timing, F(ARGS) is called once on each
engine and the results must agree (and the native build's must equal them): any disagreement raises
ChecksumMismatch (or, with `check=False`, is kept as `correct=False` and noted). The per-call overhead of the
host (an empty call on the same engine) is measured apart and shown in its own table and figure.

`throughput` (the public entry point) lives here: your own code comes here, the kernel suite goes to
`_throughput.kernel_throughput` (which this module builds on, so that one imports nothing back).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from ..errors import RuntimeUnavailable, UsageError, WasmlabError
from ..runtimes import RunOptions
from . import batch as B
from . import env as envmod
from ._throughput import (
    OVERHEAD_COLUMNS,
    SAMPLE_COLUMNS,
    WARMUP_MS,
    ThroughputResult,
    call_overhead,
    kernel_throughput,
)
from .kernels import TARGET_MS, ChecksumMismatch
from .method import Clock, Plan, Progress, call_ms, interleaved, resolve, runtime_list

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .method import Sampling
    from .native import NativeProgram
    from .subject import Subject

BATCHES = ("auto", "guest", "host")
HOST_MAX_CALLS = 2000  # calls per sample of a host loop (each one crosses into the engine, maybe a process)
HOST_WALL_FACTOR = 10  # a host loop's sample may take this many times the target on the host's clock
GUEST_MAX_CALLS = (1 << 31) - 1  # the loop's counter is an i32
TIMERS = {
    "in-guest loop": "engine call time",
    "host loop": "engine call time, summed",
    "native loop": "native clock_gettime",
}


class Runner:
    """One participant: `measure(n)` runs a batch of n calls and returns (checksum, ms)."""

    mode = ""

    def __init__(self, label: str, instance: Any = None) -> None:
        self.label, self.instance = label, instance

    def measure(self, n: int) -> tuple[int, float]:
        raise NotImplementedError

    def close(self) -> None:
        if self.instance is not None:
            with contextlib.suppress(Exception):
                self.instance.close()


class GuestLoop(Runner):
    mode = "in-guest loop"

    def measure(self, n: int) -> tuple[int, float]:
        value = self.instance.call(B.LOOP_EXPORT, n)
        return int(value) & B.MASK64, call_ms(self.instance)


class HostLoop(Runner):
    mode = "host loop"

    def __init__(self, label: str, instance: Any, name: str, args: tuple[Any, ...], results: tuple[str, ...]):
        super().__init__(label, instance)
        self.name, self.args, self.results = name, args, results
        self.wall_ms = 0.0

    def measure(self, n: int) -> tuple[int, float]:
        acc, ms, t0 = B.OFFSET, 0.0, time.perf_counter()
        for _ in range(n):
            bits = B.result_bits(self.instance.call(self.name, *self.args), self.results)
            for b in bits:
                acc = (acc * B.PRIME + b) & B.MASK64
            ms += call_ms(self.instance)
        self.wall_ms = (time.perf_counter() - t0) * 1000.0
        return acc, ms

    def most_calls(self, n: int, target_ms: float) -> int:
        """Calls per sample the host's wall clock allows: a sample may cost at most HOST_WALL_FACTOR x the
        target from the host (a worker or the browser adds a round trip per call), and HOST_MAX_CALLS."""
        per_call = self.wall_ms / max(n, 1)
        return max(1, min(HOST_MAX_CALLS, int(HOST_WALL_FACTOR * target_ms / max(per_call, 1e-6))))


class NativeLoop(Runner):
    mode = "native loop"

    def __init__(self, program: NativeProgram, args: tuple[Any, ...]) -> None:
        super().__init__("native")
        self.program, self.args = program, args

    def measure(self, n: int) -> tuple[int, float]:
        checksum, ns = self.program.run(n, self.args)[0]
        return checksum, ns / 1e6


def calibrate(runner: Runner, target_ms: float) -> int:
    """Calls per sample so that one sample takes about `target_ms` on this runner (the faster of two batches
    at each size, growing until a batch takes a quarter of the target)."""
    host = isinstance(runner, HostLoop)
    limit = HOST_MAX_CALLS if host else GUEST_MAX_CALLS
    n = 1
    for _ in range(8):
        ms = min(runner.measure(n)[1] for _ in range(2))
        if isinstance(runner, HostLoop):
            limit = runner.most_calls(n, target_ms)
        if ms >= target_ms / 4 or n >= limit:
            break
        n = min(limit, max(n * 2, int(n * target_ms / max(ms, target_ms / 1000) / 2)))
    return max(1, min(limit, round(n * target_ms / max(ms, 1e-6))))


def throughput(
    what: Any = None,
    invoke: Any = None,
    args: Sequence[Any] = (),
    *,
    runtimes: str | list[str] | None = None,
    kernels: str | list[str] | None = None,
    native: bool | None = None,
    batch: str = "auto",
    lang: str | None = None,
    opt: str = "O2",
    **options: Any,
) -> ThroughputResult:
    """Throughput on each runtime against a native baseline, of your own code or of the kernel suite.

    Your own code: `throughput(module, "f", args, runtimes=...)`, `module` a Module, a .wasm or source path,
    or source text (with `lang=`): the time per call of f(*args) on each engine, batched (`batch`: "auto",
    "guest", "host"), results checked equal, against the same source built natively when it is C, C++, Rust,
    Zig or Go (`native`: None when possible, True required, False never). See `_calls` for the method;
    `options`: target_ms, check, overhead and the sampling keywords.

    The suite: `throughput(runtimes, kernels, ...)` (positional, as always, or keywords): see
    `kernel_throughput`.
    """
    from .subject import Subject, is_subject

    if is_subject(what):
        subject = Subject.make(what, invoke, args, lang=lang, opt=opt)
        return call_throughput(subject, runtimes, native=native, batch=batch, **options)
    if what is not None and runtimes is not None:
        raise UsageError("runtimes given twice: pass them positionally or as runtimes=, not both")
    if args or native is not None or batch != "auto" or lang is not None:
        raise UsageError("args, native, batch and lang are for your own code: pass the module first")
    names = invoke if invoke is not None else kernels
    return kernel_throughput(what if what is not None else runtimes, names, opt=opt, **options)


def call_throughput(
    subject: Subject,
    runtimes: str | list[str] | None = None,
    *,
    native: bool | None = None,
    batch: str = "auto",
    target_ms: float | None = None,
    check: bool = True,
    overhead: bool = True,
    **sampling: Unpack[Sampling],
) -> ThroughputResult:
    """Time per call of `subject.call` on each runtime (default: every available one that calls exports) and,
    when the source is C, C++, Rust, Zig or Go, natively (`native=None`: when possible; True: required;
    False: not). `batch`: "auto" (the in-guest loop when F's signature allows it, else host loops), "guest"
    or "host". See the module docstring for the method."""
    import pandas as pd

    if subject.call is None:
        raise UsageError("throughput measures one call: pass invoke= (--invoke F ARGS) the export to call")
    if batch not in BATCHES:
        raise UsageError(f"batch={batch!r}: use one of {', '.join(BATCHES)}")
    plan = Plan.make(**sampling)
    clock = Clock()
    call, module = subject.call, subject.module
    ftype = module.func_type(call.name)
    why_not = B.can_loop(module, call.name)
    if batch == "guest" and why_not:
        raise UsageError(f"batch='guest' is impossible: {why_not}; use batch='host'")
    guest = batch != "host" and why_not is None
    measured = B.with_loop(module, call.name, call.args) if guest else module
    target = target_ms or TARGET_MS[plan.mode]
    engines, skipped = resolve(runtime_list(runtimes), need=("exports",))
    notes: list[str] = []
    if batch == "auto" and why_not:
        notes.append(f"host loops: {why_not}; the host's cost per call is measured apart (overhead)")

    runners: list[Runner] = []
    results: dict[str, list[int]] = {}
    rows: list[dict[str, Any]] = []
    overhead_rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    interrupted = False
    program = None
    try:
        for engine in engines:
            try:
                instance = engine.instantiate(measured, RunOptions())
                value = instance.call(call.name, *call.args)
            except (RuntimeUnavailable, UsageError) as exc:
                skipped[engine.label] = str(exc)
                continue
            results[engine.label] = B.result_bits(value, ftype.results)
            loop = GuestLoop(engine.label, instance) if guest else None
            runners.append(loop or HostLoop(engine.label, instance, call.name, call.args, ftype.results))
        if not runners:
            why = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no runtime given"
            raise RuntimeUnavailable("any runtime", f"no engine can call {call.label} ({why})")
        reference = results[runners[0].label]
        disagree = {label: bits for label, bits in results.items() if bits != reference}
        if disagree:
            message = _disagreement(call.label, runners[0].label, reference, disagree)
            if check:
                raise ChecksumMismatch(message)
            notes.append(message)
        program = _native_program(subject, ftype, native, notes)
        if program is not None:
            got = program.run(1, call.args)[0][0]
            if got != B.checksum(reference, 1):
                message = (
                    f"the native build of {call.label} computed another result than the engines: types whose size "
                    "differs between wasm32 and this machine (long, size_t, pointers) change the arithmetic"
                )
                if check:
                    raise ChecksumMismatch(message)
                notes.append(message)
            runners.insert(0, NativeLoop(program, call.args))

        for runner in runners:
            counts[runner.label] = calibrate(runner, target)
        expected = cache(lambda n: B.checksum(reference, n))
        bar = Progress(len(runners) * plan.samples, "throughput", plan.progress)
        try:
            for runner in runners:  # warm-up (tier-up), checked like samples
                spent, calls = 0.0, 0
                while calls < plan.warmup or (spent < WARMUP_MS and calls < 10):
                    spent, calls = spent + runner.measure(counts[runner.label])[1], calls + 1
            for r, runner in interleaved(runners, plan.samples, plan.seed):
                n = counts[runner.label]
                checksum, ms = runner.measure(n)
                ok = checksum == expected(n) and runner.label not in disagree
                if not ok and check:
                    raise ChecksumMismatch(
                        f"{runner.label}: {n} calls of {call.label} gave checksum {checksum}, not {expected(n)}: "
                        "F must return the same result on every call (no state kept between calls)"
                    )
                ns = ms * 1e6 / n
                rows.append(
                    {
                        "runtime": runner.label,
                        "kernel": call.label,
                        "round": r,
                        "iterations": n,
                        "time_ms": ms,
                        "ns_per_op": ns,
                        "ops_per_s": 1e9 / ns if ns > 0 else float("nan"),
                        "mb_per_s": float("nan"),
                        "bytes_per_op": float("nan"),
                        "checksum": checksum,
                        "expected": expected(n),
                        "correct": ok,
                        "timer": TIMERS[runner.mode],
                    }
                )
                bar.update(runtime=runner.label)
            if overhead:
                overhead_rows = _overheads(runners, engines, guest, plan)
        finally:
            bar.close()
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted by Ctrl-C: partial results")
    finally:
        for runner in runners:
            runner.close()
    notes += [f"skipped {k}: {v}" for k, v in skipped.items()]
    labels = [r.label for r in runners if r.label != "native"]
    env = envmod.snapshot(
        labels,
        native_flags=program.compiler if program else "",
        wasm_toolchain=module.provenance.toolchain,
        wasm_flags=f"-{subject.opt}" if subject.source is not None else "",
    )
    table = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    for col in ("iterations", "round"):
        table[col] = table[col].astype("int64")
    table["checksum"] = table["checksum"].astype("uint64")
    table["expected"] = table["expected"].astype("uint64")
    table["correct"] = table["correct"].astype(bool)
    batching = pd.DataFrame(
        [{"runtime": r.label, "batch": r.mode, "calls_per_sample": counts.get(r.label, 0)} for r in runners],
        columns=["runtime", "batch", "calls_per_sample"],
    )
    params = {
        "subject": subject.describe(),
        "kernels": [call.label],
        "runtimes": labels,
        "batch": "guest" if guest else "host",
        "native": program.compiler if program else None,
        "samples": plan.samples,
        "quick": plan.quick,
        "seed": plan.seed,
        "opt": subject.opt,
        "target_ms": target,
        "iterations": counts,
        "warmup_calls": plan.warmup,
        "result": reference if runners else None,
    }
    tables = {"samples": table, "overhead": pd.DataFrame(overhead_rows, columns=OVERHEAD_COLUMNS), "batching": batching}
    return ThroughputResult(tables, envmod.finish(env, clock.started, notes), params, notes, interrupted)


def _native_program(subject: Subject, ftype: Any, native: bool | None, notes: list[str]) -> NativeProgram | None:
    """The native build when asked for (True: or fail) or possible (None); None when not."""
    from .native import NATIVE_LANGS, NativeUnavailable, native_program

    if native is False:
        return None
    if subject.source is None or subject.lang not in NATIVE_LANGS:
        why = f"{subject.lang} has no native build" if subject.source else "no source (the module came as bytes)"
        if native:
            raise UsageError(f"native=True needs C, C++, Rust, Zig or Go source: {why}")
        notes.append(f"no native baseline: {why} (C, C++, Rust, Zig and Go sources get one)")
        return None
    try:
        assert subject.call is not None  # call_throughput checked it
        return native_program(subject.source, subject.lang, subject.call.name, ftype, subject.opt)
    except NativeUnavailable as exc:
        if native:
            raise
        notes.append(f"no native baseline: {exc}")
        return None


def _disagreement(label: str, first: str, reference: list[int], disagree: dict[str, list[int]]) -> str:
    others = ", ".join(f"{k} {v}" for k, v in disagree.items())
    return f"the engines disagree on {label} (result bits): {first} {reference}, {others}"


def _overheads(runners: list[Runner], engines: list[Any], guest: bool, plan: Plan) -> list[dict[str, Any]]:
    """The host's cost of an empty call on each engine: the loop with n = 0 on the same instance, or (host
    loops) an empty export of a module of its own."""
    rows: list[dict[str, Any]] = []
    batches, size = plan.samples, 10 if plan.quick else 100
    by_label = {e.label: e for e in engines}
    for runner in runners:
        if runner.instance is None:
            continue
        if guest:
            rows += call_overhead(runner.label, runner.instance, batches, size, B.LOOP_EXPORT, (0,))
            continue
        try:
            with by_label[runner.label].instantiate(B.nop_module(), RunOptions()) as nop:
                rows += call_overhead(runner.label, nop, batches, size, B.NOP_EXPORT, ())
        except WasmlabError:
            continue
    return rows
