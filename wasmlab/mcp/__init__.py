"""A Wasm component's functions as sandboxed AI tools over the Model Context Protocol, deny-by-default (the idea of
Microsoft's Wassette, on wasmtime-py and the MCP Python SDK).

Every exported function of a component (world-level, and `interface#func` of each exported interface) becomes an
MCP tool: its input schema is derived from the WIT types, its description from the WIT doc comments, and its
result comes back as structured content. Core modules work too (numbers only). Each call runs under a `Policy`:
no files, environment or network unless granted, and time, fuel and memory limits; a trap or a limit is a tool
error with a one-line message, and the server keeps serving.

    wasmlab mcp serve tools.wasm --allow-dir /data=./data --timeout 2     (an MCP client launches this)

    >>> with wasmlab.mcp.session(component) as s:                        # doctest: +SKIP
    ...     s.tools, s.call("add", a=1, b=2).structured_content
    ([Tool(name='add', ...)], {'result': 3})

Layers: `wit` (WIT types <-> JSON Schema and values), `tools` (a module's tools), `policy`, `host` (calls under
the policy, no MCP), `server` (the MCP SDK's low-level server over stdio or streamable HTTP), `session` (the SDK's
client on a subprocess server). Nothing else in wasmlab imports this package.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..module import Module
from .host import Outcome, ToolHost
from .policy import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT, Policy
from .session import Session, SessionError, ToolError, session
from .tools import Tool, Toolset, toolset

__all__ = [
    "Outcome",
    "Policy",
    "Session",
    "SessionError",
    "Tool",
    "ToolError",
    "ToolHost",
    "Toolset",
    "load_source",
    "serve",
    "session",
    "toolset",
]

MODULE_SUFFIXES = (".wasm", ".wat", ".wast")


def load_source(
    source: Module | str | Path, *, lang: str | None = None, wit: str | Path | None = None, world: str | None = None
) -> Module:
    """A Module from a Module, a .wasm/.wat file, or a source file to compile (a .py with `wit` builds a
    component of that world; without it, componentize-py's world from the annotations)."""
    from .. import build

    if isinstance(source, Module):
        return source
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    if path.suffix in MODULE_SUFFIXES and not lang:
        return build.load(path)
    options: dict[str, Any] = {}
    if wit is not None:
        wit_text = Path(wit).read_text(encoding="utf-8") if Path(str(wit)).is_file() else str(wit)
        options = {"wit": wit_text, "world": world}
    return build.compile(path, lang, **options)


def serve(
    source: Module | str | Path,
    *,
    allow_dir: list[str] | tuple[str, ...] = (),
    allow_env: list[str] | tuple[str, ...] = (),
    timeout: float | None = DEFAULT_TIMEOUT,
    fuel: int | None = None,
    max_memory: int | str | None = DEFAULT_MAX_MEMORY,
    policy: Policy | None = None,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 0,
    wit: str | Path | None = None,
    world: str | None = None,
    lang: str | None = None,
    runtime: str = "wasmtime",
    until_stdin_closes: bool = False,
) -> None:
    """Serve `source`'s exported functions as MCP tools until the client leaves (stdio) or Ctrl-C (http on
    `host`:`port`, loopback only). Grants: `allow_dir` ("GUEST=HOST"), `allow_env` ("NAME" or "NAME=VALUE");
    limits per call: `timeout` (s), `fuel`, `max_memory` (bytes or "64M"); or a ready `policy`. `wit` is the WIT
    source (text or path) the component was built from, for its doc comments. In a notebook use `session()`.
    `until_stdin_closes` (http): stop when stdin reaches its end, so the server ends with its parent."""
    from .server import check_loopback, run_http, run_stdio

    if transport not in ("stdio", "http"):
        raise UsageError(f"transport={transport!r}: use 'stdio' or 'http'")
    if transport == "http":
        check_loopback(host)
    module = load_source(source, lang=lang, wit=wit, world=world)
    if policy is None:
        policy = Policy.grant(allow_dir, allow_env, timeout=timeout, fuel=fuel, max_memory=max_memory)
    with ToolHost(module, policy, wit=wit, runtime=runtime) as tool_host:
        tool_host.start()  # compile and instantiate before answering
        print(f"wasmlab mcp: {len(tool_host.tools)} tools from {module.name}; {policy.summary()}", file=sys.stderr)
        if transport == "http":
            run_http(tool_host, host, port, until_stdin_closes=until_stdin_closes)
        else:
            run_stdio(tool_host)
