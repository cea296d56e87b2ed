"""Components (`module.is_component`) through `wasmtime.component` with WASI preview 2: `invoke` calls an
exported function (snake_case names also find kebab-case exports), or one inside an exported interface as
`INTERFACE#FUNC`; without `invoke` a `wasi:cli/run` command runs, with argv, env, stdin, preopened dirs and
captured output as for modules."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ...errors import ExitTrap, RuntimeUnavailable, UsageError
from ..base import RunOptions, RunResult
from .ffi import _wt_component
from .instance import StoreInstance
from .store import _keep_output, _StoreState

if TYPE_CHECKING:
    from ...module import Module
    from .runtime import WasmtimeRuntime


class WasmtimeComponentInstance(StoreInstance):
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
        super().__init__(runtime, module, options, state, timings)
        self._raw: Any = None
        self._component, _ = runtime._compiled(module)

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
        self._check_open()
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
        floats = (_wt_component.F32, _wt_component.F64)
        params = [ty for _, ty in func.type(store).params]
        # an int for a float parameter (fib(20) of a JavaScript export) is the number it says, as for core modules
        args = tuple(
            float(a) if i < len(params) and isinstance(params[i], floats) and type(a) is int else a
            for i, a in enumerate(args)
        )

        def thunk() -> Any:
            value = func(store, *args)
            func.post_return(store)
            return value

        try:
            return self._guarded(name, thunk)
        except (TypeError, ValueError) as exc:  # arguments the canonical ABI cannot lower: nothing ran
            ftype = func.type(store)
            signature = ", ".join(f"{param}: {type(ty).__name__.lower()}" for param, ty in ftype.params)
            result = f" -> {type(ftype.result).__name__.lower()}" if ftype.result is not None else ""
            raise UsageError(f"{name}({signature}){result} cannot take {args!r}: {exc}") from None

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


def instantiate_component(runtime: WasmtimeRuntime, module: Module, options: RunOptions) -> WasmtimeComponentInstance:
    """A component instance in its own store, with WASI preview 2 linked."""
    if options.imports:
        raise RuntimeUnavailable(
            runtime.label, "Python host functions for components are not supported: use core modules"
        )
    compiled, compile_ms = runtime._compiled(module)
    timings = {"compile": compile_ms}
    linker = runtime._components_linker()
    state = runtime._new_store(module, options, True)
    t0 = time.perf_counter()
    inst = WasmtimeComponentInstance(runtime, module, options, state, timings)
    try:
        inst._raw = inst._guarded("instantiating " + module.name, lambda: linker.instantiate(state.store, compiled))
    except BaseException as exc:
        _keep_output(exc, state)
        state.release()
        raise
    timings["instantiate"] = (time.perf_counter() - t0) * 1000.0
    runtime._live.add(inst)
    return inst


def run_component(runtime: WasmtimeRuntime, module: Module, options: RunOptions) -> RunResult:
    """One run of a component: `invoke` one of its functions, or run its `wasi:cli/run` command."""
    result = RunResult(runtime.label, options.invoke)
    try:
        inst = instantiate_component(runtime, module, options)
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
