"""Rollout strategies and the health gate that judges each wave.

    "all"              every device in one wave
    "canary:5,25,100"  waves reaching 5 %, then 25 %, then 100 % of the devices (cumulative percentages)

After each wave the gate looks at that wave's devices only: how many failed their canary (a trap, the time
limit, memory grown past the budget), how long the wave took, the p99 latency of the new version's decisions, and
the share of canary readings on which the new version decided otherwise than the old one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import UsageError


def parse_strategy(strategy: str | list[float] | tuple[float, ...]) -> list[float]:
    """Cumulative wave percentages for a strategy: "all" -> [100.0]; "canary:5,25,100" -> [5.0, 25.0, 100.0]."""
    if isinstance(strategy, (list, tuple)):
        percents = [float(p) for p in strategy]
    elif strategy.strip().lower() == "all":
        return [100.0]
    else:
        name, _, spec = strategy.strip().partition(":")
        if name.lower() != "canary" or not spec:
            raise UsageError(f"unknown strategy {strategy!r}: use 'all' or 'canary:P,P,...' (e.g. canary:5,25,100)")
        try:
            percents = [float(p) for p in spec.split(",")]
        except ValueError:
            raise UsageError(f"strategy {strategy!r}: percentages must be numbers, e.g. canary:5,25,100") from None
    if not percents or any(not 0 < p <= 100 for p in percents) or percents != sorted(set(percents)):
        raise UsageError(f"strategy {strategy!r}: percentages must rise, each in (0, 100], e.g. canary:5,25,100")
    if percents[-1] != 100:
        percents.append(100.0)  # a rollout that passes every gate reaches every device
    return percents


@dataclass(frozen=True)
class Gate:
    """What a wave may show and still pass. `None` switches a check off."""

    max_failure_rate: float = 0.0  # share of the wave's devices whose canary trapped or hit a limit
    max_wave_seconds: float | None = 120.0
    max_p99_ms: float | None = 5.0  # p99 of the new version's decision latency, measured on the worker
    max_changed: float | None = 0.25  # share of canary readings decided otherwise than by the old version
    memory_budget: int | None = 2 << 20  # bytes of linear memory a device may grow to (the hard cap is higher)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WaveHealth:
    """One wave, as the gate saw it."""

    percent: float
    devices: int
    seconds: float
    failures: Counter = field(default_factory=Counter)  # failure kind -> devices
    skipped: int = 0  # not tried once the wave had failed
    compared: int = 0
    changed: int = 0
    p99_ms: float | None = None
    caught: list[str] = field(default_factory=list)  # the checks this wave failed, one line each

    @property
    def ok(self) -> bool:
        return not self.caught

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    def judge(self, gate: Gate) -> WaveHealth:
        """Fill `caught` from `gate`'s thresholds; returns self."""
        where = f"wave {self.percent:g}%"
        failed = self.errors
        if self.devices and failed / self.devices > gate.max_failure_rate:
            kinds = ", ".join(f"{n} {kind}" for kind, n in self.failures.most_common())
            self.caught.append(
                f"{where}: {failed} of {self.devices} devices failed their canary ({kinds}); "
                f"the gate allows {gate.max_failure_rate:.0%}"
            )
        if gate.max_wave_seconds is not None and self.seconds > gate.max_wave_seconds:
            self.caught.append(f"{where}: took {self.seconds:.1f} s, over the gate's {gate.max_wave_seconds:g} s")
        if gate.max_p99_ms is not None and self.p99_ms is not None and self.p99_ms > gate.max_p99_ms:
            self.caught.append(f"{where}: p99 decision latency {self.p99_ms:.2f} ms, over {gate.max_p99_ms:g} ms")
        if gate.max_changed is not None and self.compared and self.changed / self.compared > gate.max_changed:
            self.caught.append(
                f"{where}: {self.changed / self.compared:.0%} of {self.compared} canary readings decided otherwise "
                f"than the old version, over {gate.max_changed:.0%}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "percent": self.percent,
            "devices": self.devices,
            "seconds": round(self.seconds, 4),
            "errors": self.errors,
            "failures": dict(self.failures),
            "skipped": self.skipped,
            "compared": self.compared,
            "changed": self.changed,
            "p99_ms": None if self.p99_ms is None else round(self.p99_ms, 4),
            "ok": self.ok,
            "caught": list(self.caught),
        }
