"""wasmlab.edge.build: handlers -> standard wasi:http/proxy@0.2.0 components (real zig/clang, real wasm-tools)."""

from __future__ import annotations

import json

import pytest

from wasmlab import binary
from wasmlab.cli import main
from wasmlab.edge import EdgeHandler, build
from wasmlab.edge.standard import HANDLE_EXPORT, core_of
from wasmlab.errors import CompileError
from wasmlab.tools import wasm_tools

from .conftest import need_toolchain

HELLO_C = r"""
void on_request(const edge_request *req, edge_response *res) {
    edge_set_header(res, "content-type", "text/plain");
    edge_write_str(res, "hello ");
    edge_write_s(res, edge_query(req, "name"));
}
"""

HELLO_CPP = r"""
#include <string>
void on_request(const edge_request *req, edge_response *res) {
    std::string text = "hello from c++ " + std::string(req->path.ptr, req->path.len);
    edge_write(res, text.data(), text.size());
}
"""

# A handler with no lab helper at all: the standard imports, by hand (what wit-bindgen would generate).
RAW_WAT = r"""
(module
  (import "wasi:http/types@0.2.0" "[constructor]fields" (func $fields (result i32)))
  (import "wasi:http/types@0.2.0" "[constructor]outgoing-response" (func $response (param i32) (result i32)))
  (import "wasi:http/types@0.2.0" "[method]outgoing-response.body" (func $body (param i32 i32)))
  (import "wasi:http/types@0.2.0" "[method]outgoing-body.write" (func $write (param i32 i32)))
  (import "wasi:http/types@0.2.0" "[static]response-outparam.set"
    (func $set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.0" "[static]outgoing-body.finish" (func $finish (param i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.0" "[resource-drop]incoming-request" (func $drop_request (param i32)))
  (import "wasi:io/streams@0.2.0" "[method]output-stream.blocking-write-and-flush"
    (func $send (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.0" "[resource-drop]output-stream" (func $drop_stream (param i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 64) "hello from raw wat\n")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (global.get $next) (global.set $next (i32.add (global.get $next) (local.get 3))))
  (func (export "wasi:http/incoming-handler@0.2.0#handle") (param $request i32) (param $out i32)
    (local $response i32) (local $body i32) (local $stream i32)
    (call $drop_request (local.get $request))
    (local.set $response (call $response (call $fields)))
    (call $body (local.get $response) (i32.const 0))
    (local.set $body (i32.load (i32.const 4)))
    (call $write (local.get $body) (i32.const 0))
    (local.set $stream (i32.load (i32.const 4)))
    (call $set (local.get $out) (i32.const 0) (local.get $response)
      (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $send (local.get $stream) (i32.const 64) (i32.const 19) (i32.const 0))
    (call $drop_stream (local.get $stream))
    (call $finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 0))))
"""


@pytest.fixture(scope="session")
def hello_c() -> EdgeHandler:
    need_toolchain("c")
    return build(HELLO_C, "c", name="hello")


def assert_standard(handler: EdgeHandler) -> None:
    wasm_tools("validate", data=handler.component)
    wit = handler.wit()
    assert "export wasi:http/incoming-handler@0.2.0;" in wit
    assert binary.parse(handler.component).kind == "component"


def test_c_handler_builds_a_standard_component_and_keeps_its_core(hello_c):
    assert_standard(hello_c)
    assert hello_c.lang == "c" and hello_c.helper and len(hello_c.sha256) == 64
    core = binary.parse(hello_c.core)
    assert core.kind == "module" and HANDLE_EXPORT in {e.name for e in core.exports}
    assert {i.module for i in core.imports} <= {"wasi:http/types@0.2.0", "wasi:io/streams@0.2.0", "wasi:io/error@0.2.0"}
    assert "on_request" not in {e.name for e in core.exports}  # the world has one export


def test_a_component_file_gives_back_its_core_module(hello_c, tmp_path):
    path = hello_c.save(tmp_path / "hello.wasm")
    again = build(path)
    assert again.component == hello_c.component and again.sha256 == hello_c.sha256
    assert again.core is not None and HANDLE_EXPORT in {e.name for e in binary.parse(again.core).exports}
    assert core_of(b"\0asm\x0d\x00\x01\x00") is None  # an empty component has no handler module
    assert build(hello_c.core).sha256 == hello_c.sha256  # wrapping the core module again is reproducible


def test_a_handler_without_any_lab_helper_builds():
    handler = build(RAW_WAT, "wat", name="raw")
    assert_standard(handler)
    assert not handler.helper and len(handler.core) < 1000


def test_not_a_handler_is_one_clear_error():
    with pytest.raises(CompileError, match=r"not a wasi:http handler: failed to find export of interface"):
        build('(module (func (export "f")))', "wat")


def test_cli_build_writes_the_component(hello_c, tmp_path, capsys):
    source = tmp_path / "hello.c"
    source.write_text(HELLO_C)
    out, core = tmp_path / "out.wasm", tmp_path / "core.wasm"
    assert main(["edge", "build", str(source), "-o", str(out), "--core-out", str(core), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sha256"] == hello_c.sha256 and out.read_bytes() == hello_c.component
    assert core.read_bytes() == hello_c.core
    assert main(["edge", "build", str(tmp_path / "missing.c")]) == 2
    err = capsys.readouterr().err
    assert "no such handler file" in err and len(err.strip().splitlines()) == 1
