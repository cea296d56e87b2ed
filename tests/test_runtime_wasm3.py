"""The wasm3 runtime (pywasm3 in a worker process): its registry entry. What wasm3 does like the other engines,
and where it differs (no multi-value, no preopened directories, exported functions only in export_names), is
in test_conformance.py."""

from __future__ import annotations

import pytest

import wasmlab
from wasmlab.runtimes import get_runtime
from wasmlab.runtimes.wasm3 import Wasm3Runtime

REASON = Wasm3Runtime().unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"wasm3: {REASON}")

SPEC = "wasm3"


def test_registry_version_capabilities() -> None:
    runtime = get_runtime(SPEC)
    assert isinstance(runtime, Wasm3Runtime) and runtime.name == "wasm3" and runtime.variants == ()
    assert runtime.version().startswith("pywasm3 0.") and "(wasm3 " in runtime.version()
    assert {"exports", "wasi", "memory", "instances", "timeout", "max_memory", "builtin_host"} == set(
        runtime.capabilities
    )
    row = next(r for r in wasmlab.runtimes.list_runtimes() if r.name == "wasm3")
    assert row.available and row.version == runtime.version()
