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
    EngineCrashed,
    ExitTrap,
    InstanceLost,
    InvalidModule,
    LimitExceeded,
    RuntimeUnavailable,
    ToolchainUnavailable,
    Trap,
    UsageError,
    WasmlabError,
)
from .labextension_paths import _jupyter_labextension_paths  # noqa: F401 (Jupyter's hook for the prebuilt extension)
from .module import Module, Provenance, load
from .toolchains import list_toolchains

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "CompileError",
    "EngineCrashed",
    "ExitTrap",
    "InstanceLost",
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


def load_ipython_extension(ipython):  # `%load_ext wasmlab`: magics and rich displays, imported only here
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):  # `%unload_ext wasmlab`
    from .notebook.magics import unload_ipython_extension as unload

    unload(ipython)
