"""wasmlab.mcp: a module's exported functions as MCP tools, checked with the MCP SDK's own client (PyPI `mcp`) over
stdio and streamable HTTP. Real components (componentize-py; zig cc + wasm-tools), real wasmtime, no mocks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the MCP SDK is not installed: pip install 'wasmlab[mcp]'")

import wasmlab
from wasmlab.mcp import Policy, SessionError, ToolError, ToolHost, session, toolset

from .conftest import need_toolchain
from .snippets import SNIPPETS

VALUES_WIT = (SNIPPETS / "mcp_values.wit").read_text()
GEO_WIT = (SNIPPETS / "mcp_geo.wit").read_text()
RUNTIME = "wasmtime:winch"  # compiles the 19 MB Python component ~8x faster than Cranelift; limits act the same
CORE_WAT = """(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "half") (param f64) (result f64) (f64.mul (local.get 0) (f64.const 0.5)))
  (func (export "pair") (param i64) (result i64 i64) (local.get 0) (local.get 0))
  (func (export "ref") (param externref) (result i32) (i32.const 0))
  (memory (export "memory") 1))
"""


@pytest.fixture(scope="module")
def values_component() -> wasmlab.Module:
    need_toolchain("python")
    source = (SNIPPETS / "mcp_values.py").read_text()
    return wasmlab.compile(source, "python", wit=VALUES_WIT, world="mcp-test", name="values")


@pytest.fixture(scope="module")
def geo_component() -> wasmlab.Module:
    need_toolchain("c")
    return wasmlab.compile((SNIPPETS / "mcp_geo.c").read_text(), "c", wit=GEO_WIT, opt="Os", name="geo")


@pytest.fixture(scope="module")
def granted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("granted")
    (path / "notes.txt").write_text("granted text")
    return path


@pytest.fixture(scope="module")
def served(values_component, granted_dir):
    """The values component behind `wasmlab mcp serve` over stdio, with one directory and one variable granted."""
    with session(
        values_component,
        wit=VALUES_WIT,
        runtime=RUNTIME,
        allow_dir=[f"/data={granted_dir}"],
        allow_env=["GRANTED=visible"],
        timeout=1.0,
        max_memory="64M",
    ) as s:
        yield s


def tool_map(s) -> dict:
    return {tool.name: tool for tool in s.tools}


# schemas --------------------------------------------------------------------------------------------------
def test_every_exported_function_is_a_tool_with_its_wit_docs(served) -> None:
    tools = tool_map(served)
    world = {"add", "bump", "read-file", "env-var", "spin", "hog", "dial", "fail"}
    assert world <= set(tools)
    assert "values.echo-person" in tools and "values.nothing" in tools
    assert not any(name.startswith("exports") for name in tools), "componentize-py's init hook is no tool"
    assert tools["add"].description == "Add two numbers."
    assert tools["values.nothing"].description == "Does nothing and returns nothing."
    assert tools["values.echo-u8"].description == "`echo-u8: func(v: u8) -> u8` (no doc comment)"
    assert tools["values.echo-u8"].meta["wasmlab/wit"] == "test:mcp/values@0.1.0#echo-u8: func(v: u8) -> u8"


INTEGERS = {
    "u8": (0, 255),
    "s8": (-128, 127),
    "u16": (0, 65535),
    "s16": (-32768, 32767),
    "u32": (0, 4294967295),
    "s32": (-2147483648, 2147483647),
    "u64": (0, 2**64 - 1),
    "s64": (-(2**63), 2**63 - 1),
}


def integer(name: str) -> dict:
    low, high = INTEGERS[name]
    return {"type": "integer", "minimum": low, "maximum": high}


def test_schemas_follow_the_wit_types(served) -> None:
    tools = tool_map(served)

    def param(name: str) -> dict:
        schema = tools[f"values.echo-{name}"].input_schema
        assert schema["required"] == ["v"] and schema["additionalProperties"] is False
        return schema["properties"]["v"]

    for name in INTEGERS:
        assert param(name) == integer(name)
    assert param("f32") == param("f64") == {"type": "number"}
    assert param("bool") == {"type": "boolean"}
    assert param("string") == {"type": "string"}
    assert param("char")["minLength"] == param("char")["maxLength"] == 1
    assert param("bytes") == {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}}
    assert param("strings") == {"type": "array", "items": {"type": "string"}}
    assert param("tuple")["prefixItems"] == [integer("s8"), {"type": "string"}] and param("tuple")["items"] is False
    person = param("person")
    assert person["title"] == "person" and person["description"] == "Someone the tools know about."
    assert person["required"] == ["name", "age", "tags"] and person["additionalProperties"] is False
    assert person["properties"]["name"] == {"type": "string", "description": "Their full name."}
    shape = param("shape")
    assert [list(alt["properties"]) for alt in shape["oneOf"]] == [["circle"], ["rectangle"], ["dot"]]
    assert shape["oneOf"][0]["description"] == "A circle of this radius."
    assert shape["oneOf"][2]["properties"]["dot"] == {"type": "null"}
    assert param("color") == {"title": "color", "type": "string", "enum": ["red", "green", "blue"]}
    assert param("access")["items"] == {"enum": ["read", "write", "exec"]} and param("access")["uniqueItems"]
    assert param("option") == {"anyOf": [{"type": "null"}, integer("u32")]}
    assert [list(alt["properties"]) for alt in param("nested-option")["oneOf"]] == [["none"], ["some"]]
    assert [list(alt["properties"]) for alt in param("result")["oneOf"]] == [["ok"], ["err"]]
    assert tools["values.echo-u8"].output_schema["properties"]["result"] == integer("u8")
    assert tools["values.nothing"].output_schema["properties"]["result"] == {"type": "null"}


# calls --------------------------------------------------------------------------------------------------
VALID = [
    *((f"echo-{name}", value) for name, (low, high) in INTEGERS.items() for value in (low, high)),
    ("echo-f32", 1.5),
    ("echo-f64", -2.25),
    ("echo-bool", True),
    ("echo-char", "é"),
    ("echo-string", "héllo, wörld"),
    ("echo-bytes", [0, 1, 255]),
    ("echo-strings", ["a", "", "c"]),
    ("echo-tuple", [-3, "x"]),
    ("echo-person", {"name": "Ada", "age": 36, "tags": ["maths", "engines"]}),
    ("echo-shape", {"circle": 2.5}),
    ("echo-shape", {"rectangle": [1.0, 2.0]}),
    ("echo-shape", {"dot": None}),
    ("echo-color", "blue"),
    ("echo-access", ["read", "exec"]),
    ("echo-access", []),
    ("echo-option", 7),
    ("echo-option", None),
    ("echo-nested-option", {"none": None}),
    ("echo-nested-option", {"some": None}),
    ("echo-nested-option", {"some": 3}),
    ("echo-result", {"ok": 3}),
    ("echo-result", {"err": "bad"}),
    ("echo-either", {"ok": "fine"}),
    ("echo-either", {"err": "bad"}),
]


@pytest.mark.parametrize(("tool", "value"), VALID, ids=[f"{t}={json.dumps(v)}" for t, v in VALID])
def test_valid_values_round_trip_as_structured_content(served, tool, value) -> None:
    result = served.call(f"values.{tool}", v=value)
    assert not result.is_error, result.content[0].text
    assert result.structured_content == {"result": value}
    assert json.loads(result.content[0].text) == value


INVALID = [
    ("echo-u8", 256, "is greater than the maximum of 255"),
    ("echo-s8", -129, "is less than the minimum of -128"),
    ("echo-u64", -1, "is less than the minimum of 0"),
    ("echo-u32", 1.5, "is not of type 'integer'"),
    ("echo-s32", "7", "is not of type 'integer'"),
    ("echo-f64", "x", "is not of type 'number'"),
    ("echo-bool", 1, "is not of type 'boolean'"),
    ("echo-char", "ab", "is too long"),
    ("echo-bytes", [256], "is greater than the maximum of 255"),
    ("echo-tuple", [1], "is too short"),
    ("echo-tuple", [1, "x", 2], "Expected at most 2 items"),
    ("echo-person", {"name": "Ada", "age": 36}, "'tags' is a required property"),
    ("echo-person", {"name": "Ada", "age": 36, "tags": [], "extra": 1}, "Additional properties"),
    ("echo-shape", {"circle": 1.0, "dot": None}, "is not valid under any of the given schemas"),
    ("echo-shape", {"square": 1.0}, "is not valid under any of the given schemas"),
    ("echo-color", "purple", "is not one of"),
    ("echo-access", ["read", "read"], "has non-unique elements"),
    ("echo-access", ["fly"], "is not one of"),
    ("echo-result", {"maybe": 1}, "is not valid under any of the given schemas"),
]


@pytest.mark.parametrize(("tool", "value", "message"), INVALID, ids=[f"{t}={json.dumps(v)}" for t, v, _ in INVALID])
def test_invalid_arguments_get_a_schema_error_not_a_crash(served, tool, value, message) -> None:
    result = served.call(f"values.{tool}", v=value)
    assert result.is_error and result.structured_content is None
    text = result.content[0].text
    assert text.startswith(f"invalid arguments for values.{tool}: ") and message in text
    assert "\n" not in text
    assert served.value("add", a=2, b=3) == 5  # the server still answers


def test_missing_and_extra_arguments_are_schema_errors(served) -> None:
    missing = served.call("add", a=1)
    assert missing.is_error and "'b' is a required property" in missing.content[0].text
    extra = served.call("add", a=1, b=2, c=3)
    assert extra.is_error and "Additional properties are not allowed ('c' was unexpected)" in extra.content[0].text


def test_unknown_tool_is_a_protocol_error(served) -> None:
    from mcp.shared.exceptions import MCPError

    with pytest.raises(MCPError, match="unknown tool 'nope'"):
        served.call("nope")


def test_a_result_with_no_json_form_is_a_tool_error(served) -> None:
    result = served.call("values.not-a-number")
    assert result.is_error and "has no JSON form" in result.content[0].text
    assert served.value("values.nothing") is None


# policy ----------------------------------------------------------------------------------------------------
def test_the_policy_is_listed_as_a_resource(served, granted_dir) -> None:
    policy = served.policy()
    assert policy["default"] == "deny"
    assert policy["files"] == [{"guest": "/data", "host": str(granted_dir.resolve())}]
    assert policy["environment"] == ["GRANTED"]
    assert policy["network"] == []
    assert policy["limits"] == {"timeout_s": 1.0, "fuel": None, "max_memory_bytes": 64 << 20}
    assert "visible" not in json.dumps(policy), "variable values are not shown"
    uris = {str(r.uri) for r in served.portal.call(served.client.list_resources).resources}
    assert uris == {"wasmlab://policy", "wasmlab://tools"}


def test_files_outside_the_grant_are_invisible(served) -> None:
    assert served.value("read-file", path="/data/notes.txt") == "granted text"
    for path in (str(Path(__file__).resolve()), "/etc/passwd", "/data/../../etc/passwd"):
        result = served.call("read-file", path=path)
        assert result.is_error, path
        text = result.content[0].text
        assert "wasm trap" in text and ("FileNotFoundError" in text or "PermissionError" in text), text
    assert served.value("read-file", path="/data/notes.txt") == "granted text"


def test_only_granted_environment_variables_exist(served) -> None:
    assert os.environ.get("PATH") and os.environ.get("HOME")
    assert served.value("env-var", name="GRANTED") == "visible"
    assert served.value("env-var", name="PATH") is None
    assert served.value("env-var", name="HOME") is None


def test_the_network_is_denied(served) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.3)
        result = served.call("dial", port=listener.getsockname()[1])
        assert result.is_error and "PermissionError" in result.content[0].text
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever connected


def test_a_loop_is_stopped_by_the_time_limit_and_the_server_keeps_serving(served) -> None:
    started = time.perf_counter()
    result = served.call("spin")
    elapsed = time.perf_counter() - started
    assert result.is_error and "ran past the 1 s time limit" in result.content[0].text
    assert elapsed < 5, elapsed
    assert served.value("add", a=40, b=2) == 42


def test_allocation_is_capped_by_max_memory(served) -> None:
    assert served.value("hog", mebibytes=4) == 4
    result = served.call("hog", mebibytes=200)  # past the 64 MiB cap: memory.grow fails, Python raises MemoryError
    assert result.is_error and "MemoryError" in result.content[0].text
    assert served.value("hog", mebibytes=4) == 4


def test_a_trap_gives_its_guest_error_and_a_fresh_instance(served) -> None:
    first = served.value("bump")
    assert served.value("bump") == first + 1  # state persists between calls of one instance
    result = served.call("fail", message="boom")
    assert result.is_error and result.content[0].text.endswith("(guest stderr: ValueError: boom)")
    assert served.value("bump") == 1  # the trapped instance was replaced


def test_fuel_limits_each_call(values_component) -> None:
    with session(values_component, wit=VALUES_WIT, runtime=RUNTIME, fuel=20_000_000) as s:
        result = s.call("spin")
        assert result.is_error and "used all 20,000,000 units of fuel" in result.content[0].text
        assert s.value("add", a=1, b=1) == 2
        assert s.policy()["limits"]["fuel"] == 20_000_000
        with pytest.raises(ToolError, match="fuel"):
            s.value("spin")


def test_a_bad_grant_stops_the_server_with_its_message(geo_component, tmp_path) -> None:
    with pytest.raises(SessionError, match="is not a directory"):
        session(geo_component, allow_dir=[f"/data={tmp_path / 'missing'}"])


# other modules and transports -------------------------------------------------------------------------------
def test_c_component_over_streamable_http_on_loopback(geo_component) -> None:
    with session(geo_component, wit=GEO_WIT, transport="http") as s:
        assert s.url.startswith("http://127.0.0.1:") and s.url.endswith("/mcp")
        tools = tool_map(s)
        assert set(tools) == {"geo.distance", "geo.heading", "geo.count-within"}
        assert tools["geo.distance"].description == "Straight-line distance between two points, in kilometres."
        point = tools["geo.distance"].input_schema["properties"]["a"]
        assert point["properties"]["x"]["description"] == "Kilometres east of the origin."
        assert s.value("geo.distance", a={"x": 0, "y": 0}, b={"x": 3, "y": 4}) == 5.0
        assert s.value("geo.heading", a={"x": 0, "y": 0}, b={"x": -3, "y": 1}) == "west"
        places = [{"x": 1, "y": 1}, {"x": 10, "y": 0}, {"x": 0, "y": -5}]
        assert s.value("geo.count-within", center={"x": 0, "y": 0}, radius=5, places=places) == 2
        assert s.call("geo.heading", a={"x": 0}, b={"x": 1, "y": 1}).is_error
        pid = s.pid
    assert not alive(pid)  # stopped with the session


def alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_a_session_never_closed_ends_with_its_process(tmp_path, transport) -> None:
    """A notebook that forgets close(): the server goes when the kernel goes, and the kernel can exit."""
    path = wasmlab.compile(CORE_WAT, "wat", name="core").save(tmp_path / "core.wasm")
    code = f"""
import os, wasmlab.mcp as m
s = m.session({str(path)!r}, transport={transport!r})
assert s.value("add", arg0=1, arg1=2) == 3
children = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()[1] == str(os.getpid()):
            children.append(int(pid))
    except OSError:
        pass
print(children, flush=True)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    children = json.loads(out.stdout)
    assert children, "the server was a child of the session's process"
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in children), "a server outlived the process that started it"


def test_core_module_functions_are_tools(tmp_path) -> None:
    module = wasmlab.compile(CORE_WAT, "wat", name="core")
    tools = toolset(module)
    assert set(tools.tools) == {"add", "div", "half", "pair"}
    assert "externref" in tools.skipped["ref"]
    assert tools["add"].input_schema["properties"]["arg0"] == {
        "type": "integer",
        "minimum": -(2**31),
        "maximum": 2**32 - 1,
    }
    path = module.save(tmp_path / "core.wasm")
    with session(path) as s:
        assert s.value("add", arg0=2, arg1=3) == 5
        assert s.value("half", arg0=3) == 1.5
        assert s.value("pair", arg0=7) == [7, 7]
        trapped = s.call("div", arg0=1, arg1=0)
        assert trapped.is_error and "integer divide by zero" in trapped.content[0].text
        assert s.value("div", arg0=7, arg1=2) == 3


def test_cli_serves_stdio_to_a_plain_sdk_client(tmp_path) -> None:
    """No wasmlab on the client side: the SDK launches `wasmlab mcp serve` itself, as an assistant would."""
    import anyio
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    path = wasmlab.compile(CORE_WAT, "wat", name="core").save(tmp_path / "core.wasm")
    args = ["-m", "wasmlab", "mcp", "serve", str(path), "--timeout", "2"]
    params = StdioServerParameters(command=sys.executable, args=args, env=dict(os.environ))

    async def main() -> tuple:
        async with Client(params) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
            result = await client.call_tool("add", {"arg0": 20, "arg1": 22})
            return names, result.structured_content

    names, structured = anyio.run(main)
    assert names == ["add", "div", "half", "pair"] and structured == {"result": 42}


def test_cli_tools_lists_schemas_and_what_is_left_out(tmp_path) -> None:
    path = wasmlab.compile(CORE_WAT, "wat", name="core").save(tmp_path / "core.wasm")
    out = subprocess.run(
        [sys.executable, "-m", "wasmlab", "mcp", "tools", str(path), "--json"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [t["name"] for t in data["tools"]] == ["add", "div", "half", "pair"]
    assert "ref" in data["not_tools"]


def test_cli_builds_a_python_source_for_its_wit_world(values_component) -> None:
    """`wasmlab mcp tools|serve tools.py --wit tools.wit --world W` compiles the source for that world first."""
    out = subprocess.run(
        [sys.executable, "-m", "wasmlab", "mcp", "tools", str(SNIPPETS / "mcp_values.py"),
         "--wit", str(SNIPPETS / "mcp_values.wit"), "--world", "mcp-test", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    tools = {t["name"]: t for t in json.loads(out.stdout)["tools"]}
    assert set(tools) == {t.name for t in toolset(values_component, wit=VALUES_WIT)}
    assert tools["add"]["description"] == "Add two numbers."


def test_cli_refuses_a_non_loopback_address(tmp_path) -> None:
    path = wasmlab.compile(CORE_WAT, "wat", name="core").save(tmp_path / "core.wasm")
    out = subprocess.run(
        [sys.executable, "-m", "wasmlab", "mcp", "serve", str(path), "--transport", "http", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "wasmlab: --host 0.0.0.0: wasmlab's MCP server listens on loopback only (127.0.0.1 or ::1)"
    ]


# the pieces, in process -------------------------------------------------------------------------------------
def test_policy_grants_parse_and_check() -> None:
    policy = Policy.grant(["/tmp"], ["A=1"], timeout=2, fuel=5, max_memory="64M")
    assert policy.dirs == {str(Path("/tmp").resolve()): str(Path("/tmp").resolve())}
    assert policy.env == {"A": "1"} and policy.max_memory == 64 << 20
    assert Policy.grant(max_memory="1GiB").max_memory == 1 << 30
    with pytest.raises(wasmlab.UsageError, match="not set here"):
        Policy.grant(allow_env=["WASMLAB_SURELY_UNSET_VARIABLE"])
    with pytest.raises(wasmlab.UsageError, match="give bytes"):
        Policy.grant(max_memory="lots")
    with pytest.raises(wasmlab.UsageError, match="must be absolute"):
        Policy({"data": "/tmp"})


def test_host_reports_unknown_tools_with_the_list(geo_component) -> None:
    with ToolHost(geo_component) as host:
        with pytest.raises(wasmlab.UsageError, match=r"the tools are geo\.distance, geo\.heading, geo\.count-within"):
            host.call("geo.area", {})
        assert host.call("geo.distance", {"a": {"x": 1, "y": 1}, "b": {"x": 1, "y": 1}}).value == 0.0
        assert host.instances == 1


def test_bad_wit_sources_are_usage_errors(geo_component, tmp_path) -> None:
    with pytest.raises(wasmlab.UsageError, match=r"cannot read the WIT text: .*world\.wit"):
        toolset(geo_component, wit="package demo:geo@0.1.0;\ninterface geo {\n  broken(\n}\n")
    with pytest.raises(wasmlab.UsageError, match="no such WIT file or directory"):
        toolset(geo_component, wit=tmp_path / "missing.wit")
    with pytest.raises(wasmlab.UsageError, match=r"core module: wit= describes components only"):
        toolset(wasmlab.compile(CORE_WAT, "wat", name="core"), wit=GEO_WIT)


def test_guest_output_never_reaches_the_stdio_channel(tmp_path) -> None:
    """A guest printing JSON-RPC to its stdout: captured by WASI, never mixed into the server's protocol stream."""
    line = '{"jsonrpc": "2.0", "id": 1, "result": {}}\n'
    wat = f"""(module
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) {json.dumps(line)})
      (func (export "shout") (result i32)
        (i32.store (i32.const 0) (i32.const 16))
        (i32.store (i32.const 4) (i32.const {len(line)}))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (i32.const 7)))"""
    module = wasmlab.compile(wat, "wat", name="shout")
    with module.instantiate("wasmtime") as instance:
        assert instance.call("shout") == 7 and instance.stdout == line.encode()  # it does print
    with session(module) as s:
        assert [s.value("shout") for _ in range(3)] == [7, 7, 7]
        assert s.value("shout") == 7
