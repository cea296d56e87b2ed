"""wasmtime-py, imported once (an engine that is not installed is reported by `unavailable_reason()`, never at
import), and the raw C entry points wasmlab calls directly: private ctypes function pointers with no argtypes,
so prebuilt c_void_p arguments pass without conversion (ctypes releases the GIL around each call)."""

from __future__ import annotations

import ctypes
from typing import Any

__all__ = [
    "_CALL_UNCHECKED",
    "_EPOCH_PROTO",
    "_FINALIZER_PROTO",
    "_GET_FUEL",
    "_IMPORT_ERROR",
    "_RAW_SIZE",
    "_SET_FUEL",
    "_SLOT_CODES",
    "_WtFrame",
    "_WtFrameList",
    "_addr",
    "_error_ptr",
    "_wt_component",
    "_wt_component_enter",
    "_wt_func",
    "ffi",
    "wasmtime",
]

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

# ------------------------------------------------------------------------------------------ raw FFI
if wasmtime is not None:
    _VP = ctypes.c_void_p
    # Private function pointers (not the ones wasmtime._bindings configured): no argtypes, so prebuilt
    # c_void_p arguments pass without conversion; ctypes releases the GIL around each call.
    _CALL_UNCHECKED = ffi.dll["wasmtime_func_call_unchecked"]
    _CALL_UNCHECKED.restype = _VP
    _CALL_UNCHECKED.argtypes = None  # type: ignore[assignment]  # no checking (typeshed allows only a sequence)
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
