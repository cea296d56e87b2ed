"""Cross-check of the harness: the lab's wasmtime throughput for one kernel against an independent measurement.

The lab side calls `run_<kernel>(n)` on a kept wasmtime instance and takes the engine-side call time. The other
side runs the suite's WASI *command* build in a fresh `python runner.py` process (raw wasmtime-py, nothing from
wasmlab), configured like the lab's engine (fuel metering and epoch interruption on), and reads the loop time
the guest measured itself with clock_gettime. Both sides are interleaved; they should agree within 5%. The
same runner with wasmtime's default config (no fuel, no epochs) is reported too, for scale.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import WasmlabError
from ..runtimes import RunOptions, get_runtime
from . import env as envmod
from .kernels import MASK, TARGET_MS, SuiteBuild, export_name, parse_lines
from .method import Clock, Plan, Progress, call_ms
from .results import BenchResult, table_html
from .stats import describe, ratio_ci

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .method import Sampling

RUNNER = Path(__file__).with_name("runner.py")
AGREEMENT = 0.05
SOURCES = ("lab: engine call time", "subprocess runner (lab config): guest clock", "subprocess runner (plain config)")


class CrossCheckResult(BenchResult):
    kind = "crosscheck"
    title = "cross-check: lab wasmtime vs an independent process"

    def summarise(self):
        import pandas as pd

        df = self.table
        rows = []
        lab = df[df["source"] == SOURCES[0]]["time_ms"].to_numpy() if len(df) else []
        for source, group in df.groupby("source", sort=False) if len(df) else []:
            d = describe(group["time_ms"])
            ratio, low, high, _ = ratio_ci(lab, group["time_ms"].to_numpy(), seed=self.params.get("seed", 0))
            rows.append(
                {
                    "source": source,
                    "kernel": group["kernel"].iloc[0],
                    "iterations": int(group["iterations"].iloc[0]),
                    "n": d["n"],
                    "median_ms": d["median"],
                    "iqr_ms": d["iqr"],
                    "min_ms": d["min"],
                    "cv_pct": d["cv"] * 100,
                    "noisy": d["noisy"],
                    "lab_over_this": ratio,
                    "ci_low": low,
                    "ci_high": high,
                    "agrees_within_5pct": bool(abs(ratio - 1.0) <= AGREEMENT) if ratio == ratio else False,
                    "lab_min_over_this_min": min(lab) / d["min"] if len(lab) and d["min"] > 0 else float("nan"),
                }
            )
        return pd.DataFrame(rows)

    @property
    def agreement(self) -> float:
        """|lab median / runner median - 1| for the runner configured like the lab (the cross-check figure)."""
        return self._agreement("lab_over_this")

    @property
    def agreement_min(self) -> float:
        """The same on the minima: on a loaded machine noise only adds time, so minima are steadier."""
        return self._agreement("lab_min_over_this_min")

    def _agreement(self, column: str) -> float:
        s = self.summary
        row = s[s["source"] == SOURCES[1]] if len(s) else s
        return float(abs(row[column].iloc[0] - 1.0)) if len(row) else float("nan")

    def figures(self):
        if not len(self.table):
            return {}
        import plotly.graph_objects as go

        from .figures import _layout, colour

        fig = go.Figure()
        shades = dict(zip(SOURCES, [colour("wasmtime"), "#6baed6", "#bbbbbb"], strict=True))
        for source in SOURCES:
            rows = self.table[self.table["source"] == source]
            if len(rows):
                fig.add_box(name=source, y=list(rows["time_ms"]), boxpoints="all", marker_color=shades[source])
        kernel = self.params.get("kernel", "")
        return {
            "Cross-check": _layout(
                fig,
                f"Cross-check on {kernel}: lab vs an independent process (medians differ by {self.agreement:.1%}, "
                f"minima by {self.agreement_min:.1%})",
                xaxis_title="how it was measured",
                yaxis_title="time of one call (ms)",
                legend="source",
            )
        }

    def html_sections(self):
        return [("Cross-check", table_html(self.summary))]


def _runner(path: Path, config: str, kernel: str, n: int, repeats: int) -> list[tuple[int, int]]:
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(path), config, kernel, str(n), str(max(1, n // 2)), str(repeats)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise WasmlabError(f"cross-check runner failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    return parse_lines(proc.stdout, kernel)


def crosscheck(
    kernel: str = "mandel",
    *,
    opt: str = "O2",
    iterations: int | None = None,
    runtime: str = "wasmtime",
    **sampling: Unpack[Sampling],
) -> CrossCheckResult:
    """Interleave `samples` lab calls with runner processes (3 timed repeats each) on `kernel` (`sampling`: see
    `method.Sampling`); the summary's `lab_over_this` is the ratio of medians with its bootstrap CI, `agreement`
    the cross-check figure."""
    import pandas as pd

    plan = Plan.make(**sampling)
    build = SuiteBuild(opt)
    clock = Clock()
    engine = get_runtime(runtime)
    lib, cmd = build.library(), build.command()
    n = build.iterations([kernel], iterations or None, TARGET_MS[plan.mode])[kernel]
    want = build.baseline().expected(kernel, n)
    env = envmod.snapshot([engine.label])
    rows: list[dict[str, Any]] = []
    interrupted = False
    processes = max(2, plan.samples // 3)
    repeats = 3 if plan.quick else 5
    bar = Progress(plan.samples + 2 * processes, "cross-check", plan.progress)
    inst = engine.instantiate(lib, RunOptions())
    with tempfile.TemporaryDirectory(prefix="wasmlab-xcheck-") as tmp:
        path = cmd.save(Path(tmp) / "suite.wasm")
        try:
            for _ in range(max(2, plan.warmup)):
                inst.call(export_name(kernel), n)
            lab_left = plan.samples
            for p in range(processes):
                for config, source in (("lab", SOURCES[1]), ("plain", SOURCES[2])):
                    for checksum, ns in _runner(path, config, kernel, n, repeats):
                        if checksum != want:
                            raise WasmlabError(f"runner computed {checksum} for {kernel}({n}), native says {want}")
                        rows.append(
                            {"source": source, "kernel": kernel, "iterations": n, "process": p, "time_ms": ns / 1e6}
                        )
                    bar.update()
                for _ in range(lab_left // (processes - p)):  # lab samples spread between runner processes
                    value = int(inst.call(export_name(kernel), n)) & MASK
                    if value != want:
                        raise WasmlabError(f"{engine.label} computed {value} for {kernel}({n}), native says {want}")
                    rows.append(
                        {
                            "source": SOURCES[0],
                            "kernel": kernel,
                            "iterations": n,
                            "process": -1,
                            "time_ms": call_ms(inst),
                        }
                    )
                    lab_left -= 1
                    bar.update()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()
            inst.close()
    table = pd.DataFrame(rows, columns=["source", "kernel", "iterations", "process", "time_ms"])
    params = {
        "kernel": kernel,
        "iterations": n,
        "samples": plan.samples,
        "runner_processes": processes,
        "runner_repeats": repeats,
        "runtime": engine.label,
        "seed": plan.seed,
        "opt": opt,
    }
    notes = [
        f"runner: {sys.executable} {RUNNER.name} (raw wasmtime-py, a new process each time, {repeats} timed "
        "repeats after an untimed warm-up of n/2 ops); the lab's side is the library build, the runner's the "
        "command build of the same C source"
    ]
    return CrossCheckResult({"samples": table}, envmod.finish(env, clock.started, notes), params, notes, interrupted)
