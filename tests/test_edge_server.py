"""wasmlab.edge server: real HTTP on loopback (random free ports) to Wasm handlers in C, Rust, AssemblyScript and
Go; the three instance strategies; per-request limits; hot swap under load; other runtimes."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from wasmlab import UsageError
from wasmlab.edge import EdgeServer, compile_handler, deploy, load
from wasmlab.errors import RuntimeUnavailable
from wasmlab.runtimes import get_runtime

from .conftest import need_toolchain
from .test_edge_abi import ECHO_WAT

# One C handler for most tests: ?do=spin loops forever, ?do=trap traps, ?do=grow allocates until memory runs
# out and then traps; otherwise it greets, counting requests in a static (state that only `reused` keeps).
LAB_C = r"""
static int count;
static char *volatile sink;

void on_request(const edge_request *req, edge_response *res) {
    edge_str action = edge_query(req, "do");
    count++;
    if (edge_eq(action, "spin")) { volatile unsigned long long i = 0; for (;;) i++; }
    if (edge_eq(action, "trap")) __builtin_trap();
    if (edge_eq(action, "grow")) { while ((sink = malloc(1 << 20))) sink[0] = 1; __builtin_trap(); }
    if (edge_eq(req->method, "POST")) {
        edge_set_header(res, "content-type", "application/octet-stream");
        edge_write_s(res, req->body);
        return;
    }
    edge_str name = edge_query(req, "name");
    edge_set_header(res, "content-type", "text/plain");
    edge_write_str(res, "hello ");
    if (name.len) edge_write_s(res, name); else edge_write_str(res, "world");
    edge_write_str(res, " count=");
    edge_write_int(res, count);
}
"""

# The same personalisation handler in four languages: greets ?name= and says where the x-country header says.
PERSONALISE = {
    "c": r"""
void on_request(const edge_request *req, edge_response *res) {
    edge_set_header(res, "content-type", "text/plain");
    edge_set_header(res, "x-lang", "c");
    edge_write_str(res, "hello ");
    edge_write_s(res, edge_query(req, "name"));
    edge_write_str(res, " from ");
    edge_write_s(res, edge_get_header(req, "X-Country"));
    edge_write_str(res, " via ");
    edge_write_s(res, req->path);
}
""",
    "rust": r"""
fn on_request(req: &edge::Request, res: &mut edge::Response) {
    res.set_header("content-type", "text/plain");
    res.set_header("x-lang", "rust");
    let text = format!("hello {} from {} via {}", req.query("name").unwrap_or(""),
                       req.header("X-Country").unwrap_or(""), req.path);
    res.write_str(&text);
}
""",
    "assemblyscript": r"""
function onRequest(req: EdgeRequest, res: EdgeResponse): void {
  res.setHeader("content-type", "text/plain");
  res.setHeader("x-lang", "assemblyscript");
  res.writeString("hello " + req.query("name") + " from " + req.header("X-Country") + " via " + req.path);
}
""",
    "go": r"""
func onRequest(req *EdgeRequest, res *EdgeResponse) {
	res.SetHeader("content-type", "text/plain")
	res.SetHeader("x-lang", "go")
	res.WriteString("hello " + req.Query("name") + " from " + req.Header("X-Country") + " via " + req.Path)
}
""",
}


def fetch(server: EdgeServer, path: str, method: str = "GET", body: bytes | None = None, headers=None, timeout=10.0):
    """(status, headers with lower-case names, body) over a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def lab_handler():
    need_toolchain("c")
    return compile_handler(LAB_C, "c", name="lab")


@pytest.fixture(scope="module")
def lab_abi():
    """The same handler on the wasmlab-edge/1 ABI: what the out-of-process engines (node, wasm3, wasmer) run."""
    need_toolchain("c")
    return compile_handler(LAB_C, "c", name="lab", standard=False)


def test_a_standard_handler_on_an_out_of_process_engine_says_what_to_do(lab_handler):
    try:
        get_runtime("node")
    except RuntimeUnavailable as exc:
        pytest.skip(str(exc))
    with pytest.raises(UsageError, match="runtime='wasmtime', or compile_handler"):
        deploy(lab_handler, "fresh", "node")


@pytest.fixture
def server():
    with EdgeServer(timeout=0.5) as srv:
        yield srv


def test_server_answers_real_http_on_a_random_loopback_port(server, lab_handler):
    server.route("/hello", lab_handler)
    assert server.url.startswith("http://127.0.0.1:") and server.port > 0
    status, headers, body = fetch(server, "/hello?name=ada")
    assert (status, body) == (200, b"hello ada count=1")
    assert headers["content-type"] == "text/plain"
    assert headers["x-wasmlab-strategy"] == "pooled" and headers["x-wasmlab-runtime"] == "wasmtime"
    assert headers["x-wasmlab-module"] == lab_handler.module.sha256[:12]
    assert "handler;dur=" in headers["server-timing"]
    status, _, body = fetch(server, "/hello/sub/path", "POST", b"\x00binary\xff body")
    assert (status, body) == (200, b"\x00binary\xff body")  # prefix routing, POST bodies, binary safe
    status, _, body = fetch(server, "/nowhere")
    assert status == 404 and b"/hello" in body
    response = server.fetch("/hello?name=nb")  # the notebook helper: a Response
    assert (response.status, response.text, response.header("x-wasmlab-route")) == (200, "hello nb count=1", "/hello")
    assert fetch(server, "/_edge/health")[0] == 200
    stats = json.loads(fetch(server, "/_edge/stats")[2])
    assert stats["routes"][0]["route"] == "/hello" and stats["routes"][0]["requests"] == 3


def test_routes_match_by_prefix_at_a_segment_boundary_and_handlers_see_the_full_path(server):
    need_toolchain("c")
    via = compile_handler(PERSONALISE["c"], "c", name="via")
    for path in ("/", "/api", "/api/users"):
        server.route(path, via)
    for path, route in [("/api", "/api"), ("/api/", "/api"), ("/api/users/7", "/api/users"), ("/apix", "/"),
                        ("/api/usersx", "/api"), ("/", "/"), ("/elsewhere/deep", "/")]:
        response = server.fetch(path + "?name=ada")
        assert (response.status, response.header("x-wasmlab-route")) == (200, route), path
        assert response.text == f"hello ada from  via {path}", path  # the full request path, query removed


def test_keep_alive_chunked_and_expect_continue(server, lab_handler):
    server.route("/", lab_handler)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        request = (
            b"POST /x HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\nexpect: 100-continue\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            b"GET /again?name=bob HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"
        )
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert b"\r\n\r\nhello world" in data
    assert data.count(b"HTTP/1.1 200 OK") == 2 and data.endswith(b"hello bob count=1")  # pooled: fresh state


@pytest.mark.parametrize("lang", ["c", "rust", "assemblyscript", "go"])
def test_handlers_in_four_languages(server, lang):
    need_toolchain(lang)
    handler = compile_handler(PERSONALISE[lang], lang, name=f"personalise-{lang}")
    assert handler.helper and handler.kind == ("http" if lang == "c" else "abi")  # C: a standard handler
    server.route("/p", handler, timeout=5.0)
    for _ in range(3):  # several requests: pooled instances are replaced in between
        status, headers, body = fetch(server, "/p/x?name=ada&y=1", headers={"X-Country": "NZ"})
        assert status == 200, body
        assert headers["x-lang"] == lang
        assert body == b"hello ada from NZ via /p/x"


def test_strategies_differ_in_instance_reuse_and_state(server, lab_handler):
    for strategy in ("fresh", "pooled", "reused"):
        server.route(f"/{strategy}", lab_handler, strategy=strategy)
    seen = {}
    for strategy in ("fresh", "pooled", "reused"):
        answers = [fetch(server, f"/{strategy}") for _ in range(4)]
        seen[strategy] = [(h["x-wasmlab-instance"], body) for _, h, body in answers]
    assert [b for _, b in seen["reused"]] == [f"hello world count={i}".encode() for i in range(1, 5)]
    assert len({i for i, _ in seen["reused"]}) == 1
    for strategy in ("fresh", "pooled"):
        assert {b for _, b in seen[strategy]} == {b"hello world count=1"}  # no state leaks between requests
        assert len({i for i, _ in seen[strategy]}) == 4


@pytest.mark.parametrize("strategy", ["fresh", "pooled", "reused"])
def test_infinite_loop_gets_503_within_the_timeout_and_the_next_request_succeeds(server, lab_handler, strategy):
    server.route("/lab", lab_handler, strategy=strategy, timeout=0.25)
    t0 = time.monotonic()
    status, headers, body = fetch(server, "/lab?do=spin")
    elapsed = time.monotonic() - t0
    assert status == 503 and headers["x-wasmlab-error"] == "limit:time"
    assert b"time limit" in body and body.count(b"\n") == 1
    assert elapsed < 0.25 + 1.0
    status, headers, body = fetch(server, "/lab?name=next")
    assert status == 200 and body.startswith(b"hello next")
    if strategy == "reused":
        assert body.endswith(b"count=1")  # the looping instance was replaced: its state is gone


def test_trap_fuel_and_memory_limits_are_per_request(server, lab_handler):
    server.route("/trap", lab_handler)
    server.route("/fuel", lab_handler, fuel=200_000)
    server.route("/mem", lab_handler, max_memory=16 << 20)
    status, headers, body = fetch(server, "/trap?do=trap")
    assert status == 500 and headers["x-wasmlab-error"] == "trap" and b"unreachable" in body
    status, headers, body = fetch(server, "/fuel?do=spin")
    assert status == 503 and headers["x-wasmlab-error"] == "limit:fuel"
    status, headers, body = fetch(server, "/mem?do=grow")
    assert status == 503 and headers["x-wasmlab-error"] == "limit:memory", body
    for path in ("/trap", "/fuel", "/mem"):
        assert fetch(server, path)[0] == 200  # and each route keeps serving
    rows = server.stats().set_index("route")
    assert rows.loc["/trap", "errors"] == 1 and rows.loc["/trap", "requests"] == 2


def test_hot_swap_under_load_drops_nothing(server, lab_handler):
    need_toolchain("c")
    v2 = compile_handler(LAB_C.replace('"hello "', '"v2 "'), "c", name="lab-v2")
    server.route("/swap", lab_handler, pool_size=2)
    result = {}
    loader = threading.Thread(
        target=lambda: result.update(report=load(server.url + "/swap", 600, 4, rate=300, duration=10))
    )
    loader.start()
    swaps = 0
    while loader.is_alive() and swaps < 6:
        time.sleep(0.15)
        server.swap("/swap", v2 if swaps % 2 == 0 else lab_handler)
        swaps += 1
    loader.join(30)
    report = result["report"]
    summary = report.summary()
    assert summary["requests"] == 600 and summary["failed"] == 0, report.to_dict()
    assert server.routes["/swap"].swaps == swaps >= 3
    expected = (v2 if swaps % 2 else lab_handler).module.sha256[:12]
    assert fetch(server, "/swap")[1]["x-wasmlab-module"] == expected


def test_in_flight_requests_finish_on_the_old_module(server):
    # v1 busy-waits 1 s on the built-in clock; v2 answers at once
    slow = r"""
(module
  (import "wasmlab" "now_ms" (func $now (result f64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "200\n\nv1")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "handle") (param i32 i32) (result i64) (local $end f64)
    (local.set $end (f64.add (call $now) (f64.const 1000)))
    (loop $wait (br_if $wait (f64.lt (call $now) (local.get $end))))
    (i64.const 7)))
"""
    fast = slow.replace("v1", "v2").replace("(f64.const 1000)", "(f64.const 0)")
    server.route("/v", compile_handler(slow, "wat"), strategy="reused", timeout=5)
    old = server.routes["/v"].deployment
    result = {}
    first = threading.Thread(target=lambda: result.update(first=fetch(server, "/v")))
    first.start()
    time.sleep(0.1)
    server.swap("/v", compile_handler(fast, "wat"))
    assert fetch(server, "/v")[2] == b"v2"
    assert first.is_alive() and not old.closed  # v2 answered while the v1 request was still running
    first.join(10)
    assert result["first"][0] == 200 and result["first"][2] == b"v1"
    for _ in range(100):
        if old.closed:
            break
        time.sleep(0.01)
    assert old.closed  # retired once its last request finished


def test_origin_and_simulated_delay(server, lab_handler):
    server.origin("/far", delay_ms=60)
    server.route("/near", lab_handler, delay_ms=5)
    t0 = time.monotonic()
    status, headers, body = fetch(server, "/far")
    far = time.monotonic() - t0
    assert status == 200 and body == b"origin\n" and far >= 0.06
    t0 = time.monotonic()
    status, headers, _ = fetch(server, "/near")
    near = time.monotonic() - t0
    assert status == 200 and 0.005 <= near < far and "delay;dur=" in headers["server-timing"]


def test_snapshot_reset_and_what_it_refuses(server, lab_handler):
    server.route("/snap", lab_handler, reset="snapshot", pool_size=1)
    deployment = server.routes["/snap"].deployment
    for _ in range(3):
        status, headers, body = fetch(server, "/snap")
        assert (status, headers["x-wasmlab-instance"], body) == (200, "1", b"hello world count=1")
        assert deployment.settle()
    assert deployment.stats()["restores"] == 3 and deployment.stats()["instances"] == 1
    two_globals = r"""
(module (memory (export "memory") 1) (global (mut i32) (i32.const 0)) (global (mut i32) (i32.const 0))
  (func (export "alloc") (param i32) (result i32) (i32.const 0))
  (func (export "handle") (param i32 i32) (result i64) (i64.const 0)))
"""
    with pytest.raises(UsageError, match="mutable globals"):
        server.route("/bad", compile_handler(two_globals, "wat"), reset="snapshot")


def test_wasi_command_handlers_run_fresh_only(server):
    need_toolchain("c")
    command = compile_handler(
        '#include <stdio.h>\nint main(void) { printf("200\\n\\nfrom a command"); return 0; }', "c", kind="command"
    )
    with pytest.raises(UsageError, match="fresh"):
        server.route("/cmd", command, strategy="pooled")
    server.route("/cmd", command, strategy="fresh")
    assert fetch(server, "/cmd")[2] == b"from a command"


def test_inline_execution_and_server_lifecycle(lab_handler):
    server = EdgeServer(execution="inline", strategy="reused")
    with pytest.raises(UsageError):
        _ = server.url
    with server:
        server.route("/", lab_handler)
        assert fetch(server, "/?name=i")[2] == b"hello i count=1"
        deployment = server.routes["/"].deployment
        port = server.port
    assert not server.running and deployment.closed
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(UsageError, match="loopback"):
        EdgeServer(host="0.0.0.0")
    with pytest.raises(UsageError, match="strategy"):
        deploy(lab_handler, "sometimes")


@pytest.mark.parametrize("runtime", ["node", "wasm3", "wasmer"])
def test_other_runtimes_serve_every_strategy(lab_abi, runtime):
    lab_handler = lab_abi
    try:
        get_runtime(runtime)
    except RuntimeUnavailable as exc:
        pytest.skip(str(exc))
    with EdgeServer(runtime=runtime, timeout=5.0, pool_size=2) as server:
        for strategy in ("fresh", "pooled", "reused"):
            server.route(f"/{strategy}", lab_handler, strategy=strategy)
            status, headers, body = fetch(server, f"/{strategy}?name={runtime}")
            assert (status, body) == (200, f"hello {runtime} count=1".encode())
            assert headers["x-wasmlab-runtime"] == runtime
        assert fetch(server, "/reused")[2].endswith(b"count=2")


def test_node_worker_loop_is_stopped_and_the_pool_recovers(lab_abi):
    lab_handler = lab_abi
    try:
        get_runtime("node")
    except RuntimeUnavailable as exc:
        pytest.skip(str(exc))
    with EdgeServer(runtime="node", timeout=0.3, pool_size=2) as server:
        server.route("/n", lab_handler)
        assert fetch(server, "/n")[0] == 200
        status, headers, _ = fetch(server, "/n?do=spin")
        assert status == 503 and headers["x-wasmlab-error"] == "limit:time"
        # the worker was killed with every pooled instance in it: the next request gets a new one
        for _ in range(3):
            status, _, body = fetch(server, "/n?name=again")
            assert (status, body) == (200, b"hello again count=1")


def test_server_starts_inside_a_running_event_loop(lab_handler):
    async def notebook_cell():  # a Jupyter kernel runs cells while its own loop is running
        server = EdgeServer().start()
        server.route("/", lab_handler)
        return server, fetch(server, "/?name=nb")

    server, (status, _, body) = asyncio.run(notebook_cell())
    try:
        assert (status, body) == (200, b"hello nb count=1")
    finally:
        server.stop()


def test_interpreter_exit_stops_a_running_server():
    code = (
        "from wasmlab.edge import EdgeServer, compile_handler\n"
        f"h = compile_handler({ECHO_WAT!r}, 'wat')\n"
        "s = EdgeServer().start(); s.route('/', h); print(s.port, flush=True)\n"
    )
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - t0 < 30 and done.stderr == ""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(done.stdout)), timeout=1).close()
