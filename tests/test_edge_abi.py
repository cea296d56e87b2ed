"""wasmlab.edge ABI: the request/response encoding, handler detection, the per-language helpers (line numbers of
the user's code kept), and one request through a handler without a server."""

from __future__ import annotations

import pytest

from wasmlab import CompileError, UsageError
from wasmlab.edge import BadResponse, Handler, Request, Response, compile_handler, decode_response, encode_request
from wasmlab.edge.abi import helper_source, with_helper

from .conftest import need_toolchain

# A raw-ABI handler in WAT: echoes the request bytes after a fixed response head (head and input are adjacent).
ECHO_WAT = r"""
(module
  (memory (export "memory") 2)
  (data (i32.const 994) "200\ncontent-type: text/plain\n\n")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "handle") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.const 994) (i64.const 32))
            (i64.extend_i32_u (i32.add (local.get $len) (i32.const 30))))))
"""

GARBAGE_WAT = r"""
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "hello")
  (func (export "alloc") (param i32) (result i32) (i32.const 64))
  (func (export "handle") (param i32 i32) (result i64) (i64.const 5)))
"""


def test_encode_request_is_the_documented_text_form():
    data = encode_request("GET", "/hello?name=ada", {"User-Agent": "curl", "Connection": "keep-alive"}, b"body")
    assert data == b"GET /hello?name=ada\nuser-agent: curl\n\nbody"
    assert Request("POST", "/x", [("X-A", "1")], b"").encode() == b"POST /x\nx-a: 1\n\n"
    with pytest.raises(UsageError):
        encode_request("GET", "/a b")


def test_decode_response_parses_status_headers_and_body():
    r = decode_response(b"404 Not Found\r\ncontent-type: text/plain\r\nx-a:  b \r\n\r\nmissing\n")
    assert (r.status, r.headers, r.body) == (404, [("content-type", "text/plain"), ("x-a", "b")], b"missing\n")
    assert decode_response(b"204\n") == Response(204, [], b"")
    assert decode_response(Response(201, [("a", "b")], b"\n\nx").encode()).body == b"\n\nx"
    for bad in (b"", b"hello", b"99\n\n", b"200\nno colon here\n\nbody"):
        with pytest.raises(BadResponse):
            decode_response(bad)


def test_raw_abi_handler_in_wat():
    handler = compile_handler(ECHO_WAT, "wat")
    assert isinstance(handler, Handler) and handler.kind == "abi" and not handler.helper
    response = handler.invoke(Request("POST", "/echo", {"x-a": "1"}, b"payload"))
    assert response.status == 200
    assert response.header("content-type") == "text/plain"
    assert response.body == b"POST /echo\nx-a: 1\n\npayload"
    assert handler.invoke("GET /x").text == "GET /x\n\n"


def test_malformed_response_raises_bad_response():
    with pytest.raises(BadResponse, match="3-digit status"):
        compile_handler(GARBAGE_WAT, "wat").invoke()


def test_modules_that_are_not_handlers_are_refused_with_what_is_missing():
    with pytest.raises(UsageError, match=r"alloc\(len\)"):
        compile_handler('(module (func (export "f")))', "wat")
    with pytest.raises(UsageError, match="language"):
        compile_handler("int x;")


def test_helper_sources_exist_for_four_languages():
    for lang, marker in (("c", "on_request"), ("rust", "on_request"), ("go", "onRequest"), ("as", "onRequest")):
        assert marker in helper_source(lang)
    with pytest.raises(UsageError, match="no edge helper"):
        helper_source("zig")


def test_helpers_keep_user_line_numbers():
    user = "func onRequest(req *EdgeRequest, res *EdgeResponse) {\n}\n"
    assert with_helper(user, "go").splitlines()[0].endswith(user.splitlines()[0])
    with_package = 'package main\n\nimport "fmt"\n' + user
    code = with_helper(with_package, "go").splitlines()
    assert code[0].startswith("package main;") and code[2] == 'import "fmt"'
    assert with_helper("fn on_request() {}", "rust").startswith("fn on_request() {}\n")
    c = with_helper("int x;\n", "c")
    assert c.endswith('#line 1 "snippet.c"\nint x;\n')


def test_c_compile_errors_point_at_the_users_line(compile_or_skip):
    compile_or_skip("int x;", "c")  # skips without a C toolchain
    source = "void on_request(const edge_request *req, edge_response *res) {\n    edge_write_str(res, nope);\n}\n"
    with pytest.raises(CompileError) as info:
        compile_handler(source, "c")
    assert ":2:" in info.value.diagnostics and "nope" in info.value.diagnostics


def test_rust_compile_errors_point_at_the_users_line(compile_or_skip):
    compile_or_skip('#[no_mangle] pub extern "C" fn f() {}', "rust")
    source = "fn on_request(req: &edge::Request, res: &mut edge::Response) {\n    res.write_str(nope);\n}\n"
    with pytest.raises(CompileError) as info:
        compile_handler(source, "rust")
    assert ":2:" in info.value.diagnostics


def test_go_compile_errors_point_at_the_users_line():
    need_toolchain("go")
    source = 'package main\n\nimport "strings"\n\nfunc onRequest(req *EdgeRequest, res *EdgeResponse) {\n'
    source += "\tres.WriteString(strings.ToUpper(nope))\n}\n"
    with pytest.raises(CompileError) as info:
        compile_handler(source, "go")
    assert ":6:" in info.value.diagnostics and "nope" in info.value.diagnostics


def test_wasi_command_handler_reads_stdin_and_writes_stdout(compile_or_skip):
    compile_or_skip("int x;", "c")
    source = r"""
#include <stdio.h>
int main(void) {
    char line[256];
    if (!fgets(line, sizeof line, stdin)) return 1;
    printf("200\ncontent-type: text/plain\n\nfirst line: %s", line);
    return 0;
}
"""
    handler = compile_handler(source, "c", kind="command")
    assert handler.kind == "wasi"
    assert handler.invoke("GET /cmd?x=1").text == "first line: GET /cmd?x=1\n"
