"""The wasmer worker: wasmer-python 1.1 (Universal engine) behind `pyserve`'s JSON-lines protocol.

Runs on CPython 3.10 (wasmer-python has wheels for 3.10 only) in `.venv-py310`, without wasmlab. Usage:
`python wasmer_worker.py cranelift|singlepass|llvm`; `python wasmer_worker.py --probe llvm` compiles a tiny
module and exits (the parent runs it first for LLVM, whose import can abort the whole process).

wasmer's WASI writes to the real fds 1 and 2 and reads fd 0: `pyserve` points them at capture files and at a
file holding the run's stdin. Importing `wasmer_compiler_llvm` aborts the process (an ld.so assertion) unless
libtinfo.so.5 is loaded first, which this file does.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pyserve
from pyserve import GuestExit, GuestTrap, Problem

COMPILERS = {
    "cranelift": "wasmer_compiler_cranelift",
    "singlepass": "wasmer_compiler_singlepass",
    "llvm": "wasmer_compiler_llvm",
}
_FRAME = re.compile(r"^\s*at (.*?) \([^\[\]()]*\[(\d+)\]:0x([0-9a-fA-F]+)\)\s*$")  # at f (<module>[3]:0x4a)
_EXIT = re.compile(r"WASI exited with code: (-?\d+)")
# wasmer runs the guest on the worker's main-thread stack, so its depth is the stack rlimit: 2 MiB gives
# ~100k frames of a small function (wasmtime's default wasm stack is 512 KiB) and a stack overflow is reported
# in ~0.1 s instead of ~0.5 s with 8 MiB (the backtrace has a line per frame).
STACK_BYTES = int(os.environ.get("WASMLAB_WASMER_STACK", 2 << 20))
# Reads fd 0 until end of file: run with fd 0 on /dev/null, it empties Rust's buffered stdin (see stdin_done).
_DRAIN_WAT = """(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 16384))
    (loop $more
      (br_if 1 (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br_if $more (i32.load (i32.const 8))))))"""
_PROBE_WAT = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'


def load_compiler(variant):
    if variant == "llvm":
        ctypes.CDLL("libtinfo.so.5")  # without it the LLVM compiler's import aborts the process
    module = __import__(COMPILERS[variant])
    return module.Compiler


def parse_trap(message):
    """(first line, frames) of a wasmer RuntimeError message."""
    lines = message.split("\n", pyserve.MAX_FRAMES + 1)[: pyserve.MAX_FRAMES + 1]  # stack overflows: 100k lines
    frames = []
    for line in lines[1:]:
        m = _FRAME.match(line)
        if m:
            name = m.group(1)
            offset = int(m.group(3), 16)
            frames.append(
                {
                    "name": None if name == "<unnamed>" else name,
                    "index": int(m.group(2)),
                    "offset": None if offset == 0xFFFFFFFF else offset,  # LLVM keeps no offsets
                }
            )
    first = lines[0] if lines else message
    return first.removeprefix("RuntimeError: "), frames


class Instance:
    def __init__(self, engine, module, info, env):
        wasmer = engine.wasmer
        self.engine, self.info, self.env = engine, info, env
        self.functions = {}
        imports = self._wasi_imports(engine, module, env)
        if imports is None:
            imports = wasmer.ImportObject()
        builtins = {}
        for mod, name, kind, _ in info.imports:
            if mod == "wasmlab" and kind == "func":
                impl, (params, results) = env.builtin(name)
                signature = wasmer.FunctionType([engine.types[t] for t in params], [engine.types[t] for t in results])
                builtins[name] = wasmer.Function(engine.store, _guard(impl), signature)
        if builtins:
            imports.register("wasmlab", builtins)
        try:
            self.instance = wasmer.Instance(module, imports)
        except RuntimeError as exc:
            message, frames = parse_trap(str(exc))
            if frames or "unreachable" in message or "out of bounds" in message:  # the start function trapped
                raise GuestTrap(message, frames) from None
            raise Problem("link", f"wasmer could not instantiate the module: {message}") from None
        env.memory = self.memory_view

    @staticmethod
    def _wasi_imports(engine, module, env):
        wasi = engine.wasmer.wasi
        version = wasi.get_version(module, strict=False)
        if version is None:
            return None
        argv = env.argv or ["main"]
        builder = wasi.StateBuilder(argv[0]).arguments(argv[1:]).environments(env.env)
        for guest, host in env.dirs.items():
            builder = builder.map_directory(guest, host)
        return builder.finalize().generate_import_object(engine.store, version)

    def _memory(self, name=None):
        if name in (None, "0"):
            memories = [n for n, (kind, _) in self.info.exports.items() if kind == "memory"]
            name = "memory" if "memory" in memories else (memories[0] if memories else None)
        if self.info.exports.get(name, ("",))[0] != "memory":
            return None
        return getattr(self.instance.exports, name)

    def memory_view(self, name=None):
        memory = self._memory(name)
        return None if memory is None else memoryview(memory.buffer)

    def memory_pages(self):
        memory = self._memory()
        return None if memory is None else memory.size

    def call(self, name, args):
        function = self.functions.get(name)
        if function is None:
            function = self.functions[name] = getattr(self.instance.exports, name)
        try:
            return function(*args)
        except RuntimeError as exc:
            text = str(exc)
            m = _EXIT.search(text)
            if m:
                raise GuestExit(int(m.group(1))) from None
            message, frames = parse_trap(text)
            raise GuestTrap(message, frames) from None

    def close(self):
        self.functions.clear()
        self.instance = None
        self.env.memory = None


def _guard(impl):
    def host(*args):
        try:
            return impl(*args)
        except (GuestExit, GuestTrap):
            raise
        except Exception as exc:
            raise GuestTrap(f"host function failed: {type(exc).__name__}: {exc}") from None

    return host


class WasmerEngine(pyserve.Engine):
    name = "wasmer"
    fd_output = True  # wasmer's WASI writes to the real fds 1 and 2

    def __init__(self, variant):
        import wasmer

        self.wasmer, self.variant = wasmer, variant
        compiler = load_compiler(variant)
        self.store = wasmer.Store(wasmer.engine.Universal(compiler))
        self.types = {"i32": wasmer.Type.I32, "i64": wasmer.Type.I64, "f32": wasmer.Type.F32, "f64": wasmer.Type.F64}

    def version(self):
        try:
            from importlib.metadata import version

            number = version("wasmer")
        except Exception:
            number = getattr(self.wasmer, "__version__", "?")
        return f"wasmer-python {number} ({self.variant})"

    def stdin_done(self):
        wasmer = self.wasmer
        try:
            if getattr(self, "_drain", None) is None:
                self._drain = wasmer.Module(self.store, _DRAIN_WAT)
            module = self._drain
            version = wasmer.wasi.get_version(module, strict=False)
            imports = wasmer.wasi.StateBuilder("drain").finalize().generate_import_object(self.store, version)
            wasmer.Instance(module, imports).exports._start()
        except Exception:  # never fail the request for it; the next run may then see stale stdin
            traceback.print_exc()

    def compile(self, wasm, info):
        try:
            return self.wasmer.Module(self.store, wasm)
        except RuntimeError as exc:
            message = str(exc)
            if self.variant == "singlepass" and ("multiple values" in message or "result arity" in message):
                raise Problem(
                    "unavailable",
                    "wasmer's singlepass compiler cannot compile multi-value functions; use wasmer (cranelift)",
                ) from None
            raise Problem("invalid", f"wasmer ({self.variant}) rejected the module: {message}") from None

    def instantiate(self, compiled, info, env):
        return Instance(self, compiled, info, env)


def probe(variant):
    """Compile and call a tiny module; exit 0 when the compiler works (a crash here spares the parent)."""
    engine = WasmerEngine(variant)
    module = engine.wasmer.Module(engine.store, _PROBE_WAT)
    instance = engine.wasmer.Instance(module)
    assert instance.exports.add(2, 3) == 5
    print(engine.version())


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--probe":
        probe(sys.argv[2])
        sys.exit(0)
    chosen = sys.argv[1] if len(sys.argv) > 1 else "cranelift"
    if chosen not in COMPILERS:
        sys.exit(f"unknown wasmer compiler {chosen!r}: use one of {', '.join(COMPILERS)}")
    pyserve.set_stack_limit(STACK_BYTES)
    pyserve.serve(lambda: WasmerEngine(chosen))
