"""wasmlab: compile snippets to WebAssembly, look inside any module, and run it on several engines side by side.

    >>> import wasmlab
    >>> m = wasmlab.compile("int add(int a, int b) { return a + b; }", lang="c")
    >>> [e.name for e in m.exports if e.kind == "func"]
    ['add']
"""

from __future__ import annotations

from .build import compile
from .compare import Comparison, compare
from .errors import (
    CompileError,
    ExitTrap,
    InvalidModule,
    LimitExceeded,
    RuntimeUnavailable,
    ToolchainUnavailable,
    Trap,
    UsageError,
    WasmlabError,
)
from .module import Module, Provenance, load
from .toolchains import list_toolchains

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "CompileError",
    "ExitTrap",
    "InvalidModule",
    "LimitExceeded",
    "Module",
    "Provenance",
    "RuntimeUnavailable",
    "ToolchainUnavailable",
    "Trap",
    "UsageError",
    "WasmlabError",
    "compare",
    "compile",
    "list_toolchains",
    "load",
]
