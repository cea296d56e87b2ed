"""`wasmlab edge serve` (a real process on a free loopback port) and `wasmlab edge load`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from wasmlab.cli import main
from wasmlab.edge import EdgeServer, compile_handler

from .conftest import need_toolchain

HELLO_C = r"""
void on_request(const edge_request *req, edge_response *res) {
    edge_set_header(res, "content-type", "text/plain");
    edge_write_str(res, "hello from ");
    edge_write_s(res, req->path);
}
"""

HELLO_WAT = r"""
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "200\n\nhi")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "handle") (param i32 i32) (result i64) (i64.const 7)))
"""


def test_edge_load_prints_json(capsys):
    with EdgeServer() as server:
        server.route("/hi", compile_handler(HELLO_WAT, "wat"))
        code = main(["edge", "load", server.url + "/hi", "--requests", "25", "-c", "2", "--json", "--records"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (data["requests"], data["ok"], data["failed"], data["statuses"]) == (25, 25, 0, {"200": 25})
    assert {"rps", "p50_ms", "p90_ms", "p99_ms"} <= set(data) and len(data["records"]) == 25


def test_edge_load_text_and_usage_errors(capsys):
    with EdgeServer() as server:
        server.route("/hi", compile_handler(HELLO_WAT, "wat"))
        assert main(["edge", "load", server.url + "/hi", "-n", "5", "--rate", "100"]) == 0
    out = capsys.readouterr().out
    assert "5 requests" in out and "p99" in out and "200: 5" in out
    assert main(["edge", "load", "http://10.0.0.1/", "-n", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wasmlab: ") and "loopback" in err and len(err.strip().splitlines()) == 1


def test_edge_serve_runs_a_server_process(tmp_path):
    need_toolchain("c")
    source = tmp_path / "hello.c"
    source.write_text(HELLO_C)
    cmd = [sys.executable, "-m", "wasmlab", "edge", "serve", str(source), "--route", "/hello", "--strategy", "pooled"]
    cmd += ["--port", "0", "--runtime", "wasmtime", "--origin", "/far=20", "--json", "--duration", "60"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        first = json.loads(proc.stdout.readline())
        url = first["url"]
        assert url.startswith("http://127.0.0.1:")
        assert {r["route"] for r in first["routes"]} == {"/hello", "/far"}
        with urllib.request.urlopen(url + "/hello/x", timeout=10) as answer:
            assert answer.status == 200 and answer.read() == b"hello from /hello/x"
            assert answer.headers["x-wasmlab-strategy"] == "pooled"
        with urllib.request.urlopen(url + "/far", timeout=10) as answer:
            assert answer.read() == b"origin\n"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    last = json.loads(out.strip().splitlines()[-1])
    assert last["stopped"] and {r["route"]: r["requests"] for r in last["routes"]} == {"/hello": 1, "/far": 1}


def test_edge_serve_usage_errors(tmp_path, capsys):
    wat = tmp_path / "h.wat"
    wat.write_text(HELLO_WAT)
    assert main(["edge", "serve", str(wat), str(wat), "--route", "/x", "--port", "0"]) == 2
    assert "--route" in capsys.readouterr().err
    assert main(["edge", "serve", str(tmp_path / "missing.c"), "--port", "0"]) == 2
    assert main(["edge", "serve", str(wat), "--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["edge"], ["edge", "serve"], ["edge", "load"]])
def test_edge_subcommands_need_their_arguments(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
