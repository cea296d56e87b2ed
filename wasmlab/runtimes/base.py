"""The runtime protocol: one small class per engine that runs a `Module` and reports what happened.

A backend implements `Runtime.run` (one whole run: instantiate, call or `_start`, tear down) and
`Runtime.instantiate` (an `Instance` kept across calls). Everything crossing this line is plain data:
`RunOptions` in, `RunResult` out, so in-process engines and worker processes look the same to callers.
"""

from __future__ import annotations

import ctypes
import operator
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import (
    EngineCrashed,
    ExitTrap,
    LimitExceeded,
    RuntimeUnavailable,
    Trap,
    UsageError,
    WasmlabError,
    error_for,
)
from .views import InstanceHelpers

if TYPE_CHECKING:
    from ..module import Module

DEFAULT_TIMEOUT = float(os.environ.get("WASMLAB_TIMEOUT", 10.0))  # seconds of wall clock per run or call
DEFAULT_MAX_MEMORY = int(os.environ.get("WASMLAB_MAX_MEMORY", 512 << 20))  # bytes of linear memory
DEFAULT_MAX_OUTPUT = 1 << 20  # bytes of stdout (and of stderr) kept per run; the rest is cut

# What a backend can do; `Runtime.capabilities` lists a subset.
CAPABILITIES = (
    "exports",  # call exported functions with arguments
    "wasi",  # run WASI preview 1 commands (argv, env, stdin, stdout, preopened dirs)
    "memory",  # read and write linear memory of a kept instance
    "instances",  # keep an instance across calls (state persists)
    "fuel",  # deterministic instruction budget
    "timeout",  # wall-clock limit
    "max_memory",  # cap on linear memory growth
    "host_functions",  # Python callables as imports
    "builtin_host",  # the built-in `wasmlab` host module (log, clock, random, kv)
    "components",  # Component Model components
)


# The built-in host module every backend with "builtin_host" offers, so tutorials can use imports everywhere.
# A guest imports what it needs from module "wasmlab"; strings are (pointer, length) in its exported "memory".
WASI_MODULES = ("wasi_snapshot_preview1", "wasi_unstable")  # the import modules of WASI preview 1
BUILTIN_HOST_MODULE = "wasmlab"
BUILTIN_HOST_FUNCTIONS = {
    "log": ("(i32, i32) -> ()", "append the UTF-8 text at (ptr, len) and a newline to the run's stderr"),
    "now_ms": ("() -> f64", "monotonic clock in milliseconds"),
    "random": ("() -> f64", "a uniform random number in [0, 1)"),
    "kv_get": (
        "(i32, i32, i32, i32) -> i32",
        "kv_get(key_ptr, key_len, out_ptr, out_cap): copy the value of key "
        "(at most out_cap bytes) to out_ptr; returns the value's full length, or -1 when the key is absent",
    ),
    "kv_set": ("(i32, i32, i32, i32) -> ()", "kv_set(key_ptr, key_len, val_ptr, val_len): store a value"),
}
# The key-value store lives in the Runtime object (in the worker process for worker backends): it outlives
# instances, so a notebook can show what state survives instance reuse. `Runtime.kv_clear()` empties it.


@dataclass(frozen=True)
class RunOptions:
    """What to run and under which limits. `invoke=None` runs a WASI command's `_start`."""

    invoke: str | None = None
    args: tuple[Any, ...] = ()
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes = b""
    dirs: dict[str, str] = field(default_factory=dict)  # guest path -> host directory (WASI preopens)
    fuel: int | None = None
    timeout: float | None = DEFAULT_TIMEOUT
    max_memory: int | None = DEFAULT_MAX_MEMORY
    max_output: int = DEFAULT_MAX_OUTPUT
    imports: dict[str, dict[str, Any]] = field(default_factory=dict)  # host functions: {module: {name: callable}}

    def with_(self, **changes: Any) -> RunOptions:
        return replace(self, **changes)


@dataclass
class RunResult:
    """The outcome of one run on one runtime. Timings are milliseconds per phase, measured next to the engine
    (inside the worker for out-of-process backends): "compile", "instantiate", "call" (or "run" for commands)."""

    runtime: str
    invoke: str | None = None
    result: Any = None
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int | None = None
    trap: str | None = None  # canonical trap code, see TRAP_CODES
    trap_frames: list[str] = field(default_factory=list)
    error: str | None = None  # a non-trap failure (a limit, a crash), one line
    error_kind: str | None = None  # an `ErrorKind`: "limit:time", "limit:fuel", "limit:memory", "crash"...
    timings: dict[str, float] = field(default_factory=dict)
    fuel_used: int | None = None

    # The errors a run records in its result rather than raises (an exit status, a trap, a limit, a crash);
    # everything else (bad arguments, a missing engine, invalid bytes) is raised before or instead of a result.
    RECORDED: ClassVar[tuple[type[WasmlabError], ...]] = (Trap, LimitExceeded, EngineCrashed)

    def record(self, exc: WasmlabError) -> RunResult:
        """Record how the run ended in `exc` (one of RECORDED): ExitTrap as `exit_code`, Trap as `trap` and
        `trap_frames`, others as `error` and `error_kind` (`exc.kind`). Output the engine attached to `exc`
        (`stdout`/`stderr` attributes) is kept. `raise_for_error` raises it again."""
        if isinstance(exc, ExitTrap):
            self.exit_code = exc.code
        elif isinstance(exc, Trap):
            self.trap, self.trap_frames = str(exc.code), list(exc.frames)
        else:
            self.error, self.error_kind = str(exc), exc.kind
        if hasattr(exc, "stdout"):
            self.stdout, self.stderr = exc.stdout, getattr(exc, "stderr", b"")
        return self

    @property
    def ok(self) -> bool:
        return self.trap is None and self.error is None and self.exit_code in (None, 0)

    @property
    def output(self) -> str:
        return self.stdout.decode(errors="replace")

    def raise_for_error(self) -> RunResult:
        """Raise the error this result records (Trap, LimitExceeded, EngineCrashed...: `errors.error_for`);
        else return self. A non-zero exit status is a result, not an error."""
        if self.trap:
            frames = self.trap_frames
            where = f" in {frames[0]}" if frames else ""
            raise Trap(self.trap, frames, f"wasm trap on {self.runtime}: {self.trap}{where}")
        if self.error:
            raise error_for(self.error_kind, self.error, self.runtime)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "invoke": self.invoke,
            "result": self.result,
            "ok": self.ok,
            "stdout": self.stdout.decode(errors="replace"),
            "stderr": self.stderr.decode(errors="replace"),
            "exit_code": self.exit_code,
            "trap": self.trap,
            "trap_frames": self.trap_frames,
            "error": self.error,
            "error_kind": self.error_kind,
            "timings": self.timings,
            "fuel_used": self.fuel_used,
        }


class Instance(InstanceHelpers):
    """A live instance on one runtime: call exports many times, read and write its memory. Conveniences
    (`exports.NAME(...)`, `read_cstring`, `read_array`, `snapshot`, `diff_memory`) come from `views`."""

    runtime: str = ""

    def call(self, name: str, *args: Any) -> Any:
        """Call export `name`; returns None, one value, or a tuple for multi-value results. Raises Trap or
        LimitExceeded; the instance stays usable after a trap where the engine allows it."""
        raise NotImplementedError

    def export_names(self) -> list[str]:
        raise NotImplementedError

    def memory_size(self, memory: str | None = None) -> int:
        """Bytes of linear memory."""
        raise NotImplementedError

    def read_memory(self, address: int, length: int, memory: str | None = None) -> bytes:
        raise NotImplementedError

    def write_memory(self, address: int, data: bytes, memory: str | None = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Free the instance (idempotent)."""

    def __enter__(self) -> Instance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Runtime:
    """One engine (and variant). Subclasses set the class attributes and implement `run` and `instantiate`."""

    name: str = ""  # registry name, e.g. "wasmtime"
    variants: tuple[str, ...] = ()  # e.g. ("cranelift", "winch"); the first is the default
    install: str = ""  # how to make it available
    capabilities: frozenset[str] = frozenset()

    def __init__(self, variant: str | None = None) -> None:
        if variant and variant not in self.variants:
            known = ", ".join(self.variants) or "none"
            raise UsageError(f"{self.name} has no variant {variant!r}: use one of {known}")
        self.variant = variant or (self.variants[0] if self.variants else None)

    @property
    def label(self) -> str:
        """`name` or `name:variant` for non-default variants, as written by users."""
        if self.variant and self.variants and self.variant != self.variants[0]:
            return f"{self.name}:{self.variant}"
        return self.name

    def unavailable_reason(self) -> str | None:
        return None

    def version(self) -> str:
        return ""

    def run(self, module: Module, options: RunOptions) -> RunResult:
        raise NotImplementedError

    def instantiate(self, module: Module, options: RunOptions) -> Instance:
        raise NotImplementedError

    def close(self) -> None:
        """Release engine resources and worker processes."""

    def require(self, capability: str, what: str) -> None:
        """RuntimeUnavailable unless this runtime has `capability`."""
        if capability not in self.capabilities:
            have = ", ".join(sorted(self.capabilities))
            raise RuntimeUnavailable(
                self.label, f"{what} is not supported here (it can do: {have})", "pick another runtime, e.g. wasmtime"
            )

    def check_guest_elsewhere(self, module: Module, options: RunOptions, where: str) -> None:
        """Refuse, before anything runs, what an engine that runs guests outside this process cannot do:
        components, fuel (without the capability), Python host functions, and imports other than WASI and the
        built-in host module. `where` says where the guest runs ("in a worker process", "in the browser")."""
        if module.is_component:
            raise RuntimeUnavailable(self.label, "components are unsupported: use wasmtime")
        if options.fuel is not None:
            self.require("fuel", "fuel (a deterministic instruction budget)")
        if options.imports:
            raise RuntimeUnavailable(
                self.label,
                f"Python host functions are unsupported: {self.name} runs the guest {where}; import from the "
                f"built-in {BUILTIN_HOST_MODULE!r} host module ({', '.join(BUILTIN_HOST_FUNCTIONS)}) or run on "
                "wasmtime",
            )
        missing = [
            f"{i.module}.{i.name}"
            for i in module.imports
            if i.module not in WASI_MODULES
            and not (i.module == BUILTIN_HOST_MODULE and i.name in BUILTIN_HOST_FUNCTIONS)
        ]
        if missing:
            raise UsageError(
                f"{module.name} imports {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}: {self.name} "
                f"provides only WASI and the built-in {BUILTIN_HOST_MODULE!r} host module"
            )


# Canonical trap codes, and the engine messages that mean them (lower-cased substrings, first match wins).
TRAP_CODES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("stack overflow", ("stack overflow", "call stack exhausted", "maximum call stack", "stack exhausted")),
    ("integer divide by zero", ("divide by zero", "division by zero", "divide-by-zero", "remainder by zero")),
    ("integer overflow", ("integer overflow", "divide result unrepresentable")),
    (
        "invalid conversion to integer",
        ("invalid conversion", "float unrepresentable", "invalid conversion to integer", "integer conversion"),
    ),
    (
        "out of bounds memory access",
        (
            "out of bounds memory",
            "memory access out of bounds",
            "memory out of bounds",
            "heap access out of bounds",
            "out-of-bounds memory",
            "data segment is out of bounds",  # V8, instantiating
            "data segment out of bounds",  # wasm3, loading
        ),
    ),
    (
        "out of bounds table access",
        (
            "undefined element",
            "out of bounds table",
            "table index is out of bounds",
            "table out of bounds",
            "table access out of bounds",
            "uninitialized element",
            "null table element",  # wasm3: call_indirect to a null entry
        ),
    ),
    (
        "indirect call type mismatch",
        ("indirect call type mismatch", "signature mismatch", "indirect call signature", "function signature mismatch"),
    ),
    ("null reference", ("null reference", "null function", "dereferencing a null")),
    ("unreachable", ("unreachable",)),
)


def normalize_trap(message: str) -> str:
    """The canonical trap code for an engine's trap message ("trap" when none matches)."""
    text = message.lower()
    for code, needles in TRAP_CODES:
        if any(n in text for n in needles):
            return code
    return "trap"


_FRAME = re.compile(r"^\s*\d+:\s*(.*)$")


def parse_frames(text: str) -> list[str]:
    """Backtrace lines of the form '  0: 0x1234 - name' from engine messages, innermost first."""
    return [m.group(1).strip() for line in text.splitlines() if (m := _FRAME.match(line))]


def split_runtime_name(spec: str) -> tuple[str, str | None]:
    """ "wasmtime:winch" -> ("wasmtime", "winch"); "node" -> ("node", None)."""
    name, _, variant = spec.strip().partition(":")
    return name.lower(), (variant.lower() or None)


def as_tuple(values: Iterable[Any] | Any) -> tuple[Any, ...]:
    if isinstance(values, (list, tuple)):
        return tuple(values)
    return (values,)


MAX_PREOPEN_ENTRIES = 20_000  # directory entries `check_confined` inspects before it gives up (and refuses)


def coerce_args(name: str, params: tuple[str, ...], args: tuple[Any, ...]) -> list[Any]:
    """Python arguments -> values for parameters of types `params`, the same on every engine: ints in the signed
    or unsigned range (stored signed), floats (f32 rounded), references as given; UsageError otherwise."""
    if len(args) != len(params):
        raise UsageError(f"{name} takes {len(params)} argument(s) ({', '.join(params) or 'none'}), got {len(args)}")
    out: list[Any] = []
    for i, (value, valtype) in enumerate(zip(args, params, strict=True)):
        if valtype in ("i32", "i64"):
            bits = 32 if valtype == "i32" else 64
            if isinstance(value, float):
                raise UsageError(f"{name}: argument {i} is {valtype}, got the float {value!r}: pass an int")
            try:
                number = operator.index(value)
            except TypeError:
                raise UsageError(f"{name}: argument {i} is {valtype}, got {type(value).__name__} {value!r}") from None
            if not -(1 << (bits - 1)) <= number < (1 << bits):
                raise UsageError(f"{name}: argument {i} ({number}) does not fit in {valtype}")
            out.append(number - (1 << bits) if number >= 1 << (bits - 1) else number)
        elif valtype in ("f32", "f64"):
            try:
                number_f = float(value)
            except (TypeError, ValueError):
                raise UsageError(f"{name}: argument {i} is {valtype}, got {type(value).__name__} {value!r}") from None
            out.append(ctypes.c_float(number_f).value if valtype == "f32" else number_f)
        else:
            out.append(value)
    return out


def confined_directory(runtime: str, guest: str, host: str) -> str:
    """`host` resolved, for preopening as `guest` on an engine whose WASI follows symlinks (see
    `check_confined`); UsageError when it is not a directory."""
    path = Path(host).expanduser().resolve()
    if not path.is_dir():
        raise UsageError(f"no such directory {host!r} to preopen as {guest!r}")
    check_confined(runtime, guest, str(path))
    return str(path)


def check_confined(runtime: str, guest: str, host: str) -> None:
    """Refuse to preopen `host` on an engine whose WASI follows symlinks out of a preopened directory (node's
    uvwasi, wasmer-python 1.1, measured; wasmtime refuses to follow them): RuntimeUnavailable when a symlink
    under `host` leads outside it, since the guest could read and write through it. Guests on those engines
    cannot create symlinks, so checking before the run is enough."""
    root = os.path.realpath(host)
    pending, seen = [root], 0
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue  # unreadable for us: unreadable for the guest too
        for entry in entries:
            seen += 1
            if seen > MAX_PREOPEN_ENTRIES:
                raise RuntimeUnavailable(
                    runtime,
                    f"dirs={{{guest!r}: {host!r}}} holds over {MAX_PREOPEN_ENTRIES:,} entries, too many to check for "
                    f"symlinks leading out of it ({runtime}'s WASI follows them); grant a smaller directory",
                    "run on wasmtime (it never follows a symlink out of a preopened directory)",
                )
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if target != root and not target.startswith(root + os.sep):
                    raise RuntimeUnavailable(
                        runtime,
                        f"dirs={{{guest!r}: {host!r}}}: {os.path.relpath(entry.path, root)} is a symlink to {target}, "
                        f"outside the granted directory, and {runtime}'s WASI would follow it; remove the link",
                        "run on wasmtime (it never follows a symlink out of a preopened directory)",
                    )
            elif entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
