"""`wasmlab fleet rollout OLD NEW`: roll a new rule version out to a fleet of simulated devices on Dask.

wasmlab fleet rollout v1.c v2.c --devices 1000 --strategy canary:5,25,100
wasmlab fleet rollout v1.wasm v2.wasm --devices 10000 --strategy all --scheduler tcp://127.0.0.1:8786 --json
wasmlab fleet rollout v1.c v2.c --kill-worker-at 0.5          (a worker is killed once half the fleet is through)

Exit status 0 when every wave passed its gate, 1 when the rollout was rolled back (one line on stderr says what
the gate caught; with --json the report is printed all the same), 2 for bad usage or an unreachable cluster.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

SOURCE_HELP = "a rule module: .wasm, or a source file to compile (.c .wat .zig .rs ...) exporting decide"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `fleet` command's sub-commands on the parser `wasmlab.cli` made for it."""
    sub = parser.add_subparsers(dest="fleet_command", required=True, metavar="SUBCOMMAND")
    p = sub.add_parser("rollout", help="roll NEW out to devices running OLD", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the report as JSON")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    p.add_argument("old", help=SOURCE_HELP + " (what the devices run first)")
    p.add_argument("new", help=SOURCE_HELP + " (the version to roll out)")
    p.add_argument("--devices", "-n", type=int, default=1000, help="simulated devices (default 1000)")
    p.add_argument("--strategy", default="canary:5,25,100", help="all, or canary:P,P,... (default canary:5,25,100)")
    p.add_argument("--scheduler", help="a running Dask scheduler, tcp://HOST:PORT (default: a LocalCluster)")
    p.add_argument("--workers", type=int, default=2, help="worker processes of the LocalCluster (default 2)")
    p.add_argument("--kill-worker-at", type=float, metavar="F", help="kill a worker once this share (0-1) is through")
    p.add_argument("--readings", type=int, default=20, help="readings per device before the rollout (default 20)")
    p.add_argument("--canary-readings", type=int, default=20, help="readings each device's canary compares")
    p.add_argument("--seed", type=int, default=0, help="seed of the sensor streams and the wave order")
    p.add_argument("--runtime", "-r", default="wasmtime", help="engine the devices run on (default wasmtime)")
    p.add_argument("--timeout", type=float, default=0.25, help="seconds per decision (default 0.25)")
    p.add_argument("--max-failure-rate", type=float, default=0.0, help="gate: share of a wave that may fail (0)")
    p.add_argument("--max-p99-ms", type=float, default=5.0, help="gate: p99 decision latency (default 5 ms)")
    p.add_argument("--max-changed", type=float, default=0.25, help="gate: share of changed decisions (0.25)")
    p.add_argument("--max-wave-seconds", type=float, default=120.0, help="gate: seconds per wave (default 120)")


def run(args: argparse.Namespace) -> int:
    import json

    from . import Fleet, Gate

    gate = Gate(
        max_failure_rate=args.max_failure_rate,
        max_wave_seconds=args.max_wave_seconds,
        max_p99_ms=args.max_p99_ms,
        max_changed=args.max_changed,
    )
    with Fleet(
        args.old,
        devices=args.devices,
        scheduler=args.scheduler,
        workers=args.workers,
        seed=args.seed,
        runtime=args.runtime,
        timeout=args.timeout,
    ) as fleet:
        if args.readings:
            fleet.run(readings=args.readings)
        report = fleet.rollout(
            args.new, args.strategy, gate=gate, canary_readings=args.canary_readings,
            kill_worker_at=args.kill_worker_at,
        )
    if getattr(args, "json", False):
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report_text(report))
    if report.rolled_back:
        print(f"wasmlab: rolled back: {report.caught}", file=sys.stderr)
        return 1
    return 0


def report_text(report: Any) -> str:
    cluster = report.cluster
    lines = [f"{report.devices:,} devices on {len(cluster['workers'])} worker(s), scheduler {cluster['scheduler']}"]
    for wave in report.waves:
        changed = f"{wave.changed / wave.compared:.1%}" if wave.compared else "-"
        p99 = f"{wave.p99_ms:.3f} ms" if wave.p99_ms is not None else "-"
        verdict = "ok" if wave.ok else "FAILED: " + "; ".join(wave.caught)
        lines.append(
            f"wave {wave.percent:>5g}%: {wave.devices:>6,} devices {wave.seconds:7.2f} s  {wave.errors} failed  "
            f"changed {changed}  p99 {p99}  {verdict}"
        )
    p = report.propagation_ms
    shown = ", ".join(f"{k} {v:.0f} ms" if v is not None else f"{k} never" for k, v in p.items())
    lines.append(f"new version on devices: {shown}")
    lines.append(f"shipped {report.bytes_shipped:,} bytes ({report.modules_shipped} module copies, one per worker)")
    for fault in report.faults:
        if "killed" in fault:
            lines.append(f"killed worker {fault['killed']} at {fault['at_share']:.0%} of the rollout")
        else:
            moved = ", ".join(f"{n} to {a}" for a, n in fault.get("recreated_on", {}).items())
            lines.append(f"lost worker {fault['worker']}: {fault['devices']} devices recreated ({moved})")
    versions = ", ".join(f"{sha[:12]} {n:,}" for sha, n in report.versions.items())
    lines.append(f"versions at the end: {versions}; lost {report.lost}; {report.seconds:.2f} s")
    if report.rolled_back:
        lines.append(f"rolled back: {report.caught}")
    return "\n".join(lines)
