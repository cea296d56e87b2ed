"""`session()`: start `wasmlab mcp serve` as a subprocess and connect the MCP SDK's own `Client` to it.

The client runs on an event loop in a thread of its own (anyio's blocking portal), so a notebook or a script
calls it like ordinary functions: `with session(component) as s: s.call("add", a=1, b=2)`. Over stdio the SDK
starts and stops the server; over HTTP the server is our subprocess on loopback, stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..errors import WasmlabError
from ..module import Module
from .host import require_sdk
from .server import POLICY_URI

STARTUP_TIMEOUT = 180.0  # seconds for the server to compile its module and listen (a Python component: ~10 s)
_URL = re.compile(r"serving (http://\S+)")


class SessionError(WasmlabError):
    """The server could not start, or the connection to it failed."""


class Session:
    """An MCP client connected to a served module: `tools`, `call`, `policy`, `close`. `client` is the SDK's
    `mcp.Client` and `portal` the anyio portal its loop runs in, for anything else the SDK offers."""

    def __init__(self, args: list[str], transport: str, workdir: tempfile.TemporaryDirectory[str]) -> None:
        require_sdk()
        from mcp import Client

        self.transport = transport
        self.url: str | None = None
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: deque[str] = deque(maxlen=50)
        self._errlog = open(Path(workdir.name) / "server.log", "w+", encoding="utf-8")  # noqa: SIM115
        self.portal, self._loop_thread = _start_portal()
        try:
            if transport == "http":
                self.url = self._start_http(args)
                target: Any = self.url
            else:
                from mcp.client.stdio import StdioServerParameters, stdio_client

                params = StdioServerParameters(command=sys.executable, args=args, env=dict(os.environ))
                target = stdio_client(params, errlog=self._errlog)
            self._client_cm = self.portal.wrap_async_context_manager(Client(target))
            self.client = self._client_cm.__enter__()
        except BaseException as exc:
            why = self._server_error()
            self._shutdown()
            if isinstance(exc, Exception) and why:
                raise SessionError(f"wasmlab mcp serve did not start: {why}") from None
            raise

    # server process ---------------------------------------------------------------------------------------
    def _start_http(self, args: list[str]) -> str:
        self._process = subprocess.Popen(  # its stdin is ours: when we go, it goes (--until-stdin-closes)
            [sys.executable, *args, "--transport", "http", "--port", "0", "--until-stdin-closes"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        found = threading.Event()
        urls: list[str] = []

        def drain() -> None:  # read stderr to its end, so the server never blocks on a full pipe
            assert self._process is not None and self._process.stderr is not None
            for raw in self._process.stderr:
                line = raw.decode(errors="replace").rstrip()
                self._stderr.append(line)
                match = _URL.search(line)
                if match and not found.is_set():
                    urls.append(match.group(1))
                    found.set()
            found.set()

        threading.Thread(target=drain, daemon=True, name="wasmlab-mcp-stderr").start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not found.wait(0.1):
            if time.monotonic() > deadline:
                raise SessionError(f"wasmlab mcp serve did not listen within {STARTUP_TIMEOUT:g} s")
        if not urls:
            raise SessionError(f"wasmlab mcp serve exited: {self._server_error() or 'no message'}")
        return urls[0]

    def _server_error(self) -> str:
        """The server's last `wasmlab: ...` line (its one-line error), else its last line."""
        self._errlog.flush()
        self._errlog.seek(0)
        lines = [line.rstrip() for line in [*self._errlog.read().splitlines(), *self._stderr] if line.strip()]
        errors = [line for line in lines if line.startswith("wasmlab: ")]
        return (errors or lines or [""])[-1].removeprefix("wasmlab: ")

    @property
    def pid(self) -> int | None:
        """The server's process id over HTTP (over stdio the SDK owns the process)."""
        return self._process.pid if self._process else None

    # client ---------------------------------------------------------------------------------------------
    def _ask(self, method: Any, *args: Any) -> Any:
        """`await method(*args)` in the client's loop. The SDK's MCPError (an answer: unknown tool...) passes;
        anything else means the server is gone: SessionError with its last words."""
        from mcp.shared.exceptions import MCPError

        if "portal" not in self.__dict__:
            raise SessionError("this MCP session is closed")
        try:
            return self.portal.call(method, *args)
        except MCPError:
            raise
        except Exception as exc:
            last = self._server_error()
            raise SessionError(
                f"the MCP server stopped answering ({type(exc).__name__}{f': {exc}' if str(exc) else ''})"
                + (f"; its last line: {last}" if last else "")
            ) from None

    @property
    def tools(self) -> list[Any]:
        """The server's tools (`mcp_types.Tool`: name, description, input_schema, output_schema)."""
        return self._ask(self.client.list_tools).tools

    def call(self, name: str, arguments: dict[str, Any] | None = None, /, **kwargs: Any) -> Any:
        """Call tool `name` with `arguments` (or keyword arguments); the SDK's `CallToolResult`: read
        `.structured_content["result"]`, or `.is_error` and `.content[0].text` for a tool error."""
        arguments = {**(arguments or {}), **kwargs}
        return self._ask(self.client.call_tool, name, arguments)

    def value(self, name: str, arguments: dict[str, Any] | None = None, /, **kwargs: Any) -> Any:
        """The result of tool `name`, or ToolError with the tool's one-line message."""
        result = self.call(name, arguments, **kwargs)
        if result.is_error:
            raise ToolError(name, result.content[0].text if result.content else "")
        return result.structured_content["result"]

    def policy(self) -> dict[str, Any]:
        """The server's policy, read from its `wasmlab://policy` resource."""
        import json

        result = self._ask(self.client.read_resource, POLICY_URI)
        return json.loads(result.contents[0].text)

    # lifetime -------------------------------------------------------------------------------------------
    def close(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        client_cm = self.__dict__.pop("_client_cm", None)
        if client_cm is not None:
            with contextlib.suppress(Exception):  # the server may already be gone: nothing left to close
                client_cm.__exit__(None, None, None)
        portal = self.__dict__.pop("portal", None)
        if portal is not None:
            with contextlib.suppress(Exception):
                portal.call(portal.stop)
            self._loop_thread.join(5)
        if self._process is not None:
            stop_process(self._process)
            self._process = None
        if not self._errlog.closed:
            self._errlog.close()
        self._workdir.cleanup()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_portal() -> tuple[Any, threading.Thread]:
    """An anyio event loop on a daemon thread, and the portal to call into it. Not anyio's
    `start_blocking_portal`: its worker thread would hold up interpreter exit for a session never closed. A
    server cannot outlive us either way: stdio's pipe, or the HTTP server's stdin, closes when we exit."""
    import queue

    import anyio
    from anyio.from_thread import BlockingPortal

    ready: queue.Queue[Any] = queue.Queue()

    async def main() -> None:
        async with BlockingPortal() as portal:
            ready.put(portal)
            await portal.sleep_until_stopped()

    thread = threading.Thread(target=anyio.run, args=(main,), daemon=True, name="wasmlab-mcp-client")
    thread.start()
    return ready.get(timeout=30), thread


class ToolError(WasmlabError):
    """A tool call that the server answered with a tool error (invalid arguments, a trap, a limit)."""

    exit_code = 1

    def __init__(self, tool: str, message: str) -> None:
        super().__init__(f"{tool}: {message}")
        self.tool, self.message = tool, message


def stop_process(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop a server we started, by its own handle: close its stdin, SIGTERM, then SIGKILL after `grace` s."""
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace)


def session(
    source: Module | str | Path,
    *,
    allow_dir: list[str] | tuple[str, ...] = (),
    allow_env: list[str] | tuple[str, ...] = (),
    timeout: float | None = None,
    fuel: int | None = None,
    max_memory: int | str | None = None,
    wit: str | Path | None = None,
    world: str | None = None,
    lang: str | None = None,
    runtime: str = "wasmtime",
    transport: str = "stdio",
) -> Session:
    """Serve `source` (a Module, a .wasm file or a source file) with `wasmlab mcp serve` in a subprocess, under
    the grants and limits given (as for `serve`), and connect the MCP SDK's client to it over `transport`
    ("stdio" or "http" on loopback). Use it as a context manager, or call `close()`."""
    if transport not in ("stdio", "http"):
        raise WasmlabError(f"transport={transport!r}: use 'stdio' or 'http'")
    workdir = tempfile.TemporaryDirectory(prefix="wasmlab-mcp-")
    if isinstance(source, Module):
        path = source.save(Path(workdir.name) / f"{_safe(source.name.removesuffix('.wasm'))}.wasm")
    else:
        path = Path(source)
    args = ["-m", "wasmlab", "mcp", "serve", str(path), "--runtime", runtime]
    if wit is not None:
        wit_path = Path(wit) if isinstance(wit, Path) or "{" not in str(wit) else None
        if wit_path is None:
            wit_path = Path(workdir.name) / "world.wit"
            wit_path.write_text(str(wit), encoding="utf-8")
        args += ["--wit", str(wit_path)]
    for flag, value in (("--world", world), ("--lang", lang), ("--fuel", fuel), ("--timeout", timeout)):
        if value is not None:
            args += [flag, str(value)]
    if max_memory is not None:
        args += ["--max-memory", str(max_memory)]
    for item in allow_dir:
        args += ["--allow-dir", item]
    for item in allow_env:
        args += ["--allow-env", item]
    return Session(args, transport, workdir)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "module"
