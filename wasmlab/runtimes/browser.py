"""browser: the WebAssembly engine of the JupyterLab page that shows this notebook (V8 in Chrome, SpiderMonkey
in Firefox, JavaScriptCore in Safari), reached over a comm.

Available only in a kernel whose notebook (or console) is open in JupyterLab with the `wasmlab-jupyterlab`
extension: the page registers the comm target `wasmlab.browser` and runs each module in a Web Worker with the
browser's own `WebAssembly` (see `worker.browser_comm` for the protocol and how the cell waits for the answer
without deadlocking the kernel). Elsewhere (nbval, nbclient, a terminal) `unavailable_reason()` says
there is no frontend.

Timings are measured in the worker with `performance.now()`, never across the comm, with wasmtime's
convention: "compile" is what this run spent compiling (0.0 when the page had the compiled module), then
"instantiate" (including a reactor's `_initialize`) and "call" or "run". Browsers coarsen `performance.now()`
(Chromium: 100 µs, 5 µs in cross-origin isolated pages, which is how the lab serves them: see
`wasmlab.notebook.isolation`); `timer_resolution_ms` is what the page measured.

What the page offers: calls of exported functions with i32, i64 (BigInt), f32 and f64 arguments and results;
WASI preview 1 commands with argv, environ, stdin, stdout/stderr, clocks, random and proc_exit (no files or
preopened directories: other WASI functions answer ENOSYS); the built-in `wasmlab` host module; a wall-clock
`timeout` (the page terminates the worker); traps with their code and Wasm backtrace.

Kept instances (`module.instantiate("browser")`) live in the same worker, by handle: call them many times, read
and write their memory. A time limit or Ctrl-C restarts the worker, and its instances are then lost
(`InstanceLost`), as on the other worker engines.

Not here: fuel, Python host functions, components, preopened directories, `max_memory` (accepted and ignored:
the browser caps memory itself).
"""

from __future__ import annotations

import contextlib
import weakref
from typing import TYPE_CHECKING, Any

from ..errors import (
    ErrorKind,
    ExitTrap,
    InstanceLost,
    InvalidModule,
    LimitExceeded,
    RuntimeUnavailable,
    Trap,
    UsageError,
    WasmlabError,
)
from .base import Instance, RunOptions, RunResult, Runtime
from .worker.browser_comm import REPLY_GRACE, BrowserUnavailable, get_bridge
from .worker.jscodec import decode_results, encode_args, read_trap
from .worker.protocol import CANCELLED, CONTROL_TIMEOUT, LINK, b64, timings, unb64

if TYPE_CHECKING:
    from ..module import Module

__all__ = ["BrowserInstance", "BrowserRuntime"]


class BrowserRuntime(Runtime):
    """The browser page's own WebAssembly, through the `wasmlab.browser` comm."""

    name = "browser"
    install = (
        "open this notebook in JupyterLab with the wasmlab-jupyterlab extension (`jupyter labextension list` "
        "shows it enabled OK)"
    )
    capabilities = frozenset({"exports", "wasi", "timeout", "builtin_host", "instances", "memory"})

    def __init__(self, variant: str | None = None) -> None:
        super().__init__(variant)
        self._garbage: list[int] = []  # handles of instances dropped without close(), released with the next request

    @staticmethod
    def _bridge() -> Any:
        return get_bridge()

    def unavailable_reason(self) -> str | None:
        return self._bridge().unavailable_reason()

    def version(self) -> str:
        try:
            info = self._bridge().client().info
        except Exception:
            return ""
        browser = info.get("browser") or ""
        agent = str(info.get("user_agent") or "")
        return browser or agent[:120]

    @property
    def timer_resolution_ms(self) -> float | None:
        """The smallest step of the page's `performance.now()` (ms), as the page measured it; None unknown."""
        try:
            value = self._bridge().client().info.get("timer_resolution_ms")
        except Exception:
            return None
        return float(value) if isinstance(value, (int, float)) else None

    def kv_clear(self) -> None:
        """Empty the built-in host module's key-value store (it lives in the page's worker)."""
        self._request({"op": "kv_clear"}, 30.0)

    def _request(self, message: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        try:
            return self._bridge().request(message, timeout)
        except BrowserUnavailable as exc:
            raise RuntimeUnavailable(self.label, exc.reason, self.install) from None

    # checks ---------------------------------------------------------------------------------------------
    def _check(self, module: Module, options: RunOptions) -> None:
        self.check_guest_elsewhere(module, options, "in the browser")
        if options.dirs:
            raise UsageError(f"{self.label}: preopened directories are unsupported (the page has no files)")

    # running --------------------------------------------------------------------------------------------
    def run(self, module: Module, options: RunOptions) -> RunResult:
        """One run on a fresh instance in the page's worker. Traps, exit codes and the time limit are recorded
        in the result; Ctrl-C cancels the run in the page and propagates."""
        self._check(module, options)
        message: dict[str, Any] = {
            "invoke": options.invoke,
            "argv": [module.name, *options.argv],
            "env": dict(options.env),
            "stdin": b64(options.stdin),
            "max_output": options.max_output,
        }
        results: tuple[str, ...] = ()
        if options.invoke is not None:
            message["args"], results = encode_args(module, options.invoke, tuple(options.args))
        try:
            answer = self._bridge().run(message, module.bytes, module.sha256, options.timeout)
        except BrowserUnavailable as exc:
            raise RuntimeUnavailable(self.label, exc.reason, self.install) from None
        result = RunResult(self.label, options.invoke)
        result.timings = timings(answer)
        kind = answer.get("kind")
        if kind == ErrorKind.LIMIT_TIME:
            return result.record(LimitExceeded("time", f"{self.label}: {answer.get('error')}"))
        if kind == ErrorKind.EXIT:
            raise ExitTrap(int(answer.get("exit_code") or 1))
        if "error" in answer:
            self._fail(answer)
        result.stdout, result.stderr = unb64(answer.get("stdout")), unb64(answer.get("stderr"))
        result.exit_code = answer.get("exit_code")
        if "trap" in answer:
            candidates, frames = read_trap(module, answer)
            result.record(Trap(" or ".join(candidates), frames, candidates=candidates))
        elif options.invoke is not None and result.exit_code is None:
            result.result = decode_results(answer.get("result"), results)
        return result

    def _fail(self, answer: dict[str, Any]) -> None:
        kind, message = answer.get("kind", ""), answer.get("error", "")
        if kind == ErrorKind.COMPILE:
            raise InvalidModule(f"the browser rejected the module: {message}")
        if kind in (LINK, ErrorKind.USAGE):
            raise UsageError(f"{self.label}: {message}")
        if kind in (CANCELLED, ErrorKind.LOST):
            raise RuntimeUnavailable(self.label, f"the page stopped the run ({message})", self.install)
        raise WasmlabError(f"{self.label}: {message}")

    def instantiate(self, module: Module, options: RunOptions) -> BrowserInstance:
        """An instance kept in the page's worker (a reactor's `_initialize` has run)."""
        self._check(module, options)
        message = {
            "argv": [module.name, *options.argv],
            "env": dict(options.env),
            "stdin": b64(options.stdin),
            "max_output": options.max_output,
            "release": self._take_garbage(),
        }
        try:
            answer = self._bridge().run(message, module.bytes, module.sha256, options.timeout, op="instantiate")
        except BrowserUnavailable as exc:
            raise RuntimeUnavailable(self.label, exc.reason, self.install) from None
        if answer.get("kind") == ErrorKind.EXIT:
            raise ExitTrap(int(answer.get("exit_code") or 1))
        if answer.get("kind") == ErrorKind.LIMIT_TIME:
            raise LimitExceeded("time", f"{self.label}: instantiating {module.name}: {answer.get('error')}")
        if "error" in answer:
            self._fail(answer)
        if "trap" in answer:
            candidates, frames = read_trap(module, answer)
            code = " or ".join(candidates)
            raise Trap(code, frames, f"wasm trap on {self.label}: {code} (instantiating {module.name})", candidates)
        return BrowserInstance(self, module, options, answer)

    def _take_garbage(self) -> list[int]:
        garbage, self._garbage[:] = self._garbage[:], []
        return garbage


class BrowserInstance(Instance):
    """An instance kept in the page's worker under a handle. `stdout`/`stderr` collect the guest's output
    (capped at max_output); `timings` holds the instantiation's, `last_timings` the last call's milliseconds."""

    def __init__(self, runtime: BrowserRuntime, module: Module, options: RunOptions, answer: dict[str, Any]) -> None:
        self.runtime = runtime.label
        self._runtime, self.module, self.options = runtime, module, options
        self.handle: int = answer["handle"]
        self._exports = [e["name"] for e in answer.get("exports", [])]
        self.timings = timings(answer)
        self.last_timings: dict[str, float] = {}
        self.stdout, self.stderr = unb64(answer.get("stdout")), unb64(answer.get("stderr"))
        self._closed = False
        self._lost: str | None = None
        self._finalizer = weakref.finalize(self, runtime._garbage.append, self.handle)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "lost" if self._lost else "live"
        return f"<BrowserInstance {self.module.name!r} on {self.runtime} handle={self.handle} {state}>"

    def _request(self, message: dict[str, Any], timeout: float | None = CONTROL_TIMEOUT) -> dict[str, Any]:
        if self._closed:
            raise UsageError(f"instance of {self.module.name} on {self.runtime} is closed")
        if self._lost:
            raise InstanceLost(self._lost)
        body = {**message, "handle": self.handle, "release": self._runtime._take_garbage()}
        if timeout is not None:
            body["timeout_ms"] = timeout * 1000.0
        answer = self._runtime._request(body, None if timeout is None else timeout + REPLY_GRACE)
        room = self.options.max_output
        self.stdout = (self.stdout + unb64(answer.get("stdout")))[:room]
        self.stderr = (self.stderr + unb64(answer.get("stderr")))[:room]
        kind = answer.get("kind")
        if kind in (ErrorKind.LIMIT_TIME, CANCELLED, ErrorKind.LOST):  # the page restarted its worker: instance gone
            self._lost = f"instance lost: the page's worker was restarted ({answer.get('error')}); instantiate again"
            self._finalizer.detach()
            if kind == ErrorKind.LIMIT_TIME:
                where = f"{self.module.name}.{message.get('name')}"
                raise LimitExceeded("time", f"{self.runtime}: {where}: {answer['error']}; raise timeout= (seconds)")
            raise InstanceLost(self._lost)
        if "error" in answer:
            self._runtime._fail(answer)
        if "trap" in answer:
            candidates, frames = read_trap(self.module, answer)
            code, where = " or ".join(candidates), f" in {frames[0]}" if frames else ""
            raise Trap(code, frames, f"wasm trap on {self.runtime}: {code}{where}", candidates)
        return answer

    def call(self, name: str, *args: Any) -> Any:
        values, results = encode_args(self.module, name, args)
        answer = self._request({"op": "call", "name": name, "args": values}, self.options.timeout)
        self.last_timings = timings(answer)
        exit_code = answer.get("exit_code")
        if exit_code:
            raise ExitTrap(int(exit_code))
        return None if exit_code is not None else decode_results(answer.get("result"), results)

    def export_names(self) -> list[str]:
        return list(self._exports)

    def memory_size(self, memory: str | None = None) -> int:
        return int(self._request({"op": "memory_size"})["size"])

    def read_memory(self, address: int, length: int, memory: str | None = None) -> bytes:
        return unb64(self._request({"op": "read", "address": address, "length": length})["data"])

    def write_memory(self, address: int, data: bytes, memory: str | None = None) -> None:
        self._request({"op": "write", "address": address, "data": b64(bytes(data))})

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        if not self._lost:
            with contextlib.suppress(WasmlabError):
                self._request({"op": "close"})
