"""Interrupting a guest: the epoch-deadline callback (time limit, output limit, Ctrl-C), the SIGINT handler
that defers to it while the guest runs, and the watchdog thread that bumps the engine's epoch.

Time uses epoch interruption: each store gets an epoch deadline one tick ahead and a deadline callback; one
watchdog thread per engine bumps the epoch every `TICK` seconds while a guest call is in flight (and sleeps when
none has started for `LINGER` seconds), and the callback traps the guest once its call has run past `timeout`.

Ctrl-C. The guest runs in the calling thread; ctypes releases the GIL, so Python's SIGINT handler cannot run
until wasmtime returns. The epoch callback is Python code run by the guest's thread at every tick, and that is
where the main thread handles signals. Calling into wasm installs (once, and again whenever someone, e.g.
ipykernel, swaps it) a SIGINT handler that delegates to the previous handler, except when the signal lands in a
callback frame entered from wasm: there it only records the interrupt (an exception raised there would be lost
by ctypes). The callback then traps the guest and the call raises `KeyboardInterrupt` once wasmtime returned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from .ffi import _EPOCH_PROTO, _FINALIZER_PROTO, _error_ptr, wasmtime
from .store import _STATES, OUTPUT_DISK_LIMIT, _lookup, _StoreState

if TYPE_CHECKING:
    pass

TICK = 0.01  # seconds between epoch bumps while a guest call is in flight
LINGER = 1.0  # seconds the watchdog keeps ticking after the last call started, before it sleeps

_MAIN_THREAD = threading.main_thread().ident
_sigint_pending = False  # a SIGINT that arrived while the main thread was inside a callback from wasm


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
_getsignal = signal._signal.getsignal if hasattr(signal, "_signal") else signal.getsignal
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
