"""The runtime protocol: one small class per engine that runs a `Module` and reports what happened.

A backend implements `Runtime.run` (one whole run: instantiate, call or `_start`, tear down) and, with the
"instances" capability, `Runtime.instantiate` (an `Instance` kept across calls). Everything crossing this line is
plain data: `RunOptions` in, `RunResult` out, so in-process engines and worker processes look the same to callers.

    Runtime                                  what callers use; the defaults suit an engine that lacks the feature
      name, variants, install, capabilities  class attributes: what the registry lists
      run(module, options) -> RunResult      required: one whole run; traps and limits recorded in the result
      instantiate(module, options) -> Instance   "instances": a kept instance (default: RuntimeUnavailable)
      unavailable_reason() -> str | None     why it cannot run here (default: None, it can)
      version() -> str                       engine and version, for tables and reports (default: "")
      compile(module) -> float               compile ahead of use, ms (default: 0.0, compiles on use)
      validate(module)                       type-check every function; InvalidModule (default: no validator)
      compiled_ms[sha256]                    ms of the real compile of a module (what `compile` filled)
      serialize(module) -> bytes             "precompiled": the engine's compiled artefact
      load_serialized(module, data)          "precompiled": load it back, {"deserialize": ms}
      kv_items() / kv_clear()                "builtin_host": the built-in host module's key-value store
      close()                                free engines and worker processes (default: nothing to free)

    Instance                                 call(name, *args), export_names(), memory_size(), read_memory(),
                                             write_memory(), close(); `timings`, `last_timings`, `stdout`, `stderr`

Errors are `wasmlab.errors`; how a run records one is `RunResult.record` (and `raise_for_error` raises it
back). Traps (`traps`), argument coercion (`values`), preopened directories (`preopens`) and what guests may
import (`guest`) live in their own modules.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
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
from .guest import BUILTIN_HOST_FUNCTIONS, BUILTIN_HOST_MODULE, WASI_MODULES
from .views import InstanceHelpers

if TYPE_CHECKING:
    from ..module import Module

__all__ = [
    "CAPABILITIES",
    "DEFAULT_MAX_MEMORY",
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_TIMEOUT",
    "Instance",
    "RunOptions",
    "RunResult",
    "Runtime",
    "split_runtime_name",
]

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
    "builtin_host",  # the built-in `wasmlab` host module (log, clock, random, kv) and its store (`kv_items`)
    "components",  # Component Model components
    "precompiled",  # the engine's compiled artefact: `serialize` / `load_serialized`
)


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
    # the codes the engine's trap message allows: several when it cannot tell them apart (`trap` joins them)
    trap_candidates: list[str] = field(default_factory=list)
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
            self.trap_candidates = [str(c) for c in getattr(exc, "candidates", [exc.code])]
        else:
            self.error, self.error_kind = str(exc), exc.kind
        if hasattr(exc, "stdout"):
            self.stdout, self.stderr = exc.stdout, getattr(exc, "stderr", b"")
        return self

    @property
    def trap_ambiguous(self) -> bool:
        """The engine's trap message fits several codes (`trap_candidates`): it cannot tell which."""
        return len(self.trap_candidates) > 1

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
            raise Trap(self.trap, frames, f"wasm trap on {self.runtime}: {self.trap}{where}", self.trap_candidates)
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
            "trap_candidates": self.trap_candidates,
            "error": self.error,
            "error_kind": self.error_kind,
            "timings": self.timings,
            "fuel_used": self.fuel_used,
        }


class Instance(InstanceHelpers):
    """A live instance on one runtime: call exports many times, read and write its memory. Conveniences
    (`exports.NAME(...)`, `read_cstring`, `read_array`, `snapshot`, `diff_memory`) come from `views`.

    Every instance also has `module` and `options` (what it was made from), `timings` (milliseconds of its
    instantiation: "compile", "instantiate"), `last_timings` (of the last call, as the engine measured it:
    {"call": ms}) and `stdout`/`stderr` (what the guest wrote so far, capped at `max_output`)."""

    runtime: str = ""  # the label of the runtime it lives on
    module: Module
    options: RunOptions
    timings: dict[str, float]
    last_timings: dict[str, float]
    stdout: bytes
    stderr: bytes

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
    """One engine (and variant). Subclasses set the class attributes, implement `run`, and override the optional
    methods their capabilities promise (see the module docstring)."""

    name: str = ""  # registry name, e.g. "wasmtime"
    variants: tuple[str, ...] = ()  # e.g. ("cranelift", "winch"); the first is the default
    install: str = ""  # how to make it available
    capabilities: frozenset[str] = frozenset()

    def __init__(self, variant: str | None = None) -> None:
        if variant and variant not in self.variants:
            known = ", ".join(self.variants) or "none"
            raise UsageError(f"{self.name} has no variant {variant!r}: use one of {known}")
        self.variant = variant or (self.variants[0] if self.variants else None)
        self.compiled_ms: dict[str, float] = {}  # sha256 -> ms of the compile that filled the engine's cache

    @property
    def label(self) -> str:
        """`name` or `name:variant` for non-default variants, as written by users."""
        if self.variant and self.variants and self.variant != self.variants[0]:
            return f"{self.name}:{self.variant}"
        return self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"

    # required ---------------------------------------------------------------------------------------------
    def run(self, module: Module, options: RunOptions) -> RunResult:
        """One whole run: instantiate, call `options.invoke` (or a command's `_start`), tear down. Traps, exits and
        exceeded limits are recorded in the result (`RunResult.record`); bad arguments and what this engine
        cannot do raise (UsageError, RuntimeUnavailable)."""
        raise NotImplementedError

    # optional, with defaults ------------------------------------------------------------------------------
    def instantiate(self, module: Module, options: RunOptions) -> Instance:
        """A live instance kept across calls ("instances")."""
        self.require("instances", "instances kept across calls")
        raise NotImplementedError(f"{type(self).__name__} lists 'instances' but does not implement instantiate")

    def unavailable_reason(self) -> str | None:
        """Why this engine cannot run here (one line), or None when it can."""
        return None

    def version(self) -> str:
        """The engine and its version, e.g. "wasmtime 50.0.1"; "" when unknown."""
        return ""

    def compile(self, module: Module) -> float:
        """Compile `module` now, so later runs and instances find it compiled: the milliseconds it took (0.0 when
        it was compiled already, or for an engine that compiles on use; `compiled_ms` keeps the real figure)."""
        return 0.0

    def validate(self, module: Module) -> None:
        """Type-check every function of `module` as this engine would before running it; InvalidModule when it
        does not validate."""
        raise RuntimeUnavailable(self.label, "this engine has no validator", "validate on wasmtime")

    def serialize(self, module: Module) -> bytes:
        """The engine's precompiled artefact for `module` ("precompiled")."""
        self.require("precompiled", "a precompiled artefact (serialize)")
        raise NotImplementedError

    def load_serialized(self, module: Module, data: bytes) -> dict[str, float]:
        """Load a `serialize()` artefact as the compiled code of `module` ("precompiled"): {"deserialize": ms}."""
        self.require("precompiled", "a precompiled artefact (load_serialized)")
        raise NotImplementedError

    def kv_items(self) -> dict[bytes, bytes]:
        """The built-in host module's key-value store ("builtin_host"; it outlives instances)."""
        raise RuntimeUnavailable(self.label, "this engine does not show its key-value store", "use wasmtime")

    def kv_clear(self) -> None:
        """Empty the built-in host module's key-value store."""
        raise RuntimeUnavailable(self.label, "this engine cannot empty its key-value store", "use wasmtime")

    def close(self) -> None:
        """Release engine resources and worker processes."""

    # helpers for backends ---------------------------------------------------------------------------------
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


def split_runtime_name(spec: str) -> tuple[str, str | None]:
    """ "wasmtime:winch" -> ("wasmtime", "winch"); "node" -> ("node", None)."""
    name, _, variant = spec.strip().partition(":")
    return name.lower(), (variant.lower() or None)
