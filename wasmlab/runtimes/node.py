"""node: V8's WebAssembly through a long-lived node worker process, one per tier variant.

Variants pick V8's compilers (node flags are per process, so each variant has its own worker):

    default    node's normal tiering: Liftoff (baseline) first, hot functions re-compiled by TurboFan
    liftoff    Liftoff only (`--liftoff --no-wasm-tier-up --no-wasm-dynamic-tiering`)
    turbofan   TurboFan only (`--no-liftoff`)

The worker (`workers/node_worker.mjs`, no npm dependencies) compiles each module once per process (sent by
sha256), runs WASI commands through `node:wasi` with argv (`[module.name, *argv]`), env, stdin, preopened dirs
and captured, capped stdout/stderr, keeps instances under handles and offers the built-in `wasmlab` host
module (its key-value store lives in the worker: `kv_items()`, `kv_clear()`; a worker restart empties it).

Timings are measured inside the worker, never across the pipe, with wasmtime's convention: "compile" is what
this run spent compiling (0.0 when the worker had the compiled module; `compiled_ms[sha256]` keeps the real
figure), "instantiate" includes a reactor's `_initialize`, "call" or "run" is the guest's own time.

Limits. Time: the parent kills the worker (a guest in a loop blocks node's event loop, nothing inside can stop
it) -> `LimitExceeded("time")`, and a fresh worker on the next request. Memory: the worker compiles a copy of
the module whose memories declare at most `max_memory` (`cap_memories`), so `memory.grow` past the cap returns
-1 inside V8, as under wasmtime's store limits; a module that needs more to start, or a guest that traps with
its memory at the cap, gives `LimitExceeded("memory")`. The safety net is the worker's resident-memory cap
(`max_memory` + what the worker already holds, at least `NODE_BASELINE_RSS`): past it the worker is killed.
Trap frames are "name (0xOFFSET)" with offsets in the module's own bytes, like wasmtime's.

`run()` records traps, exit codes and exceeded limits in the RunResult; `NodeInstance.call` raises them.
Instances living in a killed worker are lost: using one raises `InstanceLost` saying why.

Not here: fuel, Python host functions (the guest runs in another process: use the built-in `wasmlab` module),
components (use wasmtime).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import (
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
from ..module import Module
from .base import (
    RunOptions,
    RunResult,
    coerce_args,
    confined_directory,
    normalize_trap,
)
from .worker import LINK, Worker, b64, unb64
from .worker_runtime import CONTROL_TIMEOUT, WorkerInstance, WorkerRuntime

WORKER_SCRIPT = Path(__file__).parent / "workers" / "node_worker.mjs"
MIN_NODE_MAJOR = 18  # node:wasi with returnOnExit and fd options
# V8 flags per variant. On node 20 (V8 11.3) `--liftoff --no-wasm-tier-up` alone still tiers hot functions up
# to TurboFan (dynamic tiering): `--no-wasm-dynamic-tiering` makes it Liftoff only (checked with
# --trace-wasm-compilation-times). Flags this node does not know are dropped (node refuses unknown flags).
FLAGS: dict[str, tuple[str, ...]] = {
    "default": (),
    "liftoff": ("--liftoff", "--no-wasm-tier-up", "--no-wasm-dynamic-tiering"),
    "turbofan": ("--no-liftoff",),
}
# Resident memory the worker may use besides the guest's linear memory: node idles at ~45 MiB; compiled code
# and V8's heap for large modules (Go: ~2 MB of Wasm) add tens of MiB.
NODE_BASELINE_RSS = 128 << 20
PAGE = 65536
# V8 trap messages that base.TRAP_CODES does not know (lower case -> canonical code).
V8_TRAPS = {"remainder by zero": "integer divide by zero"}


def node_executable() -> str | None:
    return os.environ.get("WASMLAB_NODE") or shutil.which("node")


@cache
def node_versions(node: str) -> tuple[str, str]:
    """(node version, V8 version) of the node at `node`, e.g. ("v20.20.2", "11.3.244.8-node.38")."""
    out = subprocess.run(
        [node, "-p", "process.version + ' ' + process.versions.v8"], capture_output=True, text=True, timeout=30
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or f"exit status {out.returncode}")
    version, _, v8 = out.stdout.strip().partition(" ")
    return version, v8


@cache
def v8_flag_names(node: str) -> frozenset[str]:
    """The V8 flags this node accepts, without dashes or "no-" (e.g. "wasm-tier-up")."""
    out = subprocess.run([node, "--v8-options"], capture_output=True, text=True, timeout=30)
    return frozenset(re.findall(r"^\s+--([a-z0-9-]+)", out.stdout, re.MULTILINE))


def supported_flags(node: str, flags: tuple[str, ...]) -> list[str]:
    known = v8_flag_names(node)
    return [f for f in flags if f.removeprefix("--").removeprefix("no-") in known]


def trap_code(message: str) -> str:
    """The canonical trap code for a V8 trap message."""
    text = message.lower()
    for needle, code in V8_TRAPS.items():
        if needle in text:
            return code
    return normalize_trap(message)


# ------------------------------------------------------------------------------------------ values


def encode_value(value: Any, valtype: str) -> Any:
    """A Python argument as the worker expects it for a parameter of `valtype`."""
    if valtype == "i32":
        v = int(value) & 0xFFFFFFFF
        return v - (1 << 32) if v >= 1 << 31 else v
    if valtype == "i64":
        return str(int(value))  # exact: JSON numbers lose bits past 2**53
    if valtype in ("f32", "f64"):
        f = float(value)
        if math.isnan(f):
            return {"f": "nan"}
        if math.isinf(f):
            return {"f": "inf" if f > 0 else "-inf"}
        if f == 0 and math.copysign(1.0, f) < 0:
            return {"f": "-0"}
        return f
    if value is None:  # a null reference
        return None
    raise UsageError(f"node cannot pass {value!r} as a {valtype} argument: only numbers and null references")


_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "-0": -0.0}


def decode_value(value: Any, valtype: str) -> Any:
    if isinstance(value, dict):
        if "f" in value:
            return _FLOATS[value["f"]]
        return value.get("ref")
    if valtype in ("f32", "f64") and value is not None:
        return float(value)
    if valtype in ("i32", "i64") and value is not None:
        return int(value)
    return value


def decode_results(value: Any, results: tuple[str, ...]) -> Any:
    if not results:
        return None
    if len(results) == 1:
        return decode_value(value, results[0])
    return tuple(decode_value(v, t) for v, t in zip(value, results, strict=True))


def encode_args(module: Module, name: str, args: tuple[Any, ...]) -> tuple[list[Any], tuple[str, ...]]:
    """(arguments for the worker, result types) for a call of export `name`; UsageError on a wrong count."""
    ftype = module.func_type(name)
    values = coerce_args(name, ftype.params, args)
    return [encode_value(a, t) for a, t in zip(values, ftype.params, strict=True)], ftype.results


def frame_names(module: Module, frames: list[dict[str, Any]], shift: tuple[int, int] = (0, 0)) -> list[str]:
    """Worker frames -> 'func_name (0xOFFSET)', innermost first; names from V8, else the name section, else
    the export name, else func[N] (as wasmtime). `shift` (boundary, delta): offsets past `boundary` come from a copy
    of the module `delta` bytes longer (see `cap_memories`) and are mapped back to the module's own bytes."""
    names: dict[int, str] = {}
    prefix = ""
    try:
        for export in module.exports:
            if export.kind == "func":
                names.setdefault(export.index, export.name)
        names.update(module.parsed.function_names)
        prefix = f"{module.parsed.module_name}." if module.parsed.module_name else ""
    except WasmlabError:
        pass
    out = []
    for frame in frames:
        index = frame.get("index")
        name = frame.get("name") or names.get(index) or f"func[{index}]"
        if prefix and name.startswith(prefix):  # V8 writes "module.function" when the module has a name
            name = name[len(prefix) :]
        offset = frame.get("offset", 0)
        if offset >= shift[0]:
            offset -= shift[1]
        out.append(f"{name} ({offset:#x})")
    return out


# ------------------------------------------------------------------------------------------ memory cap


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def cap_memories(module: Module, max_pages: int) -> bytes | None:
    """The module's bytes with the maximum of each memory it defines lowered to `max_pages`, so `memory.grow`
    past the cap returns -1 inside V8 (as under wasmtime's store limits); None when nothing changes.
    Memories with 64-bit indices or custom page sizes are left alone (the post-call check covers them)."""
    section = next((s for s in module.sections if s.id == 5), None)
    if section is None:
        return None
    data = module.bytes
    count, pos = _uleb(data, section.payload_offset)
    payload, changed = bytearray(_leb(count)), False
    for _ in range(count):
        flags = data[pos]
        lo, pos = _uleb(data, pos + 1)
        hi, page = None, None
        if flags & 0x01:
            hi, pos = _uleb(data, pos)
        if flags & 0x08:
            page, pos = _uleb(data, pos)
        if not flags & 0x0C and lo <= max_pages and (hi is None or hi > max_pages):
            flags, hi, changed = flags | 0x01, max_pages, True
        payload += bytes([flags]) + _leb(lo)
        payload += (_leb(hi) if hi is not None else b"") + (_leb(page) if page is not None else b"")
    if not changed:
        return None
    return data[: section.offset] + b"\x05" + _leb(len(payload)) + bytes(payload) + data[section.end :]


# ------------------------------------------------------------------------------------------ runtime


class NodeRuntime(WorkerRuntime):
    """V8 (node) through a JSON-lines worker process; `variant` picks the compiler tiers."""

    name = "node"
    variants = ("default", "liftoff", "turbofan")
    install = "apt-get install nodejs"
    capabilities = frozenset({"exports", "wasi", "memory", "instances", "timeout", "max_memory", "builtin_host"})

    rss_allowance = 32 << 20

    def __init__(self, variant: str | None = None) -> None:
        super().__init__(variant)
        self._capped: dict[tuple[str, int], Module] = {}  # (sha256, max pages) -> the module with lowered maxima
        self._shifts: dict[str, tuple[int, int]] = {}  # capped module's sha256 -> (where its bytes shift, by how much)
        self.compiled_ms: dict[str, float] = {}  # sha256 of what the worker compiled -> compile milliseconds

    # availability ---------------------------------------------------------------------------------------
    def unavailable_reason(self) -> str | None:
        node = node_executable()
        if not node:
            return "node is not installed"
        try:
            version, _ = node_versions(node)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            return f"{node} does not run: {exc}"
        match = re.match(r"v(\d+)", version)
        if not match or int(match.group(1)) < MIN_NODE_MAJOR:
            return f"node {version} is too old: wasmlab needs node {MIN_NODE_MAJOR} or newer (node:wasi)"
        if not WORKER_SCRIPT.is_file():
            return f"the worker script {WORKER_SCRIPT} is missing"
        return None

    def version(self) -> str:
        info = getattr(self._worker, "info", None)
        if info:
            version, v8 = info.get("node", ""), info.get("v8", "")
        else:
            node = node_executable()
            if not node:
                return ""
            try:
                version, v8 = node_versions(node)
            except (OSError, RuntimeError, subprocess.SubprocessError):
                return ""
        return f"node {version} (V8 {v8.split('-')[0]})"

    @property
    def flags(self) -> tuple[str, ...]:
        return FLAGS[self.variant]

    # worker ---------------------------------------------------------------------------------------------
    def _new_worker(self) -> Worker:
        node = node_executable()
        if not node:
            raise RuntimeUnavailable(self.label, "node is not installed", self.install)
        return Worker(self.label, [node, "--no-warnings", *supported_flags(node, self.flags), str(WORKER_SCRIPT)])

    def baseline_rss(self) -> int:
        return NODE_BASELINE_RSS

    def _release(self, worker: Worker, numbers: list[int], message: dict[str, Any]) -> dict[str, Any]:
        worker.request({"op": "close", "handles": numbers}, timeout=CONTROL_TIMEOUT)
        return message

    # checks ---------------------------------------------------------------------------------------------
    def _check(self, module: Module, options: RunOptions) -> None:
        self.check_guest_elsewhere(module, options, "in another process")

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
        """The request fields every instantiation shares."""
        return {
            "argv": [module.name, *options.argv],
            "env": dict(options.env),
            "stdin": b64(options.stdin),
            "dirs": {guest: confined_directory(self.label, guest, host) for guest, host in options.dirs.items()},
            "max_output": options.max_output,
            "max_memory": options.max_memory or 0,
        }

    def _fail(self, answer: dict[str, Any]) -> None:
        """Raise the error an answer carries (not traps, not memory limits: those are results)."""
        kind, message = answer.get("kind", ""), answer.get("error", "")
        if kind == ErrorKind.COMPILE:
            raise InvalidModule(f"node rejected the module: {message}")
        if kind in (LINK, ErrorKind.USAGE):
            raise UsageError(f"{self.label}: {message}")
        if kind == ErrorKind.LIMIT_MEMORY:
            raise LimitExceeded("memory", f"{self.label}: {message}")
        if kind == ErrorKind.LOST:
            raise InstanceLost(
                f"instance lost: the node worker was restarted after {self._stopped_because}; instantiate again"
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
            capped = module if data is None else Module(data, module.provenance, module.name)
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
        code = trap_code(answer["trap"])
        shift = self._shifts.get(self._engine_module(module, options).sha256, (0, 0))
        frames = frame_names(module, answer.get("frames", []), shift)
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
        return Trap(code, frames, f"wasm trap on {self.label}: {code}{where}")

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
        result.timings = {k: float(v) for k, v in answer.get("timings", {}).items()}
        if "trap" in answer:
            what = f"{module.name}.{options.invoke}" if options.invoke else module.name
            result.record(self._trap(module, options, answer, what))
        elif "error" in answer:  # the memory check after the guest returned
            result.record(LimitExceeded("memory", f"{self.label}: {answer['error']}"))
        elif options.invoke is not None and answer.get("exit_code") is None:
            result.result = decode_results(answer.get("result"), results)
        return result

    def instantiate(self, module: Module, options: RunOptions) -> NodeInstance:
        self._check(module, options)
        self._check_memory(module, options)
        answer = self._answer(module, options, {"op": "instantiate", **self._setup(module, options)})
        if "error" in answer:
            self._fail(answer)
        if "trap" in answer:
            raise self._trap(module, options, answer, f"instantiating {module.name}")
        return NodeInstance(self, module, options, answer)


class NodeInstance(WorkerInstance):
    """An instance kept in the node worker under a handle."""

    key = "handle"

    def __init__(self, runtime: NodeRuntime, module: Module, options: RunOptions, answer: dict[str, Any]) -> None:
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
