"""The edge server's HTTP (h11) refuses what RFC 9112 says to refuse, over real sockets, and keeps serving."""

from __future__ import annotations

import socket
import time

import pytest

from wasmlab.edge import EdgeServer, compile_handler

from .test_edge_build import RAW_WAT

H = b"host: t\r\n"
BAD = {
    "content-length and transfer-encoding": (
        b"POST / HTTP/1.1\r\n" + H + b"content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "two different content-lengths": (
        b"POST / HTTP/1.1\r\n" + H + b"content-length: 5\r\ncontent-length: 6\r\n\r\nhello!",
        400,
    ),
    "whitespace before the colon": (b"GET / HTTP/1.1\r\nhost : t\r\n\r\n", 400),
    "bare LF line endings in the head": (b"GET / HTTP/1.1\nhost: t\n\n", 400),
    "bare LF inside a header line": (b"GET / HTTP/1.1\r\nhost: t\nx-y: 1\r\n\r\n", 400),
    "bad chunk size": (b"POST / HTTP/1.1\r\n" + H + b"transfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    "bare LF in chunk framing": (
        b"POST / HTTP/1.1\r\n" + H + b"transfer-encoding: chunked\r\n\r\n5\nhello\n0\n\n",
        400,
    ),
    "a 200 KB header line": (b"GET / HTTP/1.1\r\n" + H + b"x-big: " + b"a" * 200_000 + b"\r\n\r\n", 431),
    "a body over the cap": (b"POST / HTTP/1.1\r\n" + H + b"content-length: 2000\r\n\r\n" + b"x" * 2000, 413),
    "a chunked body over the cap": (
        b"POST / HTTP/1.1\r\n" + H + b"transfer-encoding: chunked\r\n\r\n7d0\r\n" + b"x" * 2000 + b"\r\n0\r\n\r\n",
        413,
    ),
    "a transfer coding other than chunked": (
        b"POST / HTTP/1.1\r\n" + H + b"transfer-encoding: gzip\r\n\r\n",
        501,
    ),
}


@pytest.fixture(scope="module")
def server():
    with EdgeServer(max_body=1000, head_timeout=0.5) as srv:
        srv.route("/", compile_handler(RAW_WAT, "wat"))
        yield srv


def exchange(port: int, data: bytes, shut: bool = True, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if shut:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):  # the server answered and closed before reading it all
            pass
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
        return out


def assert_still_serving(port: int) -> None:
    answer = exchange(port, b"GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"hello from raw wat\n")


@pytest.mark.parametrize("case", list(BAD))
def test_bad_requests_are_refused_with_the_right_status(server, case):
    data, status = BAD[case]
    answer = exchange(server.port, data)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert b"connection: close" in answer.lower()
    assert_still_serving(server.port)


def test_the_same_content_length_twice_and_keep_alive_are_fine(server):
    twice = b"POST / HTTP/1.1\r\n" + H + b"content-length: 2\r\ncontent-length: 2\r\n\r\nhi"
    answer = exchange(server.port, twice + b"GET / HTTP/1.1\r\n" + H + b"connection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 2


def test_a_slow_client_gets_408_and_does_not_hold_up_others(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nhost: t\r\n")  # ...and never finishes its head
        t0 = time.monotonic()
        assert_still_serving(server.port)  # others are served meanwhile
        answer = b""
        while chunk := slow.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - t0 < 5
    assert_still_serving(server.port)
