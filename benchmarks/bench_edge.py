"""The edge worker under load: requests/s and p50/p90/p99 latency per instance strategy and runtime.

A tiny C handler (the edge helper, one header, a 14-byte body) is served by `wasmlab.edge.EdgeServer` on
loopback, one route per runtime x strategy, and loaded by `wasmlab.edge.load` at a fixed moderate rate (open
loop: --rate requests/s for --duration s) and at saturation (closed loop: --concurrency connections for
--duration s). By default the load generator runs in its own process (`wasmlab edge load`), so it does not
share the server's GIL. A second table times `Deployment.serve` in process, without HTTP: the cost of each
strategy itself, with the instantiation a fresh instance pays on every request as its own column.

    .venv/bin/python benchmarks/bench_edge.py                              # every available runtime
    .venv/bin/python benchmarks/bench_edge.py --runtimes wasmtime --duration 10 --rate 200 --json
    .venv/bin/python benchmarks/bench_edge.py --execution inline           # guests on the event loop

Platforms (`--platforms`): the same standard wasi:http handler (HANDLER through `wasmlab.edge.build`, or
`--handler FILE`) on each edge platform, each a process on loopback, the same load tool (wrk where installed)
and the same offered load; the lab's own platform's requests/s and p99 are reported as ratios to workerd's
(goal: at least 0.5x workerd's requests/s, p99 within 2x). `--rounds` repeats the whole set, alternating, and
reports the median of each figure, so a noisy neighbour hits every platform alike.

    .venv/bin/python benchmarks/bench_edge.py --platforms wasmlab,workerd,jco --duration 10 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Any

import wasmlab
from wasmlab.edge import STRATEGIES, benchmark, compile_handler, deploy, encode_request
from wasmlab.errors import WasmlabError
from wasmlab.runtimes import list_runtimes

HANDLER = r"""
void on_request(const edge_request *req, edge_response *res) {
    edge_set_header(res, "content-type", "text/plain");
    edge_write_str(res, "hello, edge!\n");
}
"""
RUNTIMES = ("wasmtime", "node", "wasm3", "wasmer")


def serve_costs(handler: Any, runtimes: list[str], samples: int) -> list[dict[str, Any]]:
    """Deployment.serve timed in this process (no HTTP, no threads): ms per request per strategy."""
    data = encode_request("GET", "/", {"user-agent": "bench"})
    rows = []
    for runtime in runtimes:
        for strategy in STRATEGIES:
            try:
                deployment = deploy(handler, strategy, runtime, pool_size=4)
            except WasmlabError as exc:
                print(f"skip {runtime}/{strategy}: {exc}", file=sys.stderr)
                continue
            try:
                totals, instantiate = [], []
                for _ in range(samples):
                    t0 = time.perf_counter()
                    outcome = deployment.serve(data)
                    totals.append((time.perf_counter() - t0) * 1000.0)
                    instantiate.append(outcome.instantiate_ms)
                    assert outcome.ok, outcome.error
                    if strategy == "pooled":  # steady state: the background reset keeps up at moderate load
                        deployment.settle()
            finally:
                deployment.close()
            q = statistics.quantiles(totals, n=100)
            rows.append(
                {
                    "runtime": runtime,
                    "strategy": strategy,
                    "serve_p50_ms": round(statistics.median(totals), 4),
                    "serve_p99_ms": round(q[98], 4),
                    "instantiate_p50_ms": round(statistics.median(instantiate), 4),
                    "samples": samples,
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "nan" if value != value else f"{value:.3f}" if value < 100 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated (default: all four)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--rate", type=float, default=200.0, help="moderate load, requests/s (default 200)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    parser.add_argument("--saturation-requests", type=int, default=100_000, help="cap per saturation run")
    parser.add_argument("--concurrency", type=int, default=8, help="connections (default 8)")
    parser.add_argument("--pool-size", type=int, default=8, help="ready instances per pooled route (default 8)")
    parser.add_argument("--execution", choices=("threads", "inline", "both"), default="threads")
    parser.add_argument("--client", choices=("process", "thread"), default="process")
    parser.add_argument("--serve-samples", type=int, default=2000, help="in-process serve() samples (0: skip)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--platforms", help="compare edge platforms instead, e.g. wasmlab,workerd,jco")
    parser.add_argument("--handler", help="with --platforms: a handler file (default: HANDLER, C with the helper)")
    parser.add_argument("--requests", type=int, default=100_000, help="with --platforms: cap per run")
    parser.add_argument("--rounds", type=int, default=1, help="with --platforms: repeat, report medians")
    args = parser.parse_args()
    if args.platforms:
        return bench_platforms(args)

    available = {r.name for r in list_runtimes() if r.available}
    runtimes = [r for r in args.runtimes.split(",") if r]
    missing = [r for r in runtimes if r.split(":")[0] not in available]
    runtimes = [r for r in runtimes if r not in missing]
    strategies = [s for s in args.strategies.split(",") if s]
    handler = compile_handler(HANDLER, "c", name="hello")
    executions = ("threads", "inline") if args.execution == "both" else (args.execution,)

    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {r: "not installed" for r in missing}
    for execution in executions:
        for rate, requests in ((args.rate, int(args.rate * args.duration)), (None, args.saturation_requests)):
            comparison = benchmark(
                handler,
                strategies,
                runtimes,
                (rate,),
                requests=requests,
                duration=args.duration,
                concurrency=args.concurrency,
                warmup=100,
                pool_size=args.pool_size,
                execution=execution,
                client=args.client,
                progress=lambda label, e=execution: print(f"[{e}] {label}", file=sys.stderr, flush=True),
            )
            rows += comparison.table.to_dict("records")
            skipped |= comparison.skipped
    costs = serve_costs(handler, runtimes, args.serve_samples) if args.serve_samples else []

    info = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
        "python": platform.python_version(),
        "wasmlab": wasmlab.__version__,
        "handler": f"C via the edge helper, {handler.module.size} bytes",
        "client": args.client,
        "concurrency": args.concurrency,
        "pool_size": args.pool_size,
        "duration_s": args.duration,
    }
    if args.json:
        print(json.dumps({"info": info, "load": rows, "serve": costs, "skipped": skipped}, indent=2, default=str))
        return
    print(" | ".join(f"{k}: {v}" for k, v in info.items()))
    columns = ["execution", "runtime", "strategy", "mode", "requests", "failed", "rps", "p50_ms", "p90_ms", "p99_ms"]
    columns += ["server_p50_ms", "server_p99_ms", "instances", "cold"]
    print(markdown(rows, columns))
    if costs:
        print("\nDeployment.serve in process (no HTTP): ms per request")
        print(markdown(costs, list(costs[0])))
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")


def bench_platforms(args: argparse.Namespace) -> None:
    """Every platform on one handler, same tool and load; the lab's ratios to workerd."""
    from wasmlab.edge import build, compare_platforms

    handler = build(args.handler) if args.handler else build(HANDLER, "c", name="hello")
    runs: dict[str, list[dict[str, Any]]] = {}
    skipped: dict[str, str] = {}
    tool = ""
    for round_ in range(args.rounds):
        result = compare_platforms(
            handler,
            args.platforms,
            requests=args.requests,
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=200,
            progress=lambda name, r=round_: print(f"[round {r + 1}] {name}", file=sys.stderr, flush=True),
        )
        assert result.agree, f"the platforms disagree: {result.disagreements}"
        tool = result.meta["tool"]
        skipped |= result.skipped
        for row in result.rows:
            runs.setdefault(row["platform"], []).append(row)
    figures = ("cold_start_s", "rps", "p50_ms", "p90_ms", "p99_ms", "rss_mib", "errors")
    rows = [
        {"platform": name, "rounds": len(rs), **{f: statistics.median(r[f] for r in rs) for f in figures}}
        for name, rs in runs.items()
    ]
    by = {row["platform"]: row for row in rows}
    ratios = {}
    if "wasmlab" in by and "workerd" in by:
        lab, cf = by["wasmlab"], by["workerd"]
        ratios = {
            "rps_ratio": lab["rps"] / cf["rps"],
            "p99_ratio": lab["p99_ms"] / cf["p99_ms"],
            "goal_rps": lab["rps"] >= 0.5 * cf["rps"],
            "goal_p99": lab["p99_ms"] <= 2 * cf["p99_ms"],
        }
    info = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
        "handler": f"{handler.name} ({handler.lang}), component {len(handler.component):,} B, "
        f"sha256 {handler.sha256[:16]}",
        "tool": tool,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "requests_cap": args.requests,
        "rounds": args.rounds,
    }
    if args.json:
        print(json.dumps({"info": info, "platforms": rows, "ratios": ratios, "skipped": skipped}, indent=2))
        return
    print(" | ".join(f"{k}: {v}" for k, v in info.items()))
    print(markdown(rows, ["platform", "rounds", *figures]))
    if ratios:
        print(
            f"\nwasmlab / workerd: requests/s {ratios['rps_ratio']:.2f}x (goal >= 0.5: "
            f"{'met' if ratios['goal_rps'] else 'NOT met'}), p99 {ratios['p99_ratio']:.2f}x (goal <= 2: "
            f"{'met' if ratios['goal_p99'] else 'NOT met'})"
        )
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")


if __name__ == "__main__":
    main()
