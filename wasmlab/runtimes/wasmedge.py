"""wasmedge: the WasmEdge CLI, when a `wasmedge` binary is on PATH (or at $WASMLAB_WASMEDGE).

There is no installable WasmEdge for this machine: PyPI's `wasmedge` is an empty placeholder and the official
installer downloads from GitHub. So the backend is listed as unavailable with that reason; with the binary
present it runs each request as a `wasmedge` process: WASI commands (argv, `--env`, `--dir`, stdin, captured
output, exit code) and calls of exported functions (`wasmedge --reactor FILE FUNC ARGS...`, which prints the
results one per line). A timeout kills the process; `max_memory` becomes `--memory-page-limit`.

Not here: instances kept across calls, memory access, fuel, host functions (of any kind), components.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LimitExceeded, RuntimeUnavailable, UsageError
from .base import RunOptions, RunResult, Runtime
from .preopens import check_confined
from .traps import normalize_trap

if TYPE_CHECKING:
    from ..module import Module

__all__ = ["WasmEdgeRuntime"]

UNAVAILABLE = (
    "no installable WasmEdge for this machine (PyPI `wasmedge` is an empty placeholder; the CLI installer "
    "downloads from GitHub)"
)
INSTALL = (
    "with GitHub access: curl -sSf https://raw.githubusercontent.com/WasmEdge/WasmEdge/master/utils/install.sh "
    "| bash, then put `wasmedge` on PATH (or set WASMLAB_WASMEDGE)"
)


def wasmedge_binary() -> str | None:
    env = os.environ.get("WASMLAB_WASMEDGE")
    if env:
        return env if Path(env).is_file() else None
    return shutil.which("wasmedge")


def _arg(value: Any, valtype: str) -> str:
    if valtype in ("f32", "f64"):
        f = float(value)
        if math.isnan(f) or math.isinf(f):
            raise UsageError("the wasmedge CLI cannot pass NaN or infinity as arguments")
        return repr(f)
    if valtype in ("i32", "i64"):
        return str(int(value))
    raise UsageError(f"the wasmedge CLI cannot pass {valtype} arguments")


def _result(text: str, valtype: str) -> Any:
    text = text.strip()
    if valtype in ("f32", "f64"):
        return float(text)
    return int(text)


class WasmEdgeRuntime(Runtime):
    """WasmEdge through its command-line tool, one process per run."""

    name = "wasmedge"
    install = INSTALL
    capabilities = frozenset({"exports", "wasi", "timeout", "max_memory"})

    def unavailable_reason(self) -> str | None:
        return None if wasmedge_binary() else UNAVAILABLE

    def version(self) -> str:
        binary = wasmedge_binary()
        if not binary:
            return ""
        try:
            out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""

    def run(self, module: Module, options: RunOptions) -> RunResult:
        binary = wasmedge_binary()
        if not binary:
            raise RuntimeUnavailable(self.label, UNAVAILABLE, INSTALL)
        if module.is_component:
            self.require("components", "components")
        if options.fuel is not None:
            self.require("fuel", "fuel (a deterministic instruction budget)")
        if options.imports:
            self.require("host_functions", "Python host functions")
        cmd = [binary]
        for key, value in options.env.items():
            cmd += ["--env", f"{key}={value}"]
        for guest, host in options.dirs.items():
            check_confined(self.label, guest, str(Path(host).expanduser().resolve()))  # not verified here
            cmd += ["--dir", f"{guest}:{Path(host).expanduser().resolve()}"]
        if options.max_memory:
            cmd += ["--memory-page-limit", str(max(1, options.max_memory // 65536))]
        results: tuple[str, ...] = ()
        with tempfile.TemporaryDirectory(prefix="wasmlab-wasmedge-") as tmp:
            path = Path(tmp) / (module.name if module.name.endswith(".wasm") else f"{module.name}.wasm")
            path.write_bytes(module.bytes)
            if options.invoke is None:
                if not module.is_command:
                    raise UsageError(f"{module.name} is not a WASI command (no _start): pass invoke=")
                cmd += [str(path), *options.argv]
            else:
                ftype = module.func_type(options.invoke)
                if len(options.args) != len(ftype.params):
                    raise UsageError(f"{options.invoke} takes {len(ftype.params)} argument(s), got {len(options.args)}")
                results = ftype.results
                cmd += ["--reactor", str(path), options.invoke]
                cmd += [_arg(a, t) for a, t in zip(options.args, ftype.params, strict=True)]
            started = time.perf_counter()
            try:
                out = subprocess.run(cmd, input=options.stdin, capture_output=True, timeout=options.timeout)
            except subprocess.TimeoutExpired:
                raise LimitExceeded(
                    "time", f"{self.label}: guest ran past the {options.timeout:g} s time limit and was stopped"
                ) from None
            elapsed = (time.perf_counter() - started) * 1000
        limit = options.max_output
        result = RunResult(
            self.label,
            options.invoke,
            stdout=out.stdout[:limit],
            stderr=out.stderr[:limit],
            timings={"run" if options.invoke is None else "call": elapsed},  # the whole process, compile included
        )
        text = out.stderr.decode(errors="replace")
        if out.returncode != 0 and ("execution failed" in text or "[error]" in text):
            result.trap = normalize_trap(text)
            return result
        if options.invoke is None:
            result.exit_code = out.returncode
        elif results:
            lines = out.stdout.decode(errors="replace").split()
            values = [_result(v, t) for v, t in zip(lines[-len(results) :], results, strict=False)]
            result.result = values[0] if len(values) == 1 else tuple(values)
            result.stdout = b""
        return result
