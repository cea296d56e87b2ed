"""The toolchain registry: which language compiles with which backend, loaded on first use.

Built-ins are listed as `{lang: (module, class)}`; a module that fails to import makes its language
unavailable with the reason, it never breaks `import wasmlab`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import ToolchainUnavailable, UsageError
from .base import KINDS, OPT_LEVELS, CompileOptions, Toolchain

__all__ = [
    "KINDS",
    "OPT_LEVELS",
    "CompileOptions",
    "Toolchain",
    "ToolchainStatus",
    "detect_lang",
    "get_toolchain",
    "list_toolchains",
    "normalize_lang",
]

BUILTIN: dict[str, tuple[str, str]] = {
    "wat": ("wat", "WatToolchain"),
    "c": ("clang", "CToolchain"),
    "cpp": ("clang", "CppToolchain"),
    "zig": ("zig", "ZigToolchain"),
    "rust": ("rust", "RustToolchain"),
    "go": ("go", "GoToolchain"),
    "assemblyscript": ("assemblyscript", "AssemblyScriptToolchain"),
    "python": ("python", "PythonToolchain"),
}

ALIASES = {
    "c++": "cpp",
    "cxx": "cpp",
    "cc": "cpp",
    "as": "assemblyscript",
    "ts": "assemblyscript",
    "rs": "rust",
    "py": "python",
    "golang": "go",
    "wast": "wat",
}

EXTENSIONS = {
    ".wat": "wat",
    ".wast": "wat",
    ".c": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".zig": "zig",
    ".rs": "rust",
    ".go": "go",
    ".ts": "assemblyscript",
    ".py": "python",
}


def normalize_lang(lang: str) -> str:
    """The canonical language name for a name or alias; UsageError for an unknown one."""
    key = lang.strip().lower()
    key = ALIASES.get(key, key)
    if key not in BUILTIN:
        raise UsageError(f"unknown language {lang!r}: use one of {', '.join(BUILTIN)}")
    return key


def detect_lang(path: str | Path) -> str:
    """The language of a source file, from its extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise UsageError(
            f"cannot tell the language of {Path(path).name!r} from its extension: pass lang= (--lang) "
            f"or use one of {', '.join(sorted(EXTENSIONS))}"
        )
    return EXTENSIONS[suffix]


@cache
def _load(lang: str) -> Toolchain | str:
    module_name, class_name = BUILTIN[lang]
    try:
        module = importlib.import_module(f".{module_name}", __name__)
        return getattr(module, class_name)()
    except Exception as exc:  # a broken backend is reported, never fatal
        return f"backend failed to load: {type(exc).__name__}: {exc}"


def get_toolchain(lang: str) -> Toolchain:
    """The toolchain for `lang`, ready to compile; ToolchainUnavailable (with the fix) when it cannot."""
    lang = normalize_lang(lang)
    toolchain = _load(lang)
    if isinstance(toolchain, str):
        raise ToolchainUnavailable(lang, toolchain)
    reason = toolchain.unavailable_reason()
    if reason:
        raise ToolchainUnavailable(lang, reason, toolchain.install)
    return toolchain


@dataclass(frozen=True)
class ToolchainStatus:
    lang: str
    available: bool
    version: str
    reason: str
    install: str
    extensions: tuple[str, ...]
    kinds: tuple[str, ...]


def list_toolchains() -> list[ToolchainStatus]:
    """Every language with whether it can compile here, its compiler version, and how to fix it if not."""
    rows = []
    for lang in BUILTIN:
        toolchain = _load(lang)
        if isinstance(toolchain, str):
            rows.append(ToolchainStatus(lang, False, "", toolchain, "", (), ()))
            continue
        reason = toolchain.unavailable_reason() or ""
        version = "" if reason else toolchain.version()
        rows.append(
            ToolchainStatus(lang, not reason, version, reason, toolchain.install, toolchain.extensions, toolchain.kinds)
        )
    return rows
