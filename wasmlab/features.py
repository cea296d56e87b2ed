"""Which WebAssembly proposals each engine and tier runs, measured here: each feature's detection module from
npm `wasm-feature-detect` (its own bytes, recorded by `scripts/feature_modules.mjs` into
`data/feature_modules.json`) is compiled and instantiated on the engine; it runs -> True, the engine rejects it
-> False. Components: the WASI p2 component below runs, or an empty component instantiates; WASI preview 1:
a command writes to stdout; WASI preview 2 (it exists only as components): that command made a component by
`jco new --wasi-command` prints. None:
this engine cannot be asked (wasmer-sdk runs WASI commands only, it keeps no instances; wasm3 compiles each
function on its first call, so loading a detection module proves nothing).

    wasmlab.features.detect(["jsc", "spidermonkey:ion"])   -> {spec: {feature: True/False/None}}
    wasmlab features --runtimes jsc,node --json
"""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from .errors import InvalidModule, RuntimeUnavailable, UsageError, WasmlabError
from .module import Module
from .runtimes import get_runtime, list_runtimes

__all__ = ["FEATURES", "detect", "every_spec", "frame", "probe"]

# column -> wasm-feature-detect's detector name (None: measured here, not from the package)
FEATURES: dict[str, str | None] = {
    "SIMD": "simd",
    "relaxed SIMD": "relaxedSimd",
    "threads": "threads",
    "tail calls": "tailCall",
    "GC": "gc",
    "exceptions (legacy)": "exceptions",
    "exceptions (exnref)": "exceptionsFinal",
    "memory64": "memory64",
    "multi-memory": "multiMemory",
    "extended-const": "extendedConst",
    "bulk memory": "bulkMemory",
    "reference types": "referenceTypes",
    "multi-value": "multiValue",
    "components": None,
    "WASI p1": None,
    "WASI p2": None,
}
DATA = Path(__file__).parent / "data" / "feature_modules.json"
EMPTY_COMPONENT = b"\0asm\x0d\x00\x01\x00"
WASI_P1_WAT = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hi\\n")
  (func (export "_start") (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""
TIMEOUT = 20.0


@cache
def detection_modules() -> dict[str, bytes]:
    return {name: base64.b64decode(text) for name, text in json.loads(DATA.read_text())["modules"].items()}


def source() -> str:
    """Where the detection modules come from (e.g. "npm wasm-feature-detect 1.9.0")."""
    return json.loads(DATA.read_text())["source"]


def _runs(spec: str, module: Module, *, bodies: bool = True) -> bool | None:
    """Whether `module` instantiates on `spec`; None when that says nothing (`bodies`: the feature is in
    function bodies, which a lazily compiling engine does not look at when it loads the module)."""
    runtime = get_runtime(spec)
    if "instances" not in runtime.capabilities or (bodies and getattr(runtime, "compiles_lazily", False)):
        return None
    try:
        module.instantiate(spec, timeout=TIMEOUT).close()
    except (InvalidModule, RuntimeUnavailable):
        return False  # the engine (or its backend, before sending it) rejects the module
    except UsageError as exc:
        if "unsupported" in str(exc) or "cannot" in str(exc):
            return False
        raise
    return True


def _wasi_p1() -> Module:
    from .build import compile as build

    return build(WASI_P1_WAT, lang="wat", name="wasi-p1")


@cache
def _wasi_p2_component() -> Module | None:
    """The preview 1 command as a WASI preview 2 component (`jco new --wasi-command`, with jco's preview 1
    adapter, from tools/npm); None when jco is not installed."""
    jco = Path(__file__).parents[1] / "tools" / "npm" / "node_modules" / ".bin" / "jco"
    if not jco.exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        core, component = Path(tmp) / "p1.wasm", Path(tmp) / "p2.wasm"
        core.write_bytes(_wasi_p1().bytes)
        done = subprocess.run([str(jco), "new", str(core), "--wasi-command", "-o", str(component)], capture_output=True)
        return Module(component.read_bytes(), name="wasi-p2") if done.returncode == 0 else None


def probe(spec: str, feature: str) -> bool | None:
    """Whether engine `spec` ("name" or "name:variant") runs `feature` (a key of FEATURES)."""
    if feature not in FEATURES:
        raise UsageError(f"unknown feature {feature!r}: one of {', '.join(FEATURES)}")
    name = FEATURES[feature]
    if name is not None:
        return _runs(spec, Module(detection_modules()[name], name=name))
    if feature == "components":
        if "components" not in get_runtime(spec).capabilities:  # refused before anything runs, on every engine
            return False
        if probe(spec, "WASI p2"):  # engines that run components but keep no component instances (node)
            return True
        return _runs(spec, Module(EMPTY_COMPONENT, name="component"), bodies=False)
    if feature == "WASI p1":
        try:
            return _wasi_p1().run(spec, timeout=TIMEOUT).stdout == b"hi\n"
        except (RuntimeUnavailable, InvalidModule):
            return False
    # WASI p2 exists only as components: an engine without them has no p2
    if "components" not in get_runtime(spec).capabilities:
        return False
    component = _wasi_p2_component()
    if component is None:
        return None
    try:
        return component.run(spec, timeout=TIMEOUT).stdout == b"hi\n"
    except (RuntimeUnavailable, InvalidModule):
        return False


def every_spec() -> list[str]:
    """Every engine that runs here, with each of its tier variants ("jsc", "jsc:bbq", ...)."""
    specs = []
    for row in list_runtimes():
        if row.available:
            specs += [row.name, *(f"{row.name}:{v}" for v in row.variants if v != "default")]
    return specs


def detect(runtimes: Iterable[str] | None = None, features: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """{spec: {feature: True/False/None}} for `runtimes` (default: every engine and tier here, `every_spec`)."""
    wanted = list(features or FEATURES)
    table = {}
    for spec in runtimes or every_spec():
        try:
            get_runtime(spec)
        except WasmlabError as exc:
            raise UsageError(f"features: {exc}") from None
        table[spec] = {feature: probe(spec, feature) for feature in wanted}
    return table


def frame(table: dict[str, dict[str, Any]]):
    """The table as a pandas DataFrame: engines as rows, features as columns, "yes" / "no" / "-" (not asked)."""
    import pandas as pd

    marks = {True: "yes", False: "no", None: "-"}
    return pd.DataFrame({spec: {f: marks[v] for f, v in row.items()} for spec, row in table.items()}).T
