"""The fleet at scale: memory per device, start-up, steady-state decisions per second, rollout time (all at once
and in canary waves, with p50/p99/100% propagation) and the scheduler's overhead, on a Dask LocalCluster of
worker processes (or a running cluster, `--scheduler`).

Memory per device is the growth of the workers' resident memory (VmRSS, summed over workers) when the devices
are created, over a baseline fleet of one device per worker (engine, module and actor already there).
Overhead is the rollout's time not spent in the busiest worker's canaries: Dask calls, shipping, the gate.

    .venv/bin/python benchmarks/bench_fleet.py --devices 10000 [--workers 2] [--readings 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from wasmlab.fleet import Fleet, examples


def rss(fleet: Fleet) -> int:
    return sum(info["rss"] for info in fleet.memory().values())


def rollout_row(name: str, report: Any) -> dict[str, Any]:
    return {
        "rollout": name,
        "seconds": round(report.seconds, 3),
        "waves_s": [round(w.seconds, 3) for w in report.waves],
        "propagation_ms": report.propagation_ms,
        "overhead_s": round(report.overhead_seconds, 3),
        "worker_busy_s": round(max(report.worker_seconds.values(), default=0.0), 3),
        "bytes_shipped": report.bytes_shipped,
        "rolled_back": report.rolled_back,
        "lost": report.lost,
        "versions": sorted(report.versions.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", help="a running Dask scheduler (default: a LocalCluster)")
    parser.add_argument("--readings", type=int, default=20, help="steady-state readings per device")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    v1 = examples.build(examples.RULES_V1, "v1")
    v2 = examples.build(examples.RULES_V2, "v2")
    out: dict[str, Any] = {"devices": args.devices, "load_before": list(os.getloadavg())}
    with Fleet(v1, devices=args.workers, scheduler=args.scheduler, workers=args.workers) as baseline:
        out["workers"] = len(baseline.workers)
        out["actor_round_trip_ms"] = {a: round(ms, 3) for a, ms in baseline.ping(200).items()}
        before = rss(baseline)
        started = time.perf_counter()
        with Fleet(v1, devices=args.devices, client=baseline.client) as fleet:
            out["start_s"] = round(time.perf_counter() - started, 3)
            after = rss(fleet)
            out["worker_rss_mb"] = round(after / 2**20, 1)
            out["memory_per_device_kib"] = round((after - before) / args.devices / 1024, 2)
            started = time.perf_counter()
            fleet.run(readings=args.readings)
            seconds = time.perf_counter() - started
            out["steady_decisions_per_s"] = round(args.devices * args.readings / seconds)
            out["rollouts"] = [
                rollout_row("all", fleet.rollout(v2, "all")),
                rollout_row("canary:5,25,100", fleet.rollout(v1, "canary:5,25,100")),
            ]
    out["load_after"] = list(os.getloadavg())
    if args.json:
        print(json.dumps(out, indent=1))
        return
    for key, value in out.items():
        if key != "rollouts":
            print(f"{key:>24}: {value}")
    for row in out["rollouts"]:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
