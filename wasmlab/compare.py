"""`compare()`: the same work on several runtimes, as one tidy table with agreement and phase timings."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RuntimeUnavailable, UsageError
from .module import Module
from .runtimes import RunOptions, RunResult, default_runtimes, get_runtime, run

PHASES = ("compile", "instantiate", "call", "run")


def outcome(result: RunResult) -> tuple[Any, ...]:
    """What must match across engines: the value (NaN equals NaN), trap kind, exit code and stdout."""
    return (_canonical(result.result), result.trap, result.error_kind, result.exit_code, result.stdout)


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    return value


@dataclass
class Comparison:
    """Results of one comparison: one `RunResult` per runtime (timings are medians over the repeats)."""

    module: Module
    invoke: str | None
    args: tuple[Any, ...]
    results: list[RunResult]
    samples: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # runtime -> why it did not run

    @property
    def agree(self) -> bool:
        """True when every runtime produced the same outcome."""
        return len({outcome(r) for r in self.results}) <= 1

    def reference(self) -> RunResult | None:
        """The outcome most runtimes share (wasmtime's on a tie)."""
        if not self.results:
            return None
        counts: dict[tuple[Any, ...], int] = {}
        for r in self.results:
            counts[outcome(r)] = counts.get(outcome(r), 0) + 1
        best = max(counts.values())
        majority = [r for r in self.results if counts[outcome(r)] == best]
        return next((r for r in majority if r.runtime.startswith("wasmtime")), majority[0])

    @property
    def table(self):  # -> pandas.DataFrame
        """One row per runtime: result, ok, agrees, trap, stdout and median milliseconds per phase."""
        import pandas as pd

        ref = self.reference()
        rows = []
        for r in self.results:
            row = {
                "runtime": r.runtime,
                "result": r.result,
                "ok": r.ok,
                "agrees": ref is not None and outcome(r) == outcome(ref),
                "trap": r.trap,
                "error": r.error,
                "exit_code": r.exit_code,
                "stdout": r.output,
            }
            row.update({f"{phase}_ms": r.timings.get(phase) for phase in PHASES})
            rows.append(row)
        frame = pd.DataFrame(rows)
        return frame.dropna(axis=1, how="all")

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module.name,
            "sha256": self.module.sha256,
            "invoke": self.invoke,
            "args": list(self.args),
            "agree": self.agree,
            "results": [r.to_dict() for r in self.results],
            "skipped": self.skipped,
        }

    def plot(self):  # -> plotly.graph_objects.Figure
        """Stacked bars of median phase times per runtime."""
        import plotly.graph_objects as go

        fig = go.Figure()
        names = [r.runtime for r in self.results]
        for phase in PHASES:
            values = [r.timings.get(phase) for r in self.results]
            if any(v is not None for v in values):
                fig.add_bar(name=phase, x=names, y=values)
        what = f"{self.invoke}({', '.join(map(str, self.args))})" if self.invoke else "WASI command"
        fig.update_layout(
            barmode="stack",
            title=f"{self.module.name}: {what}",
            yaxis_title="time (ms)",
            xaxis_title="runtime",
            legend_title="phase",
        )
        return fig


def compare(
    module: Module | str | Path,
    invoke: str | None = None,
    args: tuple[Any, ...] | list[Any] = (),
    *,
    runtimes: list[str] | str | None = None,
    repeat: int = 3,
    lang: str | None = None,
    kind: str | None = None,
    **options: Any,
) -> Comparison:
    """Run the same export call (or WASI command) on each runtime `repeat` times, interleaving runtimes, and
    collect results and median phase timings. `module` may be a Module, a .wasm path, or source to compile.
    Runtimes that are unavailable, or cannot do this (e.g. exports on wasmer-sdk), are listed in `skipped`."""
    if repeat < 1:
        raise UsageError("repeat must be at least 1")
    if not isinstance(module, Module):
        from .build import compile
        from .module import load

        path = Path(module) if isinstance(module, Path) or "\n" not in module else None
        if path is not None and path.suffix == ".wasm":
            module = load(path)
        else:
            module = compile(module, lang, kind=kind or ("library" if invoke else "command"))
    names = runtimes.split(",") if isinstance(runtimes, str) else list(runtimes or default_runtimes())
    run_options = RunOptions(invoke=invoke, args=tuple(args), **options)

    engines, skipped = [], {}
    for name in names:
        try:
            engine = get_runtime(name)
            if invoke is not None:
                engine.require("exports", "calling an export")
            if module.is_component:
                engine.require("components", "running a component")
            engines.append(engine)
        except RuntimeUnavailable as exc:
            skipped[name] = exc.reason
    samples: dict[str, list[dict[str, float]]] = {e.label: [] for e in engines}
    last: dict[str, RunResult] = {}
    for _ in range(repeat):
        for engine in engines:
            result = run(module, engine, run_options, check=False)
            last[engine.label] = result
            samples[engine.label].append(result.timings)
    results = []
    for engine in engines:
        result = last[engine.label]
        phases = {p for t in samples[engine.label] for p in t}
        result.timings = {p: statistics.median(t[p] for t in samples[engine.label] if p in t) for p in sorted(phases)}
        # engines compile once and cache: the compile time is the one real compile, not the median of cache hits
        compiled = engine.compiled_ms.get(module.sha256)
        if compiled is not None:
            result.timings["compile"] = compiled
        results.append(result)
    return Comparison(module, invoke, tuple(args), results, samples, skipped)
