"""wasmer-sdk: modern Wasmer (Cranelift) through the `wasmer-sdk` package, for WASI commands only.

The SDK runs a command's `_start` in a sandbox with argv, env, stdin, captured stdout/stderr and a timeout; it
offers no export calls, memory access, host imports or fuel, so this backend runs commands and refuses the
rest with a clear `RuntimeUnavailable`.

It runs in a worker process (`worker/scripts/wasmer_sdk_worker.py` in a `worker.process.Worker`): the SDK
honours `timeout=` in that it returns at the deadline, but a guest that makes no WASI calls (an endless loop, a
memory.grow loop) keeps running on one of Wasmer's threads after the timeout and after `Process.kill()`
(measured: CPU time and resident memory keep growing). So the worker is killed after every run that hit a time
or memory limit, when its resident memory passes max_memory, and on Ctrl-C; the next run starts a fresh one.
Inside the worker the SDK's calls are async, run on Wasmer's own threads without the GIL, on a private event
loop on a daemon thread (`isolated=False` runs that way in this process, as the worker itself does). Compiled
modules are cached under the wasmlab cache directory (`<cache>/wasmer-sdk`), not the SDK's default `./.wasmer`
in the working directory.

Timings: "compile" is creating the SDK package (0 once cached per module), "instantiate" creating the sandbox,
"run" the command; the SDK compiles lazily, so the first run of a module also holds its compilation (~40 ms
for a 26 KB C program, then 1-4 ms per run).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import importlib.util
import os
import re
import sys
import threading
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache import cache_dir
from ..errors import ErrorKind, LimitExceeded, RuntimeUnavailable, UsageError, WasmlabError
from ..procfs import rss_bytes
from .base import Instance, RunOptions, RunResult, Runtime
from .traps import frame_names, normalize_trap
from .worker.process import SCRIPTS, Worker
from .worker.protocol import b64, unb64

if TYPE_CHECKING:
    from ..module import Module

__all__ = ["WasmerSdkRuntime"]

COMMANDS_ONLY = "wasmer-sdk runs WASI commands only; use wasmer or wasmtime to call exports"
DRAIN_S = 1.0  # seconds to collect output after the guest process ended
GRACE_S = 10.0  # extra seconds to wait for the SDK beyond its own timeout before giving up on it
POLL_S = 0.02  # seconds between checks of this process's resident memory while a guest runs
RSS_ALLOWANCE = 128 << 20  # resident memory a run may add besides max_memory (compiled code, the SDK's runtime)
WORKER_BASELINE_RSS = 160 << 20  # resident memory of an idle worker with the SDK loaded (a floor for the cap)
WORKER_MODULES = 64  # modules a worker may hold before it is replaced by a fresh one
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding `wasmlab`, for the worker's imports
_FRAME = re.compile(r"^\s*at (.*?) \((?:[^\[\]()]*)\[(\d+)\]:0x([0-9a-fA-F]+)\)\s*$")


@cache
@cache
def embedded_versions() -> str:
    """The Wasmer inside wasmer-sdk, which embeds it from a git commit (no Wasmer release number): the versions
    of its crates as the native library names them, e.g. "wasmer-wasix 0.704.0, Cranelift 0.135.0"."""
    spec = importlib.util.find_spec("wasmer_sdk")
    if spec is None or not spec.origin:
        return ""
    found: dict[str, str] = {}
    for library in Path(spec.origin).parent.glob("*.so"):
        with contextlib.suppress(OSError):
            data = library.read_bytes()
            for crate, label in ((b"wasmer-wasix", "wasmer-wasix"), (b"cranelift-codegen", "Cranelift")):
                match = re.search(crate + rb"-(\d+\.\d+\.\d+)", data)  # source paths, wasix's User-Agent
                if match:
                    found.setdefault(label, match.group(1).decode())
    return ", ".join(f"{label} {version}" for label, version in found.items())


def sdk_version() -> str | None:
    if importlib.util.find_spec("wasmer_sdk") is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wasmer-sdk")
    except PackageNotFoundError:
        return "?"


def parse_error(message: str) -> tuple[str, list[dict[str, Any]]]:
    """(trap message, frames) from an SDK execution error ("... at f (<module>[3]:0x4a)" lines)."""
    lines = message.splitlines()
    first = lines[0] if lines else message
    first = first.removeprefix("command execution failed: ").removeprefix("RuntimeError: ")
    frames = []
    for line in lines[1:]:
        m = _FRAME.match(line)
        if m:
            name = None if m.group(1) == "<unnamed>" else m.group(1)
            frames.append({"name": name, "index": int(m.group(2)), "offset": int(m.group(3), 16)})
    return first, frames


class WasmerSdkRuntime(Runtime):
    """Modern Wasmer via wasmer-sdk: WASI commands with argv, env, stdin, captured output and a timeout."""

    name = "wasmer-sdk"
    install = "pip install wasmer-sdk"
    capabilities = frozenset({"wasi", "timeout"})

    def __init__(self, variant: str | None = None, *, isolated: bool = True) -> None:
        super().__init__(variant)
        self.isolated = isolated  # run guests in a worker process that is killed when a limit stops one
        self._worker: Worker | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._packages: dict[tuple[str, str], Any] = {}
        self._atexit = False

    def unavailable_reason(self) -> str | None:
        return None if sdk_version() else "wasmer-sdk is not installed in this Python"

    def version(self) -> str:
        version = sdk_version()
        if not version:
            return ""
        inside = embedded_versions()
        return f"wasmer-sdk {version}" + (f" ({inside})" if inside else "")

    # the private event loop -------------------------------------------------------------------------------
    def _submit(self, coroutine: Any) -> concurrent.futures.Future:
        with self._lock:
            if self._loop is None or not self._thread or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="wasmlab-wasmer-sdk", daemon=True)
                thread.start()
                self._loop, self._thread, self._client, self._packages = loop, thread, None, {}
                if not self._atexit:  # free the SDK's objects while its native library is still loaded
                    atexit.register(self.close)
                    self._atexit = True
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _wasmer(self) -> Any:
        if self._client is None:
            from wasmer_sdk import Wasmer

            root = cache_dir() / "wasmer-sdk"
            try:
                root.mkdir(parents=True, exist_ok=True)
                self._client = Wasmer(cache_root=root)
            except OSError:  # an unwritable cache: let the SDK pick (it still works)
                self._client = Wasmer()
        return self._client

    def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.kill()
        with self._lock:
            loop, thread, client = self._loop, self._thread, self._client
            self._loop = self._thread = self._client = None
            self._packages = {}
        if loop is None:
            return
        if client is not None:
            future = asyncio.run_coroutine_threadsafe(client.close(), loop)
            with contextlib.suppress(Exception):  # closing is best effort
                future.result(10)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)

    # checks -----------------------------------------------------------------------------------------------
    def _refuse(self, what: str) -> RuntimeUnavailable:
        return RuntimeUnavailable(self.label, f"{what}: {COMMANDS_ONLY}", "use wasmtime or wasmer")

    def _check(self, module: Module, options: RunOptions) -> None:
        if module.is_component:
            raise self._refuse("components are unsupported")
        if options.invoke is not None:
            raise self._refuse(f"cannot call the export {options.invoke!r}")
        if not module.is_command:
            raise self._refuse(f"{module.name} is not a WASI command (no _start export)")
        if options.fuel is not None:
            raise self._refuse("fuel is unsupported")
        if options.imports:
            raise self._refuse("Python host functions are unsupported")
        if options.dirs:
            raise self._refuse("preopened host directories (dirs=) are unsupported")
        foreign = [f"{i.module}.{i.name}" for i in module.imports if not i.module.startswith("wasi")]
        if foreign:
            raise self._refuse(f"{module.name} imports {', '.join(foreign[:3])}, which only WASI hosts lack")

    # running ----------------------------------------------------------------------------------------------
    def instantiate(self, module: Module, options: RunOptions) -> Instance:
        raise self._refuse("instances (kept across calls, with memory access) are unsupported")

    def run(self, module: Module, options: RunOptions) -> RunResult:
        self._check(module, options)
        if self.isolated:
            return self._run_in_worker(module, options)
        state: dict[str, Any] = {}
        future = self._submit(self._run(module, options, state))
        wait = None if options.timeout is None else options.timeout + GRACE_S
        try:
            return self._wait(future, wait, options, state)
        except concurrent.futures.TimeoutError:
            self._kill(state)
            raise LimitExceeded(
                "time", f"{self.label}: the guest ran past the {options.timeout:g} s time limit and was stopped"
            ) from None
        except KeyboardInterrupt:
            self._kill(state)  # Ctrl-C in a notebook stops the guest, not just the wait
            raise

    def _run_in_worker(self, module: Module, options: RunOptions) -> RunResult:
        if self._worker is None or len(self._worker.loaded) > WORKER_MODULES:
            if self._worker is not None:
                self._worker.kill()  # drops the modules it holds
            env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))}
            self._worker = Worker(
                self.label, [sys.executable, "-X", "utf8", str(SCRIPTS / "wasmer_sdk_worker.py")], env
            )
        worker = self._worker
        message = {
            "op": "run",
            "sha": module.sha256,
            "name": module.name,
            "argv": list(options.argv),
            "env": dict(options.env),
            "stdin": b64(options.stdin),
            "timeout": options.timeout,
            "max_memory": options.max_memory,
            "max_output": options.max_output,
        }
        max_rss = None
        if options.max_memory:
            current = rss_bytes(worker.proc.pid) if worker.proc is not None and worker.alive else 0
            max_rss = max(current, WORKER_BASELINE_RSS) + options.max_memory + RSS_ALLOWANCE
        wait = None if options.timeout is None else options.timeout + GRACE_S
        answer = worker.request(message, timeout=wait, max_rss=max_rss, module=module)
        kind, error = answer.get("kind", ""), answer.get("error", "")
        limit = ErrorKind.limit_of(kind)
        if limit is not None:
            worker.kill()  # the guest may still be running on a Wasmer thread in there
            raise LimitExceeded(limit, error)
        if not answer.get("ok"):
            raise (UsageError if kind == ErrorKind.USAGE else WasmlabError)(error or f"{self.label} worker: {answer}")
        result = RunResult(self.label, None, stdout=unb64(answer["stdout"]), stderr=unb64(answer["stderr"]))
        result.exit_code, result.trap, result.trap_frames = answer["exit_code"], answer["trap"], answer["frames"]
        result.timings = {k: float(v) for k, v in answer["timings"].items()}
        return result

    def _wait(self, future: concurrent.futures.Future, wait: float | None, options: RunOptions, state: dict) -> Any:
        """The run's result. The guest runs in this process, its linear memory and its in-memory files (/tmp)
        too, and the SDK has no memory limit: while waiting, this process's resident memory is watched, and a
        guest that adds more than max_memory (+ RSS_ALLOWANCE) to it is killed with LimitExceeded("memory")."""
        if not options.max_memory:
            return future.result(wait)
        cap = rss_bytes(os.getpid()) + options.max_memory + RSS_ALLOWANCE
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                return future.result(POLL_S)
            except concurrent.futures.TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                if rss_bytes(os.getpid()) > cap:
                    self._kill(state)
                    with contextlib.suppress(Exception):  # let the run end and free its sandbox (and memory)
                        future.result(GRACE_S)
                    raise LimitExceeded(
                        "memory",
                        f"{self.label}: the guest took more than max_memory={options.max_memory >> 20} MiB (its linear "
                        "memory and in-memory files together) and was stopped; raise max_memory= (bytes)",
                    ) from None

    def _kill(self, state: dict[str, Any]) -> None:
        process, loop = state.get("process"), self._loop
        if process is not None and loop is not None:
            with contextlib.suppress(Exception):  # already gone
                asyncio.run_coroutine_threadsafe(process.kill(), loop).result(5)

    async def _run(self, module: Module, options: RunOptions, state: dict[str, Any]) -> RunResult:
        from wasmer_sdk import ExitReason, PackageCommandDefinition, PackageDefinition, WasmerError

        wasmer = await self._wasmer()
        command = re.sub(r"[^A-Za-z0-9._-]", "_", module.name) or "main"
        timings: dict[str, float] = {}
        started = time.perf_counter()
        package = self._packages.get((module.sha256, command))
        if package is None:
            try:
                package = await wasmer.packages.create(
                    PackageDefinition(
                        modules={"main": module.bytes}, commands={command: PackageCommandDefinition("main")}
                    )
                )
            except WasmerError as exc:
                raise UsageError(f"{self.label} rejected the module: {exc}") from None
            self._packages[(module.sha256, command)] = package
        timings["compile"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        sandbox = await wasmer.sandboxes.create(packages=[package], env=dict(options.env))
        timings["instantiate"] = (time.perf_counter() - started) * 1000
        limit = options.max_output
        out, err = bytearray(), bytearray()
        trap: tuple[str, list[dict[str, Any]]] | None = None
        try:
            started = time.perf_counter()
            try:
                process = await sandbox.command(command, list(options.argv)).spawn(
                    timeout=options.timeout, output_bytes=limit, stdin="pipe", stdout="pipe", stderr="pipe"
                )
            except WasmerError as exc:  # e.g. "No imported or exported memory found"
                raise UsageError(f"{self.label} cannot run {module.name}: {exc}") from None
            state["process"] = process

            async def feed() -> None:
                try:
                    if options.stdin:
                        await process.stdin.write(options.stdin)
                    await process.stdin.close()
                except WasmerError:  # the guest exited without reading everything
                    pass

            async def drain(stream: Any, buf: bytearray) -> None:
                async for chunk in stream:
                    if len(buf) < limit:
                        buf += chunk[: limit - len(buf)]

            tasks = [
                asyncio.ensure_future(feed()),
                asyncio.ensure_future(drain(process.stdout, out)),
                asyncio.ensure_future(drain(process.stderr, err)),
            ]
            try:
                output = await process.wait()
            except WasmerError as exc:
                if exc.code != "EXECUTION_ERROR":
                    raise WasmlabError(f"{self.label}: {exc}") from None
                output, trap = None, parse_error(str(exc))
            finally:
                timings["run"] = (time.perf_counter() - started) * 1000
            # After a timeout or a kill the pipes may never reach end-of-file: take what came, then stop.
            ended = output is None or output.reason is ExitReason.EXITED
            _, pending = await asyncio.wait(tasks, timeout=DRAIN_S if ended else 0.05)
            for task in pending:
                task.cancel()
        finally:
            await sandbox.close()
        result = RunResult(self.label, None, stdout=bytes(out), stderr=bytes(err), timings=timings)
        if trap is not None:
            result.trap, result.trap_frames = normalize_trap(trap[0]), frame_names(module, trap[1])
            return result
        if output.reason is ExitReason.TIMEOUT:
            raise LimitExceeded(
                "time",
                f"{self.label}: guest ran past the {options.timeout:g} s time limit and was stopped; "
                "raise timeout= if it needs longer",
            )
        if output.reason is ExitReason.TERMINATED:
            raise WasmlabError(f"{self.label}: the guest process was terminated")
        result.exit_code = output.exit_code
        return result
