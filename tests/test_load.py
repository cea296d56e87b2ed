"""Load: many instances created and destroyed in a loop without growing memory or leaking file descriptors.
`make fuzz` (tests/fuzz.py --instances 100000) runs the long version on wasmtime."""

from __future__ import annotations

import gc
import os

import pytest

import wasmlab
from wasmlab.procfs import rss_bytes
from wasmlab.runtimes import get_runtime, list_runtimes

from . import fuzz

WORKERS = [
    row.name for row in list_runtimes() if row.available and row.name in ("node", "wasm3", "wasmer")
]  # instances in a worker process


def test_wasmtime_instances_do_not_grow_memory() -> None:
    row = fuzz.instance_churn(20_000, "wasmtime")
    print("\n" + fuzz.report_churn(row))
    assert row["rss_after"] - row["rss_before"] < 16 << 20
    assert row["fds_after"] <= row["fds_before"]


WASI_WAT = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "three") (result i32) (i32.const 3)))"""


def test_wasi_instances_close_their_output_files() -> None:
    """A WASI instance on wasmtime holds capture files (ours, and wasmtime's own descriptors of them until its
    Store is freed): none are left once the instances are gone, closed or just dropped."""
    module = wasmlab.compile(WASI_WAT, "wat")
    fds = fuzz.open_fds()
    for _ in range(2000):
        with module.instantiate("wasmtime") as instance:
            assert instance.call("three") == 3
    del instance
    gc.collect()
    assert fuzz.open_fds() == fds
    kept = [module.instantiate("wasmtime") for _ in range(50)]
    assert fuzz.open_fds() > fds + 50
    del kept
    gc.collect()
    assert fuzz.open_fds() == fds


def test_runs_do_not_grow_memory() -> None:
    module = wasmlab.compile(fuzz.LOAD_WAT, "wat")
    for _ in range(500):
        module.run("wasmtime", "bump")
    gc.collect()
    before = rss_bytes(os.getpid())
    for _ in range(5000):
        assert module.run("wasmtime", "bump").result == 1
    gc.collect()
    assert rss_bytes(os.getpid()) - before < 16 << 20


def test_many_distinct_modules_do_not_exhaust_file_descriptors() -> None:
    """wasmtime keeps a memfd per compiled module with data segments: its compile cache is bounded
    (MAX_COMPILED), so a long session (or a fuzz run) does not run out of descriptors."""
    import wasmtime

    from wasmlab.module import Module
    from wasmlab.runtimes.wasmtime import MAX_COMPILED

    fds = fuzz.open_fds()
    for i in range(MAX_COMPILED * 3):
        data = wasmtime.wat2wasm(
            f'(module (memory 1) (data (i32.const 0) "{i}") (func (export "f") (result i32) i32.const {i}))'
        )
        assert Module(data).run("wasmtime", "f").result == i
    gc.collect()
    assert fuzz.open_fds() - fds <= MAX_COMPILED + 8


@pytest.mark.parametrize("runtime", WORKERS)
def test_worker_instances_do_not_grow_the_worker(runtime: str) -> None:
    row = fuzz.instance_churn(1000, runtime, warmup=200)
    print("\n" + fuzz.report_churn(row))
    assert row["same_process"] and get_runtime(runtime)._worker.alive
    assert row["rss_after"] - row["rss_before"] < 32 << 20
