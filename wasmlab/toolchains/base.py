"""The toolchain protocol: one small class per language, turning source text into Wasm bytes."""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TypeVar

from ..errors import CompileError, ToolchainUnavailable, UsageError

KINDS = ("library", "command")
OPT_LEVELS = ("O0", "O1", "O2", "O3", "Os", "Oz")
COMPILE_TIMEOUT = float(os.environ.get("WASMLAB_COMPILE_TIMEOUT", 300))
MAX_DIAGNOSTICS = 64 * 1024  # characters of compiler output kept for the user
MAX_CAPTURE = 4 * MAX_DIAGNOSTICS  # bytes of compiler output read into memory; the rest is read and dropped
T = TypeVar("T")


@dataclass(frozen=True)
class CompileOptions:
    """What to build. `kind`: "library" (exported functions, no WASI where the language allows) or "command"
    (a WASI program with `_start`). `flags` are passed to the compiler as they are."""

    kind: str = "library"
    opt: str = "O2"
    strip: bool = True
    lto: bool = False
    flags: tuple[str, ...] = ()
    wit: str | None = None  # components (Python, C, C++): the WIT text of the world
    world: str | None = None
    timeout: float = field(default=COMPILE_TIMEOUT, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UsageError(f"unknown kind {self.kind!r}: use one of {', '.join(KINDS)}")
        opt = self.opt if self.opt.startswith("O") else f"O{self.opt}"
        if opt not in OPT_LEVELS:
            raise UsageError(f"unknown optimisation level {self.opt!r}: use one of {', '.join(OPT_LEVELS)}")
        object.__setattr__(self, "opt", opt)
        object.__setattr__(self, "flags", tuple(self.flags))


class Toolchain:
    """One language's compiler. Subclasses set the class attributes and implement `build`."""

    lang: str = ""
    name: str = ""  # for languages with several toolchains (javascript): the one `toolchain=` picks
    extensions: tuple[str, ...] = ()
    install: str = ""  # how to install the toolchain, shown when it is missing
    kinds: tuple[str, ...] = KINDS
    produces_component: bool = False
    recipe: int = 1  # part of the cache key: bump when `build` changes what it produces for the same input

    def unavailable_reason(self) -> str | None:
        """None when the toolchain can compile here, else why not (one line)."""
        return None

    def version(self) -> str:
        """The compiler's version: part of the cache key, so a new compiler never serves stale builds."""
        return ""

    def workdir(self, options: CompileOptions) -> contextlib.AbstractContextManager[Path]:
        """The empty directory one build runs in, removed afterwards: a fresh temporary one by default."""
        return temporary_workdir()

    def build(self, source: str, options: CompileOptions, workdir: Path, filename: str) -> bytes:
        """Compile `source` (to be saved as `workdir / filename`) into Wasm bytes; raise CompileError."""
        raise NotImplementedError

    def found(self, program: T | None) -> T:
        """`program` as this toolchain looked it up (a path, a directory): ToolchainUnavailable when missing."""
        if program is None:
            raise ToolchainUnavailable(self.lang, self.unavailable_reason() or "not installed", self.install)
        return program


@contextlib.contextmanager
def temporary_workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="wasmlab-build-") as tmp:
        yield Path(tmp)


def run_tool(
    cmd: list[str],
    *,
    lang: str,
    workdir: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
) -> str:
    """Run a compiler; on failure raise CompileError with its diagnostics, paths made relative to the snippet.

    The compiler runs in its own process group, so a timeout kills it and every child it started."""
    full_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=full_env,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise CompileError(f"{lang}: could not start {cmd[0]}: {exc.strerror}", lang=lang) from None
    try:
        out, dropped = _communicate(proc, input, timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise CompileError(
            f"{lang} compiler ran past {timeout:g} s and was stopped: simplify the snippet or raise the timeout",
            lang=lang,
        ) from None
    except BaseException:
        _kill_group(proc)
        raise
    text = tidy_diagnostics(out.decode(errors="replace"), workdir)
    if dropped:
        text += f"... ({dropped:,} more bytes of compiler output dropped)\n"
    if proc.returncode != 0:
        first = first_error_line(text) or f"{Path(cmd[0]).name} exited with status {proc.returncode}"
        where = source_location(text)
        if where and where not in first:
            first = f"{where}: {first}"
        raise CompileError(f"{lang} compile error: {first}", diagnostics=text, lang=lang)
    return text


def _communicate(proc: subprocess.Popen, input: bytes | None, timeout: float) -> tuple[bytes, int]:
    """`Popen.communicate`, keeping only the first MAX_CAPTURE bytes of output: (kept, bytes dropped). The rest
    is read and thrown away, so a compiler told to print gigabytes (`-Xclang -ast-dump` on a big template
    program) cannot fill this process's memory. TimeoutExpired past `timeout` seconds."""
    stdin, stdout = proc.stdin, proc.stdout
    assert stdout is not None  # a PIPE
    if input is not None:
        assert stdin is not None  # a PIPE

        def feed() -> None:
            with contextlib.suppress(OSError):
                stdin.write(input)
                stdin.close()

        threading.Thread(target=feed, name="wasmlab-compiler-stdin", daemon=True).start()
    deadline = time.monotonic() + timeout
    kept, dropped, fd = bytearray(), 0, stdout.fileno()
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout)
            if not select.select([fd], [], [], min(left, 1.0))[0]:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            room = MAX_CAPTURE - len(kept)
            kept += chunk[: max(0, room)]
            dropped += max(0, len(chunk) - max(0, room))
    finally:
        stdout.close()
    proc.wait(max(0.01, deadline - time.monotonic()))
    return bytes(kept), dropped


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def tidy_diagnostics(text: str, workdir: Path) -> str:
    """Drop the temporary directory from paths and cap the size."""
    for prefix in {str(workdir), str(workdir.resolve())}:
        text = text.replace(prefix + os.sep, "").replace(prefix, ".")
    if len(text) > MAX_DIAGNOSTICS:
        cut = len(text) - MAX_DIAGNOSTICS
        text = text[:MAX_DIAGNOSTICS] + f"\n... ({cut} more characters of compiler output cut)\n"
    return text


_LOCATION = re.compile(
    r"([\w.+-]+\.(?:c|cc|cpp|cxx|h|hpp|zig|rs|go|ts|py|wat))(?::(\d+)(?::(\d+))?|\((\d+),(\d+)\))"
)


def source_location(text: str) -> str:
    """The first `file:line:col` in compiler output, normalised (asc writes `file(line,col)`)."""
    match = _LOCATION.search(text)
    if not match:
        return ""
    name, line, col = match.group(1), match.group(2) or match.group(4), match.group(3) or match.group(5)
    return f"{name}:{line}:{col}" if col else f"{name}:{line}"


_ERROR_LINE = re.compile(r"^.*\berror\b.*$", re.IGNORECASE | re.MULTILINE)


def first_error_line(text: str) -> str:
    """The first line of compiler output that says 'error', else the first non-empty line."""
    match = _ERROR_LINE.search(text)
    if match:
        return match.group(0).strip()[:300]
    return next((line.strip()[:300] for line in text.splitlines() if line.strip()), "")


def opt_flag(opt: str) -> str:
    """Clang-style flag for an optimisation level."""
    return f"-{opt}"


@cache
def venv_bin() -> Path:
    """The directory holding this Python's scripts (the venv's bin)."""
    return Path(sysconfig.get_path("scripts"))


def find_program(name: str, *candidates: Path | str) -> str | None:
    """A program from explicit candidates (first existing file), else this venv's bin, else PATH."""
    for cand in candidates:
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return str(cand)
    in_venv = venv_bin() / name
    if in_venv.is_file():
        return str(in_venv)
    return shutil.which(name)


@cache
def npm_package(name: str) -> Path | None:
    """Where npm package `name` is installed: $WASMLAB_NODE_MODULES, the project's tools/npm, or npm's global
    root (None when it is in none of them)."""
    project = Path(__file__).resolve().parents[2] / "tools" / "npm" / "node_modules"
    roots = [os.environ.get("WASMLAB_NODE_MODULES", ""), str(project)]
    npm = shutil.which("npm")
    if npm:
        roots.append(command_output([npm, "root", "-g"], timeout=30))
    for root in filter(None, roots):
        if (Path(root) / name / "package.json").is_file():
            return Path(root) / name
    return None


def python_module_available(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


PYTHON = sys.executable


def command_output(cmd: list[str], timeout: float = 60) -> str:
    """A short command's stdout, stripped; "" when it cannot run (used for versions and probes)."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""
