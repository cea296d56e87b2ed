"""`wasmlab mcp serve` and `wasmlab mcp tools`: a module's functions as MCP tools, deny-by-default.

wasmlab mcp serve tools.wasm                                   (stdio: what an MCP client launches)
wasmlab mcp serve tools.py --wit tools.wit --allow-dir /data=./data --allow-env LANG --timeout 2 --fuel 10000000
wasmlab mcp serve tools.wasm --transport http --port 8765       (streamable HTTP on 127.0.0.1)
wasmlab mcp tools tools.wasm --json                            (the tools and their schemas, without serving)
"""

from __future__ import annotations

import argparse
import contextlib
import json
from typing import Any

from .policy import DEFAULT_MAX_MEMORY, DEFAULT_TIMEOUT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `mcp` command's sub-commands on the parser `wasmlab.cli` made for it."""
    sub = parser.add_subparsers(dest="mcp_command", required=True, metavar="SUBCOMMAND")

    def subcommand(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("source", metavar="COMPONENT_OR_SRC", help="a .wasm component or module, or a source file")
        p.add_argument("--wit", help="the WIT the component was built from (doc comments; the world of a .py)")
        p.add_argument("--world", help="the world in --wit to build a .py source for")
        p.add_argument("--lang", help="source language (default: from the file extension)")
        return p

    p = subcommand("serve", "serve a module's exported functions as MCP tools (stdio, or streamable HTTP)")
    p.add_argument("--allow-dir", action="append", default=[], metavar="GUEST=HOST", help="grant a directory")
    p.add_argument("--allow-env", action="append", default=[], metavar="NAME", help="grant a variable (or NAME=V)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S", help="seconds per call (10)")
    p.add_argument("--fuel", type=int, metavar="N", help="instruction budget per call (default: none)")
    p.add_argument(
        "--max-memory", default=str(DEFAULT_MAX_MEMORY), metavar="B", help="linear memory cap: bytes, or 64M (256M)"
    )
    p.add_argument("--transport", choices=("stdio", "http"), default="stdio", help="stdio (default) or http")
    p.add_argument("--host", default="127.0.0.1", help="with --transport http: loopback address (127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="with --transport http: port (default: a free one)")
    p.add_argument("--runtime", "-r", default="wasmtime", help="wasmtime or wasmtime:winch (faster start)")
    p.add_argument("--until-stdin-closes", action="store_true", help="with --transport http: stop when stdin closes")

    p = subcommand("tools", "list the tools a module would serve, with their schemas, and what is left out")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")


def run(args: argparse.Namespace) -> int:
    from . import load_source, serve
    from .host import ToolHost

    if args.mcp_command == "tools":
        module = load_source(args.source, lang=args.lang, wit=args.wit, world=args.world)
        _print_tools(ToolHost(module, wit=args.wit), getattr(args, "json", False))
        return 0
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how an HTTP server is meant to stop
        serve(
            args.source,
            allow_dir=args.allow_dir,
            allow_env=args.allow_env,
            timeout=args.timeout,
            fuel=args.fuel,
            max_memory=args.max_memory,
            transport=args.transport,
            host=args.host,
            port=args.port,
            wit=args.wit,
            world=args.world,
            lang=args.lang,
            runtime=args.runtime,
            until_stdin_closes=args.until_stdin_closes,
        )
    return 0


def _print_tools(host: Any, as_json: bool) -> None:
    tools = [
        {
            "name": t.name,
            "wit": t.signature,
            "description": t.description,
            "input_schema": t.input_schema,
            "output_schema": t.output_schema,
        }
        for t in host.tools
    ]
    if as_json:
        print(json.dumps({"tools": tools, "not_tools": host.toolset.skipped}, indent=2))
        return
    for tool in tools:
        print(f"{tool['name']}: {tool['wit']}\n    {tool['description']}")
    for name, why in host.toolset.skipped.items():
        print(f"(not a tool) {name}: {why}")
