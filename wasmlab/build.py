"""Source -> `Module`: `compile()` through the toolchain registry and the module cache, and the one place that
turns whatever a user hands over (a Module, bytes, a .wasm or .wat file, source text or a source file) into a
Module: `as_module()` (and `load()` for binaries and WAT files)."""

from __future__ import annotations

import time
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

from .cache import ModuleCache, cache_key
from .errors import CompileError, UsageError
from .module import WAT_SUFFIXES, Module, Provenance
from .module import load as load_binary
from .toolchains import CompileOptions, detect_lang, get_toolchain, normalize_lang
from .toolchains.base import COMPILE_TIMEOUT

MAX_SOURCE_PATH = 4096


def _read_source(source: str | Path, lang: str | None) -> tuple[str, str, str]:
    """(text, canonical lang, file name) for a path or for source text."""
    is_path = isinstance(source, Path) or (
        "\n" not in source and len(source) < MAX_SOURCE_PATH and source.strip() != "" and _is_file(source)
    )
    if is_path:
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"no such source file: {path}")
        lang = normalize_lang(lang) if lang else detect_lang(path)
        return path.read_text(), lang, path.name
    source = str(source)
    if not lang:
        if source.lstrip().startswith("(module") or source.lstrip().startswith("(component"):
            lang = "wat"
        else:
            raise UsageError("source text needs a language: pass lang= (e.g. lang='c'), or give a file path")
    lang = normalize_lang(lang)
    return source, lang, ""


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except OSError:  # e.g. a one-line snippet longer than a file name may be
        return False


@cache
def _toolchain_version(lang: str, toolchain: str | None = None) -> str:
    return get_toolchain(lang, toolchain).version()


def compile(
    source: str | Path,
    lang: str | None = None,
    *,
    kind: str = "library",
    opt: str = "O2",
    strip: bool = True,
    lto: bool = False,
    flags: tuple[str, ...] | list[str] = (),
    wit: str | None = None,
    world: str | None = None,
    name: str = "",
    toolchain: str | None = None,
    use_cache: bool = True,
    timeout: float = COMPILE_TIMEOUT,
) -> Module:
    """Compile a snippet (text) or a source file (path) to a Wasm module.

    `kind`: "library" (exported functions) or "command" (WASI program with `_start`); `opt`: O0..O3, Os, Oz;
    `strip`: drop DWARF and other custom sections but keep function names; `toolchain` picks one where a
    language has several (javascript: "starlingmonkey", the default, or "quickjs"). Results are cached by content
    (language, source, options, toolchain version): a second compile of the same snippet is a file read.
    Raises CompileError with the compiler's diagnostics, ToolchainUnavailable when the compiler is missing.
    """
    text, lang, filename = _read_source(source, lang)
    compiler = get_toolchain(lang, toolchain)
    if kind not in compiler.kinds:
        raise UsageError(f"{lang} cannot build a {kind}: use kind={' or '.join(map(repr, compiler.kinds))}")
    options = CompileOptions(
        kind=kind, opt=opt, strip=strip, lto=lto, flags=tuple(flags), wit=wit, world=world, timeout=timeout
    )
    filename = filename or f"snippet{compiler.extensions[0]}"
    name = name or Path(filename).stem
    version = _toolchain_version(lang, compiler.name or None)
    key = cache_key(
        lang=lang,
        source=text,
        options=asdict(options) | {"timeout": None},
        toolchain=version,
        recipe=compiler.recipe,
        **({"backend": compiler.name} if compiler.name else {}),
    )
    store = ModuleCache()
    started = time.perf_counter()

    hit = store.get(key) if use_cache else None
    if hit is not None:
        data, _meta = hit
        provenance = Provenance(
            "compile",
            filename,
            lang,
            kind,
            options.opt,
            strip,
            lto,
            version,
            (time.perf_counter() - started) * 1000,
            True,
            key,
        )
        return Module(data, provenance, name, source=text)

    with compiler.workdir(options) as workdir:
        try:
            data = compiler.build(text, options, workdir, filename)
        except FileNotFoundError:  # the compiler succeeded without writing out.wasm (flags=["-fno-emit-bin"])
            data = b""
    if not data.startswith(b"\0asm"):
        raise CompileError(f"{lang}: the compiler produced no Wasm module", lang=lang)
    if strip:
        from .tools import strip_debug

        data = strip_debug(data)
    compile_ms = (time.perf_counter() - started) * 1000
    provenance = Provenance("compile", filename, lang, kind, options.opt, strip, lto, version, compile_ms, False, key)
    if use_cache:
        store.put(key, data, {"lang": lang, "kind": kind, "toolchain": version, "compile_ms": compile_ms})
    return Module(data, provenance, name, source=text)


def load(source: str | Path | bytes | bytearray | memoryview, *, name: str = "", validate: bool = True) -> Module:
    """A `Module` from a .wasm path or bytes (WAT text files are compiled). Parses at once, so malformed input
    raises InvalidModule here; `validate=True` also type-checks every function body."""
    if isinstance(source, (str, Path)) and Path(source).suffix in WAT_SUFFIXES:
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
        return compile(path, name=name)
    return load_binary(source, name=name, validate=validate)


def as_module(
    source: Module | str | Path | bytes | bytearray | memoryview,
    lang: str | None = None,
    *,
    kind: str = "library",
    name: str = "",
    **options: Any,
) -> Module:
    """What a user handed over, as a Module: a Module as it is; bytes, or a .wasm file (unless `lang` says it is
    source), loaded; WAT files and other source files or source text compiled (with `lang`, `kind` and the
    `compile` options). The CLI, the magics and `compare` resolve their inputs here."""
    if isinstance(source, Module):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        return load_binary(source, name=name)
    if _is_binary_file(source) and not lang:
        return load_binary(source, name=name)
    return compile(source, lang, kind=kind, name=name, **options)


def _is_binary_file(source: str | Path) -> bool:
    """A path (not source text) to a .wasm file, or to any file holding a Wasm binary."""
    if isinstance(source, str) and ("\n" in source or len(source) >= MAX_SOURCE_PATH):
        return False
    path = Path(source)
    if path.suffix == ".wasm":
        return True
    try:
        with path.open("rb") as file:
            return file.read(4) == b"\0asm"
    except OSError:
        return False
