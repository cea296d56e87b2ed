"""The wasmlab benchmark suite: startup phases, throughput against native C, and the cross-check, on every
available runtime; writes an HTML report (figures inlined), the whole result as JSON and the samples as CSV.

    .venv/bin/python benchmarks/suite.py [--quick] [--out DIR] [--runtimes a,b] [--kernels k1,k2]
                                         [--samples N] [--include startup,throughput,crosscheck,size,sweep]

Same as `wasmlab bench suite --html DIR/report.html --json-out DIR/suite.json --csv DIR/suite.csv`; this script
also prints how long the harness took, against its budget (full: 180 s, quick: 30 s, on a 2-core machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from wasmlab.bench import suite
from wasmlab.bench.cli import report_text

BUDGET_S = {"full": 180.0, "quick": 30.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 samples, ~2 ms calls")
    parser.add_argument("--out", default="bench-out", help="directory for report.html, suite.json, suite.csv")
    parser.add_argument("--runtimes", help="comma-separated runtimes (default: every available one)")
    parser.add_argument("--kernels", help="comma-separated kernels (default: all)")
    parser.add_argument("--samples", type=int, help="samples per measurement (default 30, quick 5)")
    parser.add_argument("--include", default="startup,throughput,crosscheck", help="suite parts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = suite(
        args.runtimes, args.kernels, samples=args.samples, quick=args.quick, seed=args.seed, include=args.include
    )
    seconds = time.perf_counter() - t0
    result.to_html(out / "report.html")
    result.to_json(out / "suite.json", indent=1)
    result.to_csv(out / "suite.csv")
    print(report_text(result))
    mode = "quick" if args.quick else "full"
    budget = BUDGET_S[mode]
    verdict = "within" if seconds <= budget else "OVER"
    parts = result.env["part_seconds"]
    print(f"\nharness: {seconds:.1f} s ({mode} mode, {verdict} the {budget:g} s budget); parts: {parts}")
    print(f"wrote {out / 'report.html'}, {out / 'suite.json'}, {out / 'suite.csv'}")
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
