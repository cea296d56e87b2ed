"""Standard wasi:http handlers served by the lab's own platform: the core module under a wasi:http/proxy component
on wasmtime through the lab's wasi:http host, over real HTTP on loopback, with every instance strategy."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys

import pytest

from wasmlab.edge import EdgeServer, Handler, build, compile_handler

from .conftest import need_toolchain
from .test_edge_build import RAW_WAT

ECHO_C = r"""
static int count;
void on_request(const edge_request *req, edge_response *res) {
    count++;
    if (edge_eq(edge_query(req, "do"), "teapot")) edge_status(res, 418);
    if (edge_eq(edge_query(req, "do"), "bad-header")) edge_set_header(res, "bad header", "x");
    edge_set_header(res, "content-type", "text/plain");
    edge_set_header(res, "x-method", "");
    res->headers[res->header_count - 1].value = req->method;
    edge_write_s(res, req->method);
    edge_write_str(res, " ");
    edge_write_s(res, req->path);
    edge_write_str(res, " q=");
    edge_write_s(res, req->query);
    edge_write_str(res, " x-who=");
    edge_write_s(res, edge_get_header(req, "X-Who"));
    edge_write_str(res, " count=");
    edge_write_int(res, count);
    edge_write_str(res, " body=");
    edge_write_s(res, req->body);
}
"""


def fetch(port: int, path: str, method: str = "GET", body: bytes | None = None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def echo():
    need_toolchain("c")
    return build(ECHO_C, "c", name="echo")


@pytest.mark.parametrize("strategy", ["fresh", "pooled", "reused"])
def test_a_c_handler_serves_requests_through_the_standard_imports(echo, strategy):
    handler = compile_handler(echo)
    assert handler.kind == "http" and handler.standard is echo
    with EdgeServer(timeout=1.0) as server:
        server.route("/", handler, strategy=strategy)
        big = bytes(range(256)) * 400  # 100 KiB: several reads, several 4 KiB writes
        status, headers, body = fetch(server.port, "/a/b?x=1&y=2", "POST", big, {"X-Who": "ada"})
        assert status == 200 and headers["content-type"] == "text/plain" and headers["x-method"] == "POST"
        assert body == b"POST /a/b q=x=1&y=2 x-who=ada count=1 body=" + big
        assert headers["x-wasmlab-strategy"] == strategy
        status, _, body = fetch(server.port, "/?do=teapot")
        assert status == 418 and b"count=" in body
        counts = [fetch(server.port, "/")[2].split(b"count=")[1][:1] for _ in range(3)]
        assert counts == ([b"3", b"4", b"5"] if strategy == "reused" else [b"1"] * 3)  # state kept only if reused


def test_a_forbidden_header_is_a_500_not_a_broken_response(echo):
    with EdgeServer() as server:
        server.route("/", echo)
        status, _, body = fetch(server.port, "/?do=bad-header")
        assert status == 500 and b"invalid or forbidden header" in body
        assert fetch(server.port, "/")[0] == 200  # and the next request is fine


def test_a_handler_with_no_lab_helper_is_served():
    handler = compile_handler(RAW_WAT, "wat")
    assert handler.kind == "http" and not handler.helper
    with EdgeServer() as server:
        server.route("/", handler, strategy="reused")
        assert fetch(server.port, "/anything")[::2] == (200, b"hello from raw wat\n")


def test_a_component_without_a_single_core_module_says_what_serves_it():
    from wasmlab.edge.standard import EdgeHandler

    with pytest.raises(Exception, match="no single core module"):
        Handler.from_standard(EdgeHandler(b"\0asm\x0d\x00\x01\x00", None, "python", "py"))


def test_edge_serve_platform_wasmlab_serves_a_component_file_at_every_path(echo, tmp_path):
    path = echo.save(tmp_path / "echo.wasm")
    cmd = [sys.executable, "-m", "wasmlab", "edge", "serve", str(path), "--platform", "wasmlab"]
    cmd += ["--port", "0", "--json", "--duration", "60"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        first = json.loads(proc.stdout.readline())
        port = int(first["url"].rsplit(":", 1)[1])
        status, _, body = fetch(port, "/deep/path?z=9")
        assert status == 200 and body.startswith(b"GET /deep/path q=z=9")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0


CPP = r"""
template <typename T> static T twice(T v) { return v + v; }
struct Greeter {
    const char *word;
    void greet(edge_response *res, edge_str who) const { edge_write_str(res, word); edge_write_s(res, who); }
};
void on_request(const edge_request *req, edge_response *res) {
    Greeter g{"hello from c++ "};
    g.greet(res, req->path);
    edge_write_str(res, " ");
    edge_write_int(res, twice(21));
}
"""


def test_a_cpp_handler_builds_and_serves():
    need_toolchain("cpp")
    handler = build(CPP, "cpp", name="cpp")
    assert handler.lang == "cpp" and "export wasi:http/incoming-handler@0.2.0;" in handler.wit()
    with EdgeServer() as server:
        server.route("/", handler)
        assert fetch(server.port, "/x")[::2] == (200, b"hello from c++ /x 42")
