"""HTTP/1.1 for the edge server and the load generator, on h11 (a kept, pure-Python, sans-IO HTTP/1.1 library)
over asyncio streams: keep-alive, Content-Length and chunked bodies, `Expect: 100-continue`, HEAD.

What the server refuses (RFC 9112), each answered once and the connection closed, the server serving others:

    400  both Content-Length and Transfer-Encoding (6.1: a server may reject; the lab does, against smuggling),
         conflicting Content-Length values, whitespace between a field name and its colon, a bare CR or LF in
         the head (2.2: the lab does not accept a bare LF as a line ending), a malformed chunk size or chunk
         framing, a body that ends before its declared length, a missing Host
    413  a body over the cap (`max_body`)
    431  a head (request line + fields) over MAX_HEAD bytes
    408  a head not complete within `head_timeout` seconds (slow clients cannot hold a connection open)
    501  a transfer coding other than chunked

h11 itself checks field syntax, Content-Length, chunk sizes and the message state machine; this module adds
the stricter checks above that h11 leaves to the application (CL+TE, bare LF), the size caps and the deadlines.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from http import HTTPStatus

import h11

MAX_HEAD = 64 << 10  # bytes of request line + headers
MAX_BODY = 1 << 20  # default cap on a request body
HEAD_TIMEOUT = 10.0  # seconds a client has to send a complete head (and each body read)
READ_SIZE = 64 << 10
CRLF = b"\r\n"


class HttpError(Exception):
    """A request the server refuses (bad framing, too large, too slow): answered with `status` and closed."""

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
    keep_alive: bool = True

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), default)


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _check_head(head: bytes) -> None:
    """What RFC 9112 lets a server reject and h11 accepts: a bare LF or CR in the head."""
    lines = head.split(CRLF)
    if any(b"\n" in line or b"\r" in line for line in lines):
        raise HttpError(400, "bare LF or CR in the request head: lines end with CRLF (RFC 9112 2.2)")


class ServerConnection:
    """One client connection on the server side: `next_request()` then `send(...)`, in turn."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        max_body: int = MAX_BODY,
        head_timeout: float = HEAD_TIMEOUT,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.max_body, self.head_timeout = max_body, head_timeout
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._buffered = b""  # bytes of the next head not yet given to h11

    async def _read(self) -> bytes:
        try:
            return await asyncio.wait_for(self.reader.read(READ_SIZE), self.head_timeout)
        except asyncio.TimeoutError:
            raise HttpError(408, f"request not complete within {self.head_timeout:g} s") from None

    async def _head(self) -> bool:
        """Read until the end of the next head, checking its size and line endings; False at a clean EOF."""
        data = self._buffered
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.head_timeout
        while True:
            stripped = data.lstrip(CRLF)  # stray CRLFs between requests are allowed
            end = stripped.find(CRLF + CRLF)
            if end >= 0:
                if end + 4 > MAX_HEAD:
                    raise HttpError(431, f"request head over {MAX_HEAD:,} bytes")
                _check_head(stripped[:end])
                self.conn.receive_data(stripped)
                self._buffered = b""
                return True
            if len(stripped) > MAX_HEAD:
                raise HttpError(431, f"request head over {MAX_HEAD:,} bytes")
            if b"\n\n" in stripped or b"\r\r" in stripped:
                raise HttpError(400, "bare LF or CR in the request head: lines end with CRLF (RFC 9112 2.2)")
            left = deadline - loop.time()
            if left <= 0:
                raise HttpError(408, f"request head not complete within {self.head_timeout:g} s")
            try:
                chunk = await asyncio.wait_for(self.reader.read(READ_SIZE), left)
            except asyncio.TimeoutError:
                raise HttpError(408, f"request head not complete within {self.head_timeout:g} s") from None
            if not chunk:
                if stripped:
                    raise HttpError(400, "connection closed in the middle of a request head")
                return False
            data += chunk

    def _event(self) -> object:
        try:
            return self.conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint if exc.error_status_hint in (400, 413, 431, 501) else 400
            raise HttpError(status, f"bad request: {exc}") from None

    async def next_request(self) -> HttpRequest | None:
        """The next request, or None when the client closed the connection between requests."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            # a new state machine per request: bytes already read past the last one start the next head
            self._buffered = self.conn.trailing_data[0]
            self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        elif self.conn.their_state is h11.MUST_CLOSE or self.conn.our_state is h11.MUST_CLOSE:
            return None
        if not await self._head():
            return None
        event = self._event()
        if not isinstance(event, h11.Request):
            raise HttpError(400, "malformed request head")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
        names = [k for k, _ in headers]
        if "transfer-encoding" in names and "content-length" in names:
            raise HttpError(400, "both Content-Length and Transfer-Encoding: refused (RFC 9112 6.1, smuggling)")
        target = event.target.decode("latin-1")
        if not target.startswith("/"):
            raise HttpError(400, f"request target must be a path, got {target[:60]!r}")
        length = next((int(v) for k, v in headers if k == "content-length"), None)
        if length is not None and length > self.max_body:
            raise HttpError(413, f"body of {length:,} bytes is over the {self.max_body:,} byte limit")
        request = HttpRequest(event.method.decode("latin-1"), target, "HTTP/" + event.http_version.decode(), headers)
        if self.conn.they_are_waiting_for_100_continue:
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        parts, total = [], 0
        while True:
            event = self._event()
            if event is h11.NEED_DATA:
                chunk = await self._read()
                if not chunk:
                    raise HttpError(400, "connection closed in the middle of a request body")
                self.conn.receive_data(chunk)
                continue
            if isinstance(event, h11.Data):
                total += len(event.data)
                if total > self.max_body:
                    raise HttpError(413, f"body over the {self.max_body:,} byte limit")
                parts.append(bytes(event.data))
                continue
            if isinstance(event, h11.EndOfMessage):
                break
            raise HttpError(400, "malformed request body")
        request.body = b"".join(parts)
        request.keep_alive = self.conn.their_state is not h11.MUST_CLOSE and _wants_keep_alive(request)
        return request

    def response(
        self, status: int, headers: list[tuple[str, str]], body: bytes, keep_alive: bool = True, head_only: bool = False
    ) -> bytes:
        """The bytes of one response (h11 frames it: content-length, connection)."""
        fields = [
            (k, v)
            for k, v in headers
            if k.lower() not in ("content-length", "connection", "transfer-encoding") and "\n" not in k + v
        ]
        if status >= 200 and status not in (204, 304):
            fields.append(("content-length", str(len(body))))
        else:
            body = b""
        if not keep_alive:
            fields.append(("connection", "close"))
        try:
            out = self.conn.send(h11.Response(status_code=status, headers=fields, reason=reason(status).encode()))
            if body and not head_only:
                out += self.conn.send(h11.Data(data=body))
            out += self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:  # e.g. a header value h11 will not send: say so instead
            self.conn = h11.Connection(h11.SERVER)
            return format_response(500, [("content-type", "text/plain")], b"handler set an invalid header\n", False)
        return out

    def error(self, exc: HttpError) -> bytes:
        """The response to a refused request (connection: close)."""
        return format_response(exc.status, [("content-type", "text/plain")], f"{exc}\n".encode(), False)


def _wants_keep_alive(request: HttpRequest) -> bool:
    connection = (request.header("connection") or "").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


def format_response(
    status: int, headers: list[tuple[str, str]], body: bytes, keep_alive: bool = True, head_only: bool = False
) -> bytes:
    """A response written without a connection state (refusals: the connection is closed after it)."""
    lines = [f"HTTP/1.1 {status} {reason(status)}"]
    skip = ("content-length", "connection")
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in skip and "\n" not in k + v]
    lines.append(f"content-length: {len(body)}")
    lines.append("connection: keep-alive" if keep_alive else "connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head if head_only else head + body


# client side (the load generator) ----------------------------------------------------------------------------
def format_request(
    method: str, target: str, host: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items() if k.lower() not in ("host", "content-length")]
    if body or method not in ("GET", "HEAD"):
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


async def read_response(reader: asyncio.StreamReader, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body) of the next response, parsed by h11 (1xx skipped). The
    client sends one request at a time per connection, so nothing past the response is read."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="HEAD" if head_only else "GET", target="/", headers=[("host", "x")]))
    conn.send(h11.EndOfMessage())
    status, headers, parts = 0, {}, []
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise HttpError(502, f"malformed response: {exc}") from None
        if event is h11.NEED_DATA:
            chunk = await reader.read(READ_SIZE)
            if not chunk and not status:
                raise asyncio.IncompleteReadError(b"", None)
            conn.receive_data(chunk)  # b"": the server closed (ends a body framed by the close)
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}
        elif isinstance(event, h11.Data):
            parts.append(bytes(event.data))
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return status, headers, b"".join(parts)
