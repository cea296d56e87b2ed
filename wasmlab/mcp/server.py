"""The MCP server: a `ToolHost` behind the MCP SDK's low-level `Server`, over stdio or streamable HTTP.

tools/list gives every tool with its input and output schema; tools/call checks the arguments against the
schema, runs the guest in a worker thread (the event loop keeps answering while a guest runs), and returns
`{"result": value}` as structured content (and the same JSON as text, for clients that read only text), or
a tool error (`isError`) with a one-line message. An unknown tool is a protocol error (invalid params), as the
MCP specification asks. The policy is the resource `wasmlab://policy` and part of the server's instructions.

The low-level `Server` and not the SDK's `MCPServer`: `MCPServer` derives schemas from Python signatures,
while these tools' schemas come from WIT.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
from typing import Any

from ..errors import UsageError
from .host import ToolHost

POLICY_URI = "wasmlab://policy"
TOOLS_URI = "wasmlab://tools"


def build_server(host: ToolHost) -> Any:
    """An `mcp.server.lowlevel.Server` serving `host`'s tools and policy."""
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel import Server
    from mcp.shared.exceptions import MCPError
    from mcp_types.jsonrpc import INVALID_PARAMS

    from .. import __version__

    listed = [
        types.Tool(
            name=tool.name,
            description=tool.description,
            input_schema=tool.input_schema,
            output_schema=tool.output_schema,
            _meta={"wasmlab/wit": tool.signature},
        )
        for tool in host.tools
    ]
    resources = [
        types.Resource(
            uri=POLICY_URI,
            name="policy",
            description="what the served module may do: granted files, environment, network, and per-call limits",
            mime_type="application/json",
        ),
        types.Resource(
            uri=TOOLS_URI,
            name="tools",
            description="each tool's WIT signature, and the exports that are not tools and why",
            mime_type="application/json",
        ),
    ]

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name not in host.toolset.tools:
            raise MCPError(INVALID_PARAMS, f"unknown tool {params.name!r}")
        outcome = await anyio.to_thread.run_sync(host.call, params.name, params.arguments or {})
        if not outcome.ok:
            return types.CallToolResult(content=[types.TextContent(text=outcome.error)], is_error=True)
        structured = outcome.structured
        return types.CallToolResult(
            content=[types.TextContent(text=json.dumps(outcome.value))], structured_content=structured
        )

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=resources)

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        if str(params.uri) == POLICY_URI:
            data: dict[str, Any] = {"module": host.module.name, "runtime": host.runtime, **host.policy.describe()}
        elif str(params.uri) == TOOLS_URI:
            data = {
                "tools": {t.name: t.signature for t in host.tools},
                "not_tools": host.toolset.skipped,
            }
        else:
            known = f"{POLICY_URI}, {TOOLS_URI}"
            raise MCPError(INVALID_PARAMS, f"unknown resource {params.uri}: the resources are {known}")
        text = json.dumps(data, indent=2)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=str(params.uri), mime_type="application/json", text=text)]
        )

    return Server(
        "wasmlab",
        version=__version__,
        title=f"wasmlab: {host.module.name}",
        instructions=(
            f"Tools are the exported functions of the Wasm {host.module.kind} {host.module.name}, run sandboxed on "
            f"{host.runtime}. Policy: {host.policy.summary()}. Read {POLICY_URI} for the details."
        ),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


def run_stdio(host: ToolHost) -> None:
    """Serve MCP on this process's stdin and stdout until the client closes them."""
    import anyio
    from mcp.server.stdio import stdio_server

    server = build_server(host)

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(main)


def run_http(
    host: ToolHost, address: str = "127.0.0.1", port: int = 0, *, announce: Any = None, until_stdin_closes: bool = False
) -> None:
    """Serve MCP over streamable HTTP at http://ADDRESS:PORT/mcp (loopback only; port 0 picks a free one)
    until interrupted, or until stdin closes with `until_stdin_closes` (how `session()` makes sure a server never
    outlives the process that started it). `announce(url)` is called once the socket listens (default: stderr)."""
    import uvicorn

    check_loopback(address)
    server = build_server(host)
    app = server.streamable_http_app(host=address)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP, and with
    # Nagle on, a response's body waits for the ACK of its headers: 40 ms per call (Linux's delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    bound = sock.getsockname()[1]
    shown = f"[{address}]" if family == socket.AF_INET6 else address
    url = f"http://{shown}:{bound}/mcp"
    sock.listen(128)  # clients that connect before uvicorn runs wait in the backlog, so announce now
    (announce or _announce)(url)
    server_loop = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    if until_stdin_closes:

        def watch() -> None:
            sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe, or exited
            server_loop.should_exit = True

        threading.Thread(target=watch, daemon=True, name="wasmlab-mcp-stdin").start()
    try:
        server_loop.run(sockets=[sock])
    finally:
        sock.close()


def _announce(url: str) -> None:
    print(f"wasmlab mcp: serving {url}", file=sys.stderr, flush=True)


def check_loopback(address: str) -> None:
    """UsageError unless `address` is a loopback address: the servers wasmlab starts listen on loopback only."""
    try:
        loopback = address == "localhost" or ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(f"--host {address}: wasmlab's MCP server listens on loopback only (127.0.0.1 or ::1)")
