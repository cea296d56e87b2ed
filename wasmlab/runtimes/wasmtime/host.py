"""Host functions: Python callables as a guest's imports (`options.imports`, linked with the types the module
declares), the built-in `wasmlab` host module, and linking them with WASI into an `InstancePre` (`link`). A host
function that raises traps the guest (`Trap` code "host function error", the Python error in the message)."""

from __future__ import annotations

import ctypes
import operator
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...errors import UsageError
from ..guest import BUILTIN_HOST_FUNCTIONS, BUILTIN_HOST_MODULE, WASI_MODULES
from .ffi import _addr, _wt_func, wasmtime
from .store import _BY_CONTEXT, _lookup, _StoreState
from .traps import _caused_by, _HostError

if TYPE_CHECKING:
    from ...module import Module


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


def _builtin_functions(kv: dict[bytes, bytes]) -> dict[str, Callable[..., Any]]:
    """The built-in host module's functions; `kv` is the runtime's key-value store (it outlives instances)."""

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


# Python functions whose parameters and results are all numbers are linked through wasmtime's *unchecked*
# callback: arguments are read straight from the raw value array, with none of the Val/FuncType objects
# wasmtime-py's own trampoline makes on every call (about 10x less overhead per host call; a wasi:http
# handler makes ~20 host calls per request).
_NUMERIC = {"i32": "i32", "i64": "i64", "f32": "f32", "f64": "f64"}
_UNCHECKED: dict[int, tuple[Callable[..., Any], tuple[str, ...], str | None]] = {}
_unchecked_ids = iter(range(1, 1 << 62))


@wasmtime._bindings.wasmtime_func_unchecked_callback_t
def _unchecked_trampoline(idx: Any, caller: Any, raw: Any, nraw: int) -> int:
    try:
        fn, fields, result = _UNCHECKED[idx or 0]
        value = fn(*[getattr(raw[i], f) for i, f in enumerate(fields)])
        if result is not None:
            setattr(raw[0], result, value)
        return 0
    except BaseException as exc:  # carried to the caller as wasmtime-py's own trampoline does
        _wt_func.LAST_EXCEPTION = exc  # type: ignore[assignment]  # wasmtime-py types its slot Exception | None
        trap = wasmtime.Trap("python exception")._consume()
        return ctypes.cast(trap, ctypes.c_void_p).value or 0


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _unchecked_finalize(idx: Any) -> None:
    _UNCHECKED.pop(idx or 0, None)


def _define(linker: Any, module: str, name: str, ftype: Any, fn: Callable[..., Any]) -> None:
    """Define a Python host function, through the unchecked callback when its signature is all numbers."""
    params, results = _func_types(ftype)
    if len(results) > 1 or not all(t in _NUMERIC for t in (*params, *results)):
        linker.define_func(module, name, ftype, fn)
        return
    idx = next(_unchecked_ids)
    _UNCHECKED[idx] = (fn, tuple(_NUMERIC[t] for t in params), _NUMERIC[results[0]] if results else None)
    m, n = module.encode(), name.encode()
    error = wasmtime._bindings.wasmtime_linker_define_func_unchecked(
        linker.ptr(),
        ctypes.create_string_buffer(m),
        len(m),
        ctypes.create_string_buffer(n),
        len(n),
        ftype.ptr(),
        _unchecked_trampoline,
        idx,
        _unchecked_finalize,
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def link(
    engine: Any, module: Module, compiled: Any, user: dict[str, dict[str, Any]], builtins: dict[str, Callable[..., Any]]
) -> Any:
    """An `InstancePre` of `compiled` with its imports resolved: WASI, the Python callables of `user`
    ({module: {name: callable}}), the built-in host module (`builtins`); UsageError naming what is missing."""
    linker = wasmtime.Linker(engine)
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
            _define(linker, imp.module, imp.name, imp.type, _host_wrapper(where, fn, results))
        elif imp.module == BUILTIN_HOST_MODULE and imp.name in builtins:
            params, results = _func_types(imp.type)
            want = _parse_signature(BUILTIN_HOST_FUNCTIONS[imp.name][0])
            if (params, results) != want:
                raise UsageError(
                    f"{module.name} imports {where} as ({', '.join(params)}) -> ({', '.join(results)}); "
                    f"the built-in is {BUILTIN_HOST_FUNCTIONS[imp.name][0]}"
                )
            linker.define_func(imp.module, imp.name, imp.type, _host_wrapper(where, builtins[imp.name], results), True)
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
    return pre
