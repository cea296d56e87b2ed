"""What a failed call into wasmtime means: the exception for a trap, an exit, an exceeded limit, a host function
that raised, or an error (`failure`), with the Wasm backtrace as "name (0xOFFSET)" frames plus " at file:line"
for modules with DWARF."""

from __future__ import annotations

import ctypes
import re
from typing import TYPE_CHECKING, Any

from ...errors import LimitExceeded, RuntimeUnavailable, Trap, UsageError, WasmlabError
from ..traps import normalize_trap
from .ffi import _wt_component_enter, _wt_func, _WtFrame, _WtFrameList, ffi, wasmtime
from .interrupt import _take_interrupt
from .store import OUTPUT_DISK_LIMIT, PAGE, _fmt_bytes, _StoreState

if TYPE_CHECKING:
    from ...module import Module

HOST_ERROR = "host function error"  # the Trap code of a host function that raised

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


def failure(
    label: str, state: _StoreState, error: Any, module: Module, what: str, names: dict[int, str]
) -> BaseException:
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
    frames = _format_frames(raw, message, names)
    where = f" in {frames[0]}" if frames else ""
    if reason == "output":
        return LimitExceeded(
            "output",
            f"{label}: {what} wrote more than {_fmt_bytes(OUTPUT_DISK_LIMIT)} of output and was stopped "
            f"(only the first max_output={_fmt_bytes(state.max_output)} are kept); print less",
        )
    if reason == "time":
        return LimitExceeded(
            "time",
            f"{label}: {what} ran past the {state.timeout:g} s time limit (stopped{where}); "
            "raise timeout= (seconds) or make the guest finish sooner",
        )
    if host_exc is not None:
        detail = str(host_exc) if isinstance(host_exc, _HostError) else f"host function raised {host_exc!r}"
        exc: WasmlabError = Trap(HOST_ERROR, frames, f"wasm trap on {label}: {detail}")
        exc.__cause__ = host_exc.error if isinstance(host_exc, _HostError) else host_exc
        return exc
    cause = _caused_by(message)
    code = normalize_trap(message)
    trap_code = error.trap_code if isinstance(error, wasmtime.Trap) else None
    if trap_code == wasmtime.TrapCode.OUT_OF_FUEL or "all fuel consumed" in message:
        exc = LimitExceeded(
            "fuel",
            f"{label}: {what} used all {state.fuel:,} units of fuel (stopped{where}); raise fuel= or leave it unset",
        )
        exc.fuel_used = state.fuel  # type: ignore[attr-defined]
        return exc
    if "exceeds memory limits" in message or "memory limit" in message.lower():
        limit = _fmt_bytes(state.max_memory or 0)
        return LimitExceeded(
            "memory",
            f"{label}: {module.name} needs more linear memory than max_memory={limit} ({cause}); "
            "raise max_memory= (bytes)",
        )
    if "exceeds table limits" in message:  # tables get max_memory too (see _store_limits)
        limit = _fmt_bytes(state.max_memory or 0)
        return LimitExceeded(
            "memory",
            f"{label}: {module.name} needs a bigger table than max_memory={limit} allows ({cause}); "
            "raise max_memory= (bytes)",
        )
    is_trap = isinstance(error, wasmtime.Trap) or "wasm trap" in message or code != "trap"
    if not is_trap and "missing required memory export" in message:  # WASI reads the guest's "memory"
        return UsageError(f"{label}: {module.name} calls WASI but exports no memory named 'memory'")
    if not is_trap and _WASI_ARGUMENT_ERROR.search(message):  # a WASI call given a bad pointer, flag, string
        outside = re.search(r"pointer (out of bounds|overflow)", message, re.IGNORECASE)
        code = "out of bounds memory access" if outside else "trap"
        return Trap(code, frames, f"wasm trap on {label}: {code}{where} (WASI refused an argument: {cause})")
    if not is_trap and "shared memory support is disabled" in message:
        return RuntimeUnavailable(
            label,
            f"{module.name} declares a shared memory (the threads proposal), which wasmlab does not enable here",
            "drop `shared` from the memory, or run it on node",
        )
    if not is_trap:
        return WasmlabError(f"{label}: {what} failed: {cause}")
    if state.max_memory and code != "stack overflow":
        size = state.memory_bytes()
        if size and size + PAGE > state.max_memory // 2:  # growth probably failed: see the docstring
            exc = LimitExceeded(
                "memory",
                f"{label}: {what} trapped ({code}{where}) after its linear memory reached "
                f"{_fmt_bytes(size)} of the max_memory={_fmt_bytes(state.max_memory)} limit (memory.grow "
                "failed); raise max_memory= (bytes)",
            )
            exc.trap_code = code  # type: ignore[attr-defined]
            exc.trap_frames = frames  # type: ignore[attr-defined]
            return exc
    return Trap(code, frames, f"wasm trap on {label}: {code}{where}")
