"""What a benchmark of your own code measures: a module (given, loaded or compiled), the call of one export
with its arguments (or the whole WASI command with its argv), and the source, when known, for a native build.

    subject = Subject.make("fib.c", "fib", (25,))      # compiled as a library (the call needs an export)
    subject = Subject.make(module)                      # a WASI command: its `_start`
    subject.describe()                                  # what JSON reports: name, sha256, size, call...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..module import Module

MAX_PATH = 4096


@dataclass(frozen=True)
class Call:
    """One call: export `name` with `args`."""

    name: str
    args: tuple[Any, ...] = ()

    @property
    def label(self) -> str:
        """`fib(25)`: the call, as tables and figures name it."""
        return f"{self.name}({', '.join(repr(a) for a in self.args)})"


@dataclass(frozen=True)
class Subject:
    """The module measured, the call (None: run the WASI command with `argv`), and the source text and
    language the module was compiled from (None when it came as bytes: no native build then)."""

    module: Module
    call: Call | None = None
    argv: tuple[str, ...] = ()
    source: str | None = None
    lang: str | None = None
    opt: str = "O2"

    @classmethod
    def make(
        cls,
        target: Module | str | Path | bytes,
        invoke: str | None = None,
        args: Sequence[Any] = (),
        *,
        argv: Sequence[str] = (),
        lang: str | None = None,
        opt: str = "O2",
        kind: str | None = None,
    ) -> Subject:
        """A subject from a Module, .wasm bytes or path, a source path (compiled: a library when `invoke` is
        given, else a command, unless `kind`), or source text (with `lang`, or WAT)."""
        from ..build import compile
        from ..module import load

        call = Call(invoke, tuple(args)) if invoke else None
        if args and not invoke:
            raise UsageError("arguments need a call: pass invoke= the export to call with them")
        kind = kind or ("library" if call else "command")
        if isinstance(target, Module):
            module = target
        elif isinstance(target, (bytes, bytearray, memoryview)):
            module = load(bytes(target))
        elif isinstance(target, Path) or _is_path(target):
            path = Path(target)
            if not path.is_file():
                raise UsageError(f"no such file: {path}")
            module = load(path) if path.suffix == ".wasm" and not lang else compile(path, lang, kind=kind, opt=opt)
        else:
            module = compile(str(target), lang, kind=kind, opt=opt)
        provenance = module.provenance
        if call is not None:
            module.func_type(call.name)  # UsageError naming the exports when there is no such function
        elif not module.is_command:
            raise UsageError(
                f"{module.name} is not a WASI command (no _start): pass invoke= (--invoke F ARGS) the export to call"
            )
        source = module.source if provenance.origin == "compile" else None
        return cls(module, call, tuple(argv), source, provenance.lang or None, provenance.opt or opt)

    @property
    def label(self) -> str:
        """What one measured run does: `fib(25)`, or `hello.wasm (WASI command)`."""
        if self.call is not None:
            return self.call.label
        return f"{self.module.name} {' '.join(self.argv)}".strip() + " (WASI command)"

    def describe(self) -> dict[str, Any]:
        """The subject as plain data (JSON): the module's name, sha256 and size, how it was built, the call."""
        p = self.module.provenance
        return {
            "name": self.module.name,
            "sha256": self.module.sha256,
            "size": self.module.size,
            "kind": "library" if self.call else "command",
            "lang": self.lang or "",
            "opt": self.opt if p.origin == "compile" and self.lang not in ("wat", "python") else "",
            "origin": p.origin,
            "source_name": Path(p.source_name).name if p.source_name else "",
            "call": {"export": self.call.name, "args": list(self.call.args)} if self.call else None,
            "argv": list(self.argv),
            "label": self.label,
        }


def is_subject(value: Any) -> bool:
    """True when `value` names code to measure (a Module, bytes, a path to a module or source, source text),
    False for what the kernel suite takes in that place (runtime names)."""
    from ..toolchains import EXTENSIONS

    if isinstance(value, (Module, bytes, bytearray, memoryview, Path)):
        return True
    if not isinstance(value, str):
        return False
    text = value.strip()
    if any(c in text for c in "\n {};()"):  # source text: runtime names have none of these
        return True
    return Path(text).suffix.lower() in (*EXTENSIONS, ".wasm")


def _is_path(text: Any) -> bool:
    if not isinstance(text, str) or "\n" in text or len(text) > MAX_PATH:
        return False
    try:
        return Path(text).is_file()
    except OSError:
        return False
