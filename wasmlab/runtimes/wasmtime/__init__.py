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
heuristic). Time uses epoch interruption (`interrupt`): a watchdog thread per engine bumps the epoch while a
call is in flight, and the store's deadline callback traps the guest once its call ran past `timeout`. Other
stores of the engine (other threads) just continue.

Output. WASI stdout/stderr go to unlinked temporary files (wasmtime writes them from its own threads, where a
Python callback must not run at interpreter exit); `max_output` bytes of each are kept, and a guest that
writes more than `OUTPUT_DISK_LIMIT` is stopped with `LimitExceeded("output")`.

Ctrl-C stops the guest too (`interrupt`), and the call raises `KeyboardInterrupt` once wasmtime returned.
`WasmtimeInstance.call` takes a raw-FFI fast path for numeric signatures, ~1-2 us a call (`instance`).

Run results. `run()` records traps and exceeded limits in the returned `RunResult` (with the output printed
so far, the timings and `fuel_used`); `WasmtimeInstance.call` raises them (`Trap`, `LimitExceeded`,
`ExitTrap`). A WASI `proc_exit(n)` gives `exit_code` n. Trap frames are `"name (0xOFFSET)"`, innermost first
(names from the name section, else the export name, else `func[N]`), plus `" at file:line"` for modules with
DWARF (wasmtime's `WASMTIME_BACKTRACE_DETAILS`, on by default here).

Host functions (`host`): `options.imports` `{module: {name: callable}}`, linked with the types the module
declares, and the built-in `wasmlab` host module (`guest.BUILTIN_HOST_FUNCTIONS`); its key-value store is
`runtime.kv`. A host function that raises traps the guest (`Trap` code "host function error").

Components (`component`, `module.is_component`) run through `wasmtime.component` with WASI preview 2.

One module per concept:

    ffi.py        wasmtime-py, and the raw C entry points called directly
    store.py      the state kept next to each Store: limits, the call in flight, captured output
    interrupt.py  the epoch callback, the watchdog thread, Ctrl-C
    traps.py      what a failed call means: Trap, ExitTrap, LimitExceeded..., with the backtrace
    host.py       host functions, the built-in host module, linking
    instance.py   `WasmtimeInstance` and its fast call path
    component.py  `WasmtimeComponentInstance`, running components
    runtime.py    `WasmtimeRuntime`: engines per variant, the compiled-module cache, runs and instances
"""

from __future__ import annotations

from .component import WasmtimeComponentInstance
from .instance import WasmtimeInstance
from .runtime import MAX_COMPILED, WasmtimeRuntime

__all__ = ["MAX_COMPILED", "WasmtimeComponentInstance", "WasmtimeInstance", "WasmtimeRuntime"]
