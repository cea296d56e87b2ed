"""The edge handler ABI (`wasmlab-edge/1`): how an HTTP request reaches a Wasm handler and how its response
comes back, plus the per-language helpers that hide it.

Two kinds of handler:

    abi    a core module that exports `memory`, `alloc(len: i32) -> i32` and `handle(ptr: i32, len: i32) -> i64`.
           The host calls `alloc(len)` for a buffer (each call starts a new request: the guest may free the
           previous request's buffers), writes the request bytes there, calls `handle(ptr, len)` and reads
           the response at `packed >> 32`, `packed & 0xffffffff` bytes long. Instances can be reused.
    wasi   a WASI command (`_start`): the request bytes on stdin, the response on stdout; exit status 0.
           One instance per request (stdin is fixed when a WASI instance is made).

Request bytes (what the guest reads), a compact text form of HTTP/1.1 without the version and framing:

    METHOD SP TARGET LF            "GET /hello?name=ada\\n"   (target: path and query, as sent)
    name ": " value LF ...         "user-agent: curl/8.1\\n"  (names lower-case; no hop-by-hop headers)
    LF
    BODY                           the rest of the bytes (its length is implicit)

Response bytes (what the guest writes), the same shape:

    STATUS [SP REASON] LF          "200\\n" (three digits, 100-599; CRLF is accepted too)
    name ": " value LF ...         "content-type: text/plain\\n"
    LF
    BODY

`encode_request` / `decode_response` implement both sides; `Request` and `Response` are the Python forms.

Helpers (`helper_source(lang)`, files next to this one) let handler code skip the ABI: you write one callback,
wasmlab adds the exports, the parsing and the response building, and your line numbers stay as you wrote them
(C: prepended, then `#line 1`; Rust and AssemblyScript: appended; Go: appended, with the `unsafe` import it
needs put on your `package` line):

    c               void on_request(const edge_request *req, edge_response *res)   (edge_get_header,
                    edge_query, edge_set_header, edge_status, edge_write, edge_write_str, edge_write_s)
    rust            fn on_request(req: &edge::Request, res: &mut edge::Response)   (req.header/query/text,
                    res.set_status/set_header/write/write_str)
    go              func onRequest(req *EdgeRequest, res *EdgeResponse)             (req.Header/Query,
                    res.SetStatus/SetHeader/Write/WriteString)
    assemblyscript  function onRequest(req: EdgeRequest, res: EdgeResponse): void  (req.header/query/text,
                    res.setStatus/setHeader/write/writeString)

Handlers that already export `alloc` and `handle` themselves (WAT, or any language written to the ABI) are
compiled as they are; so are WASI commands (`kind="command"`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import UsageError, WasmlabError

if TYPE_CHECKING:
    from ...module import Module

__all__ = [
    "ABI_VERSION",
    "CALLBACKS",
    "HELPERS",
    "BadResponse",
    "Request",
    "Response",
    "decode_response",
    "encode_request",
    "handler_kind",
    "helper_source",
    "uses_helper",
    "with_helper",
]

ABI_VERSION = "wasmlab-edge/1"
HERE = Path(__file__).parent
HELPERS = {"c": "edge.h", "rust": "edge.rs", "go": "edge.go", "assemblyscript": "edge.ts"}
# The callback each helper calls, as a regex that finds its definition in user code.
CALLBACKS = {
    "c": ("on_request", re.compile(r"\bon_request\s*\([^;{]*\)\s*\{")),
    "rust": ("on_request", re.compile(r"\bfn\s+on_request\b")),
    "go": ("onRequest", re.compile(r"\bfunc\s+onRequest\b")),
    "assemblyscript": ("onRequest", re.compile(r"\bfunction\s+onRequest\b")),
}
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "expect"}
)
_STATUS = re.compile(rb"^\s*(\d{3})(?:[ \t].*)?$")
MASK32 = 0xFFFFFFFF
MASK64 = (1 << 64) - 1


class BadResponse(WasmlabError):
    """The handler's output is not a response in the `wasmlab-edge/1` encoding (see the module docstring)."""


@dataclass
class Request:
    """An HTTP request as a handler sees it. `headers` keep their order; names are lower-cased when encoded."""

    method: str = "GET"
    target: str = "/"
    headers: dict[str, str] | list[tuple[str, str]] = field(default_factory=dict)
    body: bytes = b""

    def encode(self) -> bytes:
        return encode_request(self.method, self.target, self.headers, self.body)


@dataclass
class Response:
    """A handler's response. `text` decodes the body as UTF-8."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), default)

    def encode(self) -> bytes:
        lines = [str(self.status).encode()]
        lines += [f"{k}: {v}".encode("latin-1", "replace") for k, v in self.headers]
        return b"\n".join(lines) + b"\n\n" + self.body


def _header_items(headers: dict[str, str] | list[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if not headers:
        return []
    return list(headers.items()) if isinstance(headers, dict) else list(headers)


def encode_request(
    method: str | bytes,
    target: str | bytes,
    headers: dict[str, str] | list[tuple[str, str]] | list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
) -> bytes:
    """The request bytes a handler reads: "METHOD TARGET\\n" + "name: value\\n"... + "\\n" + body.
    Header names are lower-cased; hop-by-hop headers and values with line breaks are left out."""
    m = method.encode() if isinstance(method, str) else method
    t = target.encode() if isinstance(target, str) else target
    if not m or b" " in m or b"\n" in m or b"\n" in t or b" " in t:
        raise UsageError(f"bad request line {m!r} {t!r}: method and target must be non-empty, without spaces")
    parts = [m, b" ", t, b"\n"]
    for name, value in _header_items(headers):  # type: ignore[arg-type]
        k = (name.encode("latin-1") if isinstance(name, str) else name).strip().lower()
        v = (value.encode("latin-1", "replace") if isinstance(value, str) else value).strip()
        if not k or k.decode("latin-1") in HOP_BY_HOP or b"\n" in k or b"\n" in v or b":" in k:
            continue
        parts += [k, b": ", v, b"\n"]
    parts += [b"\n", bytes(body)]
    return b"".join(parts)


def decode_response(data: bytes) -> Response:
    """Parse a handler's output; BadResponse (one line, with the start of the output) when it is malformed."""
    data = bytes(data)
    first, nl, rest = data.partition(b"\n")
    match = _STATUS.match(first.rstrip(b"\r"))
    status = int(match.group(1)) if match else 0
    if not 100 <= status <= 599:
        shown = data[:40].decode("utf-8", "replace").encode("unicode_escape").decode()
        raise BadResponse(
            f"handler returned a malformed response (starts {shown!r}): it must start with a 3-digit status "
            'line, e.g. "200\\n" + headers + "\\n" + body'
        )
    headers: list[tuple[str, str]] = []
    body = b""
    while rest:
        line, nl, after = rest.partition(b"\n")
        line = line.rstrip(b"\r")
        if not line:
            body = after
            break
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            shown = line[:40].decode("utf-8", "replace")
            raise BadResponse(f"handler returned a malformed header line {shown!r}: use 'name: value'")
        headers.append((name.strip().decode("latin-1"), value.strip().decode("latin-1")))
        rest = after if nl else b""
    return Response(status, headers, body)


# helpers ----------------------------------------------------------------------------------------------------
def helper_source(lang: str) -> str:
    """The helper code wasmlab adds to a handler written in `lang` (c, rust, go, assemblyscript)."""
    from ...toolchains import normalize_lang

    lang = normalize_lang(lang)
    if lang not in HELPERS:
        raise UsageError(f"no edge helper for {lang}: helpers exist for {', '.join(HELPERS)}; or export the ABI")
    return (HERE / HELPERS[lang]).read_text()


def uses_helper(source: str, lang: str) -> bool:
    """True when `source` defines the helper's callback (on_request / onRequest) for its language."""
    entry = CALLBACKS.get(lang)
    return bool(entry and entry[1].search(source))


_GO_PACKAGE = re.compile(r"^[ \t]*package[ \t]+main\b", re.MULTILINE)
_GO_MAIN = re.compile(r"^func\s+main\s*\(\s*\)", re.MULTILINE)
GO_IMPORT = 'import edgeunsafe "unsafe"'


def with_helper(source: str, lang: str, filename: str = "") -> str:
    """`source` with the language's helper added so that the user's code keeps its line numbers."""
    helper = helper_source(lang)
    if lang == "c":
        name = (filename or "snippet.c").replace("\\", "/").replace('"', "")
        return f'{helper}#line 1 "{name}"\n{source}'
    if lang == "go":
        match = _GO_PACKAGE.search(source)
        if match:  # the import goes on the package line, so no line moves
            code = f"{source[: match.end()]}; {GO_IMPORT};{source[match.end() :]}"
        elif re.search(r"^[ \t]*package[ \t]+\w+", source, re.MULTILINE):
            raise UsageError("a Go edge handler must be in package main")
        else:
            code = f"package main; {GO_IMPORT}; {source}"
        tail = "" if _GO_MAIN.search(source) else "\nfunc main() {}\n"
        return f"{code.rstrip()}\n{tail}{helper}"
    return f"{source.rstrip()}\n{helper}"


def handler_kind(module: Module) -> str:
    """ "abi" or "wasi" for a module that is a handler; UsageError saying what is missing otherwise."""
    if module.is_component:
        raise UsageError(
            f"{module.name} is a component: edge handlers are core modules (the WASI-HTTP component path is not "
            "available through wasmtime-py); export alloc/handle or build a WASI command"
        )
    funcs = set(module.export_names("func"))
    if {"alloc", "handle"} <= funcs:
        if "memory" not in module.export_names("memory"):
            raise UsageError(f"{module.name} exports alloc and handle but no memory named 'memory'")
        return "abi"
    if module.is_command:
        return "wasi"
    have = ", ".join(sorted(funcs)) or "none"
    raise UsageError(
        f"{module.name} is not an edge handler: export memory, alloc(len) -> ptr and handle(ptr, len) -> i64 "
        f"(or define on_request/onRequest with a helper language, or build a WASI command); it exports {have}"
    )
