"""What a guest may import on any engine: WASI preview 1, and the built-in `wasmlab` host module (log, clock,
random, a key-value store) that tutorials use so their guests run everywhere."""

from __future__ import annotations

__all__ = ["BUILTIN_HOST_FUNCTIONS", "BUILTIN_HOST_MODULE", "WASI_MODULES"]

# The built-in host module every backend with "builtin_host" offers, so tutorials can use imports everywhere.
# A guest imports what it needs from module "wasmlab"; strings are (pointer, length) in its exported "memory".
WASI_MODULES = ("wasi_snapshot_preview1", "wasi_unstable")  # the import modules of WASI preview 1
BUILTIN_HOST_MODULE = "wasmlab"
BUILTIN_HOST_FUNCTIONS = {
    "log": ("(i32, i32) -> ()", "append the UTF-8 text at (ptr, len) and a newline to the run's stderr"),
    "now_ms": ("() -> f64", "monotonic clock in milliseconds"),
    "random": ("() -> f64", "a uniform random number in [0, 1)"),
    "kv_get": (
        "(i32, i32, i32, i32) -> i32",
        "kv_get(key_ptr, key_len, out_ptr, out_cap): copy the value of key "
        "(at most out_cap bytes) to out_ptr; returns the value's full length, or -1 when the key is absent",
    ),
    "kv_set": ("(i32, i32, i32, i32) -> ()", "kv_set(key_ptr, key_len, val_ptr, val_len): store a value"),
}
# The key-value store lives in the Runtime object (in the worker process for worker backends): it outlives
# instances, so a notebook can show what state survives instance reuse. `Runtime.kv_clear()` empties it.
