"""The runtime registry: engines by name, loaded on first use, each in one file.

Built-ins are listed as `{name: (module, class)}` (`BUILTIN`); third-party engines register themselves under the
entry-point group `wasmlab.runtimes` (`ENTRY_POINT_GROUP`). A backend whose module fails to import, or whose
engine is missing, is listed as unavailable with the reason and the install step; it never breaks
`import wasmlab`. `WASMLAB_RUNTIMES` (comma-separated, variants as `name:variant`) sets the default set for
comparisons.

Adding an engine
----------------
1. Write one file, `wasmlab/runtimes/<name>.py`, with a `base.Runtime` subclass: set `name`, `install` (how to
   get it), `capabilities` (a subset of `base.CAPABILITIES`) and `variants` if it has any; implement `run()`
   (one whole run: record traps and limits with `RunResult.record`), `unavailable_reason()` and `version()`,
   and each optional method your capabilities promise ("instances": `instantiate()` returning a `base.Instance`;
   "builtin_host": `kv_items()`/`kv_clear()`; "precompiled": `serialize()`/`load_serialized()`). Raise the
   errors of `wasmlab.errors`; read traps with `traps`, coerce arguments with `values`, refuse preopened
   directories that leak with `preopens`.
2. An engine that must not run in this process (it holds the GIL, needs another Python, is another program)
   subclasses the worker kit instead: `worker.jsshell.JsShellRuntime` for a JS shell (give `worker_argv()` and a
   worker script speaking the node worker protocol, like `worker/scripts/node_worker.mjs`), or
   `worker.python.PyWorkerRuntime` for a Python engine (give `worker_python()` and a `worker/scripts/*_worker.py`
   that defines a `pyserve.Engine`). `node.py` and `wasm3.py` are the examples; `wasmlab.runtimes.worker`
   describes the protocol.
3. Register it: a line in `BUILTIN` below, or, from a package of your own, an entry point:

       [project.entry-points."wasmlab.runtimes"]
       myengine = "mypackage.engine:MyEngineRuntime"

4. The conformance suite (`tests/test_conformance.py`) runs every engine `list_runtimes()` reports on the same
   guests, by capability: a new engine is tested the moment it is listed.

Backends never import each other or the notebook layer: what two backends share lives in `base`, `traps`,
`values`, `preopens`, `guest` or `worker`.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
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
    "ENTRY_POINT_GROUP",
    "Instance",
    "RunOptions",
    "RunResult",
    "Runtime",
    "RuntimeStatus",
    "available_runtimes",
    "default_runtimes",
    "get_runtime",
    "list_runtimes",
    "run",
    "validate",
]

ENTRY_POINT_GROUP = "wasmlab.runtimes"
BUILTIN: dict[str, tuple[str, str]] = {
    "wasmtime": ("wasmtime", "WasmtimeRuntime"),
    "wasmer": ("wasmer", "WasmerRuntime"),
    "wasmer-sdk": ("wasmer_sdk", "WasmerSdkRuntime"),
    "node": ("node", "NodeRuntime"),
    "jsc": ("jsc", "JscRuntime"),
    "spidermonkey": ("spidermonkey", "SpiderMonkeyRuntime"),
    "wasm3": ("wasm3", "Wasm3Runtime"),
    "wasmedge": ("wasmedge", "WasmEdgeRuntime"),
    "browser": ("browser", "BrowserRuntime"),
}

_instances: dict[str, Runtime] = {}  # one shared object per spec ("name" or "name:variant")
_lock = threading.RLock()


@cache
def plugins() -> dict[str, EntryPoint]:
    """Third-party engines: the `wasmlab.runtimes` entry points of the installed packages (read once; a name
    that a built-in already has is ignored with a warning)."""
    found = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        name = point.name.strip().lower()
        if name in BUILTIN or name in found:
            warnings.warn(f"ignoring {ENTRY_POINT_GROUP} entry point {point.value!r}: {name!r} is taken", stacklevel=2)
            continue
        found[name] = point
    return found


def engine_names() -> list[str]:
    """Every engine the registry knows: the built-ins, then third-party ones."""
    return [*BUILTIN, *(name for name in plugins() if name not in BUILTIN)]


@cache
def _load(target: str) -> type[Runtime] | str:
    """The backend class at `target` ("package.module:Class"), or why it does not load (a broken backend is
    reported, never fatal). Each class is imported once."""
    module_name, _, attribute = target.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        return f"backend failed to load: {type(exc).__name__}: {exc}"
    if not (isinstance(obj, type) and issubclass(obj, Runtime)):
        return f"backend {target} is not a wasmlab.runtimes.base.Runtime subclass"
    return obj


def _runtime_class(name: str) -> type[Runtime] | str:
    if name in BUILTIN:
        module_name, class_name = BUILTIN[name]
        return _load(f"{__name__}.{module_name}:{class_name}")
    if name in plugins():
        return _load(plugins()[name].value)
    return f"no engine named {name!r}"


def _unknown(spec: str) -> UsageError:
    """The error for an engine nobody registered: what is installed, and how to get the rest."""
    here = [row.name for row in list_runtimes() if row.available]
    return UsageError(
        f"unknown runtime {spec!r}: use one of {', '.join(engine_names())} (available here: "
        f"{', '.join(here) or 'none'}; `wasmlab runtimes` shows how to install the others); other engines come "
        f"from packages that register a {ENTRY_POINT_GROUP!r} entry point"
    )


def _create(spec: str) -> Runtime:
    """A new runtime object for "name" or "name:variant"; RuntimeUnavailable when its backend does not load."""
    name, variant = split_runtime_name(spec)
    if name not in BUILTIN and name not in plugins():
        raise _unknown(spec)
    cls = _runtime_class(name)
    if isinstance(cls, str):
        raise RuntimeUnavailable(name, cls)
    return cls(variant)


def _shared(spec: str) -> Runtime:
    key = spec.strip().lower()
    with _lock:
        runtime = _instances.get(key)
        if runtime is None:
            runtime = _instances[key] = _create(key)
        return runtime


def get_runtime(spec: str | Runtime) -> Runtime:
    """The runtime for "name" or "name:variant" (one shared object per spec); RuntimeUnavailable with the
    reason and the install step when it cannot run here."""
    if isinstance(spec, Runtime):
        return spec
    runtime = _shared(spec)
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
    for name in engine_names():
        try:
            runtime = _shared(name)
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


def validate(module: Module, runtime: str | Runtime = "wasmtime") -> None:
    """Full validation of `module` (the types of every instruction) by `runtime`'s validator; InvalidModule when
    it does not validate."""
    get_runtime(runtime).validate(module)
