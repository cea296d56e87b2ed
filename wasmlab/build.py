"""`compile()`: source text or a source file -> `Module`, through the toolchain registry and the module cache."""

from __future__ import annotations

import time
from dataclasses import asdict
from functools import cache
from pathlib import Path

from .cache import ModuleCache, cache_key
from .errors import CompileError, UsageError
from .module import Module, Provenance
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
def _toolchain_version(lang: str) -> str:
    return get_toolchain(lang).version()


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
    use_cache: bool = True,
    timeout: float = COMPILE_TIMEOUT,
) -> Module:
    """Compile a snippet (text) or a source file (path) to a Wasm module.

    `kind`: "library" (exported functions) or "command" (WASI program with `_start`); `opt`: O0..O3, Os, Oz;
    `strip`: drop DWARF and other custom sections but keep function names. Results are cached by content
    (language, source, options, toolchain version): a second compile of the same snippet is a file read.
    Raises CompileError with the compiler's diagnostics, ToolchainUnavailable when the compiler is missing.
    """
    text, lang, filename = _read_source(source, lang)
    toolchain = get_toolchain(lang)
    if kind not in toolchain.kinds:
        raise UsageError(f"{lang} cannot build a {kind}: use kind={' or '.join(map(repr, toolchain.kinds))}")
    options = CompileOptions(
        kind=kind, opt=opt, strip=strip, lto=lto, flags=tuple(flags), wit=wit, world=world, timeout=timeout
    )
    filename = filename or f"snippet{toolchain.extensions[0]}"
    name = name or Path(filename).stem
    version = _toolchain_version(lang)
    key = cache_key(
        lang=lang,
        source=text,
        options=asdict(options) | {"timeout": None},
        toolchain=version,
        recipe=toolchain.recipe,
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

    with toolchain.workdir(options) as workdir:
        try:
            data = toolchain.build(text, options, workdir, filename)
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
