"""`WasmtimeRuntime`: the engine per variant, compiled modules cached by sha256, runs and instances."""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from ...errors import ExitTrap, InvalidModule, RuntimeUnavailable, UsageError
from ...tools import wasm_tools
from ..base import RunOptions, RunResult, Runtime
from .component import WasmtimeComponentInstance, instantiate_component, run_component
from .ffi import _IMPORT_ERROR, _addr, _wt_component, ffi, wasmtime
from .host import _builtin_functions, link
from .instance import WasmtimeInstance, _ModuleInfo
from .interrupt import _EPOCH_CALLBACK, _STORE_FINALIZER, _arm_sigint, _Watchdog
from .store import _BY_CONTEXT, _STATES, FUEL_UNLIMITED, _keep_output, _register, _store_limits, _StoreState
from .traps import _caused_by, _Exit, failure

if TYPE_CHECKING:
    from ...module import Module

STRATEGY_WINCH = 2  # wasmtime_strategy_t: 0 auto, 1 cranelift, 2 winch
# Compiled modules kept per engine. Each holds its machine code and, with data segments, a memfd (a file
# descriptor): unbounded, 20,000 fuzzed modules held 1,000+ descriptors, and a long session runs out of them.
MAX_COMPILED = 128


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
        self._engine_options: dict[str, Any] = {"cache": cache, "backtrace_details": backtrace_details}
        self.kv: dict[bytes, bytes] = {}
        self.compiled_ms: dict[str, float] = {}  # sha256 -> ms of the compile that filled the cache
        self._modules: dict[str, Any] = {}  # sha256 -> wasmtime.Module / component.Component
        self._pres: dict[str, Any] = {}  # sha256 -> InstancePre (modules without Python imports)
        self._user_pres: dict[str, tuple[Any, Any]] = {}  # sha256 -> (the imports dict, InstancePre)
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
        self._builtins = _builtin_functions(self.kv) if wasmtime is not None else {}
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
        f = wasmtime.Instance(store, probe, []).exports(store)["f"]
        if not isinstance(f, wasmtime.Func) or f(store) != 7:
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
            self._user_pres.clear()
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
                self._user_pres.pop(oldest, None)
                self._infos.pop(oldest, None)
            return compiled, ms

    def validate(self, module: Module) -> None:
        """wasmtime's validator on this engine's configuration (components: `wasm-tools validate`)."""
        if module.is_component:
            wasm_tools("validate", "-", data=module.bytes)
            return
        try:
            wasmtime.Module.validate(self._require_engine(), module.bytes)
        except wasmtime.WasmtimeError as exc:
            raise InvalidModule(f"validation failed: {str(exc).splitlines()[0]}") from None

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
            compiled: wasmtime.Module | _wt_component.Component
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
            self._user_pres.pop(module.sha256, None)
        return {"deserialize": ms}

    # linking --------------------------------------------------------------------------------------------
    def _instance_pre(self, module: Module, compiled: Any, options: RunOptions) -> Any:
        user = {m: dict(funcs) for m, funcs in options.imports.items() if funcs}
        if user:  # the same imports dict again (e.g. every instance of an edge deployment): link once
            kept = self._user_pres.get(module.sha256)
            if kept is not None and kept[0] is options.imports:
                return kept[1]
        else:
            pre = self._pres.get(module.sha256)
            if pre is not None:
                return pre
        pre = link(self._require_engine(), module, compiled, user, self._builtins)
        if user:
            if len(self._user_pres) >= 64:
                self._user_pres.pop(next(iter(self._user_pres)))
            self._user_pres[module.sha256] = (options.imports, pre)
        else:
            self._pres[module.sha256] = pre
        return pre

    # stores ---------------------------------------------------------------------------------------------
    def _new_store(self, module: Module, options: RunOptions, wasi: bool) -> _StoreState:
        engine = self._require_engine()
        state = _StoreState(self._watchdog.states, options)
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
        """The exception for a failed guest call (see `traps.failure`)."""
        names = {} if module.is_component else self._info(module).names(module)
        return failure(self.label, state, error, module, what, names)

    # running --------------------------------------------------------------------------------------------
    def metered_twin(self) -> WasmtimeRuntime:
        """The same runtime on an engine with fuel metering, which runs every request that sets `fuel`."""
        if self.metered:
            return self
        if self._twin is None:
            self._twin = WasmtimeRuntime(self.variant, metered=True, **self._engine_options)
            self._twin.kv = self.kv  # one key-value store for the runtime, whichever engine runs the guest
            self._twin._builtins = _builtin_functions(self.kv)
        return self._twin

    def run(self, module: Module, options: RunOptions) -> RunResult:
        """One run in a fresh store. Traps, limits and exit codes are recorded in the result (with the output
        so far); KeyboardInterrupt propagates after the guest has stopped."""
        if options.fuel is not None and not self.metered:
            return self.metered_twin().run(module, options)
        if module.is_component:
            return run_component(self, module, options)
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
            return instantiate_component(self, module, options)
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
            error = self._failure(state, exc, module, f"instantiating {module.name}")
            if isinstance(error, _Exit):
                error = ExitTrap(error.status)
            _keep_output(error, state)
            state.release()
            raise error from None
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


# At interpreter exit, drop live stores while Python still runs: WASI preview 2 output callbacks dropped later
# by wasmtime's worker threads would call into a finalised interpreter.
_RUNTIMES: weakref.WeakSet[WasmtimeRuntime] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for runtime in list(_RUNTIMES):
        with contextlib.suppress(Exception):
            runtime.close()
