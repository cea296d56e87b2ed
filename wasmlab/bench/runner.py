"""A minimal, independent runner for the cross-check: run a WASI command under wasmtime-py in a fresh process
and let the guest print its own loop time. Nothing from wasmlab is imported: only wasmtime.

    python runner.py MODULE.wasm CONFIG ARGV...      CONFIG: "lab" (consume_fuel + epoch_interruption, like
                                                     wasmlab's engine) or "plain" (wasmtime's defaults)

The guest's stdout goes straight to this process's stdout; the process exits with the guest's status.
"""

from __future__ import annotations

import sys

import wasmtime


def main(argv: list[str]) -> int:
    path, config_name, guest_argv = argv[0], argv[1], argv[2:]
    config = wasmtime.Config()
    if config_name == "lab":
        config.consume_fuel = True
        config.epoch_interruption = True
    engine = wasmtime.Engine(config)
    module = wasmtime.Module.from_file(engine, path)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    if config_name == "lab":
        store.set_fuel((1 << 64) - 1)
        store.set_epoch_deadline(1 << 40)
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["suite", *guest_argv]
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    store.set_wasi(wasi)
    instance = linker.instantiate(store, module)
    try:
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        start(store)
    except wasmtime.ExitTrap as exc:
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
