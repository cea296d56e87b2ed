"""Time `wasmlab.binary.parse` on the biggest modules of the test corpus (or on the files given).

    python benchmarks/bench_inspect.py                 # the corpus of tests/test_binary.py (built on first use)
    python benchmarks/bench_inspect.py app.wasm -n 50  # given files, 50 runs each

Prints the median, min and max wall time per parse, in milliseconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wasmlab.binary import parse  # noqa: E402


def corpus() -> list[Path]:
    """The real-world corpus of the tests (found on disk or built with the toolchains, cached)."""
    spec = importlib.util.spec_from_file_location("test_binary", ROOT / "tests" / "test_binary.py")
    assert spec is not None and spec.loader is not None
    tests = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tests  # dataclasses look their module up there
    spec.loader.exec_module(tests)
    paths, notes = tests.real_world_corpus(ROOT / ".pytest_cache" / "d" / "wasmlab-binary-corpus")
    if not paths:
        sys.exit("no corpus module found or built:\n" + "\n".join(notes))
    return paths


def pick(paths: list[Path]) -> dict[str, Path]:
    """The largest file, the largest core module and the core module with the most functions."""
    chosen = {"largest file": max(paths, key=lambda p: p.stat().st_size)}
    modules = {p: parse(p.read_bytes()) for p in paths}
    core = [p for p, m in modules.items() if m.kind == "module"]
    if core:
        chosen["largest core module"] = max(core, key=lambda p: p.stat().st_size)
        chosen["most functions"] = max(core, key=lambda p: len(modules[p].functions))
    return chosen


def bench(path: Path, runs: int) -> list[float]:
    data = path.read_bytes()
    parse(data)  # warm up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        parse(data)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("-n", "--runs", type=int, default=20)
    args = ap.parse_args()
    targets = {str(p): p for p in args.files} if args.files else pick(corpus())
    for label, path in targets.items():
        m = parse(path.read_bytes())
        times = bench(path, args.runs)
        print(
            f"{label}: {path.name} ({path.stat().st_size / 1e6:.1f} MB, {m.kind}, {len(m.sections)} sections, "
            f"{len(m.functions)} functions, {m.data_segments} data segments)\n"
            f"  median {statistics.median(times):.2f} ms  (min {min(times):.2f}, max {max(times):.2f}, "
            f"{args.runs} runs)"
        )


if __name__ == "__main__":
    main()
