"""`RolloutReport`: what one rollout did, as plain data (`to_dict`, the CLI's --json), tables and plotly figures."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .gate import WaveHealth


def time_to_reach(times_ms: list[float], devices: int, share: float) -> float | None:
    """When `share` of `devices` ran the new version: the ceil(share * devices)-th switch time (None if never)."""
    needed = max(1, math.ceil(share * devices))
    ordered = sorted(times_ms)
    return round(ordered[needed - 1], 3) if len(ordered) >= needed else None


@dataclass
class RolloutReport:
    devices: int
    cluster: dict[str, Any]
    old: str  # sha256 of the version the fleet ran before
    new: str
    strategy: list[float]
    gate: dict[str, Any]
    waves: list[WaveHealth] = field(default_factory=list)
    rolled_back: bool = False
    versions: dict[str, int] = field(default_factory=dict)  # sha256 -> devices running it at the end
    lost: int = 0
    seconds: float = 0.0
    bytes_shipped: int = 0
    modules_shipped: int = 0  # (worker, module) pairs sent
    switch_ms: dict[int, float] = field(default_factory=dict)  # device -> ms after the start it ran the new version
    events: list[tuple[float, int, str]] = field(default_factory=list)  # (ms, device, sha it started running)
    faults: list[dict[str, Any]] = field(default_factory=list)  # workers lost and what became of their devices
    worker_seconds: dict[str, float] = field(default_factory=dict)  # worker -> s its host spent on canaries

    @property
    def overhead_seconds(self) -> float:
        """Rollout time not spent in the busiest worker's canaries: Dask's calls, shipping, the gate, healing."""
        return max(0.0, self.seconds - max(self.worker_seconds.values(), default=0.0))

    @property
    def caught(self) -> str | None:
        """The first check a wave failed (what made the rollout roll back), one line; None when all passed."""
        return next((line for wave in self.waves for line in wave.caught), None)

    @property
    def propagation_ms(self) -> dict[str, float | None]:
        """Time until 50 %, 99 % and 100 % of the devices ran the new version (ms after the rollout began)."""
        times = list(self.switch_ms.values())
        return {
            "p50": time_to_reach(times, self.devices, 0.50),
            "p99": time_to_reach(times, self.devices, 0.99),
            "p100": time_to_reach(times, self.devices, 1.0),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "devices": self.devices,
            "cluster": self.cluster,
            "old": self.old,
            "new": self.new,
            "strategy": self.strategy,
            "gate": self.gate,
            "waves": [wave.to_dict() for wave in self.waves],
            "rolled_back": self.rolled_back,
            "caught": self.caught,
            "versions": self.versions,
            "lost": self.lost,
            "seconds": round(self.seconds, 3),
            "propagation_ms": self.propagation_ms,
            "bytes_shipped": self.bytes_shipped,
            "modules_shipped": self.modules_shipped,
            "faults": self.faults,
            "worker_seconds": {k: round(v, 4) for k, v in self.worker_seconds.items()},
            "overhead_seconds": round(self.overhead_seconds, 4),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def label(self, sha: str) -> str:
        role = "new" if sha == self.new else "old" if sha == self.old else "other"
        return f"{role} {sha[:8]}"

    # tables -----------------------------------------------------------------------------------------------
    def wave_table(self):  # -> pandas.DataFrame
        import pandas as pd

        rows = [wave.to_dict() for wave in self.waves]
        for row in rows:
            row["failures"] = ", ".join(f"{n} {k}" for k, n in row["failures"].items())
            row["caught"] = "; ".join(row["caught"])
        return pd.DataFrame(rows)

    def version_mix(self):  # -> pandas.DataFrame
        """Devices per version over the rollout: one row per change (ms, version, devices running it)."""
        import pandas as pd

        running = {self.old: self.devices, self.new: 0}
        current: dict[int, str] = {}
        rows = [{"ms": 0.0, "version": self.label(sha), "devices": n} for sha, n in running.items()]
        for ms, device, sha in sorted(self.events):
            before = current.get(device, self.old)
            if before == sha:
                continue
            running[before] -= 1
            running[sha] = running.get(sha, 0) + 1
            current[device] = sha
            rows += [{"ms": ms, "version": self.label(v), "devices": running[v]} for v in (before, sha)]
        rows += [{"ms": self.seconds * 1000, "version": self.label(v), "devices": n} for v, n in running.items()]
        return pd.DataFrame(rows)

    # figures ----------------------------------------------------------------------------------------------
    def figure(self):  # -> plotly.graph_objects.Figure
        """The version mix over time, waves shaded, propagation marked."""
        import plotly.graph_objects as go

        mix = self.version_mix()
        fig = go.Figure()
        for version, rows in mix.groupby("version", sort=False):
            fig.add_trace(go.Scatter(x=rows["ms"], y=rows["devices"], name=version, mode="lines", line_shape="hv"))
        for name, ms in self.propagation_ms.items():
            if ms is not None and name != "p100":
                fig.add_vline(x=ms, line_dash="dot", annotation_text=f"{name} {ms:.0f} ms")
        outcome = "rolled back" if self.rolled_back else "complete"
        fig.update_layout(
            title=f"{self.devices:,} devices, rollout {outcome}: devices per version over time",
            xaxis_title="ms since the rollout began",
            yaxis_title="devices",
            template="plotly_white",
        )
        return fig

    def wave_figure(self):  # -> plotly.graph_objects.Figure
        import plotly.graph_objects as go

        table = self.wave_table()
        colours = ["#2a9d8f" if ok else "#e63946" for ok in table["ok"]]
        fig = go.Figure(
            go.Bar(
                x=[f"{p:g}%" for p in table["percent"]],
                y=table["seconds"],
                marker_color=colours,
                text=[f"{d} devices, {e} failed" for d, e in zip(table["devices"], table["errors"], strict=True)],
            )
        )
        fig.update_layout(
            title="seconds per wave (red: the gate failed)", xaxis_title="wave (cumulative share)",
            yaxis_title="s", template="plotly_white",
        )
        return fig

    def __repr__(self) -> str:
        outcome = f"rolled back ({self.caught})" if self.rolled_back else "complete"
        return (
            f"<RolloutReport {self.devices} devices, {len(self.waves)} wave(s), {outcome}, lost {self.lost}, "
            f"{self.seconds:.2f} s>"
        )
