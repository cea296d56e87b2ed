"""`Handler`: a Wasm module that serves HTTP requests, and how one request runs through an instance: a standard
wasi:http handler's core module on the lab's host (`call_http`, kind "http"), the older `wasmlab-edge/1` ABI
(`call_abi`, kind "abi") or a WASI command run (`call_wasi`, kind "wasi")."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ExitTrap, UsageError, WasmlabError
from ..module import Module, Provenance
from .abi import MASK32, MASK64, BadResponse, Request, Response, decode_response, handler_kind, uses_helper, with_helper
from .standard import CALLBACKS as STANDARD_CALLBACKS
from .standard import HANDLE_EXPORT, EdgeHandler, build

MAX_RESPONSE = 16 << 20  # bytes a handler may return


@dataclass
class Handler:
    """A module that is an edge handler. `kind`: "http" (the core module of a standard wasi:http component;
    `standard` is the `EdgeHandler` with the component), "abi" (alloc/handle exports) or "wasi" (a command:
    request on stdin, response on stdout; one instance per request)."""

    module: Module
    kind: str
    name: str = ""
    helper: bool = False
    standard: Any = None  # EdgeHandler, for kind "http"

    def __post_init__(self) -> None:
        self.name = self.name or self.module.name

    def __repr__(self) -> str:
        lang = self.module.provenance.lang or self.module.provenance.origin
        helper = " +helper" if self.helper else ""
        return f"<wasmlab.edge.Handler {self.name!r} {self.kind} ({lang}{helper}) sha256={self.module.sha256[:12]}>"

    @classmethod
    def from_module(cls, module: Module, name: str = "") -> Handler:
        if module.is_component or HANDLE_EXPORT in module.export_names("func"):
            return cls.from_standard(build(module, name=name or module.name))
        return cls(module, handler_kind(module), name)

    @classmethod
    def from_standard(cls, standard: Any) -> Handler:
        """The handler the lab serves for a standard component (`wasmlab.edge.build`): its core module."""
        if standard.core is None:
            raise UsageError(
                f"{standard.name} is a {standard.lang or 'composed'} wasi:http component with no single core module: "
                "the lab's platform serves core modules through its own wasi:http host (serve it with "
                "--platform jco or workerd)"
            )
        module = Module(standard.core, Provenance("bytes", lang=standard.lang), name=standard.name)
        return cls(module, "http", standard.name, standard.helper, standard)

    def invoke(self, request: Request | bytes | str = "GET /", runtime: str = "wasmtime", **limits: Any) -> Response:
        """Serve one request on a fresh instance (no server): `request` is a `Request`, encoded bytes, or a
        "METHOD /target" line. Limits: `timeout` (s), `fuel`, `max_memory` (bytes). Raises on traps/limits."""
        from .strategies import Limits, serve_once

        out = serve_once(self, runtime, as_bytes(request), Limits(**limits))
        return out if isinstance(out, Response) else decode_response(out)


def as_bytes(request: Request | bytes | str) -> bytes:
    if isinstance(request, Request):
        return request.encode()
    if isinstance(request, str):
        method, _, target = request.strip().partition(" ")
        return Request(method or "GET", target or "/").encode()
    return bytes(request)


def compile_handler(
    source: str | Path | Module,
    lang: str | None = None,
    *,
    helper: bool | None = None,
    kind: str = "library",
    name: str = "",
    standard: bool | None = None,
    **options: Any,
) -> Handler:
    """A `Handler` from source text, a source file, a .wasm file (a core module or a wasi:http component), a
    `Module` or an `EdgeHandler`.

    `standard=None`: C and C++ handlers that define `on_request`, WAT and modules that export the wasi:http
    incoming handler, and components become standard wasi:http handlers (`wasmlab.edge.build`, served on
    wasmtime through the lab's wasi:http host); `standard=False` keeps C/C++ on the older wasmlab-edge/1 ABI
    (which the out-of-process engines, node, wasm3, wasmer, can also run).

    `helper=None` adds the language's helper when the code defines its callback (`on_request` in C and Rust,
    `onRequest` in Go and AssemblyScript); `True` insists, `False` compiles the code as it is (it must then
    export alloc/handle itself). `kind="command"` builds a WASI command handler (stdin -> stdout). Other
    options go to `wasmlab.compile` (opt, strip, lto, flags, use_cache...)."""
    from ..build import compile
    from ..module import load
    from ..toolchains import detect_lang, normalize_lang

    if isinstance(source, EdgeHandler):
        return Handler.from_standard(source)
    if isinstance(source, Module):
        return Handler.from_module(source, name)
    filename = ""
    path = Path(source) if isinstance(source, Path) or _looks_like_file(source) else None
    if path is not None:
        if not path.is_file():
            raise UsageError(f"no such handler file: {path}")
        if path.suffix == ".wasm" and not lang:
            return Handler.from_module(load(path, name=name or path.stem), name or path.stem)
        lang = normalize_lang(lang) if lang else detect_lang(path)
        text, filename, name = path.read_text(), path.name, name or path.stem
    else:
        if not lang:
            if str(source).lstrip().startswith("(module"):
                lang = "wat"
            else:
                raise UsageError("handler source text needs a language: pass lang= (c, rust, go, assemblyscript...)")
        text = str(source)
        lang = normalize_lang(lang)
    if standard is None:
        is_http = lang == "wat" and HANDLE_EXPORT in text
        standard = kind == "library" and (is_http or bool(STANDARD_CALLBACKS.get(lang, _NEVER).search(text)))
    if standard:
        return Handler.from_standard(build(text, lang, name=name or "handler", helper=helper, **options))
    if helper is None:
        helper = kind == "library" and uses_helper(text, lang)
    if helper:
        if kind != "library":
            raise UsageError("the edge helpers build alloc/handle libraries: use kind='library' with helper=True")
        text = with_helper(text, lang, filename)
    module = compile(text, lang, kind=kind, name=name or "handler", **options)
    return Handler(module, handler_kind(module), name or module.name, bool(helper))


_NEVER = re.compile(r"(?!)")


def _looks_like_file(text: str) -> bool:
    if "\n" in text or len(text) > 4096 or not text.strip():
        return False
    try:
        return Path(text).is_file() or Path(text).suffix in (".c", ".rs", ".go", ".ts", ".wat", ".wasm", ".cpp")
    except OSError:
        return False


# one request through an instance -----------------------------------------------------------------------------
def call_abi(instance: Any, data: bytes) -> tuple[bytes, float]:
    """Run one request through an ABI instance: alloc, write, handle, read. Returns (response bytes, ms)."""
    t0 = time.perf_counter()
    size = len(data)
    ptr = instance.call("alloc", size) & MASK32
    if size:
        instance.write_memory(ptr, data)
    packed = instance.call("handle", ptr, size) & MASK64
    out_ptr, out_len = packed >> 32, packed & MASK32
    if out_len > MAX_RESPONSE:
        raise BadResponse(f"handler returned {out_len:,} bytes: more than the {MAX_RESPONSE >> 20} MiB allowed")
    try:
        out = instance.read_memory(out_ptr, out_len) if out_len else b""
    except UsageError:
        raise BadResponse(
            f"handle() returned bytes {out_ptr}..{out_ptr + out_len}, outside linear memory: "
            "return (ptr << 32) | len of the response"
        ) from None
    return out, (time.perf_counter() - t0) * 1000.0


def call_wasi(module: Module, runtime: str, data: bytes, options: Any) -> tuple[bytes, float, float]:
    """Run one request through a WASI command handler. Returns (stdout, instantiate ms, run ms)."""
    from ..runtimes import run

    result = run(module, runtime, options.with_(invoke=None, stdin=data), check=True)
    if result.exit_code not in (None, 0):
        raise ExitTrap(result.exit_code)
    if len(result.stdout) > MAX_RESPONSE:
        raise BadResponse(f"handler wrote more than the {MAX_RESPONSE >> 20} MiB a response may have")
    if not result.stdout and result.stderr:
        last = result.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise WasmlabError(f"handler wrote nothing to stdout; stderr: {last[0] if last else ''}")
    return result.stdout, result.timings.get("instantiate", 0.0), result.timings.get("run", 0.0)


def parse_request(data: bytes) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """The (method, target, headers, body) of request bytes in the `encode_request` form."""
    head, _, body = data.partition(b"\n\n")
    first, _, rest = head.partition(b"\n")
    method, _, target = first.decode("latin-1").partition(" ")
    headers = []
    for line in rest.split(b"\n") if rest else ():
        name, _, value = line.decode("latin-1").partition(": ")
        headers.append((name, value))
    return method, target or "/", headers, body


def call_http(instance: Any, data: bytes) -> tuple[Response, float]:
    """Run one request through a standard handler's instance (an `HttpInstance`). Returns (response, ms)."""
    t0 = time.perf_counter()
    method, target, headers, body = parse_request(data)
    response = instance.host.serve(instance.binding, method, target, headers, body)
    return response, (time.perf_counter() - t0) * 1000.0
