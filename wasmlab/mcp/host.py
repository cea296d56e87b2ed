"""The module behind a server: checks a call's arguments against the tool's schema, calls the guest under the
policy, and turns what happened into an `Outcome` (a value, or a one-line error). Nothing here knows MCP, so
the same path serves every transport and the direct-call benchmark.

One live instance at a time, called by one thread at a time. A trap or an exceeded limit discards it (a
component instance that trapped cannot be entered again) and the next call starts a fresh one, so a hostile
call costs its caller an error and the server nothing.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ExitTrap, LimitExceeded, RuntimeUnavailable, Trap, UsageError
from ..module import Module
from .policy import Policy
from .tools import Tool, toolset

_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b(:|$)")  # Python's `Name: message`


@dataclass
class Outcome:
    """A call's result: `value` (JSON) when `ok`, else `error` (one line) and `kind`: "arguments" (they break
    the schema), "result" (a value with no JSON form), or the guest error's own kind (`wasmlab.errors.ErrorKind`:
    "trap", "exit", "limit:time", "limit:fuel", "limit:memory"...)."""

    ok: bool
    value: Any = None
    error: str = ""
    kind: str = ""

    @property
    def structured(self) -> dict[str, Any]:
        return {"result": self.value}


class ToolHost:
    """`module`'s tools served under `policy` on `runtime` (a wasmtime variant: "wasmtime", "wasmtime:winch")."""

    def __init__(
        self,
        module: Module,
        policy: Policy | None = None,
        *,
        wit: str | Path | None = None,
        runtime: str = "wasmtime",
    ) -> None:
        require_sdk()
        from jsonschema import Draft202012Validator

        self.module = module
        self.policy = policy or Policy()
        self.runtime = runtime
        self.toolset = toolset(module, wit)
        self._validators = {t.name: Draft202012Validator(t.input_schema) for t in self.toolset}
        self._instance: Any = None
        self._lock = threading.Lock()
        self.instances = 0  # how many were started (1 + one per discarding failure)

    @property
    def tools(self) -> list[Tool]:
        return list(self.toolset)

    def start(self) -> None:
        """Compile and instantiate now (a server does this before it answers, so the first call is not slow)."""
        with self._lock:
            self._live()

    def _live(self) -> Any:
        if self._instance is None:
            self._instance = self.module.instantiate(self.runtime, **self.policy.run_options())
            self.instances += 1
        return self._instance

    def _discard(self) -> None:
        if self._instance is not None:
            self._instance.close()
            self._instance = None

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> Outcome:
        """Call tool `name`; UsageError only for a tool that does not exist (MCP reports that as a protocol
        error), every other failure is an Outcome."""
        tool = self.toolset.tools.get(name)
        if tool is None:
            raise UsageError(f"no tool {name!r}: the tools are {', '.join(self.toolset.tools) or 'none'}")
        arguments = arguments or {}
        problem = self.argument_error(tool, arguments)
        if problem:
            return Outcome(False, error=f"invalid arguments for {name}: {problem}", kind="arguments")
        values = tool.lower(arguments)
        with self._lock:
            instance = self._live()
            stderr_before = len(instance.stderr)
            try:
                raw = instance.call(tool.target, *values)
            except (Trap, LimitExceeded, ExitTrap) as exc:
                tail = _last_line(instance.stderr[stderr_before:])
                self._discard()
                error = _one_line(exc) + (f" (guest stderr: {tail})" if tail else "")
                return Outcome(False, error=error, kind=exc.kind)
            except UsageError as exc:  # the guest could not take the values (nothing ran)
                return Outcome(False, error=_one_line(exc), kind="arguments")
        try:
            return Outcome(True, tool.lift(raw))
        except ValueError as exc:
            return Outcome(False, error=f"{name}: {exc}", kind="result")

    def argument_error(self, tool: Tool, arguments: dict[str, Any]) -> str:
        """The first way `arguments` break the tool's input schema ("" when they fit)."""
        from jsonschema.exceptions import best_match

        error = best_match(self._validators[tool.name].iter_errors(arguments))
        if error is None:
            return ""
        where = ".".join(str(p) for p in error.absolute_path)
        return f"{where}: {error.message}" if where else error.message

    def close(self) -> None:
        with self._lock:
            self._discard()

    def __enter__(self) -> ToolHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def require_sdk() -> None:
    """RuntimeUnavailable, with the fix, when the MCP SDK (and the jsonschema it brings) is not installed."""
    import importlib.util

    missing = [name for name in ("mcp", "jsonschema") if importlib.util.find_spec(name) is None]
    if missing:
        raise RuntimeUnavailable("mcp", f"{' and '.join(missing)} not installed", "pip install 'wasmlab[mcp]'")


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _last_line(data: bytes) -> str:
    """The telling line of a guest's stderr: its last exception line (`FileNotFoundError: ...`), else its last."""
    lines = [line.strip() for line in data.decode(errors="replace").splitlines() if line.strip()]
    telling = [line for line in lines if _EXCEPTION_LINE.match(line)]
    return (telling or lines or [""])[-1][:300]
