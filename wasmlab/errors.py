"""Every error wasmlab raises, under one root.

    WasmlabError                  the root: catch this to catch everything wasmlab raises on purpose   "error"
    ├── UsageError                bad arguments (unknown language, conflicting options, missing file)  "usage"
    ├── CompileError              the compiler rejected the snippet; carries its diagnostics           "compile"
    ├── ToolchainUnavailable      a compiler is not installed; says how to install it                  "unavailable"
    ├── RuntimeUnavailable        an engine is not installed or cannot do what was asked; the fix      "unavailable"
    ├── InvalidModule             bytes that are not a valid Wasm module; carries the byte offset      "invalid"
    ├── Trap                      the guest trapped; carries the trap code and the Wasm backtrace      "trap"
    │   └── ExitTrap              the guest called proc_exit with a non-zero status (`.code`)          "exit"
    ├── LimitExceeded             fuel, time, memory, output or stack limit hit; names the limit       "limit:<limit>"
    ├── EngineCrashed             an engine's worker process died; it is restarted on the next call    "crash"
    └── InstanceLost              a kept instance lived in a worker that was since stopped             "lost"

Each message is one line that names the problem and the fix, so the CLI and the notebook magics can show
`str(error)` alone. Extra detail (diagnostics, backtrace) lives in attributes and in `details()`.

The right-hand column is each error's `kind` (`ErrorKind`): the word a `RunResult` records a failed run under
(`error_kind`) and worker processes answer with, so a result can be turned back into the error it stands for
(`error_for`). Those two are the one mapping between errors and recorded results.
"""

from __future__ import annotations

from typing import ClassVar

LIMITS = ("fuel", "time", "memory", "output", "stack")  # what `LimitExceeded.limit` names


class ErrorKind:
    """The names of what stopped a run (`RunResult.error_kind`, `WasmlabError.kind`)."""

    ERROR = "error"
    USAGE = "usage"
    COMPILE = "compile"
    UNAVAILABLE = "unavailable"
    INVALID = "invalid"
    TRAP = "trap"
    EXIT = "exit"
    CRASH = "crash"
    LOST = "lost"
    LIMIT = "limit:"  # the prefix of the limit kinds:
    LIMIT_FUEL = "limit:fuel"
    LIMIT_TIME = "limit:time"
    LIMIT_MEMORY = "limit:memory"
    LIMIT_OUTPUT = "limit:output"
    LIMIT_STACK = "limit:stack"

    @staticmethod
    def limit(name: str) -> str:
        """The kind of limit `name`: "time" -> "limit:time"."""
        return ErrorKind.LIMIT + name

    @staticmethod
    def limit_of(kind: str | None) -> str | None:
        """The limit a kind names ("limit:time" -> "time"), None for other kinds."""
        return kind.removeprefix(ErrorKind.LIMIT) if kind and kind.startswith(ErrorKind.LIMIT) else None


class WasmlabError(Exception):
    """Root of every error wasmlab raises on purpose."""

    exit_code = 1
    kind: ClassVar[str] = ErrorKind.ERROR

    def details(self) -> str:
        """Multi-line detail shown under the one-line message (diagnostics, backtrace); may be empty."""
        return ""


class UsageError(WasmlabError):
    """Bad arguments: an unknown language, conflicting options, a missing file."""

    exit_code = 2
    kind = ErrorKind.USAGE


class CompileError(WasmlabError):
    """The compiler rejected the source. `diagnostics` holds its output, with lines of the user's snippet."""

    kind = ErrorKind.COMPILE

    def __init__(self, message: str, diagnostics: str = "", lang: str = "") -> None:
        super().__init__(message)
        self.diagnostics = diagnostics
        self.lang = lang

    def details(self) -> str:
        return self.diagnostics


class ToolchainUnavailable(WasmlabError):
    """A compiler needed for a language is missing. `install` says how to get it."""

    exit_code = 2
    kind = ErrorKind.UNAVAILABLE

    def __init__(self, lang: str, reason: str, install: str = "") -> None:
        fix = f"; install: {install}" if install else ""
        super().__init__(f"no toolchain for {lang}: {reason}{fix}")
        self.lang, self.reason, self.install = lang, reason, install


class RuntimeUnavailable(WasmlabError):
    """A runtime is missing, or cannot do what was asked (e.g. components on wasm3)."""

    exit_code = 2
    kind = ErrorKind.UNAVAILABLE

    def __init__(self, runtime: str, reason: str, install: str = "") -> None:
        fix = f"; fix: {install}" if install else ""  # an install step, or another runtime to use
        super().__init__(f"runtime {runtime} unavailable: {reason}{fix}")
        self.runtime, self.reason, self.install = runtime, reason, install


class InvalidModule(WasmlabError):
    """Bytes that are not a valid Wasm module or component. `offset` is where parsing stopped."""

    exit_code = 2
    kind = ErrorKind.INVALID

    def __init__(self, problem: str, offset: int | None = None) -> None:
        where = f" at byte {offset:#x}" if offset is not None else ""
        super().__init__(f"invalid Wasm{where}: {problem}")
        self.problem, self.offset = problem, offset


class Trap(WasmlabError):
    """The guest trapped. `code` is the trap kind (e.g. 'unreachable', 'integer divide by zero');
    `frames` is the Wasm backtrace, innermost first, as 'func_name (module offset)' strings. `candidates`: the
    codes the engine's message allows; more than one when the engine cannot tell them apart (V8 says "float
    unrepresentable" for NaN and overflow alike): `code` is then them all joined by " or ", and `ambiguous`."""

    kind = ErrorKind.TRAP
    code: str | int

    def __init__(
        self,
        code: str,
        frames: list[str] | tuple[str, ...] = (),
        message: str = "",
        candidates: tuple[str, ...] | list[str] = (),
    ) -> None:
        where = f" in {frames[0]}" if frames else ""
        super().__init__(message or f"wasm trap: {code}{where}")
        self.code, self.frames = code, list(frames)
        self.candidates = list(candidates) or [code]

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1

    def details(self) -> str:
        return "\n".join(f"  {i}: {frame}" for i, frame in enumerate(self.frames))


class ExitTrap(Trap):
    """The guest exited through WASI proc_exit with a non-zero status: `code` is that status (as wasmtime-py's
    `ExitTrap.code`), `status` the same number."""

    kind = ErrorKind.EXIT
    code: int

    def __init__(self, code: int) -> None:
        super().__init__("exit", message=f"guest exited with status {code}")
        self.code = code

    @property
    def status(self) -> int:
        return self.code


class LimitExceeded(WasmlabError):
    """A resource limit stopped the guest. `limit` is one of `LIMITS`: 'fuel', 'time', 'memory', 'output',
    'stack'."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit

    @property
    def kind(self) -> str:  # type: ignore[override]  # "limit:time"...: one kind per limit, not per class
        return ErrorKind.limit(self.limit)


class EngineCrashed(WasmlabError):
    """An engine's worker process died (the kernel did not). The next call starts a fresh worker."""

    kind = ErrorKind.CRASH

    def __init__(self, runtime: str, detail: str) -> None:
        super().__init__(f"engine {runtime} crashed ({detail}); it restarts on the next call")
        self.runtime = runtime


class InstanceLost(WasmlabError):
    """A kept instance lived in a worker process that has since been stopped (a time or memory limit, Ctrl-C,
    a crash): its state is gone, and the fix is to instantiate again."""

    kind = ErrorKind.LOST


def error_for(kind: str | None, message: str, runtime: str = "") -> WasmlabError:
    """The error a recorded `kind` stands for, with `message` (the reverse of `exc.kind`): LimitExceeded for the
    limit kinds, EngineCrashed, InstanceLost, RuntimeUnavailable (of `runtime`), InvalidModule, UsageError, else
    WasmlabError. Traps and exits are recorded with their own fields, not as kinds: see `RunResult`."""
    limit = ErrorKind.limit_of(kind)
    if limit is not None:
        return LimitExceeded(limit, message)
    if kind == ErrorKind.CRASH:
        error: WasmlabError = EngineCrashed(runtime, message)
        error.args = (message,)  # the recorded message already says it all
        return error
    if kind == ErrorKind.LOST:
        return InstanceLost(message)
    if kind == ErrorKind.UNAVAILABLE:
        return RuntimeUnavailable(runtime, message)
    if kind == ErrorKind.INVALID:
        error = InvalidModule(message)
        error.args = (message,)
        return error
    if kind == ErrorKind.USAGE:
        return UsageError(message)
    return WasmlabError(message)
