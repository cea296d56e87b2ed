"""The default suite: startup + throughput (with the native baseline) + the cross-check, on every available
runtime, as one result with one report. Optional parts: "size" and "sweep"."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from . import env as envmod
from .method import Plan
from .results import BenchResult, frame_to_obj, table_html

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .method import Sampling

PARTS = ("startup", "throughput", "crosscheck", "size", "sweep")
DEFAULT_PARTS = ("startup", "throughput", "crosscheck")
HEADLINE_PHASES = ("compile", "instantiate_first", "first_call", "command_run")


class SuiteResult(BenchResult):
    """The parts' results under `.parts` ({"startup": StartupResult, ...}); `.table` is the throughput samples,
    `.summary` one headline row per runtime (wasm/native geomean with its CI, startup medians)."""

    kind = "suite"
    title = "the suite"

    def __init__(self, parts: dict[str, BenchResult], env=None, params=None, notes=None, interrupted=False) -> None:
        main = parts.get("throughput") or next(iter(parts.values()), None)
        tables = {"samples": main.table} if main is not None else {}
        super().__init__(tables, env, params, notes, interrupted)
        self.parts = parts

    def __getattr__(self, name: str) -> Any:
        parts = self.__dict__.get("parts", {})
        if name in parts:
            return parts[name]
        raise AttributeError(name)

    def summarise(self):
        import pandas as pd

        rows: dict[str, dict[str, Any]] = {}
        if "throughput" in self.parts:
            for _, g in self.parts["throughput"].ratios.iterrows():
                rows.setdefault(g["runtime"], {"runtime": g["runtime"]}).update(
                    geomean_ratio=g["geomean_ratio"],
                    ci_low=g["ci_low"],
                    ci_high=g["ci_high"],
                    kernels=g["kernels"],
                    geomean_ratio_of_minima=g["geomean_ratio_of_minima"],
                )
        if "startup" in self.parts:
            s = self.parts["startup"].summary
            if len(s):
                warm = s[(s["state"] == "warm") & s["supported"]]
                for _, r in warm[warm["phase"].isin(HEADLINE_PHASES)].iterrows():
                    rows.setdefault(r["runtime"], {"runtime": r["runtime"]})[f"{r['phase']}_ms"] = r["median_ms"]
        columns = ["runtime", "geomean_ratio", "ci_low", "ci_high", "kernels", "geomean_ratio_of_minima"]
        columns += [f"{p}_ms" for p in HEADLINE_PHASES]
        return pd.DataFrame(list(rows.values()), columns=columns)

    def figures(self):
        figs = {}
        for part in self.parts.values():
            figs.update(part.figures())
        return figs

    def html_sections(self):
        sections = [("Headline: wasm/native geomean (95% CI) and warm startup medians", table_html(self.summary))]
        for name, part in self.parts.items():
            for heading, block in part.html_sections():
                sections.append((f"{name}: {heading}", block))
        return sections

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "interrupted": self.interrupted,
            "params": self.params,
            "env": self.env,
            "notes": self.notes,
            "parts": {name: part.to_dict() for name, part in self.parts.items()},
            "summary": frame_to_obj(self.summary),
        }

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> SuiteResult:
        parts = {name: BenchResult.from_dict(obj) for name, obj in data.get("parts", {}).items()}
        return cls(parts, data.get("env"), data.get("params"), data.get("notes"), bool(data.get("interrupted")))

    def to_csv(self, path: str | Path | None = None, table: str | None = None) -> str:
        """The throughput samples as CSV; with `path`, every other part's samples go next to it as
        `<stem>.<part>.csv`."""
        text = super().to_csv(path, table)
        if path is not None:
            path = Path(path)
            for name, part in self.parts.items():
                if name != "throughput":
                    part.to_csv(path.with_name(f"{path.stem}.{name}.csv"))
        return text

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}: {len(v.table)}" for k, v in self.parts.items())
        return f"<SuiteResult {parts}{' interrupted' if self.interrupted else ''}>"


def suite(
    runtimes: str | list[str] | None = None,
    kernels: str | list[str] | None = None,
    *,
    opt: str = "O2",
    include: str | list[str] | tuple[str, ...] = DEFAULT_PARTS,
    crosscheck_kernel: str = "mandel",
    native_extra: tuple[str, ...] | list[str] = (),
    client: Any = None,
    per: str = "host",
    **sampling: Unpack[Sampling],
) -> SuiteResult:
    """Run the parts in `include` (default: startup, throughput, crosscheck) and collect them, each with the
    same `sampling` (see `method.Sampling`). A Ctrl-C stops the part that runs (keeping its samples) and skips
    the rest; the result is marked `.interrupted`. With a Dask `client`, the suite runs on the cluster's
    workers instead, once per host (`per="worker"`: once per worker), and the result (a `ClusterSuiteResult`)
    names the host of every row."""
    if client is not None:
        from ._cluster import suite_on_cluster

        options = {
            "runtimes": runtimes, "kernels": kernels, "opt": opt, "include": include,
            "crosscheck_kernel": crosscheck_kernel, "native_extra": tuple(native_extra),
            **{k: v for k, v in sampling.items() if k != "progress"},
        }
        return suite_on_cluster(client, options, _suite_on_this_worker, per=per)
    from ._crosscheck import crosscheck
    from ._size import size_vs_speed
    from ._startup import startup
    from ._sweep import sweep
    from ._throughput import kernel_throughput

    chosen = [include] if isinstance(include, str) else list(include)
    chosen = [s.strip() for part in chosen for s in part.split(",") if s.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        raise UsageError(f"unknown suite part(s) {', '.join(unknown)}: use any of {', '.join(PARTS)}")
    plan = Plan.make(**sampling)  # validated once, before any part runs
    started = time.perf_counter()
    env = envmod.snapshot([])
    runs = {
        "startup": lambda: startup(runtimes, opt=opt, **sampling),
        "throughput": lambda: kernel_throughput(runtimes, kernels, opt=opt, native_extra=native_extra, **sampling),
        "crosscheck": lambda: crosscheck(crosscheck_kernel, opt=opt, **sampling),
        "size": lambda: size_vs_speed(**sampling),
        "sweep": lambda: sweep(kernels=kernels, opt=opt, quick=plan.quick, seed=plan.seed, progress=plan.progress),
    }
    parts: dict[str, BenchResult] = {}
    timings: dict[str, float] = {}
    interrupted = False
    for name in [p for p in PARTS if p in chosen]:
        t0 = time.perf_counter()
        try:
            parts[name] = runs[name]()
        except KeyboardInterrupt:
            interrupted = True
            break
        timings[name] = round(time.perf_counter() - t0, 2)
        if parts[name].interrupted:
            interrupted = True
            break
    env = envmod.finish(env, started)
    env["part_seconds"] = timings
    if parts:
        first = next(iter(parts.values()))
        env["runtimes"] = {k: v for p in parts.values() for k, v in p.env.get("runtimes", {}).items()}
        env["engine_notes"] = {k: v for p in parts.values() for k, v in p.env.get("engine_notes", {}).items()}
        env.setdefault("wasm_toolchain", first.env.get("wasm_toolchain"))
        if "throughput" in parts:
            env["native_flags"] = parts["throughput"].env.get("native_flags")
    params = {
        "include": chosen,
        "runtimes": runtimes,
        "kernels": kernels,
        "samples": sampling.get("samples"),
        "quick": plan.quick,
        "seed": plan.seed,
        "opt": opt,
        "crosscheck_kernel": crosscheck_kernel,
    }
    notes = ["interrupted by Ctrl-C: partial results"] if interrupted else []
    notes += [f"{name}: {note}" for name, part in parts.items() for note in part.notes]
    return SuiteResult(parts, env, params, notes, interrupted)


def _suite_on_this_worker(options: dict[str, Any], after: Any = None) -> dict[str, Any]:
    """Run on a cluster's worker: the local suite, as plain data, labelled with where it ran (`after` orders
    the runs)."""
    from distributed import get_worker

    data = suite(**options, progress=False).to_dict()
    data["host"], data["worker"] = socket.gethostname(), get_worker().address
    return data
