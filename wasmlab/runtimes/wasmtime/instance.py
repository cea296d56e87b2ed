"""`WasmtimeInstance`: a core-module instance in its own store, and its fast call path.

Fast calls. `WasmtimeInstance.call` (and `instance.exports.NAME`) use a per-export closure that packs the
arguments with one `struct.pack_into` into a preallocated `wasmtime_val_raw_t` array and calls
`wasmtime_func_call_unchecked` through a private ctypes function pointer with prebuilt pointer arguments:
about 1-2 us per call, against ~40 us for `wasmtime.Func.__call__`. Only i32/i64/f32/f64 signatures take this
path; others fall back to `Func.__call__`. Fuel (per call when `fuel` is set), the timeout and Ctrl-C apply to
both paths.
"""

from __future__ import annotations

import ctypes
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...errors import ExitTrap, UsageError
from ..base import Instance, RunOptions
from ..guest import WASI_MODULES
from ..traps import function_names
from ..values import coerce_args
from . import interrupt
from .ffi import _CALL_UNCHECKED, _GET_FUEL, _RAW_SIZE, _SET_FUEL, _SLOT_CODES, _addr, _wt_func, ffi, wasmtime
from .host import _func_types
from .interrupt import _SIGINT, _arm_sigint, _getsignal, _on_sigint, _take_interrupt
from .store import _StoreState
from .traps import _Exit, _HostError

if TYPE_CHECKING:
    from ...module import Module
    from .runtime import WasmtimeRuntime

NUMBER_TYPES = ("i32", "i64", "f32", "f64")


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


# ------------------------------------------------------------------------------------------ instances
class StoreInstance(Instance):
    """What module and component instances share: their own store (`_StoreState`), output read from its capture
    files, the last call's time and fuel, and calls into wasm under fuel, the timeout and Ctrl-C (`_guarded`)."""

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

    @property
    def stdout(self) -> bytes:  # type: ignore[override]  # read from the store: read-only here
        return self._state.output("stdout")

    @property
    def stderr(self) -> bytes:  # type: ignore[override]  # read from the store: read-only here
        return self._state.output("stderr")

    @property
    def last_call(self) -> float:
        return self._state.last_call

    @property
    def last_call_ms(self) -> float:
        return self._state.last_call * 1000.0

    @property
    def last_timings(self) -> dict[str, float]:  # type: ignore[override]  # read from the store: read-only here
        return {"call": self._state.last_call * 1000.0}

    def _check_open(self) -> None:
        if self._state.closed:
            raise UsageError(f"instance of {self.module.name} on {self.runtime} is closed")

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
            if interrupt._sigint_pending and _take_interrupt():  # Ctrl-C recorded during a host callback
                raise KeyboardInterrupt
            return value
        failure = self._runtime._failure(state, error, self.module, what)
        if isinstance(failure, _Exit):
            if failure.status:
                raise ExitTrap(failure.status)
            return None
        raise failure


class WasmtimeInstance(StoreInstance):
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
        super().__init__(runtime, module, options, state, timings)
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

    # exports --------------------------------------------------------------------------------------------
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
        view = memoryview(raw).cast("B")
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
                    instance.last_fuel_used = fuel_args[1].value - fuel_box.value
            if err or trap_slot.value:
                fail(err)
                return None  # proc_exit(0)
            if interrupt._sigint_pending and _take_interrupt():  # Ctrl-C recorded during a host callback
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
