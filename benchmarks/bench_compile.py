"""Compile time per language: a build with the module cache bypassed (compilers' own caches warm, as after
set-up) and a cache hit. Medians over several runs.

    .venv/bin/python benchmarks/bench_compile.py [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import wasmlab
from wasmlab.cache import ModuleCache

SNIPPETS = Path(__file__).resolve().parents[1] / "tests" / "snippets"
EXT = {"wat": "wat", "c": "c", "cpp": "cpp", "zig": "zig", "rust": "rs", "go": "go", "assemblyscript": "ts"}


def measure(source: Path, kind: str, repeat: int) -> dict[str, float]:
    builds = []
    for _ in range(repeat):
        started = time.perf_counter()
        module = wasmlab.compile(source, kind=kind, use_cache=False)
        builds.append((time.perf_counter() - started) * 1000)
    ModuleCache().put(module.provenance.cache_key, module.bytes, {})
    hits = []
    for _ in range(repeat * 5):
        started = time.perf_counter()
        hit = wasmlab.compile(source, kind=kind)
        hits.append((time.perf_counter() - started) * 1000)
        assert hit.provenance.cached
    return {"build_ms": statistics.median(builds), "hit_ms": statistics.median(hits), "size": module.size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    available = {t.lang for t in wasmlab.list_toolchains() if t.available}
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        import os

        os.environ["WASMLAB_CACHE"] = cache
        for lang, ext in EXT.items():
            if lang not in available:
                continue
            for kind, stem in (("library", "fib"), ("command", "hello")):
                source = SNIPPETS / f"{stem}.{ext}"
                if source.exists():
                    rows.append({"lang": lang, "kind": kind, **measure(source, kind, args.repeat)})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'lang':<15} {'kind':<8} {'build ms':>9} {'cache hit ms':>13} {'bytes':>10}")
    for r in rows:
        print(f"{r['lang']:<15} {r['kind']:<8} {r['build_ms']:>9.1f} {r['hit_ms']:>13.2f} {r['size']:>10,}")


if __name__ == "__main__":
    main()
