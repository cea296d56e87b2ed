"""wasm3: the wasm3 interpreter through pywasm3, in a worker process.

pywasm3 holds the GIL while the guest runs and prints trap backtraces to the process's stdio, so it runs in a
`pyserve` worker on this Python (`worker/scripts/wasm3_worker.py`): a guest in an endless loop is stopped by killing
the worker (`timeout`), and the notebook's output stays clean. Timings are measured inside the worker.

What pywasm3 0.5 lacks, the worker adds: WASI preview 1 for commands (argv, environ, stdin, stdout/stderr,
clocks, random, proc_exit; no files or preopened directories: pywasm3 has no `link_wasi`), running the start
function, freeing instances, a memory cap (the declared maximum is lowered to `max_memory`), and re-encoding
LLVM's 5-byte call_indirect table index, which wasm3 0.5 rejects ("LEB encoded value overflow").

Not here: fuel (wasm3 meters only modules instrumented with a `metering.usegas` import), multi-value results,
SIMD, Python host functions (use the built-in `wasmlab` host module), components, preopened directories.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache

from .worker.python import SCRIPTS, PyWorkerInstance, PyWorkerRuntime

__all__ = ["Wasm3Instance", "Wasm3Runtime"]

Wasm3Instance = PyWorkerInstance


@cache
def _pywasm3_version() -> str | None:
    """ "pywasm3 0.5.0 (wasm3 0.5.0)", or None when pywasm3 is not installed."""
    if importlib.util.find_spec("wasm3") is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        pywasm3 = version("pywasm3")
    except PackageNotFoundError:
        pywasm3 = "?"
    try:  # importing runs no guest code: safe in the kernel
        import wasm3

        engine = getattr(wasm3, "M3_VERSION", "?")
    except ImportError as exc:
        return f"pywasm3 {pywasm3} (does not import: {exc})"
    return f"pywasm3 {pywasm3} (wasm3 {engine})"


class Wasm3Runtime(PyWorkerRuntime):
    """The wasm3 interpreter (pywasm3) in a worker process on this Python."""

    name = "wasm3"
    install = "pip install pywasm3 (builds with gcc)"
    worker_script = SCRIPTS / "wasm3_worker.py"
    supports_dirs = False
    compiles_lazily = True  # a function is compiled on its first call: loading a module checks no function body

    def worker_python(self) -> str | None:
        return sys.executable

    def unavailable_reason(self) -> str | None:
        version = _pywasm3_version()
        if version is None:
            return "pywasm3 is not installed in this Python"
        if "does not import" in version:
            return version
        if not self.worker_script.is_file():
            return f"the worker script {self.worker_script} is missing"
        return None

    def version(self) -> str:
        if self.worker_info.get("version"):
            return self.worker_info["version"]
        return _pywasm3_version() or ""

    def baseline_rss(self) -> int:
        return 32 << 20
