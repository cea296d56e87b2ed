"""`JsShellRuntime`: the base of the engines that run guests through JavaScript's WebAssembly API in a
long-lived JS worker process (node today; the JavaScriptCore and SpiderMonkey shells are the same shape).

The worker speaks the protocol of `scripts/wasmcore.js`, the one JS source every JS engine worker shares (node's
`node_worker.mjs` and the shells' `jsshell_worker.js` are small host adapters around it):
ops load, run, instantiate, call, read, write, memory_size, exports, close, kv_clear and kv_items, values as in
`jscodec`. What differs between engines is how to start the shell: a subclass gives `worker_argv()` (the
program, its flags and its worker script), `unavailable_reason()`, `version()` and the resident memory an idle
shell holds (`baseline_rss`); this class does the rest.

Limits. Time: the parent kills the worker (a guest in a loop blocks the JS event loop, nothing inside can stop
it) -> `LimitExceeded("time")`, and a fresh worker on the next request. Memory: the worker compiles a copy of
the module whose memories declare at most `max_memory` (`cap_memories`), so `memory.grow` past the cap returns
-1 inside the engine, as under wasmtime's store limits; a module that needs more to start, or a guest that
traps with its memory at the cap, gives `LimitExceeded("memory")`. The safety net is the worker's
resident-memory cap (`max_memory` + what the worker already holds, at least `baseline_rss()`).
Trap frames are "name (0xOFFSET)" with offsets in the module's own bytes, like wasmtime's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import (
    ErrorKind,
    ExitTrap,
    InstanceLost,
    InvalidModule,
    LimitExceeded,
    RuntimeUnavailable,
    Trap,
    UsageError,
    WasmlabError,
)
from ...leb128 import read_uleb, uleb
from ..base import RunOptions, RunResult
from .backend import WorkerInstance, WorkerRuntime
from .jscodec import decode_results, encode_args, read_trap
from .process import SCRIPTS, Worker
from .protocol import CONTROL_TIMEOUT, LINK, timings, unb64

if TYPE_CHECKING:
    from ...module import Module

__all__ = ["JsInstance", "JsShellRuntime", "cap_memories"]

PAGE = 65536


# ------------------------------------------------------------------------------------------ memory cap


def cap_memories(module: Module, max_pages: int) -> bytes | None:
    """The module's bytes with the maximum of each memory it defines lowered to `max_pages`, so `memory.grow`
    past the cap returns -1 inside V8 (as under wasmtime's store limits); None when nothing changes.
    Memories with 64-bit indices or custom page sizes are left alone (the post-call check covers them)."""
    section = next((s for s in module.sections if s.id == 5), None)
    if section is None:
        return None
    data = module.bytes
    count, pos = read_uleb(data, section.payload_offset)
    payload, changed = bytearray(uleb(count)), False
    for _ in range(count):
        flags = data[pos]
        lo, pos = read_uleb(data, pos + 1)
        hi, page = None, None
        if flags & 0x01:
            hi, pos = read_uleb(data, pos)
        if flags & 0x08:
            page, pos = read_uleb(data, pos)
        if not flags & 0x0C and lo <= max_pages and (hi is None or hi > max_pages):
            flags, hi, changed = flags | 0x01, max_pages, True
        payload += bytes([flags]) + uleb(lo)
        payload += (uleb(hi) if hi is not None else b"") + (uleb(page) if page is not None else b"")
    if not changed:
        return None
    return data[: section.offset] + b"\x05" + uleb(len(payload)) + bytes(payload) + data[section.end :]


# ------------------------------------------------------------------------------------------ runtime


class JsShellRuntime(WorkerRuntime):
    """A JS engine in a worker process speaking the node worker protocol. Subclasses set `name`, `install`,
    `variants`, `worker_script` and implement `worker_argv()` (see the module docstring)."""

    capabilities = frozenset({"exports", "wasi", "memory", "instances", "timeout", "max_memory", "builtin_host"})
    worker_script: Path = SCRIPTS / "node_worker.mjs"
    rss_allowance = 32 << 20
    preopens = True  # the worker's WASI serves `dirs=` (node:wasi); the shells' WASI shim has no files

    def __init__(self, variant: str | None = None) -> None:
        super().__init__(variant)
        self._capped: dict[tuple[str, int], Module] = {}  # (sha256, max pages) -> the module with lowered maxima
        self._shifts: dict[str, tuple[int, int]] = {}  # capped module's sha256 -> (where its bytes shift, by how much)

    def worker_argv(self) -> list[str]:
        """The command that starts the worker: the shell, its flags, the worker script."""
        raise NotImplementedError

    # worker ---------------------------------------------------------------------------------------------
    def _new_worker(self) -> Worker:
        return Worker(self.label, self.worker_argv())

    def _release(self, worker: Worker, numbers: list[int], message: dict[str, Any]) -> dict[str, Any]:
        worker.request({"op": "close", "handles": numbers}, timeout=CONTROL_TIMEOUT)
        return message

    # checks ---------------------------------------------------------------------------------------------
    def _check(self, module: Module, options: RunOptions) -> None:
        self.check_guest_elsewhere(module, options, "in another process")
        if options.dirs and not self.preopens:
            raise RuntimeUnavailable(
                self.label,
                f"preopened host directories (dirs=) are unsupported: {self.name}'s shell has no file system "
                "for WASI; run on wasmtime or node",
            )

    def baseline_rss(self) -> int:
        """Resident memory an idle JS engine may hold besides the guest: ~25-45 MiB idle, plus compiled code and
        the engine's heap for large modules (Go: ~2 MB of Wasm)."""
        return 128 << 20

    def _check_memory(self, module: Module, options: RunOptions) -> None:
        if not options.max_memory:
            return
        initial = max((m.limits.min for m in module.memories), default=0) * PAGE
        if initial > options.max_memory:
            raise LimitExceeded(
                "memory",
                f"{self.label}: {module.name} needs {initial / (1 << 20):.1f} MiB of linear memory to start, "
                f"more than max_memory={options.max_memory / (1 << 20):.1f} MiB; raise max_memory= (bytes)",
            )

    def _setup(self, module: Module, options: RunOptions) -> dict[str, Any]:
        return {**super()._setup(module, options), "max_memory": options.max_memory or 0}

    def _fail(self, answer: dict[str, Any]) -> None:
        """Raise the error an answer carries (not traps, not memory limits: those are results)."""
        kind, message = answer.get("kind", ""), answer.get("error", "")
        if kind == ErrorKind.COMPILE:
            raise InvalidModule(f"{self.name} rejected the module: {message}")
        if kind in (LINK, ErrorKind.USAGE):
            raise UsageError(f"{self.label}: {message}")
        if kind == ErrorKind.LIMIT_MEMORY:
            raise LimitExceeded("memory", f"{self.label}: {message}")
        if kind == ErrorKind.LOST:
            raise InstanceLost(
                f"instance lost: the {self.name} worker was restarted after {self._stopped_because}; instantiate again"
            )
        if kind == ErrorKind.EXIT:
            raise ExitTrap(answer.get("exit_code") or 1)
        if "outside the bounds of the DataView" in message:  # node:wasi read a pointer outside the guest's memory
            code = "out of bounds memory access"
            raise Trap(code, [], f"wasm trap on {self.label}: {code} (a pointer passed to WASI)")
        if message.startswith("RangeError") and "limit" in message:  # e.g. a table over V8's 10M elements
            raise LimitExceeded("memory", f"{self.label}: {message.removeprefix('RangeError: ')}")
        raise WasmlabError(f"{self.label} worker: {message}")

    def _engine_module(self, module: Module, options: RunOptions) -> Module:
        """What the worker compiles: the module itself, or a copy whose memories cannot grow past max_memory."""
        if not options.max_memory:
            return module
        key = (module.sha256, options.max_memory // PAGE)
        capped = self._capped.get(key)
        if capped is None:
            data = cap_memories(module, key[1])
            capped = module if data is None else type(module)(data, module.provenance, module.name)
            if len(self._capped) >= 32:
                self._shifts.pop(self._capped.pop(next(iter(self._capped))).sha256, None)
            self._capped[key] = capped
            if data is not None:
                delta = len(data) - len(module.bytes)
                end = next(s.end for s in module.sections if s.id == 5)
                self._shifts[capped.sha256] = (end + delta, delta)
        return capped

    def _answer(self, module: Module, options: RunOptions, message: dict[str, Any]) -> dict[str, Any]:
        engine_module = self._engine_module(module, options)
        message["sha"] = engine_module.sha256
        answer = self.request(message, module=engine_module, timeout=options.timeout, max_memory=options.max_memory)
        if "compile_ms" in answer:
            self.compiled_ms[module.sha256] = float(answer["compile_ms"])
        return answer

    def _trap(self, module: Module, options: RunOptions, answer: dict[str, Any], what: str) -> Trap | LimitExceeded:
        """The trap an answer carries; LimitExceeded("memory") when the guest trapped with its memory at the
        max_memory cap (memory.grow failed), the way wasmtime reports it."""
        shift = self._shifts.get(self._engine_module(module, options).sha256, (0, 0))
        candidates, frames = read_trap(module, answer, shift)
        code = " or ".join(candidates)
        where = f" in {frames[0]}" if frames else ""
        size, cap = int(answer.get("memory_bytes") or 0), options.max_memory
        if cap and code != "stack overflow" and size and size + max(PAGE, cap // 8) > cap:
            exc = LimitExceeded(
                "memory",
                f"{self.label}: {what} trapped ({code}{where}) after its linear memory reached "
                f"{size / (1 << 20):.1f} MiB of the max_memory={cap / (1 << 20):.1f} MiB limit (memory.grow "
                "failed); raise max_memory= (bytes)",
            )
            exc.trap_code, exc.trap_frames = code, frames  # type: ignore[attr-defined]
            return exc
        return Trap(code, frames, f"wasm trap on {self.label}: {code}{where}", candidates)

    # running --------------------------------------------------------------------------------------------
    def run(self, module: Module, options: RunOptions) -> RunResult:
        """One run on a fresh instance. Traps, exit codes and exceeded limits are recorded in the result (with
        the output so far, except after a time limit or Ctrl-C: those kill the worker); KeyboardInterrupt
        propagates."""
        self._check(module, options)
        message = {"op": "run", "invoke": options.invoke, **self._setup(module, options)}
        results: tuple[str, ...] = ()
        if options.invoke is not None:
            message["args"], results = encode_args(module, options.invoke, tuple(options.args))
        result = RunResult(self.label, options.invoke)
        try:
            self._check_memory(module, options)
            answer = self._answer(module, options, message)
        except LimitExceeded as exc:
            return result.record(exc)
        if answer.get("kind") == ErrorKind.EXIT:
            result.exit_code = answer.get("exit_code")
            return result
        if "error" in answer and answer.get("kind") != ErrorKind.LIMIT_MEMORY:
            self._fail(answer)
        result.stdout, result.stderr = unb64(answer.get("stdout")), unb64(answer.get("stderr"))
        result.exit_code = answer.get("exit_code")
        result.timings = timings(answer)
        if "trap" in answer:
            what = f"{module.name}.{options.invoke}" if options.invoke else module.name
            result.record(self._trap(module, options, answer, what))
        elif "error" in answer:  # the memory check after the guest returned
            result.record(LimitExceeded("memory", f"{self.label}: {answer['error']}"))
        elif options.invoke is not None and answer.get("exit_code") is None:
            result.result = decode_results(answer.get("result"), results)
        return result

    def instantiate(self, module: Module, options: RunOptions) -> JsInstance:
        self._check(module, options)
        self._check_memory(module, options)
        answer = self._answer(module, options, {"op": "instantiate", **self._setup(module, options)})
        if "error" in answer:
            self._fail(answer)
        if "trap" in answer:
            raise self._trap(module, options, answer, f"instantiating {module.name}")
        return JsInstance(self, module, options, answer)


class JsInstance(WorkerInstance):
    """An instance kept in a JS worker under a handle."""

    key = "handle"

    def __init__(self, runtime: JsShellRuntime, module: Module, options: RunOptions, answer: dict[str, Any]) -> None:
        super().__init__(runtime, module, options, answer, [e["name"] for e in answer.get("exports", [])])

    def _check(self, answer: dict[str, Any], message: dict[str, Any]) -> None:
        if "error" in answer:
            if answer.get("kind") == ErrorKind.LIMIT_MEMORY:  # the worker dropped the instance
                self._lose(f"it passed its memory limit ({answer['error']})")
            self._runtime._fail(answer)
        if "trap" in answer:
            raise self._runtime._trap(self.module, self.options, answer, f"{self.module.name}.{message['name']}")

    def call(self, name: str, *args: Any) -> Any:
        values, results = encode_args(self.module, name, args)
        answer = self._call(name, values)
        return None if answer is None else decode_results(answer.get("result"), results)
