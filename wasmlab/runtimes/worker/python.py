"""`PyWorkerRuntime`: the client half of wasmlab's Python engine workers (`scripts/pyserve.py` is the server half).

`PyWorkerRuntime` is the base of the backends whose engine runs in a Python worker process (wasm3: holds the
GIL; wasmer-python: holds the GIL and needs CPython 3.10). It turns `RunOptions` into requests, enforces the
wall-clock timeout and a resident-memory cap by killing the worker (`process.Worker`), and turns answers into
`RunResult`, `Trap`, `LimitExceeded`... `PyWorkerInstance` is an instance kept in the worker under an id.

Memory has two guards: the worker lowers each memory's declared maximum to `max_memory` (so `memory.grow`
past it returns -1 inside the engine, like wasmtime's store limits), and the parent kills the worker when its
resident memory passes what it held before the request + `max_memory` + an allowance for the engine.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import (
    ErrorKind,
    InvalidModule,
    LimitExceeded,
    RuntimeUnavailable,
    Trap,
    UsageError,
    WasmlabError,
)
from ..base import RunOptions, RunResult
from ..traps import frame_names, normalize_trap
from ..values import coerce_args
from .backend import WorkerInstance, WorkerRuntime
from .process import SCRIPTS, Worker
from .protocol import LINK, timings, unb64

if TYPE_CHECKING:
    from ...module import Module

__all__ = ["SCRIPTS", "PyWorkerInstance", "PyWorkerRuntime", "frame_names"]

PYSERVE = SCRIPTS / "pyserve.py"
PREPARE_TIMEOUT = 300.0  # seconds to compile a module (large Go modules under LLVM take a while)


# values -----------------------------------------------------------------------------------------------------
def encode_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, (int, float)):
        return value
    raise UsageError(f"cannot pass {value!r} to a Wasm function: only integers and floats")


def decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "float" in value:
        return float(value["float"])
    if isinstance(value, list):
        return tuple(decode_value(v) for v in value)
    return value


def check_args(module: Module, name: str, args: tuple[Any, ...]) -> list[Any]:
    """Arguments for the worker; UsageError for an unknown export or a wrong count."""
    return [encode_value(a) for a in coerce_args(name, module.func_type(name).params, args)]


# runtime ----------------------------------------------------------------------------------------------------
class PyWorkerRuntime(WorkerRuntime):
    """A backend whose engine lives in a `pyserve` worker. Subclasses give the worker's Python and script."""

    capabilities = frozenset({"exports", "wasi", "memory", "instances", "timeout", "max_memory", "builtin_host"})
    worker_script: Path = PYSERVE
    supports_dirs = True

    def __init__(self, variant: str | None = None) -> None:
        super().__init__(variant)
        self._prepared: set[tuple[Any, str, int | None]] = set()  # (process, sha, memory cap) compiled

    # subclass hooks ---------------------------------------------------------------------------------------
    def worker_python(self) -> str | None:
        """The Python that runs the worker script (None: not installed)."""
        raise NotImplementedError

    def worker_argv(self) -> list[str]:
        python = self.worker_python()
        if not python:
            raise RuntimeUnavailable(self.label, self.unavailable_reason() or "no Python for the worker", self.install)
        return [python, "-X", "utf8", str(self.worker_script)]

    def worker_env(self) -> dict[str, str]:
        return {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}

    # worker -----------------------------------------------------------------------------------------------
    def _new_worker(self) -> Worker:
        return Worker(self.label, self.worker_argv(), self.worker_env())

    # checks -----------------------------------------------------------------------------------------------
    def _check(self, module: Module, options: RunOptions) -> None:
        self.check_guest_elsewhere(module, options, "in a worker process")
        if options.dirs and not self.supports_dirs:
            raise RuntimeUnavailable(self.label, f"{self.name} cannot preopen host directories (dirs=)")
        if options.max_memory:
            initial = sum(m.limits.min for m in module.memories) * 65536
            if initial > options.max_memory:
                raise LimitExceeded(
                    "memory",
                    f"{self.label}: the module's initial memory ({initial >> 20} MiB) is over the "
                    f"{options.max_memory >> 20} MiB limit; raise max_memory= if it needs more",
                )

    def _setup(self, module: Module, options: RunOptions) -> dict[str, Any]:
        return {"sha": module.sha256, **super()._setup(module, options), "max_memory": options.max_memory or None}

    def _prepare(self, module: Module, options: RunOptions) -> dict[str, float]:
        """Compile in the worker before the guest runs, so compile time does not count against `timeout`.
        Returns the worker-measured compile time (empty when this worker already has it)."""
        worker = self.worker
        key = (worker.proc, module.sha256, options.max_memory or None)
        if worker.alive and key in self._prepared:
            return {}
        answer = self.request(
            {"op": "prepare", "sha": module.sha256, "max_memory": options.max_memory or None},
            module=module,
            timeout=max(PREPARE_TIMEOUT, options.timeout or 0),
        )
        if not answer.get("ok"):
            self._fail(answer, module)
        self._prepared = {k for k in self._prepared if k[0] is worker.proc}
        self._prepared.add((worker.proc, module.sha256, options.max_memory or None))
        measured = timings(answer)
        if "compile" in measured:
            self.compiled_ms[module.sha256] = measured["compile"]
        return measured

    def _fail(self, answer: dict[str, Any], module: Module | None = None) -> None:
        """Raise the error an answer carries (traps and memory limits of runs are results, not raised here)."""
        kind, message = answer.get("kind", ""), answer.get("error", "")
        if _engine_cannot(answer):
            raise RuntimeUnavailable(
                self.label,
                f"the engine cannot compile this module ({message}), a limitation of {self.name}",
                "use wasmtime",
            )
        if kind == ErrorKind.INVALID and ("segment out of bounds" in message or "table underflow" in message):
            # wasm3 initialises data and element segments when loading: a segment that does not fit is a trap
            code = "out of bounds memory access" if "data" in message else "out of bounds table access"
            raise Trap(code, [], f"wasm trap on {self.label}: {code} (initialising a segment)")
        if kind == ErrorKind.INVALID:
            prefix = "" if "rejected the module" in message else f"{self.label} rejected the module: "
            raise InvalidModule(prefix + message)
        # wasm3 compiles a function when it is first looked up: a compile error reads as a missing export
        exported = module.export_names() if module is not None and kind == ErrorKind.USAGE else []
        if module is not None and any(f"cannot find export {name!r}:" in message for name in exported):
            module.validate()  # InvalidModule when the code is invalid, as the other engines say
            raise RuntimeUnavailable(self.label, f"{self.name} cannot compile this module ({message})", "use wasmtime")
        if kind in (LINK, ErrorKind.USAGE):
            raise UsageError(f"{self.label}: {message}")
        if kind == ErrorKind.UNAVAILABLE:
            raise RuntimeUnavailable(self.label, message, "use wasmtime")
        if kind == ErrorKind.LIMIT_MEMORY:
            raise LimitExceeded("memory", f"{self.label}: {message}")
        if kind == ErrorKind.TRAP:
            code = normalize_trap(answer.get("trap_message") or message)
            frames = frame_names(module, answer.get("frames", [])) if module is not None else []
            where = f" in {frames[0]}" if frames else ""
            raise Trap(code, frames, f"wasm trap on {self.label}: {code}{where}")
        if module is not None and kind == ErrorKind.ERROR:
            # the worker choked on the bytes (wasm3's LEB rewriter raised IndexError on invalid code)
            module.validate()  # InvalidModule when they are invalid
        raise WasmlabError(f"{self.label} worker: {message or answer}")

    # running ----------------------------------------------------------------------------------------------
    def run(self, module: Module, options: RunOptions) -> RunResult:
        self._check(module, options)
        message = {"op": "run", "invoke": options.invoke, **self._setup(module, options)}
        if options.invoke is not None:
            message["args"] = check_args(module, options.invoke, tuple(options.args))
        elif not module.is_command:
            exports = ", ".join(module.export_names()) or "none"
            raise UsageError(f"{module.name} is not a WASI command (no _start): pass invoke= one of {exports}")
        compiled = self._prepare(module, options)
        answer = self.request(message, module=module, timeout=options.timeout, max_memory=options.max_memory)
        kind = answer.get("kind")
        if not answer.get("ok") and (kind not in (ErrorKind.TRAP, ErrorKind.LIMIT_MEMORY) or _engine_cannot(answer)):
            self._fail(answer, module)
        measured = timings(answer)
        measured["compile"] = compiled.get("compile", measured.get("compile", 0.0))
        result = RunResult(
            self.label,
            options.invoke,
            stdout=unb64(answer.get("stdout")),
            stderr=unb64(answer.get("stderr")),
            exit_code=answer.get("exit_code"),
            timings=measured,
        )
        if options.invoke is None and result.exit_code is None and kind is None:
            result.exit_code = 0
        if kind == ErrorKind.TRAP:
            result.trap = normalize_trap(answer.get("trap_message") or answer.get("error", ""))
            result.trap_frames = frame_names(module, answer.get("frames", []))
        elif kind == ErrorKind.LIMIT_MEMORY:
            result.record(LimitExceeded("memory", f"{self.label}: {answer.get('error')}"))
        elif options.invoke is not None and answer.get("exit_code") is None:
            result.result = decode_value(answer.get("result"))
        return result

    def instantiate(self, module: Module, options: RunOptions) -> PyWorkerInstance:
        self._check(module, options)
        compiled = self._prepare(module, options)
        message = {"op": "instantiate", **self._setup(module, options)}
        answer = self.request(message, module=module, timeout=options.timeout, max_memory=options.max_memory)
        if not answer.get("ok"):
            self._fail(answer, module)
        measured = timings(answer)
        measured["compile"] = compiled.get("compile", measured.get("compile", 0.0))
        answer["timings"] = measured
        return PyWorkerInstance(self, module, options, answer)


def _engine_cannot(answer: dict[str, Any]) -> bool:
    """An engine limitation, not the guest's fault: wasm3 0.5 compiles functions lazily and reports an opcode it
    has no operation for (on some valid `if` and `table.grow` sequences) as a trap or as a missing export, and
    refuses reference-types element segments ("element table index must be zero for MVP") as invalid."""
    text = f"{answer.get('error', '')} {answer.get('trap_message', '')}"
    return "no operation found for opcode" in text or "for MVP" in text


class PyWorkerInstance(WorkerInstance):
    """An instance kept in a Python engine worker under an id."""

    def __init__(self, runtime: PyWorkerRuntime, module: Module, options: RunOptions, answer: dict[str, Any]) -> None:
        super().__init__(runtime, module, options, answer, list(answer.get("exports", [])))

    def _check(self, answer: dict[str, Any], message: dict[str, Any]) -> None:
        if not answer.get("ok"):
            self._runtime._fail(answer, self.module)

    def call(self, name: str, *args: Any) -> Any:
        answer = self._call(name, check_args(self.module, name, args))
        return None if answer is None else decode_value(answer.get("result"))
