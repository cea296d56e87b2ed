"""Every error wasmlab raises, under one root.

    WasmlabError                  the root: catch this to catch everything wasmlab raises on purpose
    ├── UsageError                bad arguments (unknown language, conflicting options, missing file)
    ├── CompileError              the compiler rejected the snippet; carries its diagnostics
    ├── ToolchainUnavailable      a compiler is not installed; says how to install it
    ├── RuntimeUnavailable        an engine is not installed or cannot do what was asked; says how to fix it
    ├── InvalidModule             bytes that are not a valid Wasm module; carries the byte offset
    ├── Trap                      the guest trapped; carries the trap code and the Wasm backtrace
    │   └── ExitTrap              the guest called proc_exit with a non-zero code (carries .code)
    ├── LimitExceeded             fuel, time, memory or output limit hit; names the limit
    ├── EngineCrashed             an engine's worker process died; it is restarted on the next call
    └── InstanceLost              a kept instance lived in a worker that was since stopped; instantiate again

Each message is one line that names the problem and the fix, so the CLI and the notebook magics can show
`str(error)` alone. Extra detail (diagnostics, backtrace) lives in attributes and in `details()`.
"""

from __future__ import annotations


class WasmlabError(Exception):
    """Root of every error wasmlab raises on purpose."""

    exit_code = 1

    def details(self) -> str:
        """Multi-line detail shown under the one-line message (diagnostics, backtrace); may be empty."""
        return ""


class UsageError(WasmlabError):
    """Bad arguments: an unknown language, conflicting options, a missing file."""

    exit_code = 2


class CompileError(WasmlabError):
    """The compiler rejected the source. `diagnostics` holds its output, with lines of the user's snippet."""

    def __init__(self, message: str, diagnostics: str = "", lang: str = "") -> None:
        super().__init__(message)
        self.diagnostics = diagnostics
        self.lang = lang

    def details(self) -> str:
        return self.diagnostics


class ToolchainUnavailable(WasmlabError):
    """A compiler needed for a language is missing. `install` says how to get it."""

    exit_code = 2

    def __init__(self, lang: str, reason: str, install: str = "") -> None:
        fix = f"; install: {install}" if install else ""
        super().__init__(f"no toolchain for {lang}: {reason}{fix}")
        self.lang, self.reason, self.install = lang, reason, install


class RuntimeUnavailable(WasmlabError):
    """A runtime is missing, or cannot do what was asked (e.g. components on wasm3)."""

    exit_code = 2

    def __init__(self, runtime: str, reason: str, install: str = "") -> None:
        fix = f"; fix: {install}" if install else ""  # an install step, or another runtime to use
        super().__init__(f"runtime {runtime} unavailable: {reason}{fix}")
        self.runtime, self.reason, self.install = runtime, reason, install


class InvalidModule(WasmlabError):
    """Bytes that are not a valid Wasm module or component. `offset` is where parsing stopped."""

    exit_code = 2

    def __init__(self, problem: str, offset: int | None = None) -> None:
        where = f" at byte {offset:#x}" if offset is not None else ""
        super().__init__(f"invalid Wasm{where}: {problem}")
        self.problem, self.offset = problem, offset


class Trap(WasmlabError):
    """The guest trapped. `code` is the trap kind (e.g. 'unreachable', 'integer divide by zero');
    `frames` is the Wasm backtrace, innermost first, as 'func_name (module offset)' strings."""

    def __init__(self, code: str, frames: list[str] | tuple[str, ...] = (), message: str = "") -> None:
        where = f" in {frames[0]}" if frames else ""
        super().__init__(message or f"wasm trap: {code}{where}")
        self.code, self.frames = code, list(frames)

    def details(self) -> str:
        return "\n".join(f"  {i}: {frame}" for i, frame in enumerate(self.frames))


class ExitTrap(Trap):
    """The guest exited through WASI proc_exit with a non-zero status."""

    def __init__(self, code: int) -> None:
        super().__init__("exit", message=f"guest exited with status {code}")
        self.status = code


class LimitExceeded(WasmlabError):
    """A resource limit stopped the guest. `limit` is one of 'fuel', 'time', 'memory', 'output', 'stack'."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


class EngineCrashed(WasmlabError):
    """An engine's worker process died (the kernel did not). The next call starts a fresh worker."""

    def __init__(self, runtime: str, detail: str) -> None:
        super().__init__(f"engine {runtime} crashed ({detail}); it restarts on the next call")
        self.runtime = runtime


class InstanceLost(WasmlabError):
    """A kept instance lived in a worker process that has since been stopped (a time or memory limit, Ctrl-C,
    a crash): its state is gone, and the fix is to instantiate again."""
