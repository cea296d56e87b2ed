"""A minimal HTTP/1.1 on asyncio streams, both halves: what the edge server reads and writes, and what the load
generator sends and reads. Keep-alive, Content-Length and chunked bodies, `Expect: 100-continue`, HEAD; no
TLS, no HTTP/2, no pipelining beyond answering requests in order (which is what HTTP/1.1 asks)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from http import HTTPStatus

MAX_HEAD = 64 << 10  # bytes of request line + headers
MAX_BODY = 1 << 20  # default cap on a request body
CRLF = b"\r\n"


class HttpError(Exception):
    """A request the server refuses (bad framing, too large): answered with `status` and closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class HttpRequest:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), default)

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    while lines and not lines[0]:
        lines.pop(0)  # stray CRLFs between requests are allowed
    if not lines:
        raise HttpError(400, "empty request")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HttpError(400, f"malformed header line {line[:40]!r}")
        headers.append((name.lower(), value.strip()))
    return lines[0], headers


async def _read_body(reader: asyncio.StreamReader, headers: list[tuple[str, str]], limit: int) -> bytes:
    values = dict(headers)
    if "chunked" in values.get("transfer-encoding", "").lower():
        return await _read_chunked(reader, limit)
    length_text = values.get("content-length")
    if length_text is None:
        return b""
    try:
        length = int(length_text)
    except ValueError:
        raise HttpError(400, f"bad content-length {length_text!r}") from None
    if length < 0:
        raise HttpError(400, "negative content-length")
    if length > limit:
        raise HttpError(413, f"body of {length:,} bytes is over the {limit:,} byte limit")
    return await reader.readexactly(length)


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    parts, total = [], 0
    while True:
        size_line = await reader.readuntil(CRLF)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise HttpError(400, "bad chunk size") from None
        if size == 0:
            while (await reader.readuntil(CRLF)) != CRLF:  # trailers
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise HttpError(413, f"chunked body over the {limit:,} byte limit")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_body: int = MAX_BODY
) -> HttpRequest | None:
    """The next request on a connection, or None when the client closed it between requests."""
    try:
        head = await reader.readuntil(CRLF + CRLF)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise HttpError(400, "connection closed in the middle of a request head") from None
    except asyncio.LimitOverrunError:
        raise HttpError(431, "request head too large") from None
    request_line, headers = _parse_head(head[:-4])
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, f"malformed request line {request_line[:60]!r}")
    method, target, version = parts
    if not target.startswith("/"):
        raise HttpError(400, f"request target must be a path, got {target[:60]!r}")
    request = HttpRequest(method, target, version, headers)
    if "100-continue" in (request.header("expect") or "").lower():
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    try:
        request.body = await _read_body(reader, headers, max_body)
    except asyncio.IncompleteReadError:
        raise HttpError(400, "connection closed in the middle of a request body") from None
    except asyncio.LimitOverrunError:
        raise HttpError(400, "malformed chunked body") from None
    return request


def format_response(
    status: int, headers: list[tuple[str, str]], body: bytes, keep_alive: bool = True, head_only: bool = False
) -> bytes:
    """Status line, headers (plus content-length and connection), blank line, body."""
    lines = [f"HTTP/1.1 {status} {reason(status)}"]
    for name, value in headers:
        if name.lower() in ("content-length", "connection", "transfer-encoding") or "\n" in name + value:
            continue
        lines.append(f"{name}: {value}")
    if status >= 200 and status not in (204, 304):
        lines.append(f"content-length: {len(body)}")
    else:
        body = b""
    lines.append("connection: keep-alive" if keep_alive else "connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head if head_only else head + body


# client side ------------------------------------------------------------------------------------------------
def format_request(
    method: str, target: str, host: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items() if k.lower() not in ("host", "content-length")]
    if body or method not in ("GET", "HEAD"):
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


async def read_response(reader: asyncio.StreamReader, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body) of the next response; skips 1xx interim responses."""
    while True:
        head = await reader.readuntil(CRLF + CRLF)
        status_line, header_list = _parse_head(head[:-4])
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HttpError(502, f"malformed status line {status_line[:60]!r}")
        status = int(parts[1])
        if status >= 200:
            break
    headers = dict(header_list)
    if head_only or status in (204, 304):
        return status, headers, b""
    if "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_body(reader, header_list, 1 << 30)
    else:
        body = await reader.read()  # until the server closes
    return status, headers, body
