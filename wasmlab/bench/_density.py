"""Density: what one more isolated copy of a service costs, as a Wasm instance on each engine or as a process.

The seed article: "Wasm applications consume far less memory and compute than containerized workloads". There is
no container engine here; a container is at least one process (plus its runtime shim and image), so a native
process per copy is the floor of what a container costs. The service is one C file (`SERVICE_C`: a 16 KiB table
of counters, filled on the first request) built twice from the same text:

    wasm     `wasmlab.compile(..., kind="library")`, one instance per copy, each answering one request
    native   `gcc -O2 -DNATIVE_MAIN`: one process per copy, answering one request over a pipe

For N copies (`counts`) at a time, each sample measures

    memory_kib     the marginal memory of one copy: the host process's resident memory after creating N copies
                   minus before, / N (the worker process's, for engines that run in one); for processes, the
                   mean proportional set size (PSS: shared library pages split between the processes that map
                   them) of the N processes
    create_ms      wall time to create one copy and get its first answer (median over the N)

and `host_mib`: the resident memory of the host before any copy (the engine and, for wasmtime, this Python
process; a process per copy needs no host). Each sample runs on a new engine object (a new worker process), so
memory an earlier sample freed, which a process keeps resident, cannot hide growth. wasmtime instances here
carry a Python wrapper each; a host written in Rust would spend less.
"""

from __future__ import annotations

import gc
import hashlib
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache import cache_dir
from ..errors import ToolchainUnavailable, UsageError, WasmlabError
from ..procfs import pss_bytes, rss_bytes
from . import env as envmod
from .figures import density_figure
from .kernels import GCC
from .method import Clock, Plan, Progress, resolve, runtime_list
from .results import BenchResult, table_html

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .method import Sampling

SERVICE_C = r"""
#define SLOTS 4096
static unsigned counters[SLOTS];  /* 16 KiB of state per copy */
static int ready;

int handle(int key) {
    if (!ready) {
        for (int i = 0; i < SLOTS; i++) counters[i] = (unsigned)i;
        ready = 1;
    }
    return (int)++counters[(unsigned)key % SLOTS];
}

#ifdef NATIVE_MAIN
#include <stdio.h>
int main(void) {
    char line[64];
    int key;
    while (fgets(line, sizeof line, stdin)) {
        if (sscanf(line, "%d", &key) == 1) {
            printf("%d\n", handle(key));
            fflush(stdout);
        }
    }
    return 0;
}
#endif
"""
NATIVE = "native"
ANSWER = 7  # handle(6) on a fresh copy: counters[6] starts at 6
DEFAULT_COUNTS = (1, 10, 100)
QUICK_COUNTS = (1, 10)
DENSITY_SAMPLES = (3, 1)  # (full, quick) samples per count: each builds N copies


class DensityResult(BenchResult):
    kind = "density"
    title = "density: memory and creation time per isolated copy"

    def summarise(self):
        import pandas as pd

        df = self.table
        rows = []
        for (unit, count), group in df.groupby(["unit", "count"], sort=False):
            rows.append(
                {
                    "unit": unit,
                    "count": int(count),
                    "n": len(group),
                    "memory_kib": float(group["memory_kib"].median()),
                    "create_ms": float(group["create_ms"].median()),
                    "host_mib": float(group["host_mib"].median()),
                    "metric": group["metric"].iloc[0],
                }
            )
        return pd.DataFrame(rows)

    def per_copy(self):
        """One row per unit at the largest count: the marginal cost of one more copy, and how many copies a
        GiB holds."""
        s = self.summary
        if not len(s):
            return s
        top = s[s["count"] == s["count"].max()].copy()
        top["copies_per_gib"] = (1 << 20) / top["memory_kib"].clip(lower=1e-9)
        return top[["unit", "count", "memory_kib", "create_ms", "host_mib", "copies_per_gib", "metric"]].reset_index(
            drop=True
        )

    def figures(self):
        if not len(self.table):
            return {}
        return {"Per isolated copy": density_figure(self.summary)}

    def html_sections(self):
        return [("Per copy, at the largest count", table_html(self.per_copy())), ("Summary", table_html(self.summary))]


def native_service() -> Path:
    """The service compiled natively with gcc (cached by source and gcc version)."""
    from .kernels import gcc_version

    exe = GCC if Path(GCC).exists() else shutil.which("gcc")
    if not exe:
        raise ToolchainUnavailable("native C", "gcc is not installed", "apt-get install gcc")
    key = hashlib.sha256(f"{SERVICE_C}\0{gcc_version()}".encode()).hexdigest()[:20]
    out = cache_dir() / "bench" / f"service-native-{key}"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    src, tmp = out.with_suffix(".c"), out.with_suffix(".tmp")
    src.write_text(SERVICE_C)
    proc = subprocess.run([exe, "-O2", "-DNATIVE_MAIN", str(src), "-o", str(tmp)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise WasmlabError(f"gcc failed on the density service: {proc.stderr.strip()[:500]}")
    tmp.replace(out)
    return out


def _host_pid(engine: Any) -> int:
    """The process whose memory holds `engine`'s instances: its worker's, or this one."""
    import os

    from ..runtimes.worker import WorkerRuntime

    proc = engine.worker.proc if isinstance(engine, WorkerRuntime) else None
    return proc.pid if proc is not None else os.getpid()


def _wasm_sample(shared: Any, module: Any, count: int) -> dict[str, Any]:
    """One sample on a new engine object of the same kind (a new worker process for worker engines), closed
    after: memory freed by an earlier sample stays resident in a process and would hide the next one's growth,
    and the caller's own instances on `shared` are never touched."""
    engine = type(shared)(shared.variant)
    try:
        return _measure_instances(engine, module, count)
    finally:
        engine.close()


def _measure_instances(engine: Any, module: Any, count: int) -> dict[str, Any]:
    from ..runtimes import RunOptions

    with engine.instantiate(module, RunOptions()) as probe:  # start the worker and compile before measuring
        if probe.call("handle", 6) != ANSWER:
            raise WasmlabError(f"{engine.label}: the density service gave a wrong answer")
    gc.collect()
    pid = _host_pid(engine)
    before = rss_bytes(pid)
    instances, create = [], []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            instance = engine.instantiate(module, RunOptions())
            instances.append(instance)
            answer = instance.call("handle", 6)
            create.append((time.perf_counter() - t0) * 1000.0)
            if answer != ANSWER:
                raise WasmlabError(f"{engine.label}: copy {len(instances)} answered {answer}, not {ANSWER}")
        after = rss_bytes(pid)
    finally:
        for instance in instances:
            instance.close()
    return {
        "memory_kib": max(0, after - before) / count / 1024,
        "create_ms": statistics.median(create),
        "host_mib": before / (1 << 20),
        "metric": "host RSS delta / N",
    }


def _native_sample(exe: Path, count: int) -> dict[str, Any]:
    procs, create = [], []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(proc)
            assert proc.stdin is not None and proc.stdout is not None  # PIPEs
            proc.stdin.write("6\n")
            proc.stdin.flush()
            answer = proc.stdout.readline().strip()
            create.append((time.perf_counter() - t0) * 1000.0)
            if answer != str(ANSWER):
                raise WasmlabError(f"native copy {len(procs)} answered {answer!r}, not {ANSWER}")
        memory = sum(pss_bytes(p.pid) for p in procs)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
    return {
        "memory_kib": memory / count / 1024,
        "create_ms": statistics.median(create),
        "host_mib": 0.0,
        "metric": "mean PSS of the processes",
    }


def density(
    runtimes: str | list[str] | None = None,
    counts: tuple[int, ...] | list[int] | None = None,
    *,
    native: bool = True,
    **sampling: Unpack[Sampling],
) -> DensityResult:
    """Memory and creation time of one more copy of a small stateful service: an instance on each runtime
    (default: every available runtime that keeps instances) and, with `native`, a gcc-built process; `samples`
    per count (3, quick 1; `sampling`: see `method.Sampling`)."""
    from ..build import compile

    plan = Plan.make(**sampling, defaults=DENSITY_SAMPLES)
    counts = tuple(counts or (QUICK_COUNTS if plan.quick else DEFAULT_COUNTS))
    if any(c < 1 for c in counts):
        raise UsageError("counts must be positive")
    engines, skipped = resolve(runtime_list(runtimes), need=("instances",))
    module = compile(SERVICE_C, "c", name="service")
    exe = native_service() if native else None
    clock = Clock()
    env = envmod.snapshot([e.label for e in engines])
    units: list[tuple[str, Any]] = [(e.label, e) for e in engines] + ([(NATIVE, exe)] if exe else [])
    rows: list[dict[str, Any]] = []
    notes = [f"skipped {name}: {why}" for name, why in skipped.items()]
    bar = Progress(plan.samples * len(units) * len(counts), "density", plan.progress)
    interrupted = False
    try:
        for sample in range(plan.samples):
            for count in counts:
                for label, unit in units:
                    try:
                        row = _native_sample(unit, count) if label == NATIVE else _wasm_sample(unit, module, count)
                    except WasmlabError as exc:
                        notes.append(f"{label} at {count}: {exc}")
                        bar.update()
                        continue
                    rows.append({"unit": label, "count": count, "sample": sample, **row})
                    bar.update(unit=label, copies=count)
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted by Ctrl-C: partial results")
    finally:
        bar.close()
    import pandas as pd

    columns = ["unit", "count", "sample", "memory_kib", "create_ms", "host_mib", "metric"]
    table = pd.DataFrame(rows, columns=columns)
    params = {"runtimes": [e.label for e in engines], "counts": list(counts), "native": native}
    return DensityResult({"samples": table}, envmod.finish(env, clock.started, notes), params, notes, interrupted)
