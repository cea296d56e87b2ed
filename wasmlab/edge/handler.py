"""`Handler`: a Wasm module that serves HTTP requests through the `wasmlab-edge/1` ABI, and how one request runs
through an instance (`call_abi`) or a WASI command run (`call_wasi`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ExitTrap, UsageError, WasmlabError
from ..module import Module
from .abi import MASK32, MASK64, BadResponse, Request, Response, decode_response, handler_kind, uses_helper, with_helper

MAX_RESPONSE = 16 << 20  # bytes a handler may return


@dataclass
class Handler:
    """A module that is an edge handler. `kind`: "abi" (alloc/handle exports; instances can be reused) or
    "wasi" (a command: request on stdin, response on stdout; one instance per request)."""

    module: Module
    kind: str
    name: str = ""
    helper: bool = False

    def __post_init__(self) -> None:
        self.name = self.name or self.module.name

    def __repr__(self) -> str:
        lang = self.module.provenance.lang or self.module.provenance.origin
        helper = " +helper" if self.helper else ""
        return f"<wasmlab.edge.Handler {self.name!r} {self.kind} ({lang}{helper}) sha256={self.module.sha256[:12]}>"

    @classmethod
    def from_module(cls, module: Module, name: str = "") -> Handler:
        return cls(module, handler_kind(module), name)

    def invoke(self, request: Request | bytes | str = "GET /", runtime: str = "wasmtime", **limits: Any) -> Response:
        """Serve one request on a fresh instance (no server): `request` is a `Request`, encoded bytes, or a
        "METHOD /target" line. Limits: `timeout` (s), `fuel`, `max_memory` (bytes). Raises on traps/limits."""
        from .strategies import Limits, serve_once

        return decode_response(serve_once(self, runtime, as_bytes(request), Limits(**limits)))


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
    **options: Any,
) -> Handler:
    """A `Handler` from source text, a source file, a .wasm file or a `Module`.

    `helper=None` adds the language's helper when the code defines its callback (`on_request` in C and Rust,
    `onRequest` in Go and AssemblyScript); `True` insists, `False` compiles the code as it is (it must then
    export alloc/handle itself). `kind="command"` builds a WASI command handler (stdin -> stdout). Other
    options go to `wasmlab.compile` (opt, strip, lto, flags, use_cache...)."""
    from ..build import compile
    from ..module import load
    from ..toolchains import detect_lang, normalize_lang

    if isinstance(source, Module):
        return Handler.from_module(source, name)
    filename = ""
    path = Path(source) if isinstance(source, Path) or _looks_like_file(source) else None
    if path is not None:
        if not path.is_file():
            raise UsageError(f"no such handler file: {path}")
        if path.suffix == ".wasm" and not lang:
            return Handler.from_module(load(path), name or path.stem)
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
    if helper is None:
        helper = kind == "library" and uses_helper(text, lang)
    if helper:
        if kind != "library":
            raise UsageError("the edge helpers build alloc/handle libraries: use kind='library' with helper=True")
        text = with_helper(text, lang, filename)
    module = compile(text, lang, kind=kind, name=name or "handler", **options)
    return Handler(module, handler_kind(module), name or module.name, bool(helper))


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
