"""The platform protocol: one small class per edge platform that serves a standard wasi:http handler.

Every platform is measured the same way: a process of its own on 127.0.0.1, started by the lab, timed from
process start to its first HTTP answer, stopped by its PID (its process group, which the lab created).

    Platform                                   what callers use
      name, title, install                     class attributes: what the registry lists, how to get it
      unavailable_reason() -> str | None       why it cannot run here (None: it can)
      version() -> str                         the host and its version, for tables
      command(path, port) -> list[str]         the command line that serves the component file `path`
      prepare(artefact) -> Path                turn the component into what the host loads (cached; default: a file)
      start(handler, port=0) -> Server         prepare, launch, wait for the first answer

    Server                                     a running platform process
      url, pid, cold_start_s, prepare_s        where it listens; process start -> first answer; build step
      rss_bytes()                              resident memory of its process tree
      stderr_tail(n)                           the last lines it wrote to stderr (and stdout)
      stop()                                   SIGTERM to its process group, SIGKILL after a grace period

`Artefact` is what every platform is handed: the component's bytes, its core module when there is exactly one
underneath (hosts that take core Wasm), its sha256 and a name. `artefact()` makes one from anything the lab
calls a handler: `wasmlab.edge.build()`'s result, component bytes, a .wasm file, or handler source.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from ...errors import ErrorKind, UsageError, WasmlabError
from ...procfs import rss_bytes

__all__ = [
    "Artefact",
    "Platform",
    "PlatformFailed",
    "PlatformUnavailable",
    "Server",
    "artefact",
    "free_port",
    "jco_script",
    "node_modules",
    "node_program",
    "package_version",
]

START_TIMEOUT = 120.0  # seconds from process start to the first answer (a Python component on jco re-transpiles)
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"
TOOLS_NPM = Path(__file__).resolve().parents[3] / "tools" / "npm" / "node_modules"
NPM_INSTALL = "make setup (npm install --prefix tools/npm)"


class PlatformUnavailable(WasmlabError):
    """An edge platform is not installed here (or cannot be); says how to get it."""

    exit_code = 2
    kind = ErrorKind.UNAVAILABLE

    def __init__(self, platform: str, reason: str, install: str = "") -> None:
        fix = f"; fix: {install}" if install else ""
        super().__init__(f"platform {platform} unavailable: {reason}{fix}")
        self.platform, self.reason, self.install = platform, reason, install


class PlatformFailed(WasmlabError):
    """A platform process exited or never answered; the message carries the last line of its stderr."""

    kind = ErrorKind.CRASH

    def __init__(self, platform: str, problem: str, stderr: str = "") -> None:
        last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
        super().__init__(f"platform {platform} {problem}" + (f": {last[:300]}" if last else " (no stderr)"))
        self.platform, self.stderr = platform, stderr


@dataclass(frozen=True)
class Artefact:
    """A standard wasi:http/proxy component and, when it is one core module underneath, that module."""

    component: bytes
    core: bytes | None = None
    name: str = "handler"
    lang: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.component).hexdigest()

    def save(self, directory: Path) -> Path:
        """Write the component as DIRECTORY/NAME.wasm (once) and return the path."""
        path = Path(directory) / f"{self.name}.wasm"
        if not path.is_file() or path.stat().st_size != len(self.component):
            path.write_bytes(self.component)
        return path


def artefact(handler: Any, lang: str | None = None, name: str | None = None) -> Artefact:
    """An `Artefact` from a built handler (anything with `.component`), component bytes, a .wasm file path, or
    handler source (a file or text with `lang=`, built by `wasmlab.edge.build`)."""
    if isinstance(handler, Artefact):
        return handler
    if hasattr(handler, "component"):
        return Artefact(
            bytes(handler.component),
            getattr(handler, "core", None),
            name or getattr(handler, "name", "") or "handler",
            getattr(handler, "lang", "") or "",
        )
    data: bytes | None = None
    if isinstance(handler, (bytes, bytearray, memoryview)):
        data = bytes(handler)
    elif isinstance(handler, (str, Path)) and Path(handler).suffix == ".wasm":
        path = Path(handler)
        if not path.is_file():
            raise UsageError(f"no such handler file: {path}")
        data, name = path.read_bytes(), name or path.stem
    if data is not None and data.startswith(COMPONENT_HEADER):
        return Artefact(data, None, name or "handler", "wasm")
    return artefact(_build(handler if data is None else data, lang), name=name)


def _build(handler: Any, lang: str | None) -> Any:
    try:
        from .. import build  # wasmlab.edge.build: source or a core module -> a standard component
    except ImportError:  # pragma: no cover - an install without the edge build
        raise UsageError(
            "give a wasi:http component (.wasm or bytes): building handler source needs wasmlab.edge.build"
        ) from None
    return build(handler, lang) if lang else build(handler)


@cache
def node_modules(package: str) -> Path | None:
    """The folder of npm `package` (e.g. "@bytecodealliance/jco"): under $WASMLAB_NODE_MODULES, the project's
    tools/npm (what `make setup` installs), or npm's global root."""
    candidates = [os.environ.get("WASMLAB_NODE_MODULES", ""), str(TOOLS_NPM)]
    npm = shutil.which("npm")
    if npm:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            candidates.append(
                subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=30).stdout.strip()
            )
    for cand in candidates:
        if cand and (Path(cand) / package / "package.json").is_file():
            return Path(cand) / package
    return None


def node_program() -> str | None:
    """node: $WASMLAB_NODE (as the node runtime reads it), else PATH; None when it is not a file."""
    node = os.environ.get("WASMLAB_NODE") or shutil.which("node")
    return node if node and Path(node).is_file() else None


def jco_script() -> Path | None:
    """jco's CLI script (npm @bytecodealliance/jco): `jco serve` and `jco transpile`."""
    package = node_modules("@bytecodealliance/jco")
    return package / "dist" / "jco.js" if package and (package / "dist" / "jco.js").is_file() else None


def package_version(folder: Path | None) -> str:
    """The "version" of an npm package folder ("" when unknown)."""
    import json

    try:
        return str(json.loads((Path(folder) / "package.json").read_text())["version"]) if folder else ""
    except (OSError, ValueError, KeyError):
        return ""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (from /proc; empty where there is no /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


@dataclass
class Server:
    """A platform process serving one handler on loopback. A context manager: `with platform.start(h) as s:`."""

    platform: str
    url: str
    process: subprocess.Popen
    workdir: Path
    cold_start_s: float = float("nan")
    prepare_s: float = 0.0
    sha256: str = ""
    log: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_bytes(self) -> int:
        """Resident memory of the platform's process and its children (bytes; 0 once it has stopped)."""
        if not self.alive():
            return 0
        return sum(rss_bytes(pid) for pid in (self.pid, *_children(self.pid)))

    def stderr_tail(self, lines: int = 20) -> str:
        """The last `lines` lines the process wrote (stderr and stdout go to one log)."""
        if self.log is None or not self.log.is_file():
            return "".join(self.extra.get("log_tail", [])[-lines:])
        with self.log.open(errors="replace") as f:
            return "".join(deque(f, maxlen=lines))

    def stop(self) -> int | None:
        """Stop the process group the lab started (SIGTERM, then SIGKILL); its exit status."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(STOP_GRACE)
        if self.workdir.is_dir():  # keep the last lines of its log, drop the folder the lab made for it
            self.extra["log_tail"] = self.stderr_tail(50).splitlines(keepends=True)
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self.process.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive() else f"stopped ({self.process.returncode})"
        return f"<Server {self.platform} {self.url} pid {self.pid} {state}, cold start {self.cold_start_s:.3f} s>"


class Platform:
    """An edge platform that serves a standard wasi:http/proxy component (see the module docstring)."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""  # "Cloudflare workerd"
    install: ClassVar[str] = ""  # how to get it
    installable: ClassVar[bool] = True  # False: no installable form here; `command` is what to run elsewhere

    def unavailable_reason(self) -> str | None:
        return None

    def version(self) -> str:
        return ""

    def command(self, path: Path, port: int) -> list[str]:
        """The command line that serves `path` (what `prepare` returned) on 127.0.0.1:`port`."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """Extra environment variables for the process."""
        return {}

    def prepare(self, art: Artefact, workdir: Path) -> Path:
        """Turn the component into what the host loads; default: the component file itself."""
        return art.save(workdir)

    def check(self) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise PlatformUnavailable(self.name, reason, self.install)

    def start(self, handler: Any, port: int = 0, *, timeout: float = START_TIMEOUT, lang: str | None = None) -> Server:
        """Serve `handler` on 127.0.0.1:`port` (0: a free port); returns once it has answered a request."""
        self.check()
        art = artefact(handler, lang)
        workdir = Path(tempfile.mkdtemp(prefix=f"wasmlab-{self.name}-"))
        t0 = time.perf_counter()
        target = self.prepare(art, workdir)
        prepared = time.perf_counter() - t0
        port = port or free_port()
        log = workdir / "server.log"
        with log.open("wb") as out:
            started = time.perf_counter()
            process = subprocess.Popen(
                self.command(target, port),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env={**os.environ, **self.environment()},
                start_new_session=True,  # its own process group: stop() ends it and any children, by its PID
            )
        server = Server(self.name, f"http://127.0.0.1:{port}", process, workdir, prepare_s=prepared, sha256=art.sha256)
        server.log = log
        try:
            server.cold_start_s = _first_answer(server, started, timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def __repr__(self) -> str:
        reason = self.unavailable_reason()
        return f"<Platform {self.name}: {'available' if reason is None else 'unavailable: ' + reason}>"


def _first_answer(server: Server, started: float, timeout: float) -> float:
    """Seconds from `started` until the server answers any HTTP request; PlatformFailed if it exits first."""
    deadline = started + timeout
    while True:
        if not server.alive():
            raise PlatformFailed(
                server.platform, f"exited with status {server.process.returncode}", server.stderr_tail()
            )
        try:
            conn = http.client.HTTPConnection(
                "127.0.0.1", server.port, timeout=max(1.0, deadline - time.perf_counter())
            )
            try:
                conn.request("GET", "/", headers={"user-agent": "wasmlab-probe"})
                conn.getresponse().read()
            finally:
                conn.close()
            return time.perf_counter() - started
        except (ConnectionError, OSError, http.client.HTTPException):
            if time.perf_counter() > deadline:
                problem = f"did not answer within {timeout:g} s"
                raise PlatformFailed(server.platform, problem, server.stderr_tail()) from None
            time.sleep(0.005)


class ElsewherePlatform(Platform):
    """A platform with no installable form on this machine (no PyPI, npm or Debian package): listed with that
    reason and `command`, the exact line a user runs elsewhere on the component the lab built."""

    installable = False
    reason: ClassVar[str] = "no installable binary on PyPI, npm or apt"

    def unavailable_reason(self) -> str | None:
        return self.reason

    def check(self) -> None:
        raise PlatformUnavailable(self.name, self.reason, f"{self.install}; then: {self.elsewhere()}")

    def elsewhere(self, path: str = "handler.wasm", port: int = 8080) -> str:
        """The command line for a machine that has the platform."""
        return " ".join(self.command(Path(path), port))
