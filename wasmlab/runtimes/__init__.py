"""The runtime registry: engines by name, loaded on first use, each in one file.

Built-ins are listed as `{name: (module, class)}`. A backend whose module fails to import, or whose engine is
missing, is listed as unavailable with the reason and the install step; it never breaks `import wasmlab`.
`WASMLAB_RUNTIMES` (comma-separated, variants as `name:variant`) sets the default set for comparisons.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import RuntimeUnavailable, UsageError
from .base import (
    CAPABILITIES,
    DEFAULT_MAX_MEMORY,
    DEFAULT_TIMEOUT,
    Instance,
    RunOptions,
    RunResult,
    Runtime,
    split_runtime_name,
)

if TYPE_CHECKING:
    from ..module import Module

__all__ = [
    "CAPABILITIES",
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_TIMEOUT",
    "Instance",
    "RunOptions",
    "RunResult",
    "Runtime",
    "RuntimeStatus",
    "available_runtimes",
    "default_runtimes",
    "get_runtime",
    "list_runtimes",
]

BUILTIN: dict[str, tuple[str, str]] = {
    "wasmtime": ("wasmtime", "WasmtimeRuntime"),
    "wasmer": ("wasmer", "WasmerRuntime"),
    "wasmer-sdk": ("wasmer_sdk", "WasmerSdkRuntime"),
    "node": ("node", "NodeRuntime"),
    "wasm3": ("wasm3", "Wasm3Runtime"),
    "wasmedge": ("wasmedge", "WasmEdgeRuntime"),
    "browser": ("browser", "BrowserRuntime"),
}

_instances: dict[str, Runtime] = {}
_lock = threading.Lock()


def _runtime_class(name: str) -> type[Runtime] | str:
    module_name, class_name = BUILTIN[name]
    try:
        return getattr(importlib.import_module(f".{module_name}", __name__), class_name)
    except Exception as exc:  # a broken backend is reported, never fatal
        return f"backend failed to load: {type(exc).__name__}: {exc}"


def _create(spec: str) -> Runtime:
    name, variant = split_runtime_name(spec)
    if name not in BUILTIN:
        raise UsageError(f"unknown runtime {spec!r}: use one of {', '.join(BUILTIN)}")
    cls = _runtime_class(name)
    if isinstance(cls, str):
        raise RuntimeUnavailable(name, cls)
    return cls(variant)


def get_runtime(spec: str | Runtime) -> Runtime:
    """The runtime for "name" or "name:variant" (one shared object per spec); RuntimeUnavailable with the
    reason and the install step when it cannot run here."""
    if isinstance(spec, Runtime):
        return spec
    key = spec.strip().lower()
    with _lock:
        runtime = _instances.get(key)
        if runtime is None:
            runtime = _instances[key] = _create(key)
    reason = runtime.unavailable_reason()
    if reason:
        raise RuntimeUnavailable(runtime.label, reason, runtime.install)
    return runtime


@dataclass(frozen=True)
class RuntimeStatus:
    name: str
    available: bool
    version: str
    capabilities: tuple[str, ...]
    variants: tuple[str, ...]
    reason: str
    install: str


def list_runtimes() -> list[RuntimeStatus]:
    """Every known runtime: whether it runs here, its version and capabilities, and how to fix it if not."""
    rows = []
    for name in BUILTIN:
        try:
            runtime = _create(name)
        except RuntimeUnavailable as exc:
            rows.append(RuntimeStatus(name, False, "", (), (), exc.reason, exc.install))
            continue
        reason = runtime.unavailable_reason() or ""
        rows.append(
            RuntimeStatus(
                name,
                not reason,
                "" if reason else runtime.version(),
                tuple(c for c in CAPABILITIES if c in runtime.capabilities),
                runtime.variants,
                reason,
                runtime.install,
            )
        )
    return rows


def available_runtimes(specs: Iterable[str], *, note: bool = True) -> list[str]:
    """The runtimes of `specs` ("name" or "name:variant") that run here, in order. For each one that does not,
    a one-line note on stderr says why and how to fix it (unless `note=False`): a tutorial written for every
    engine runs on what this machine has."""
    found = []
    for spec in specs:
        try:
            get_runtime(spec)
        except RuntimeUnavailable as exc:
            if note:
                print(f"note: skipping {spec}: {exc}", file=sys.stderr)
            continue
        found.append(spec)
    return found


def default_runtimes() -> list[str]:
    """The runtimes a comparison uses by default: `$WASMLAB_RUNTIMES`, else every available one."""
    env = os.environ.get("WASMLAB_RUNTIMES", "").strip()
    if env:
        return [s.strip() for s in env.split(",") if s.strip()]
    return [row.name for row in list_runtimes() if row.available]


@atexit.register
def close_all() -> None:
    """Stop every worker process and free engines (called at interpreter exit)."""
    with _lock:
        runtimes = list(_instances.values())
        _instances.clear()
    for runtime in runtimes:
        runtime.close()


def run(module: Module, runtime: str | Runtime, options: RunOptions, check: bool = True) -> RunResult:
    """Run `module` once on `runtime`. Traps and exceeded limits are recorded in the result; with `check`
    they are raised (Trap with its backtrace, LimitExceeded naming the limit) after the engine is cleaned up."""
    engine = get_runtime(runtime)
    try:
        result = engine.run(module, options)
    except RunResult.RECORDED as exc:
        result = RunResult(engine.label, options.invoke).record(exc)
    return result.raise_for_error() if check else result
