"""The toolchain registry: which language compiles with which backend, loaded on first use.

Built-ins are listed as `{lang: (module, class)}`; a language with several toolchains lists them in `CHOICES`
(`{lang: {toolchain: (module, class)}}`, the first is the default), picked with `toolchain=`. A module that fails
to import makes its toolchain unavailable with the reason, it never breaks `import wasmlab`.
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
    "toolchain_names",
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
    "javascript": ("starlingmonkey", "StarlingMonkeyToolchain"),
}

CHOICES: dict[str, dict[str, tuple[str, str]]] = {
    "javascript": {
        "starlingmonkey": ("starlingmonkey", "StarlingMonkeyToolchain"),
        "quickjs": ("quickjs", "QuickJSToolchain"),
    },
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
    "js": "javascript",
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
    ".js": "javascript",
    ".mjs": "javascript",
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


def toolchain_names(lang: str) -> tuple[str, ...]:
    """The toolchains `toolchain=` can pick for `lang`, the default first (empty: the language has one)."""
    return tuple(CHOICES.get(normalize_lang(lang), ()))


def _choice(lang: str, toolchain: str | None) -> str | None:
    """The canonical toolchain name for `lang` (None for a language with a single toolchain)."""
    names = toolchain_names(lang)
    if not names:
        if toolchain:
            picks = ", ".join(f"{k} ({'/'.join(v)})" for k, v in CHOICES.items())
            raise UsageError(f"{lang} has a single toolchain: toolchain= applies to {picks}")
        return None
    if toolchain is None:
        return names[0]
    if toolchain.strip().lower() not in names:
        raise UsageError(f"{lang} has no toolchain {toolchain!r}: use one of {', '.join(names)}")
    return toolchain.strip().lower()


@cache
def _load(lang: str, toolchain: str | None = None) -> Toolchain | str:
    module_name, class_name = CHOICES[lang][toolchain] if toolchain else BUILTIN[lang]
    try:
        module = importlib.import_module(f".{module_name}", __name__)
        return getattr(module, class_name)()
    except Exception as exc:  # a broken backend is reported, never fatal
        return f"backend failed to load: {type(exc).__name__}: {exc}"


def get_toolchain(lang: str, toolchain: str | None = None) -> Toolchain:
    """The toolchain for `lang` (`toolchain` picks one where there are several), ready to compile;
    ToolchainUnavailable (with the fix) when it cannot."""
    lang = normalize_lang(lang)
    name = _choice(lang, toolchain)
    loaded = _load(lang, name)
    label = f"{lang} ({name})" if name else lang
    if isinstance(loaded, str):
        raise ToolchainUnavailable(label, loaded)
    reason = loaded.unavailable_reason()
    if reason:
        raise ToolchainUnavailable(label, reason, loaded.install)
    return loaded


@dataclass(frozen=True)
class ToolchainStatus:
    lang: str
    available: bool
    version: str
    reason: str
    install: str
    extensions: tuple[str, ...]
    kinds: tuple[str, ...]
    toolchain: str = ""  # for languages with several toolchains: which one ("" for the others)


def list_toolchains() -> list[ToolchainStatus]:
    """Every language (and every toolchain of a language with several) with whether it can compile here, its
    compiler version, and how to fix it if not."""
    rows = []
    for lang in BUILTIN:
        for name in CHOICES.get(lang) or (None,):
            toolchain = _load(lang, name)
            if isinstance(toolchain, str):
                rows.append(ToolchainStatus(lang, False, "", toolchain, "", (), (), name or ""))
                continue
            reason = toolchain.unavailable_reason() or ""
            version = "" if reason else toolchain.version()
            rows.append(
                ToolchainStatus(
                    lang, not reason, version, reason, toolchain.install, toolchain.extensions, toolchain.kinds,
                    name or "",
                )
            )
    return rows
