"""What a benchmark ran on: CPU, cores, load before and after, engine and compiler versions, flags."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from functools import cache
from typing import Any


@cache
def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo").read().splitlines():  # noqa: SIM115
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> list[float]:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return []


def cores() -> dict[str, int]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
    return {"logical": os.cpu_count() or 0, "usable": usable}


def runtime_versions(labels: list[str]) -> dict[str, str]:
    from ..runtimes import get_runtime

    out = {}
    for label in labels:
        try:
            out[label] = get_runtime(label).version()
        except Exception as exc:  # a version string must never fail a benchmark
            out[label] = f"? ({type(exc).__name__})"
    return out


def engine_notes(labels: list[str]) -> dict[str, str]:
    """How each engine is configured in the lab (what a reader needs to compare with other numbers)."""
    notes = {}
    for label in labels:
        name = label.split(":")[0]
        if name == "wasmtime":
            notes[label] = "in-process wasmtime-py; the lab's engine always has consume_fuel and epoch_interruption on"
        elif name == "wasmer":
            notes[label] = "wasmer-python 1.1 (Universal engine) in a CPython 3.10 worker; phases timed in the worker"
        elif name == "node":
            notes[label] = "V8 in a node worker (JSON lines); phases timed in the worker"
        elif name == "wasm3":
            notes[label] = "pywasm3 interpreter in a worker; phases timed in the worker"
        elif name == "wasmer-sdk":
            notes[label] = "wasmer-sdk (modern Wasmer, Cranelift): WASI commands only; times from the guest's clock"
        elif name == "browser":
            notes[label] = "the page's WebAssembly in a Web Worker; phases timed in the worker with performance.now()"
            with contextlib.suppress(Exception):
                from ..runtimes import get_runtime

                resolution = getattr(get_runtime(label), "timer_resolution_ms", None)  # the browser's own
                if resolution:
                    notes[label] += f", whose resolution is {resolution * 1000:g} µs"
    return notes


def snapshot(labels: list[str], **extra: Any) -> dict[str, Any]:
    """The environment at the start of a benchmark (call `finish()` at its end)."""
    from .kernels import gcc_version

    with contextlib.suppress(Exception):
        from ..build import _toolchain_version

        extra.setdefault("wasm_toolchain", _toolchain_version("c"))
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu": cpu_model(),
        "cores": cores(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_before": load_average(),
        "gcc": gcc_version(),
        "runtimes": runtime_versions(labels),
        "engine_notes": engine_notes(labels),
        **extra,
    }


BUSY = 0.5  # a 1-minute load average above this share of the usable cores means other work competed


def finish(env: dict[str, Any], started: float, notes: list[str] | None = None) -> dict[str, Any]:
    """Record the load after and the harness time; add a note to `notes` when the machine was busy."""
    env["load_after"] = load_average()
    env["harness_s"] = round(time.perf_counter() - started, 2)
    usable = env.get("cores", {}).get("usable") or 1
    loads = [x[0] for x in (env.get("load_before"), env["load_after"]) if x]
    if notes is not None and loads and max(loads) > BUSY * usable:
        notes.append(
            f"the machine was busy (1-min load average {loads[0]:g} -> {loads[-1]:g} on {usable} cores): other work "
            "competed for the CPU, so medians carry that noise (see cv_pct; minima are the least disturbed)"
        )
    return env
