"""A fleet of simulated edge devices on a real distributed engine (Dask): each device is a Wasm instance of a
rule module with its own seeded sensor stream; new versions roll out to all at once or in canary waves, a
health gate judges every wave and rolls every device back when one fails, and a worker that dies mid-rollout
loses no device.

    >>> from wasmlab.fleet import Fleet, examples  # doctest: +SKIP
    >>> with Fleet(examples.build(examples.RULES_V1), devices=1000) as fleet:  # doctest: +SKIP
    ...     report = fleet.rollout(examples.build(examples.RULES_V2), "canary:5,25,100", kill_worker_at=0.5)
    >>> report.versions, report.lost, report.propagation_ms  # doctest: +SKIP

A rule module exports `decide(sensor: i32, value: f64) -> i32` (0 ok, otherwise an alarm code). Layers:
`sensors` (the readings), `host` (the Dask actor on each worker), `gate` (strategies and the health gate),
`fleet` (the controller), `report` (what a rollout did), `examples` (rule sources, good and hostile), `cli`.
Dask loads when a fleet starts: `import wasmlab.fleet` is cheap.
"""

from __future__ import annotations

from . import examples
from .fleet import ClusterUnavailable, Fleet, as_rules
from .gate import Gate, WaveHealth, parse_strategy
from .report import RolloutReport
from .sensors import reading

__all__ = [
    "ClusterUnavailable",
    "Fleet",
    "Gate",
    "RolloutReport",
    "WaveHealth",
    "as_rules",
    "examples",
    "parse_strategy",
    "reading",
]
