"""wasmtime: the reference backend, in process, through wasmtime-py.

Variants pick the code generator (one `wasmtime.Engine` per `WasmtimeRuntime` object):

    cranelift  the optimising compiler (default)
    winch      the baseline compiler (`wasmtime_config_strategy_set`, reached through `wasmtime._ffi`)
    pulley     wasmtime's portable interpreter (`wasmtime_config_target_set("pulley64")`)

Each variant is probed when the runtime is built; one that cannot work here says why in `unavailable_reason()`.

Compiling and caching. A module is compiled once per runtime object, cached by its sha256 (with the linker's
`InstancePre`, so instantiating it again costs ~20 us; the last `MAX_COMPILED` modules are kept). Timings
convention: `timings["compile"]` is the milliseconds this run spent compiling, so it is `0.0` when the compiled
code came from the cache; the time of the compile that filled the cache is `runtime.compiled_ms[module.sha256]`.
`"instantiate"` is a new Store plus the instance, including a WASI reactor's `_initialize`; `"call"` (an export)
or `"run"` (a command's `_start`) is the time inside wasmtime's call. `serialize()` / `load_serialized()` give
the engine's precompiled artefact and load it back (timed). `WASMLAB_WASMTIME_CACHE=1` (or a cache TOML path)
turns on wasmtime's disk cache.

Limits, per store, applied to each call into the guest (instantiation and `_initialize` included, each with
its own budget): `fuel` (`Store.set_fuel` before the call; `fuel_used` / `last_fuel_used` whenever `fuel` is
given), `timeout` and `max_memory` (`Store.set_limits`: `memory.grow` past it returns -1; a module that needs
more to instantiate raises `LimitExceeded("memory")`, and so does a guest that traps while its memory is over
half of `max_memory`, the trap in the message: wasmtime does not say whether a grow failed, so this is a
heuristic). Time uses epoch interruption: each store gets an epoch deadline one tick ahead and a deadline
callback; one watchdog thread per engine bumps the epoch every `TICK` seconds while a guest call is in flight
(and sleeps when none has started for `LINGER` seconds), and the callback traps the guest once its call has
run past `timeout`. Other stores of the engine (other threads) just continue.

Output. WASI stdout/stderr go to unlinked temporary files (wasmtime writes them from its own threads, where a
Python callback must not run at interpreter exit); `max_output` bytes of each are kept, and a guest that
writes more than `OUTPUT_DISK_LIMIT` is stopped with `LimitExceeded("output")`.

Ctrl-C. The guest runs in the calling thread; ctypes releases the GIL, so Python's SIGINT handler cannot run
until wasmtime returns. The epoch callback is Python code run by the guest's thread at every tick, and that is
where the main thread handles signals. Calling into wasm installs (once, and again whenever someone, e.g.
ipykernel, swaps it) a SIGINT handler that delegates to the previous handler, except when the signal lands in a
callback frame entered from wasm: there it only records the interrupt (an exception raised there would be lost
by ctypes). The callback then traps the guest and the call raises `KeyboardInterrupt` once wasmtime returned.

Fast calls. `WasmtimeInstance.call` (and `instance.exports.NAME`) use a per-export closure that packs the
arguments with one `struct.pack_into` into a preallocated `wasmtime_val_raw_t` array and calls
`wasmtime_func_call_unchecked` through a private ctypes function pointer with prebuilt pointer arguments:
about 1-2 us per call, against ~40 us for `wasmtime.Func.__call__`. Only i32/i64/f32/f64 signatures take this
path; others fall back to `Func.__call__`. Fuel (per call when `fuel` is set), the timeout and Ctrl-C apply to
both paths.

Run results. `run()` records traps and exceeded limits in the returned `RunResult` (with the output printed
so far, the timings and `fuel_used`); `WasmtimeInstance.call` raises them (`Trap`, `LimitExceeded`,
`ExitTrap`). A WASI `proc_exit(n)` gives `exit_code` n. Trap frames are `"name (0xOFFSET)"`, innermost first
(names from the name section, else the export name, else `func[N]`), plus `" at file:line"` for modules with
DWARF (wasmtime's `WASMTIME_BACKTRACE_DETAILS`, on by default here).

Host functions: `options.imports` `{module: {name: callable}}`, linked with the types the module declares, and the
built-in `wasmlab` host module (`base.BUILTIN_HOST_FUNCTIONS`); its key-value store is `runtime.kv`. A host
function that raises traps the guest (`Trap` code "host function error", the Python error in the message).

Components (`module.is_component`) run through `wasmtime.component` with WASI preview 2: `invoke` calls an
exported function (snake_case names also find kebab-case exports), or one inside an exported interface as
`INTERFACE#FUNC`; without `invoke` a `wasi:cli/run` command runs, with argv, env, stdin, preopened dirs and
captured output as for modules.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import operator
import os
import random
import re
import signal
import struct
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ExitTrap, InvalidModule, LimitExceeded, RuntimeUnavailable, Trap, UsageError, WasmlabError
from .base import Instance, RunOptions, RunResult, Runtime
from .guest import BUILTIN_HOST_FUNCTIONS, BUILTIN_HOST_MODULE, WASI_MODULES
from .traps import function_names, normalize_trap
from .values import coerce_args

if TYPE_CHECKING:
    from ..module import Module

try:  # an engine that is not installed is reported by unavailable_reason(), never at import
    import wasmtime
    import wasmtime._bindings as _wt_bindings
    import wasmtime._func as _wt_func
    import wasmtime.component as _wt_component
    import wasmtime.component._enter as _wt_component_enter
    from wasmtime import _ffi as ffi
    from wasmtime._trap import Frame as _WtFrame
    from wasmtime._trap import FrameList as _WtFrameList

    _IMPORT_ERROR: str | None = None
except Exception as _exc:  # pragma: no cover - depends on the environment
    wasmtime = None  # type: ignore[assignment]
    _IMPORT_ERROR = f"the wasmtime package does not load: {type(_exc).__name__}: {_exc}"

__all__ = ["WasmtimeComponentInstance", "WasmtimeInstance", "WasmtimeRuntime"]

TICK = 0.01  # seconds between epoch bumps while a guest call is in flight
LINGER = 1.0  # seconds the watchdog keeps ticking after the last call started, before it sleeps
FUEL_UNLIMITED = (1 << 64) - 1
PAGE = 65536
STRATEGY_WINCH = 2  # wasmtime_strategy_t: 0 auto, 1 cranelift, 2 winch
NUMBER_TYPES = ("i32", "i64", "f32", "f64")
HOST_ERROR = "host function error"  # the Trap code of a host function that raised
OUTPUT_DISK_LIMIT = 256 << 20  # bytes of stdout+stderr a guest may write (to unlinked files) before it is stopped
# Compiled modules kept per engine. Each holds its machine code and, with data segments, a memfd (a file
# descriptor): unbounded, 20,000 fuzzed modules held 1,000+ descriptors, and a long session runs out of them.
MAX_COMPILED = 128


# ------------------------------------------------------------------------------------------ raw FFI
if wasmtime is not None:
    _VP = ctypes.c_void_p
    # Private function pointers (not the ones wasmtime._bindings configured): no argtypes, so prebuilt
    # c_void_p arguments pass without conversion; ctypes releases the GIL around each call.
    _CALL_UNCHECKED = ffi.dll["wasmtime_func_call_unchecked"]
    _CALL_UNCHECKED.restype = _VP
    _CALL_UNCHECKED.argtypes = None
    _SET_FUEL = ffi.dll["wasmtime_context_set_fuel"]
    _SET_FUEL.restype = _VP
    _GET_FUEL = ffi.dll["wasmtime_context_get_fuel"]
    _GET_FUEL.restype = _VP
    _RAW_SIZE = ctypes.sizeof(ffi.wasmtime_val_raw_t)
    _EPOCH_PROTO = _wt_bindings._wasmtime_store_epoch_deadline_callback.argtypes[1]
    _FINALIZER_PROTO = _wt_bindings._wasmtime_store_epoch_deadline_callback.argtypes[3]
    _SLOT_CODES = {"i32": "i", "i64": "q", "f32": "f", "f64": "d"}


def _addr(pointer: Any) -> int:
    return ctypes.cast(pointer, ctypes.c_void_p).value or 0


def _error_ptr(message: str) -> int:
    """A new wasmtime_error_t (ownership passes to wasmtime) as an address, for C callbacks to return."""
    return _addr(ffi.wasmtime_error_new(message.encode()))


# ------------------------------------------------------------------------------------------ per-store state
# Weak registries (an instance dropped without close() frees its state, its Store and its capture files):
_STATES: dict[int, weakref.ref[_StoreState]] = {}  # epoch-callback data id -> state
_BY_CONTEXT: dict[int, weakref.ref[_StoreState]] = {}  # wasmtime_context_t address -> state (host functions)


def _register(table: dict[int, weakref.ref[_StoreState]], key: int, state: _StoreState) -> None:
    def gone(ref: weakref.ref[_StoreState]) -> None:
        if table.get(key) is ref:
            table.pop(key, None)

    table[key] = weakref.ref(state, gone)


def _lookup(table: dict[int, weakref.ref[_StoreState]], key: int) -> _StoreState | None:
    ref = table.get(key)
    return ref() if ref is not None else None


def _unregister(table: dict[int, weakref.ref[_StoreState]], key: int, state: _StoreState) -> None:
    ref = table.get(key)
    if ref is not None and ref() in (state, None):
        table.pop(key, None)


_next_id = iter(range(1, 1 << 62))
_MAIN_THREAD = threading.main_thread().ident
_sigint_pending = False  # a SIGINT that arrived while the main thread was inside a callback from wasm


class _StoreState:
    """What wasmlab keeps next to one `wasmtime.Store`: limits, the in-flight call, captured output."""

    __slots__ = (
        "__weakref__",
        "closed",
        "context",
        "fuel",
        "id",
        "last_call",
        "log",
        "max_memory",
        "max_output",
        "memory",
        "output_fds",
        "reason",
        "runtime",
        "store",
        "t0",
        "timeout",
    )

    def __init__(self, runtime: WasmtimeRuntime, options: RunOptions) -> None:
        self.runtime = runtime
        self.timeout = options.timeout if options.timeout and options.timeout > 0 else None
        self.fuel = options.fuel
        self.max_memory = options.max_memory or None
        self.max_output = options.max_output
        self.t0 = 0.0  # perf_counter() when the running call started, 0.0 when no call runs
        self.last_call = 0.0  # seconds of the last call
        self.reason: str | None = None  # why the epoch callback stopped the guest: "time" or "interrupt"
        self.log = bytearray()  # lines of the built-in wasmlab.log, appended to stderr
        self.output_fds: dict[str, int] = {}  # "stdout"/"stderr" -> fd of the (unlinked) capture file
        self.memory: Any = None  # the wasmtime.Memory used for the memory-limit diagnosis
        self.closed = False
        self.store: Any = None
        self.context = 0
        self.id = next(_next_id)

    def capture(self, config: Any) -> None:
        """Send the guest's stdout and stderr to files that wasmtime opens now; keep a read descriptor and
        unlink them at once (nothing is left behind). Files, not Python callbacks: WASI writes happen on
        wasmtime's tokio threads, where a Python callback could outlive the interpreter at exit."""
        for stream in ("stdout", "stderr"):
            fd, path = tempfile.mkstemp(prefix=f"wasmlab-{stream}-")
            os.close(fd)
            try:
                setattr(config, f"{stream}_file", path)
                self.output_fds[stream] = os.open(path, os.O_RDONLY)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def output(self, stream: str) -> bytes:
        """The first max_output bytes the guest wrote to `stream` (stderr: then the wasmlab.log lines)."""
        fd = self.output_fds.get(stream)
        data = os.pread(fd, self.max_output, 0) if fd is not None else b""
        if stream == "stderr" and self.log:
            data = (data + bytes(self.log))[: self.max_output]
        return data

    def output_size(self) -> int:
        return sum(os.fstat(fd).st_size for fd in self.output_fds.values())

    def write_log(self, data: bytes) -> None:
        room = self.max_output - len(self.log)
        if room > 0:
            self.log += data[:room]

    def memory_bytes(self) -> int:
        if self.memory is None or self.store is None:
            return 0
        try:
            return self.memory.data_len(self.store)
        except Exception:
            return 0

    def release(self) -> None:
        """Forget the store (idempotent); the Store itself is freed when its last reference goes."""
        self.closed = True
        self._close_files()
        _unregister(_BY_CONTEXT, self.context, self)
        _unregister(self.runtime._watchdog.states, self.id, self)
        self.store = None
        self.memory = None

    def _close_files(self) -> None:
        fds, self.output_fds = self.output_fds, {}
        for fd in fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._close_files()


def _on_epoch(context: Any, data: Any, delta: Any, kind: Any) -> int:
    """Epoch-deadline callback, run by the guest's thread at each watchdog tick: trap on timeout or Ctrl-C,
    else continue for one more tick. Whatever happens, it must return (ctypes drops exceptions)."""
    global _sigint_pending
    state = None
    try:
        state = _lookup(_STATES, data or 0)
        if state is not None:
            if _sigint_pending and threading.get_ident() == _MAIN_THREAD:
                state.reason = "interrupt"
                return _error_ptr("wasmlab: interrupted (KeyboardInterrupt)")
            t0, timeout = state.t0, state.timeout
            if t0 and timeout is not None and time.perf_counter() - t0 >= timeout:
                state.reason = "time"
                return _error_ptr(f"wasmlab: time limit of {timeout:g} s exceeded")
            if state.output_fds and state.output_size() > max(OUTPUT_DISK_LIMIT, state.max_output):
                state.reason = "output"
                return _error_ptr("wasmlab: output limit exceeded")
    except KeyboardInterrupt:  # raised in a nested frame (the signal was handled there)
        if threading.get_ident() == _MAIN_THREAD:
            _sigint_pending = True
        if state is not None:
            state.reason = "interrupt"
        return _error_ptr("wasmlab: interrupted (KeyboardInterrupt)")
    except BaseException:  # a bug here must not stop the guest: keep going
        pass
    delta[0] = 1
    kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
    return 0


def _on_store_drop(data: Any) -> None:
    with contextlib.suppress(BaseException):
        _STATES.pop(data or 0, None)


if wasmtime is not None:
    _EPOCH_CALLBACK = _EPOCH_PROTO(_on_epoch)
    _STORE_FINALIZER = _FINALIZER_PROTO(_on_store_drop)


# ------------------------------------------------------------------------------------------ Ctrl-C
_previous_sigint: Any = None
_getsignal = signal._signal.getsignal if hasattr(signal, "_signal") else signal.getsignal  # type: ignore[attr-defined]
_SIGINT = int(signal.SIGINT)
# Entry frames of callbacks that wasm calls into: a KeyboardInterrupt raised at their first instruction would be
# swallowed by ctypes (and a non-void callback would return garbage), so the handler only records it there.
_DEFER_CODES = {_on_epoch.__code__}
_DEFER_NAMES = {
    ("_func.py", "trampoline"),
    ("_linker.py", "func_impl"),
    ("_linker.py", "resource_dtor_impl"),
}


def _on_sigint(signum: int, frame: Any) -> Any:
    global _sigint_pending
    if frame is not None:
        code = frame.f_code
        if code in _DEFER_CODES or (os.path.basename(code.co_filename), code.co_name) in _DEFER_NAMES:
            _sigint_pending = True  # the guest is running in this thread: the epoch callback stops it
            return None
    previous = _previous_sigint
    if callable(previous) and previous is not _on_sigint:
        return previous(signum, frame)
    raise KeyboardInterrupt


def _arm_sigint() -> None:
    """Install `_on_sigint` (delegating to the current handler) if this is the main thread and the current
    handler is a Python one. SIG_IGN / SIG_DFL are left alone: that is the embedding program's choice."""
    global _previous_sigint
    if _getsignal(_SIGINT) is _on_sigint or threading.get_ident() != _MAIN_THREAD:
        return
    current = signal.getsignal(signal.SIGINT)
    if current is _on_sigint or not callable(current):
        return
    _previous_sigint = current
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, _on_sigint)


def _take_interrupt() -> bool:
    """True (and cleared) when a Ctrl-C was recorded for the main thread's guest."""
    global _sigint_pending
    if _sigint_pending and threading.get_ident() == _MAIN_THREAD:
        _sigint_pending = False
        return True
    return False


# ------------------------------------------------------------------------------------------ watchdog
class _Watchdog:
    """One thread per engine: bumps the epoch every TICK while some store has a call in flight, sleeps
    otherwise. Callers set `state.t0` first, then `kick()` if `active` is False (the thread re-checks for
    in-flight calls after clearing `active`, so no call is missed)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.states: dict[int, weakref.ref[_StoreState]] = {}
        self.active = False
        self.kicked = 0.0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()

    def kick(self) -> None:
        self.kicked = time.monotonic()
        self.active = True
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(target=self._loop, name="wasmlab-wasmtime-epoch", daemon=True)
                    self._thread.start()
        self._wake.set()

    def _busy(self) -> bool:
        for ref in list(self.states.values()):
            state = ref()
            if state is not None and state.t0:
                return True
        return False

    def _loop(self) -> None:
        while not self._closed:
            if self._busy():
                self.engine.increment_epoch()
            elif time.monotonic() - self.kicked > LINGER:
                self.active = False
                if self._busy():
                    self.active = True
                    continue
                self._wake.wait()
                self._wake.clear()
                self.active = True
                continue
            time.sleep(TICK)

    def close(self) -> None:
        self._closed = True
        self._wake.set()


# ------------------------------------------------------------------------------------------ traps
_FRAME_LINE = re.compile(r"^\s*(\d+):\s")
_AT_LINE = re.compile(r"^\s+at (.+)$")


def _frame_locations(message: str) -> dict[int, str]:
    """{frame number: 'file:line:col'} from a backtrace message with WASMTIME_BACKTRACE_DETAILS."""
    out: dict[int, str] = {}
    current = None
    for line in message.splitlines():
        m = _FRAME_LINE.match(line)
        if m:
            current = int(m.group(1))
            continue
        at = _AT_LINE.match(line)
        if at and current is not None and current not in out:
            out[current] = at.group(1).strip()
    return out


def _error_frames(error: Any) -> list[Any]:
    frames = _WtFrameList(error)
    ffi.wasmtime_error_wasm_trace(error.ptr(), ctypes.byref(frames.vec))
    return [_WtFrame._from_ptr(frames.vec.data[i], frames) for i in range(frames.vec.size)]


def _format_frames(raw_frames: list[Any], message: str, names: dict[int, str]) -> list[str]:
    locations = _frame_locations(message)
    out = []
    for i, frame in enumerate(raw_frames):
        index = frame.func_index
        name = frame.func_name or names.get(index) or f"func[{index}]"
        offset = frame.module_offset
        text = name if offset >= (1 << 63) else f"{name} ({offset:#x})"
        if i in locations:
            text += f" at {locations[i]}"
        out.append(text)
    return out


# wiggle's GuestError messages: a WASI call whose arguments point outside memory or do not decode. wasmtime
# returns them as errors, not traps; other engines answer EFAULT/EINVAL or trap. Here they are traps.
_WASI_ARGUMENT_ERROR = re.compile(
    r"pointer (out of bounds|overflow|not aligned)|invalid (utf-8|enum value|flag value)|slice length mismatch"
    r"|int conversion error",
    re.IGNORECASE,
)


def _caused_by(message: str) -> str:
    """The innermost cause of a wasmtime error message (the line that says what happened)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if "Caused by:" in lines:
        tail = lines[lines.index("Caused by:") + 1 :]
        if tail:
            return re.sub(r"^\d+:\s*", "", tail[-1])
    return lines[0] if lines else message


class _ModuleInfo:
    """What instantiating and calling need to know about a module, computed once per sha256."""

    def __init__(self, module: Module) -> None:
        self.exports = [e.name for e in module.exports]
        self.funcs = frozenset(module.export_names("func"))
        memories = [e.name for e in module.exports if e.kind == "memory"]
        self.memory = "memory" if "memory" in memories else (memories[0] if memories else None)
        self.wasi = any(i.module in WASI_MODULES for i in module.imports)
        self.command = module.is_command
        self.reactor = not self.command and "_initialize" in self.funcs
        self._names: dict[int, str] | None = None

    def names(self, module: Module) -> dict[int, str]:
        if self._names is None:
            self._names = function_names(module)
        return self._names


class _HostError(Exception):
    """A Python host function raised; carried through wasmtime-py's trampoline to the call site."""

    def __init__(self, where: str, error: BaseException) -> None:
        super().__init__(f"host function {where} raised {type(error).__name__}: {error}")
        self.where, self.error = where, error


class _Exit(Exception):
    """WASI proc_exit: the exit status of a guest (a normal outcome for commands)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _take_host_exception() -> BaseException | None:
    exc = _wt_func.LAST_EXCEPTION or _wt_component_enter.LAST_EXCEPTION
    _wt_func.LAST_EXCEPTION = None
    _wt_component_enter.LAST_EXCEPTION = None
    return exc


def _fmt_bytes(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / 1024:.0f} KiB"
    return f"{n} bytes"


def _store_limits(module: Module, max_memory: int) -> dict[str, int]:
    """`Store.set_limits` arguments for `max_memory`. wasmtime's limits are per memory and per table, so the
    budget is split between the memories a module defines (together they stay under max_memory), and its tables
    (8 bytes an element) get as much again: without a table limit one `table.grow` allocates gigabytes."""
    try:
        memories, tables = (1, 1) if module.is_component else (len(module.memories), len(module.tables))
    except WasmlabError:
        memories = tables = 1
    return {
        "memory_size": max_memory // max(1, memories),
        "table_elements": max(1, max_memory // 8 // max(1, tables)),
    }


# ------------------------------------------------------------------------------------------ values
def _wrap_result(value: Any, valtype: str) -> Any:
    if valtype == "i32":
        v = operator.index(value) & 0xFFFFFFFF
        return v - (1 << 32) if v >= 1 << 31 else v
    if valtype == "i64":
        v = operator.index(value) & 0xFFFFFFFFFFFFFFFF
        return v - (1 << 64) if v >= 1 << 63 else v
    if valtype in ("f32", "f64"):
        return float(value)
    return value


def _parse_signature(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """ "(i32, i32) -> ()" -> (("i32", "i32"), ())."""
    params, _, results = text.partition("->")

    def items(s: str) -> tuple[str, ...]:
        return tuple(t.strip() for t in s.strip().strip("()").split(",") if t.strip())

    return items(params), items(results)


def _func_types(ftype: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(t) for t in ftype.params), tuple(str(t) for t in ftype.results)


# ------------------------------------------------------------------------------------------ built-in host module
def _caller_state(caller: Any) -> _StoreState | None:
    return _lookup(_BY_CONTEXT, _addr(caller._context()))


def _caller_memory(caller: Any, where: str) -> Any:
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        raise UsageError(f"{where} needs the guest to export its linear memory as 'memory'")
    return memory


def _caller_read(caller: Any, address: int, length: int, where: str) -> bytes:
    memory = _caller_memory(caller, where)
    size = memory.data_len(caller)
    if address < 0 or length < 0 or address + length > size:
        raise ValueError(f"{where}: bytes {address}..{address + length} are outside memory ({size} bytes)")
    return ctypes.string_at(_addr(memory.data_ptr(caller)) + address, length)


def _caller_write(caller: Any, address: int, data: bytes, where: str) -> None:
    memory = _caller_memory(caller, where)
    size = memory.data_len(caller)
    if address < 0 or address + len(data) > size:
        raise ValueError(f"{where}: bytes {address}..{address + len(data)} are outside memory ({size} bytes)")
    ctypes.memmove(_addr(memory.data_ptr(caller)) + address, data, len(data))


def _builtin_functions(runtime: WasmtimeRuntime) -> dict[str, Callable[..., Any]]:
    kv = runtime.kv

    def log(caller: Any, ptr: int, length: int) -> None:
        text = _caller_read(caller, ptr & 0xFFFFFFFF, length & 0xFFFFFFFF, "wasmlab.log")
        state = _caller_state(caller)
        if state is not None:
            state.write_log(text + b"\n")

    def now_ms(caller: Any) -> float:
        return time.perf_counter() * 1000.0

    def random_(caller: Any) -> float:
        return random.random()

    def kv_get(caller: Any, key_ptr: int, key_len: int, out_ptr: int, out_cap: int) -> int:
        key = _caller_read(caller, key_ptr & 0xFFFFFFFF, key_len & 0xFFFFFFFF, "wasmlab.kv_get")
        value = kv.get(key)
        if value is None:
            return -1
        _caller_write(caller, out_ptr & 0xFFFFFFFF, value[: max(0, out_cap)], "wasmlab.kv_get")
        return len(value)

    def kv_set(caller: Any, key_ptr: int, key_len: int, val_ptr: int, val_len: int) -> None:
        key = _caller_read(caller, key_ptr & 0xFFFFFFFF, key_len & 0xFFFFFFFF, "wasmlab.kv_set")
        kv[key] = _caller_read(caller, val_ptr & 0xFFFFFFFF, val_len & 0xFFFFFFFF, "wasmlab.kv_set")

    return {"log": log, "now_ms": now_ms, "random": random_, "kv_get": kv_get, "kv_set": kv_set}


def _host_wrapper(where: str, fn: Callable[..., Any], results: tuple[str, ...]) -> Callable[..., Any]:
    """A host function for wasmtime-py's trampoline: results coerced to the declared types, Python errors
    carried as _HostError (KeyboardInterrupt passes through untouched)."""

    def host(*args: Any) -> Any:
        try:
            value = fn(*args)
            if not results:
                return None
            if len(results) == 1:
                return _wrap_result(value, results[0])
            return [_wrap_result(v, t) for v, t in zip(value, results, strict=True)]
        except Exception as exc:
            raise _HostError(where, exc) from exc

    return host


def _keep_output(exc: BaseException, state: _StoreState) -> None:
    """Attach what the guest printed to an exception raised while instantiating (run() reports it)."""
    if isinstance(exc, WasmlabError):
        exc.stdout, exc.stderr = state.output("stdout"), state.output("stderr")  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------ runtime
class WasmtimeRuntime(Runtime):
    """wasmtime in this process: the reference backend (see the module docstring for the design)."""

    name = "wasmtime"
    variants = ("cranelift", "winch", "pulley")
    install = "pip install wasmtime"
    capabilities = frozenset(
        {
            "exports",
            "wasi",
            "memory",
            "instances",
            "fuel",
            "timeout",
            "max_memory",
            "host_functions",
            "builtin_host",
            "components",
            "precompiled",
        }
    )

    def __init__(
        self,
        variant: str | None = None,
        *,
        cache: bool | str | None = None,
        backtrace_details: bool = True,
        metered: bool = False,
    ) -> None:
        super().__init__(variant)
        # Fuel metering slows every guest (~1.5x on fib): only the twin engine that runs `fuel=` requests has it.
        self.metered = metered
        self._twin: WasmtimeRuntime | None = None
        self._engine_options = {"cache": cache, "backtrace_details": backtrace_details}
        self.kv: dict[bytes, bytes] = {}
        self.compiled_ms: dict[str, float] = {}  # sha256 -> ms of the compile that filled the cache
        self._modules: dict[str, Any] = {}  # sha256 -> wasmtime.Module / component.Component
        self._pres: dict[str, Any] = {}  # sha256 -> InstancePre (modules without Python imports)
        self._infos: dict[str, _ModuleInfo] = {}
        self._component_linker: Any = None
        self._lock = threading.RLock()
        self._live: weakref.WeakSet[Any] = weakref.WeakSet()
        self._engine: Any = None
        self._reason: str | None = None
        if cache is None:
            env = os.environ.get("WASMLAB_WASMTIME_CACHE", "").strip()
            cache = True if env in ("1", "true", "yes") else (env or None)
        try:
            self._engine = self._make_engine(cache, backtrace_details)
        except Exception as exc:
            self._reason = str(exc)
        self._watchdog = _Watchdog(self._engine)
        self._builtins = _builtin_functions(self) if wasmtime is not None else {}
        _RUNTIMES.add(self)

    def _make_engine(self, cache: bool | str | None, backtrace_details: bool) -> Any:
        if wasmtime is None:
            raise RuntimeError(_IMPORT_ERROR)
        # wasmtime reads WASMTIME_BACKTRACE_DETAILS when the Config is created: set it for that moment only.
        saved = os.environ.get("WASMTIME_BACKTRACE_DETAILS")
        if backtrace_details and saved is None:
            os.environ["WASMTIME_BACKTRACE_DETAILS"] = "1"
        try:
            config = wasmtime.Config()
        finally:
            if backtrace_details and saved is None:
                os.environ.pop("WASMTIME_BACKTRACE_DETAILS", None)
        config.consume_fuel = self.metered
        config.epoch_interruption = True
        config.wasm_component_model = True
        if cache:
            config.cache = cache
        if self.variant == "winch":
            ffi.wasmtime_config_strategy_set(config.ptr(), STRATEGY_WINCH)
        elif self.variant == "pulley":
            try:
                config.target = "pulley64"
            except wasmtime.WasmtimeError as exc:
                raise RuntimeError(f"this wasmtime build has no Pulley interpreter ({_caused_by(str(exc))})") from None
        try:
            engine = wasmtime.Engine(config)
        except Exception as exc:
            raise RuntimeError(f"wasmtime cannot build a {self.variant} engine here: {_caused_by(str(exc))}") from None
        if self.variant == "pulley" and not engine.is_pulley():
            raise RuntimeError("the engine built for pulley64 does not run Pulley")
        # Probe: a tiny module must compile and run (winch exists only on some hosts and builds).
        probe = wasmtime.Module(engine, b"\0asm\1\0\0\0\1\5\1\x60\0\1\x7f\3\2\1\0\7\5\1\1f\0\0\n\6\1\4\0\x41\7\x0b")
        store = wasmtime.Store(engine)
        if self.metered:
            store.set_fuel(1000)
        store.set_epoch_deadline(1)
        if wasmtime.Instance(store, probe, []).exports(store)["f"](store) != 7:
            raise RuntimeError(f"the {self.variant} engine computed a wrong answer on the probe module")
        return engine

    # availability ---------------------------------------------------------------------------------------
    def unavailable_reason(self) -> str | None:
        if wasmtime is None:
            return _IMPORT_ERROR
        return self._reason

    def version(self) -> str:
        try:
            from importlib.metadata import version

            return f"wasmtime {version('wasmtime')}"
        except Exception:
            return ""

    def _require_engine(self) -> Any:
        if self._engine is None:
            raise RuntimeUnavailable(self.label, self.unavailable_reason() or "no engine", self.install)
        return self._engine

    def close(self) -> None:
        """Close live instances, stop the watchdog, drop compiled code."""
        if self._twin is not None:
            self._twin.close()
        for inst in list(self._live):
            with contextlib.suppress(Exception):
                inst.close()
        self._watchdog.close()
        self._watchdog = _Watchdog(self._engine)  # the runtime stays usable after close()
        with self._lock:
            self._modules.clear()
            self._pres.clear()
            self._component_linker = None

    # kv store of the built-in host module ---------------------------------------------------------------
    def kv_clear(self) -> None:
        self.kv.clear()

    def kv_items(self) -> dict[bytes, bytes]:
        return dict(self.kv)

    def _info(self, module: Module) -> _ModuleInfo:
        info = self._infos.get(module.sha256)
        if info is None:
            info = self._infos[module.sha256] = _ModuleInfo(module)
        return info

    # compiling ------------------------------------------------------------------------------------------
    def compile(self, module: Module) -> float:
        """Compile `module` into the cache now: the milliseconds it took (0.0 when it was cached)."""
        return self._compiled(module)[1]

    def _compiled(self, module: Module) -> tuple[Any, float]:
        """(compiled wasmtime Module or Component, ms spent compiling now: 0.0 when cached)."""
        engine = self._require_engine()
        key = module.sha256
        compiled = self._modules.get(key)
        if compiled is not None:
            return compiled, 0.0
        with self._lock:
            compiled = self._modules.get(key)
            if compiled is not None:
                return compiled, 0.0
            t0 = time.perf_counter()
            try:
                if module.is_component:
                    compiled = _wt_component.Component(engine, module.bytes)
                else:
                    compiled = wasmtime.Module(engine, module.bytes)
            except wasmtime.WasmtimeError as exc:
                raise InvalidModule(f"wasmtime rejected {module.name}: {_caused_by(str(exc))}") from None
            ms = (time.perf_counter() - t0) * 1000.0
            self._modules[key] = compiled
            self.compiled_ms[key] = ms
            while len(self._modules) > MAX_COMPILED:  # the oldest first; live instances keep their own
                oldest = next(iter(self._modules))
                del self._modules[oldest]
                self._pres.pop(oldest, None)
                self._infos.pop(oldest, None)
            return compiled, ms

    def serialize(self, module: Module) -> bytes:
        """The engine's precompiled artefact for `module` (valid for this wasmtime version and variant)."""
        compiled, _ = self._compiled(module)
        return bytes(compiled.serialize())

    def load_serialized(self, module: Module, data: bytes) -> dict[str, float]:
        """Load a `serialize()` artefact as the compiled code of `module` (replacing any cached one), so the
        next run skips compiling. Returns {"deserialize": ms}."""
        engine = self._require_engine()
        t0 = time.perf_counter()
        try:
            if module.is_component:
                compiled = _wt_component.Component.deserialize(engine, data)
            else:
                compiled = wasmtime.Module.deserialize(engine, data)
        except wasmtime.WasmtimeError as exc:
            raise InvalidModule(f"cannot load precompiled {module.name}: {_caused_by(str(exc))}") from None
        ms = (time.perf_counter() - t0) * 1000.0
        with self._lock:
            self._modules[module.sha256] = compiled
            self._pres.pop(module.sha256, None)
        return {"deserialize": ms}

    # linking --------------------------------------------------------------------------------------------
    def _instance_pre(self, module: Module, compiled: Any, options: RunOptions) -> Any:
        user = {m: dict(funcs) for m, funcs in options.imports.items() if funcs}
        if not user:
            pre = self._pres.get(module.sha256)
            if pre is not None:
                return pre
        linker = wasmtime.Linker(self._require_engine())
        if any(imp.module in WASI_MODULES for imp in compiled.imports):
            linker.define_wasi()
            linker.allow_shadowing = True  # a Python function may stand in for a WASI one
        missing = []
        for imp in compiled.imports:
            where = f"{imp.module}.{imp.name}"
            fn = user.get(imp.module, {}).get(imp.name or "")
            if fn is not None:
                if not isinstance(imp.type, wasmtime.FuncType):
                    raise UsageError(f"{module.name} imports {where} as a {type(imp.type).__name__}, not a function")
                _, results = _func_types(imp.type)
                linker.define_func(imp.module, imp.name, imp.type, _host_wrapper(where, fn, results))
            elif imp.module == BUILTIN_HOST_MODULE and imp.name in self._builtins:
                params, results = _func_types(imp.type)
                want = _parse_signature(BUILTIN_HOST_FUNCTIONS[imp.name][0])
                if (params, results) != want:
                    raise UsageError(
                        f"{module.name} imports {where} as ({', '.join(params)}) -> ({', '.join(results)}); "
                        f"the built-in is {BUILTIN_HOST_FUNCTIONS[imp.name][0]}"
                    )
                linker.define_func(
                    imp.module, imp.name, imp.type, _host_wrapper(where, self._builtins[imp.name], results), True
                )
            elif imp.module in WASI_MODULES:
                pass
            else:
                if isinstance(imp.type, wasmtime.FuncType):
                    params, results = _func_types(imp.type)
                    where = f"{where} ({', '.join(params)}) -> ({', '.join(results)})"
                missing.append(where)
        if missing:
            shown = ", ".join(missing[:5]) + ("..." if len(missing) > 5 else "")
            raise UsageError(
                f"{module.name} imports {shown}: pass imports={{module: {{name: callable}}}}, or use the built-in "
                f"{BUILTIN_HOST_MODULE!r} host module ({', '.join(BUILTIN_HOST_FUNCTIONS)})"
            )
        try:
            pre = linker.instantiate_pre(compiled)
        except wasmtime.WasmtimeError as exc:
            raise UsageError(f"cannot link {module.name}: {_caused_by(str(exc))}") from None
        if not user:
            self._pres[module.sha256] = pre
        return pre

    # stores ---------------------------------------------------------------------------------------------
    def _new_store(self, module: Module, options: RunOptions, wasi: bool) -> _StoreState:
        engine = self._require_engine()
        state = _StoreState(self, options)
        store = wasmtime.Store(engine)
        ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), _EPOCH_CALLBACK, state.id, _STORE_FINALIZER)
        _register(_STATES, state.id, state)
        store.set_epoch_deadline(1)
        if self.metered:
            store.set_fuel(options.fuel if options.fuel is not None else FUEL_UNLIMITED)
        if options.max_memory:
            store.set_limits(**_store_limits(module, options.max_memory))
        if wasi:
            store.set_wasi(self._wasi_config(module, options, state))
        state.store = store
        state.context = _addr(store._context())
        _register(_BY_CONTEXT, state.context, state)
        _register(self._watchdog.states, state.id, state)
        return state

    def _wasi_config(self, module: Module, options: RunOptions, state: _StoreState) -> Any:
        config = wasmtime.WasiConfig()
        config.argv = [module.name, *options.argv]
        config.env = [[k, v] for k, v in options.env.items()]
        if options.stdin:
            fd, path = tempfile.mkstemp(prefix="wasmlab-stdin-")
            try:
                os.write(fd, options.stdin)
                os.close(fd)
                config.stdin_file = path  # opened here, so the file can go at once
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        state.capture(config)
        for guest, host in options.dirs.items():
            if not os.path.isdir(host):
                raise UsageError(f"dirs: {host!r} (for guest path {guest!r}) is not a directory")
            config.preopen_dir(os.path.abspath(host), guest)
        return config

    # failures -------------------------------------------------------------------------------------------
    def _failure(self, state: _StoreState, error: Any, module: Module, what: str) -> BaseException:
        """The exception for a failed guest call: `error` is a wasmtime Trap or WasmtimeError (or None when
        only a recorded interrupt is pending). _Exit carries a WASI exit status."""
        reason, state.reason = state.reason, None
        host_exc = _take_host_exception()
        interrupted = _take_interrupt()
        if reason == "interrupt" or interrupted or isinstance(host_exc, KeyboardInterrupt):
            return KeyboardInterrupt()
        if host_exc is not None and not isinstance(host_exc, Exception):
            return host_exc
        if isinstance(error, wasmtime.ExitTrap):
            return _Exit(error.code)
        message = (error.message if isinstance(error, wasmtime.Trap) else str(error)) if error is not None else ""
        try:
            raw = error.frames if isinstance(error, wasmtime.Trap) else _error_frames(error) if error else []
        except Exception:
            raw = []
        frames = _format_frames(raw, message, {} if module.is_component else self._info(module).names(module))
        where = f" in {frames[0]}" if frames else ""
        if reason == "output":
            return LimitExceeded(
                "output",
                f"{self.label}: {what} wrote more than {_fmt_bytes(OUTPUT_DISK_LIMIT)} of output and was stopped "
                f"(only the first max_output={_fmt_bytes(state.max_output)} are kept); print less",
            )
        if reason == "time":
            return LimitExceeded(
                "time",
                f"{self.label}: {what} ran past the {state.timeout:g} s time limit (stopped{where}); "
                "raise timeout= (seconds) or make the guest finish sooner",
            )
        if host_exc is not None:
            detail = str(host_exc) if isinstance(host_exc, _HostError) else f"host function raised {host_exc!r}"
            exc = Trap(HOST_ERROR, frames, f"wasm trap on {self.label}: {detail}")
            exc.__cause__ = host_exc.error if isinstance(host_exc, _HostError) else host_exc
            return exc
        cause = _caused_by(message)
        code = normalize_trap(message)
        trap_code = error.trap_code if isinstance(error, wasmtime.Trap) else None
        if trap_code == wasmtime.TrapCode.OUT_OF_FUEL or "all fuel consumed" in message:
            exc = LimitExceeded(
                "fuel",
                f"{self.label}: {what} used all {state.fuel:,} units of fuel (stopped{where}); raise fuel= "
                "or leave it unset",
            )
            exc.fuel_used = state.fuel  # type: ignore[attr-defined]
            return exc
        if "exceeds memory limits" in message or "memory limit" in message.lower():
            limit = _fmt_bytes(state.max_memory or 0)
            return LimitExceeded(
                "memory",
                f"{self.label}: {module.name} needs more linear memory than max_memory={limit} ({cause}); "
                "raise max_memory= (bytes)",
            )
        if "exceeds table limits" in message:  # tables get max_memory too (see _store_limits)
            limit = _fmt_bytes(state.max_memory or 0)
            return LimitExceeded(
                "memory",
                f"{self.label}: {module.name} needs a bigger table than max_memory={limit} allows ({cause}); "
                "raise max_memory= (bytes)",
            )
        is_trap = isinstance(error, wasmtime.Trap) or "wasm trap" in message or code != "trap"
        if not is_trap and "missing required memory export" in message:  # WASI reads the guest's "memory"
            return UsageError(f"{self.label}: {module.name} calls WASI but exports no memory named 'memory'")
        if not is_trap and _WASI_ARGUMENT_ERROR.search(message):  # a WASI call given a bad pointer, flag, string
            outside = re.search(r"pointer (out of bounds|overflow)", message, re.IGNORECASE)
            code = "out of bounds memory access" if outside else "trap"
            return Trap(code, frames, f"wasm trap on {self.label}: {code}{where} (WASI refused an argument: {cause})")
        if not is_trap and "shared memory support is disabled" in message:
            return RuntimeUnavailable(
                self.label,
                f"{module.name} declares a shared memory (the threads proposal), which wasmlab does not enable here",
                "drop `shared` from the memory, or run it on node",
            )
        if not is_trap:
            return WasmlabError(f"{self.label}: {what} failed: {cause}")
        if state.max_memory and code != "stack overflow":
            size = state.memory_bytes()
            if size and size + PAGE > state.max_memory // 2:  # growth probably failed: see the docstring
                exc = LimitExceeded(
                    "memory",
                    f"{self.label}: {what} trapped ({code}{where}) after its linear memory reached "
                    f"{_fmt_bytes(size)} of the max_memory={_fmt_bytes(state.max_memory)} limit (memory.grow "
                    "failed); raise max_memory= (bytes)",
                )
                exc.trap_code = code  # type: ignore[attr-defined]
                exc.trap_frames = frames  # type: ignore[attr-defined]
                return exc
        return Trap(code, frames, f"wasm trap on {self.label}: {code}{where}")

    # running --------------------------------------------------------------------------------------------
    def metered_twin(self) -> WasmtimeRuntime:
        """The same runtime on an engine with fuel metering, which runs every request that sets `fuel`."""
        if self.metered:
            return self
        if self._twin is None:
            self._twin = WasmtimeRuntime(self.variant, metered=True, **self._engine_options)
            self._twin.kv = self.kv  # one key-value store for the runtime, whichever engine runs the guest
        return self._twin

    def run(self, module: Module, options: RunOptions) -> RunResult:
        """One run in a fresh store. Traps, limits and exit codes are recorded in the result (with the output
        so far); KeyboardInterrupt propagates after the guest has stopped."""
        if options.fuel is not None and not self.metered:
            return self.metered_twin().run(module, options)
        if module.is_component:
            return self._run_component(module, options)
        compiled, compile_ms = self._compiled(module)
        result = RunResult(self.label, options.invoke, timings={"compile": compile_ms})
        command = options.invoke is None
        if command and not module.is_command:
            raise UsageError(
                f"{module.name} is not a WASI command (no _start): pass invoke= one of "
                f"{', '.join(module.export_names()) or 'none'}"
            )
        try:
            inst = self._instantiate(module, compiled, options, result.timings)
        except RunResult.RECORDED as exc:  # in a start function or _initialize
            return result.record(exc)
        try:
            name = "_start" if command else options.invoke
            assert name is not None
            key = "run" if command else "call"
            try:
                value = inst.call(name, *options.args)
                if command:
                    result.exit_code = 0
                else:
                    result.result = value
            except RunResult.RECORDED as exc:
                result.record(exc)
            result.timings[key] = inst.last_call_ms
            state = inst._state
            if options.fuel is not None:
                result.fuel_used = inst.last_fuel_used
            result.stdout, result.stderr = state.output("stdout"), state.output("stderr")
        finally:
            inst.close()
        return result

    def instantiate(self, module: Module, options: RunOptions) -> WasmtimeInstance | WasmtimeComponentInstance:
        """A kept instance (its own store). Limits apply per call: `timeout` and `fuel` to each call."""
        if options.fuel is not None and not self.metered:
            return self.metered_twin().instantiate(module, options)
        if module.is_component:
            return self._instantiate_component(module, options)
        compiled, compile_ms = self._compiled(module)
        timings = {"compile": compile_ms}
        inst = self._instantiate(module, compiled, options, timings)
        return inst

    def _instantiate(self, module: Module, compiled: Any, options: RunOptions, timings: dict[str, float]):
        pre = self._instance_pre(module, compiled, options)
        info = self._info(module)
        t0 = time.perf_counter()
        state = self._new_store(module, options, info.wasi)
        _arm_sigint()
        state.t0 = time.perf_counter()
        if not self._watchdog.active:
            self._watchdog.kick()
        try:
            raw_instance = pre.instantiate(state.store)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            state.t0 = 0.0
            failure = self._failure(state, exc, module, f"instantiating {module.name}")
            if isinstance(failure, _Exit):
                failure = ExitTrap(failure.status)
            _keep_output(failure, state)
            state.release()
            raise failure from None
        except BaseException:
            state.t0 = 0.0
            state.release()
            raise
        state.t0 = 0.0
        inst = WasmtimeInstance(self, module, options, state, raw_instance, timings, info)
        try:
            if info.reactor:
                inst.call("_initialize")
        except BaseException as exc:
            _keep_output(exc, state)
            inst.close()
            raise
        timings["instantiate"] = (time.perf_counter() - t0) * 1000.0
        self._live.add(inst)
        return inst

    # components -----------------------------------------------------------------------------------------
    def _components_linker(self) -> Any:
        with self._lock:
            if self._component_linker is None:
                linker = _wt_component.Linker(self._require_engine())
                linker.add_wasip2()
                self._component_linker = linker
            return self._component_linker

    def _instantiate_component(self, module: Module, options: RunOptions) -> WasmtimeComponentInstance:
        if options.imports:
            raise RuntimeUnavailable(
                self.label, "Python host functions for components are not supported: use core modules"
            )
        compiled, compile_ms = self._compiled(module)
        timings = {"compile": compile_ms}
        linker = self._components_linker()
        state = self._new_store(module, options, True)
        t0 = time.perf_counter()
        inst = WasmtimeComponentInstance(self, module, options, state, timings)
        try:
            inst._raw = inst._guarded("instantiating " + module.name, lambda: linker.instantiate(state.store, compiled))
        except BaseException as exc:
            _keep_output(exc, state)
            state.release()
            raise
        timings["instantiate"] = (time.perf_counter() - t0) * 1000.0
        self._live.add(inst)
        return inst

    def _run_component(self, module: Module, options: RunOptions) -> RunResult:
        result = RunResult(self.label, options.invoke)
        try:
            inst = self._instantiate_component(module, options)
        except RunResult.RECORDED as exc:
            return result.record(exc)
        result.timings.update(inst.timings)
        key = "run" if options.invoke is None else "call"
        try:
            if options.invoke is None:
                result.exit_code = inst.run_command()
            else:
                result.result = inst.call(options.invoke, *options.args)
        except RunResult.RECORDED as exc:
            result.record(exc)
        finally:
            result.timings[key] = inst._state.last_call * 1000.0
            result.stdout, result.stderr = inst.stdout, inst.stderr
            if options.fuel is not None:
                result.fuel_used = inst.last_fuel_used
            inst.close()
        return result


# ------------------------------------------------------------------------------------------ instances
class WasmtimeInstance(Instance):
    """A live core-module instance in its own store. `call` takes the fast raw-FFI path for numeric
    signatures. `timeout` and `fuel` apply to each call (`last_fuel_used`, `last_timings`); WASI output and the
    built-in `log` collect in `stdout` / `stderr` (capped at max_output)."""

    def __init__(
        self,
        runtime: WasmtimeRuntime,
        module: Module,
        options: RunOptions,
        state: _StoreState,
        raw_instance: Any,
        timings: dict[str, float],
        info: _ModuleInfo,
    ) -> None:
        self.runtime = runtime.label
        self._runtime = runtime
        self.module = module
        self.options = options
        self.timings = timings
        self.last_fuel_used: int | None = None
        self._state = state
        self._store = state.store
        self._raw = raw_instance
        self._calls: dict[str, Callable[..., Any]] = {}
        self._export_list = info.exports
        self._func_exports = info.funcs
        self._default_memory = info.memory
        if self._default_memory is not None:
            state.memory = self._get_export(self._default_memory)

    def __repr__(self) -> str:
        state = "closed" if self._state.closed else "live"
        return f"<WasmtimeInstance {self.module.name!r} on {self.runtime} {state}>"

    @property
    def stdout(self) -> bytes:
        return self._state.output("stdout")

    @property
    def stderr(self) -> bytes:
        return self._state.output("stderr")

    @property
    def last_call(self) -> float:
        return self._state.last_call

    @property
    def last_call_ms(self) -> float:
        return self._state.last_call * 1000.0

    @property
    def last_timings(self) -> dict[str, float]:
        return {"call": self._state.last_call * 1000.0}

    # exports --------------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._state.closed:
            raise UsageError(f"instance of {self.module.name} on {self.runtime} is closed")

    def _get_export(self, name: str) -> Any:
        self._check_open()
        item = ffi.wasmtime_extern_t()
        encoded = name.encode()
        found = ffi.wasmtime_instance_export_get(
            self._store._context(),
            ctypes.byref(self._raw._instance),
            ctypes.create_string_buffer(encoded),
            len(encoded),
            ctypes.byref(item),
        )
        if not found:
            raise UsageError(f"{self.module.name} has no export {name!r}: exports are {', '.join(self._export_list)}")
        from wasmtime._extern import wrap_extern

        return wrap_extern(item)

    def export_names(self) -> list[str]:
        return list(self._export_list)

    def call(self, name: str, *args: Any) -> Any:
        fn = self._calls.get(name)
        if fn is None:
            fn = self._export_callable(name)
        return fn(*args)

    def _export_callable(self, name: str) -> Callable[..., Any]:
        fn = self._calls.get(name)
        if fn is None:
            if name not in self._func_exports:
                self._check_open()
                exported = ", ".join(sorted(self._func_exports)) or "none"
                raise UsageError(f"{self.module.name} exports no function {name!r}: it exports {exported}")
            fn = self._calls[name] = self._make_call(name)
        return fn

    def _make_call(self, name: str) -> Callable[..., Any]:
        func = self._get_export(name)
        params, results = _func_types(func.type(self._store))
        if all(t in NUMBER_TYPES for t in params + results):
            return self._fast_call(name, func, params, results)
        return self._slow_call(name, func, params, results)

    def _fast_call(self, name: str, func: Any, params: tuple[str, ...], results: tuple[str, ...]) -> Callable:
        """The raw-FFI closure for a numeric signature (see the module docstring)."""
        state, runtime, module = self._state, self._runtime, self.module
        watchdog = runtime._watchdog
        slots = max(len(params), len(results), 1)
        raw = (ffi.wasmtime_val_raw_t * slots)()
        view = memoryview(raw).cast("B")  # type: ignore[arg-type]
        stride = _RAW_SIZE

        def layout(types: tuple[str, ...]) -> struct.Struct:
            fmt = "<"
            for t in types:
                code = _SLOT_CODES[t]
                fmt += code + f"{stride - struct.calcsize('<' + code)}x"
            return struct.Struct(fmt)

        pack_into = layout(params).pack_into
        unpack_from = layout(results).unpack_from
        nresults = len(results)
        trap_slot = ctypes.c_void_p()
        func_struct = func._func  # keep alive: the call passes its address
        c_args = (
            ctypes.c_void_p(state.context),
            ctypes.c_void_p(ctypes.addressof(func_struct)),
            ctypes.c_void_p(ctypes.addressof(raw)),
            ctypes.c_size_t(slots),
            ctypes.c_void_p(ctypes.addressof(trap_slot)),
        )
        c_context = c_args[0]
        fuel_box = ctypes.c_uint64(0)
        fuel_args = (c_context, ctypes.c_uint64(state.fuel)) if state.fuel is not None else None
        c_fuel_out = ctypes.c_void_p(ctypes.addressof(fuel_box))
        call_unchecked, set_fuel, get_fuel = _CALL_UNCHECKED, _SET_FUEL, _GET_FUEL
        perf_counter, getsignal, sigint, handler = time.perf_counter, _getsignal, _SIGINT, _on_sigint
        instance = self

        def fail(err: int | None) -> None:
            """Raise what a failed call means; returns only for proc_exit(0) (the call returns None)."""
            error: Any = None
            if err:
                error = wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t)))
            elif trap_slot.value:
                error = wasmtime.Trap._from_ptr(ctypes.cast(trap_slot.value, ctypes.POINTER(ffi.wasm_trap_t)))
                trap_slot.value = None
            failure = runtime._failure(state, error, module, name)
            if isinstance(failure, _Exit):
                if failure.status == 0:
                    return
                raise ExitTrap(failure.status)
            raise failure

        def call(*args: Any) -> Any:
            if state.closed:
                instance._check_open()
            try:
                pack_into(view, 0, *args)
            except (struct.error, TypeError):
                pack_into(view, 0, *coerce_args(name, params, args))
            if fuel_args is not None:
                set_fuel(*fuel_args)
            if getsignal(sigint) is not handler:
                _arm_sigint()
            t0 = state.t0 = perf_counter()
            if not watchdog.active:
                watchdog.kick()
            try:
                err = call_unchecked(*c_args)
            finally:
                state.t0 = 0.0
                state.last_call = perf_counter() - t0
                if fuel_args is not None:
                    get_fuel(c_context, c_fuel_out)
                    instance.last_fuel_used = state.fuel - fuel_box.value
            if err or trap_slot.value:
                fail(err)
                return None  # proc_exit(0)
            if _sigint_pending and _take_interrupt():  # Ctrl-C recorded during a host callback
                raise KeyboardInterrupt
            if nresults == 1:
                return unpack_from(view, 0)[0]
            if nresults == 0:
                return None
            return unpack_from(view, 0)

        # The C call reads these by address: they must live as long as the closure.
        call._keepalive = (func, func_struct, raw, trap_slot, fuel_box, c_args)  # type: ignore[attr-defined]
        return call

    def _slow_call(self, name: str, func: Any, params: tuple[str, ...], results: tuple[str, ...]) -> Callable:
        """wasmtime-py's Func.__call__ (reference types, v128) under the same limits and error handling."""
        store = self._store

        def call(*args: Any) -> Any:
            self._check_open()
            values = coerce_args(name, params, args)
            value = self._guarded(name, lambda: func(store, *values))
            return tuple(value) if isinstance(value, list) else value

        return call

    def _guarded(self, what: str, thunk: Callable[[], Any]) -> Any:
        """Run `thunk` (a wasmtime-py call into wasm) with fuel, the timeout and Ctrl-C applied."""
        state = self._state
        if state.fuel is not None:
            state.store.set_fuel(state.fuel)
        _arm_sigint()
        t0 = state.t0 = time.perf_counter()
        watchdog = self._runtime._watchdog
        if not watchdog.active:
            watchdog.kick()
        error: Any = None
        value = None
        try:
            value = thunk()
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            error = exc
        except _HostError as exc:  # re-raised by wasmtime-py's maybe_raise_last_exn
            _wt_func.LAST_EXCEPTION = exc
            error = wasmtime.WasmtimeError("python exception")
        finally:
            state.t0 = 0.0
            state.last_call = time.perf_counter() - t0
            if state.fuel is not None:
                self.last_fuel_used = state.fuel - state.store.get_fuel()
        if error is None:
            if _sigint_pending and _take_interrupt():  # Ctrl-C recorded during a host callback
                raise KeyboardInterrupt
            return value
        failure = self._runtime._failure(state, error, self.module, what)
        if isinstance(failure, _Exit):
            if failure.status:
                raise ExitTrap(failure.status)
            return None
        raise failure

    # memory ---------------------------------------------------------------------------------------------
    def _memory(self, memory: str | None) -> Any:
        name = memory or self._default_memory
        if name is None:
            raise UsageError(f"{self.module.name} exports no memory")
        if name == self._default_memory and self._state.memory is not None:
            self._check_open()
            return self._state.memory
        item = self._get_export(name)
        if not isinstance(item, wasmtime.Memory):
            raise UsageError(f"export {name!r} of {self.module.name} is not a memory")
        return item

    def memory_size(self, memory: str | None = None) -> int:
        return self._memory(memory).data_len(self._store)

    def _span(self, mem: Any, address: int, length: int) -> int:
        size = mem.data_len(self._store)
        if address < 0 or length < 0 or address + length > size:
            raise UsageError(f"bytes {address}..{address + length} are outside linear memory ({size} bytes)")
        return _addr(mem.data_ptr(self._store)) + address

    def read_memory(self, address: int, length: int, memory: str | None = None) -> bytes:
        mem = self._memory(memory)
        return ctypes.string_at(self._span(mem, address, length), length) if length else b""

    def write_memory(self, address: int, data: bytes, memory: str | None = None) -> None:
        mem = self._memory(memory)
        data = bytes(data)
        start = self._span(mem, address, len(data))
        if data:
            ctypes.memmove(start, data, len(data))

    def close(self) -> None:
        if self._state.closed:
            return
        self._state.release()
        self._calls.clear()
        self.__dict__.pop("_exports_proxy", None)


class WasmtimeComponentInstance(Instance):
    """A live component instance: call exported functions by name (kebab-case or snake_case), and functions of
    exported interfaces as `INTERFACE#FUNC` (`wasmlab:edge/quota@0.1.0#limit`, or the short `quota#limit`); run a
    `wasi:cli/run` command with `run_command()`. Components have no linear memory to read from outside."""

    def __init__(
        self,
        runtime: WasmtimeRuntime,
        module: Module,
        options: RunOptions,
        state: _StoreState,
        timings: dict[str, float],
    ) -> None:
        self.runtime = runtime.label
        self._runtime = runtime
        self.module = module
        self.options = options
        self.timings = timings
        self.last_fuel_used: int | None = None
        self._state = state
        self._raw: Any = None
        self._component, _ = runtime._compiled(module)

    _guarded = WasmtimeInstance._guarded

    @property
    def last_timings(self) -> dict[str, float]:
        return {"call": self._state.last_call * 1000.0}

    @property
    def stdout(self) -> bytes:
        return self._state.output("stdout")

    @property
    def stderr(self) -> bytes:
        return self._state.output("stderr")

    def export_names(self) -> list[str]:
        """World-level exports, then each exported interface's functions as `INTERFACE#FUNC`."""
        engine = self._runtime._require_engine()
        exports = self._component.type.exports(engine)
        nested = [
            f"{name}#{func}"
            for name, item in exports.items()
            if isinstance(item.ty, _wt_component.ComponentInstanceType)
            for func, member in item.ty.exports(engine).items()
            if isinstance(member.ty, _wt_component.FuncType)
        ]
        return list(exports) + nested

    def _interface(self, name: str) -> Any:
        """The export index of interface `name`: its full name, or the short one (`quota` for
        `wasmlab:edge/quota@0.1.0`)."""
        interfaces = sorted({n.split("#")[0] for n in self.export_names() if "#" in n})
        short = [n for n in interfaces if n.split("/")[-1].split("@")[0] == name]
        full = name if name in interfaces else short[0] if len(short) == 1 else None
        if full is None:
            ambiguous = f" ({name!r} could be {' or '.join(short)})" if short else ""
            raise UsageError(
                f"{self.module.name} exports no interface {name!r}{ambiguous}: it exports "
                f"{', '.join(interfaces) or 'none'}"
            )
        return self._raw.get_export_index(self._state.store, full)

    def _func(self, name: str, parent: Any = None) -> Any:
        if self._state.closed:
            raise UsageError(f"instance of {self.module.name} on {self.runtime} is closed")
        store = self._state.store
        if parent is None and "#" in name:
            interface, name = name.rsplit("#", 1)
            parent = self._interface(interface)
        for candidate in (name, name.replace("_", "-")):
            index = self._raw.get_export_index(store, candidate, parent)
            if index is not None:
                func = self._raw.get_func(store, index)
                if func is not None:
                    return func
        raise UsageError(
            f"{self.module.name} exports no function {name!r}: it exports {', '.join(self.export_names()) or 'none'}"
        )

    def call(self, name: str, *args: Any) -> Any:
        func = self._func(name)
        store = self._state.store

        def thunk() -> Any:
            value = func(store, *args)
            func.post_return(store)
            return value

        try:
            return self._guarded(name, thunk)
        except (TypeError, ValueError) as exc:  # arguments the canonical ABI cannot lower: nothing ran
            ftype = func.type(store)
            params = ", ".join(f"{param}: {type(ty).__name__.lower()}" for param, ty in ftype.params)
            result = f" -> {type(ftype.result).__name__.lower()}" if ftype.result is not None else ""
            raise UsageError(f"{name}({params}){result} cannot take {args!r}: {exc}") from None

    def run_command(self) -> int:
        """Run `wasi:cli/run`'s `run`: the exit status (0 for ok, 1 for err, or proc_exit's status)."""
        store = self._state.store
        run_name = next((n for n in self.export_names() if n.startswith("wasi:cli/run@")), None)
        if run_name is None:
            raise UsageError(f"{self.module.name} is not a wasi:cli/run command: pass invoke= an exported function")
        parent = self._raw.get_export_index(store, run_name)
        func = self._func("run", parent)

        def thunk() -> Any:
            value = func(store)
            func.post_return(store)
            return value

        try:
            outcome = self._guarded("wasi:cli/run", thunk)
        except ExitTrap as exc:
            return exc.status
        if outcome is None:
            return 0
        return 0 if getattr(outcome, "tag", "ok") == "ok" else 1

    def memory_size(self, memory: str | None = None) -> int:
        raise UsageError("a component's memories are internal: call its exports instead")

    def read_memory(self, address: int, length: int, memory: str | None = None) -> bytes:
        raise UsageError("a component's memories are internal: call its exports instead")

    def write_memory(self, address: int, data: bytes, memory: str | None = None) -> None:
        raise UsageError("a component's memories are internal: call its exports instead")

    def close(self) -> None:
        if self._state.closed:
            return
        self._state.release()
        self._raw = None


# At interpreter exit, drop live stores while Python still runs: WASI preview 2 output callbacks dropped later
# by wasmtime's worker threads would call into a finalised interpreter.
_RUNTIMES: weakref.WeakSet[WasmtimeRuntime] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for runtime in list(_RUNTIMES):
        with contextlib.suppress(Exception):
            runtime.close()
