"""The wasmer runtime (wasmer-python 1.1 on CPython 3.10, in a worker), every compiler: its registry entry and
why it may be unavailable. What wasmer does like the other engines, on each compiler, and where its compilers
differ (singlepass: no multi-value, innermost trap frame only; LLVM: frames without offsets), is in
test_conformance.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import wasmlab
from wasmlab.runtimes import get_runtime
from wasmlab.runtimes.wasmer import WasmerRuntime

REASON = WasmerRuntime().unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"wasmer: {REASON}")


def test_registry_version_capabilities() -> None:
    runtime = get_runtime("wasmer")
    assert runtime.name == "wasmer" and runtime.variants == ("cranelift", "singlepass", "llvm")
    assert runtime.version() == "wasmer-python 1.1.0 (cranelift)"
    assert get_runtime("wasmer:llvm").version() == "wasmer-python 1.1.0 (llvm)"
    assert get_runtime("wasmer:singlepass").label == "wasmer:singlepass"
    assert {"exports", "wasi", "memory", "instances", "timeout", "max_memory", "builtin_host"} == set(
        runtime.capabilities
    )
    row = next(r for r in wasmlab.runtimes.list_runtimes() if r.name == "wasmer")
    assert row.available and row.variants == runtime.variants


def test_unavailable_reasons(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WASMLAB_WASMER_PYTHON", str(tmp_path / "no-such-python"))
    reason = WasmerRuntime().unavailable_reason()
    assert "CPython 3.10 only" in reason and ".venv-py310" in reason
    monkeypatch.setenv("WASMLAB_WASMER_PYTHON", sys.executable)  # a Python without wasmer-python
    reason = WasmerRuntime("llvm").unavailable_reason()
    assert "3.10 only" in reason and f"Python {sys.version_info[0]}.{sys.version_info[1]}" in reason
