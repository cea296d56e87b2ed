"""The server half of wasmlab's Python engine workers: JSON lines in, JSON lines out, one engine per process.

Standalone on purpose: it runs on another Python (wasmer-python needs 3.10) in a venv without wasmlab, so it
imports nothing but the standard library. An engine script (`wasm3_worker.py`, `wasmer_worker.py`) defines an
`Engine` subclass and calls `serve(engine)`; the client half is `wasmlab.runtimes.worker.process.Worker` and
`wasmlab.runtimes.worker.python.PyWorkerRuntime`.

The protocol channel is protected from the guest and the engine: the real stdout pipe is duplicated for
protocol messages, then fd 1 and fd 2 point at capture files (WASI writes from wasmer, wasm3's trap
backtraces) and fd 0 at /dev/null or a run's stdin, so nothing an engine writes can corrupt a message.
Python's own diagnostics go to the worker's real stderr (the parent keeps its tail for crash reports).

Requests: {"op": ..., ...}; answers: {"ok": true, ...} or {"ok": false, "kind": ..., "error": ...}. Error kinds:
"trap" (with "trap_message", "frames"), "limit:memory", "usage", "link", "invalid", "unavailable", "error".
Values: JSON numbers (i64 exact), non-finite floats as {"float": "nan" | "inf" | "-inf"}.
Ops: load, prepare, run, instantiate, call, read, write, memory_size, exports, close, kv_clear, kv_items, version,
ping.
"""

from __future__ import annotations

import base64
import bisect
import ctypes
import json
import math
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
import uuid

PROTOCOL = 1
PAGE = 65536
MAX_FRAMES = 64
CAPTURE_FILE_LIMIT = int(os.environ.get("WASMLAB_WORKER_FSIZE", 256 << 20))  # bytes any file may reach
COMPILED_CACHE = 16  # compiled (module, memory cap) pairs kept per worker


# values ---------------------------------------------------------------------------------------------------
def encode_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, (list, tuple)):
        return [encode_value(v) for v in value]
    return value


def decode_value(value):
    if isinstance(value, dict) and "float" in value:
        return float(value["float"])
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def convert_arg(value, valtype):
    """A Python value for a parameter of Wasm type `valtype` ("i32", "i64", "f32", "f64")."""
    if valtype in ("i32", "i64"):
        if isinstance(value, float):
            if not value.is_integer():
                raise Problem("usage", f"{value!r} is not an integer, the parameter is {valtype}")
            value = int(value)
        if not isinstance(value, int):
            raise Problem("usage", f"{value!r} is not an integer, the parameter is {valtype}")
        bits = 32 if valtype == "i32" else 64
        if not -(1 << (bits - 1)) <= value < (1 << bits):
            raise Problem("usage", f"{value} does not fit in {valtype}")
        value &= (1 << bits) - 1  # two's complement: 0xFFFFFFFF means -1
        return value - (1 << bits) if value >> (bits - 1) else value
    if isinstance(value, (int, float)):
        return float(value)
    raise Problem("usage", f"{value!r} is not a number, the parameter is {valtype}")


def b64(data):
    return base64.b64encode(bytes(data)).decode()


def unb64(text):
    return base64.b64decode(text) if text else b""


class Problem(Exception):
    """A failure reported to the parent as {"ok": false, "kind": kind, "error": message, ...}."""

    def __init__(self, kind, message, **extra):
        super().__init__(message)
        self.kind, self.message, self.extra = kind, message, extra

    def answer(self):
        return {"ok": False, "kind": self.kind, "error": self.message, **self.extra}


class GuestTrap(Exception):
    """The guest trapped: `message` is the engine's text, `frames` innermost first, each a dict with any of
    "name", "index" (function index) and "offset" (code offset in the module)."""

    def __init__(self, message, frames=()):
        super().__init__(message)
        self.message, self.frames = message, list(frames)[:MAX_FRAMES]


class GuestExit(Exception):
    """The guest called WASI proc_exit."""

    def __init__(self, code):
        super().__init__(f"exit {code}")
        self.code = code


# a minimal Wasm binary reader -----------------------------------------------------------------------------
VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128", 0x70: "funcref", 0x6F: "externref"}
KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}


def read_uleb(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def write_uleb(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_name(data, pos):
    n, pos = read_uleb(data, pos)
    return data[pos : pos + n].decode("utf-8", "replace"), pos + n


def _read_limits(data, pos):
    flags = data[pos]
    pos += 1
    minimum, pos = read_uleb(data, pos)
    maximum = None
    if flags & 1:
        maximum, pos = read_uleb(data, pos)
    if flags & 0x08:  # custom page size (proposal): skip the log2 value
        _, pos = read_uleb(data, pos)
    return flags, minimum, maximum, pos


class WasmInfo:
    """What the engines need that they cannot tell us: types of imports and exports, memory limits."""

    def __init__(self, data):
        self.types = []  # [(params, results)]
        self.imports = []  # [(module, name, kind, type)]: type is (params, results) for functions
        self.func_types = []  # type index per function index (imports first)
        self.exports = {}  # name -> (kind, index)
        self.memories = []  # [(minimum, maximum)] for defined memories
        self.memory_section = None  # (section start, payload start, end) of the memory section
        self.start = None
        self.code_starts = []  # byte offset of each defined function's body, in function order
        if bytes(data[:4]) != b"\0asm":
            raise Problem("invalid", "not a Wasm module (bad magic)")
        if bytes(data[4:8]) != b"\x01\0\0\0":
            raise Problem("unavailable", "a Wasm component, not a core module: this engine runs core modules only")
        pos = 8
        try:
            while pos < len(data):
                section, header = data[pos], pos
                size, pos = read_uleb(data, pos + 1)
                end = pos + size
                if section == 1:
                    self._types(data, pos)
                elif section == 2:
                    self._imports(data, pos)
                elif section == 3:
                    count, p = read_uleb(data, pos)
                    for _ in range(count):
                        index, p = read_uleb(data, p)
                        self.func_types.append(index)
                elif section == 5:
                    self.memory_section = (header, pos, end)
                    count, p = read_uleb(data, pos)
                    for _ in range(count):
                        _, minimum, maximum, p = _read_limits(data, p)
                        self.memories.append((minimum, maximum))
                elif section == 7:
                    count, p = read_uleb(data, pos)
                    for _ in range(count):
                        name, p = _read_name(data, p)
                        kind = data[p]
                        index, p = read_uleb(data, p + 1)
                        self.exports[name] = (KINDS.get(kind, "?"), index)
                elif section == 8:
                    self.start, _ = read_uleb(data, pos)
                elif section == 10:
                    count, p = read_uleb(data, pos)
                    for _ in range(count):
                        size, body = read_uleb(data, p)
                        self.code_starts.append(p)
                        p = body + size
                pos = end
        except (IndexError, UnicodeError) as exc:
            raise Problem("invalid", f"malformed Wasm module near byte {pos:#x}: {exc}") from None

    def _types(self, data, pos):
        count, pos = read_uleb(data, pos)
        for _ in range(count):
            form = data[pos]
            pos += 1
            if form != 0x60:  # GC proposal types: not supported by these engines
                raise Problem("unavailable", "the module uses GC proposal types, which this engine cannot run")
            n, pos = read_uleb(data, pos)
            params = [VALTYPES.get(b, "?") for b in data[pos : pos + n]]
            pos += n
            n, pos = read_uleb(data, pos)
            results = [VALTYPES.get(b, "?") for b in data[pos : pos + n]]
            pos += n
            self.types.append((params, results))

    def _imports(self, data, pos):
        count, pos = read_uleb(data, pos)
        for _ in range(count):
            module, pos = _read_name(data, pos)
            name, pos = _read_name(data, pos)
            kind = data[pos]
            pos += 1
            if kind == 0:
                index, pos = read_uleb(data, pos)
                self.func_types.append(index)
                self.imports.append((module, name, "func", self.types[index]))
            elif kind == 1:
                pos += 1
                _, _, _, pos = _read_limits(data, pos)
                self.imports.append((module, name, "table", None))
            elif kind == 2:
                _, _, _, pos = _read_limits(data, pos)
                self.imports.append((module, name, "memory", None))
            elif kind == 3:
                pos += 2
                self.imports.append((module, name, "global", None))
            else:
                _, pos = read_uleb(data, pos + 1)
                self.imports.append((module, name, KINDS.get(kind, "?"), None))

    def export_type(self, name):
        """(params, results) of exported function `name`, or None."""
        kind, index = self.exports.get(name, (None, None))
        if kind != "func" or index >= len(self.func_types):
            return None
        return self.types[self.func_types[index]]

    def function_at(self, offset):
        """The index of the function whose body holds code offset `offset`, or None."""
        i = bisect.bisect_right(self.code_starts, offset) - 1
        if i < 0 or offset is None:
            return None
        return sum(1 for imp in self.imports if imp[2] == "func") + i

    def function_exports(self):
        return [name for name, (kind, _) in self.exports.items() if kind == "func"]


def map_offset(segments, offset):
    """An offset in a rewritten module -> the same place in the original. `segments` lists (new start, old
    start) of the stretches copied unchanged, sorted; None means no rewrite."""
    if not segments or offset is None:
        return offset
    index = bisect.bisect_right(segments, (offset, float("inf"))) - 1
    if index < 0:
        return offset
    new_start, old_start = segments[index]
    return old_start + (offset - new_start)


def cap_memory(data, info, max_pages):
    """(module, segments): the module with every defined memory's maximum lowered to `max_pages`, so
    `memory.grow` past the cap fails (returns -1) inside the engine, and the offset map back to the original
    (see map_offset). Raises Problem("limit:memory") when a memory's minimum already exceeds the cap."""
    if max_pages is None or info.memory_section is None:
        return data, None
    header, start, end = info.memory_section
    count, pos = read_uleb(data, start)
    out = bytearray(write_uleb(count))
    changed = False
    for _ in range(count):
        flags, minimum, maximum, pos = _read_limits(data, pos)
        if minimum > max_pages:
            raise Problem(
                "limit:memory",
                f"the module's memory starts at {minimum} pages ({minimum * PAGE >> 20} MiB), more than "
                f"max_memory ({max_pages * PAGE >> 20} MiB); raise max_memory= to run it",
            )
        if flags & 0x08:  # custom page sizes: leave alone
            return data, None
        if maximum is None or maximum > max_pages:
            maximum, changed = max_pages, True
        out.append(flags | 1)
        out += write_uleb(minimum) + write_uleb(maximum)
    if not changed:
        return data, None
    section = b"\x05" + write_uleb(len(out)) + bytes(out)
    return bytes(data[:header]) + section + bytes(data[end:]), [(0, 0), (header + len(section), end)]


# output capture -------------------------------------------------------------------------------------------
class Capture:
    """fd 1 and fd 2 point at capture files for the life of the worker; `drain()` returns and empties them."""

    def __init__(self):
        self.proto_in = os.fdopen(os.dup(0), "rb")
        self.proto_out = os.dup(1)
        real_err = os.dup(2)
        sys.stderr = sys.stdout = os.fdopen(real_err, "w", buffering=1)
        self.devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(self.devnull, 0)
        self.files = []
        for fd in (1, 2):
            handle = tempfile.TemporaryFile(prefix="wasmlab-capture-")  # noqa: SIM115 (lives with the worker)
            os.dup2(handle.fileno(), fd)
            self.files.append(handle)
        self.stdin_fd = None
        try:
            self.libc = ctypes.CDLL(None)
            self.libc.fflush.argtypes = [ctypes.c_void_p]
        except OSError:
            self.libc = None
        # A guest printing in a loop must not fill the disk: writes past the limit fail with EFBIG.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        if hard == resource.RLIM_INFINITY or hard > CAPTURE_FILE_LIMIT:
            resource.setrlimit(resource.RLIMIT_FSIZE, (CAPTURE_FILE_LIMIT, hard))

    def flush(self):
        if self.libc is not None:
            self.libc.fflush(None)

    def drain(self, limit):
        """(stdout, stderr) written to fd 1 and fd 2 since the last drain, each cut at `limit` bytes."""
        out = []
        for fd in (1, 2):
            size = os.lseek(fd, 0, os.SEEK_CUR)
            if size <= 0:
                out.append(b"")
                continue
            out.append(os.pread(fd, min(size, limit), 0))
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
        return out[0], out[1]

    def set_stdin(self, data):
        """Point fd 0 at a file holding `data` (None: /dev/null)."""
        if data is None:
            if self.stdin_fd is not None:
                os.dup2(self.devnull, 0)
                os.close(self.stdin_fd)
                self.stdin_fd = None
            return
        with tempfile.TemporaryFile(prefix="wasmlab-stdin-") as handle:
            handle.write(data)
            handle.flush()
            handle.seek(0)
            fd = os.dup(handle.fileno())
        os.dup2(fd, 0)
        if self.stdin_fd is not None:
            os.close(self.stdin_fd)
        self.stdin_fd = fd

    def send(self, message):
        data = (json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self.proto_out, view) :]


# what a guest sees ----------------------------------------------------------------------------------------
class GuestEnv:
    """Per instance: WASI argv/env/stdin/preopens, output buffers for engines that do not write to fds, and
    the built-in `wasmlab` host module (its key-value store is the worker's, shared by instances)."""

    def __init__(self, server, request):
        self.server = server
        self.argv = [str(a) for a in request.get("argv") or []]
        self.env = {str(k): str(v) for k, v in (request.get("env") or {}).items()}
        self.stdin = unb64(request.get("stdin"))
        self.stdin_pos = 0
        self.dirs = {str(k): str(v) for k, v in (request.get("dirs") or {}).items()}
        self.max_output = int(request.get("max_output") or (1 << 20))
        self.out = bytearray()
        self.err = bytearray()
        self.memory = None  # engine sets: callable returning a writable memoryview of memory 0 (or None)

    def write(self, fd, data):
        """Guest output through a host function (engines without fd-level WASI, and `wasmlab.log`)."""
        if self.server.engine.fd_output:
            os.write(fd, data)
            return
        buf = self.out if fd == 1 else self.err
        room = self.max_output - len(buf)
        if room > 0:
            buf += data[:room]

    def take_output(self):
        out, err = bytes(self.out), bytes(self.err)
        self.out.clear()
        self.err.clear()
        return out, err

    def read_stdin(self, size):
        data = self.stdin[self.stdin_pos : self.stdin_pos + size]
        self.stdin_pos += len(data)
        return data

    # built-in host module "wasmlab" --------------------------------------------------------------------
    def _mem(self):
        mem = self.memory() if self.memory else None
        if mem is None:
            raise GuestTrap("wasmlab host function: the module exports no memory named 'memory'")
        return mem

    def _bytes(self, mem, ptr, length):
        if ptr < 0 or length < 0 or ptr + length > len(mem):
            raise GuestTrap("out of bounds memory access in a wasmlab host function")
        return bytes(mem[ptr : ptr + length])

    def host_log(self, ptr, length):
        mem = self._mem()
        self.write(2, self._bytes(mem, ptr & 0xFFFFFFFF, length & 0xFFFFFFFF) + b"\n")

    def host_now_ms(self):
        return time.perf_counter() * 1000.0

    def host_random(self):
        return random.random()

    def host_kv_get(self, key_ptr, key_len, out_ptr, out_cap):
        mem = self._mem()
        key = self._bytes(mem, key_ptr & 0xFFFFFFFF, key_len & 0xFFFFFFFF)
        value = self.server.kv.get(key)
        if value is None:
            return -1
        out_ptr, out_cap = out_ptr & 0xFFFFFFFF, out_cap & 0xFFFFFFFF
        n = min(len(value), out_cap)
        if out_ptr + n > len(mem):
            raise GuestTrap("out of bounds memory access in wasmlab.kv_get")
        mem[out_ptr : out_ptr + n] = value[:n]
        return len(value)

    def host_kv_set(self, key_ptr, key_len, val_ptr, val_len):
        mem = self._mem()
        key = self._bytes(mem, key_ptr & 0xFFFFFFFF, key_len & 0xFFFFFFFF)
        self.server.kv[key] = self._bytes(mem, val_ptr & 0xFFFFFFFF, val_len & 0xFFFFFFFF)

    def builtin(self, name):
        """(callable, (params, results)) of built-in host function `name`, or None."""
        spec = BUILTIN_TYPES.get(name)
        return None if spec is None else (getattr(self, "host_" + name), spec)


BUILTIN_TYPES = {  # must match wasmlab.runtimes.base.BUILTIN_HOST_FUNCTIONS
    "log": (["i32", "i32"], []),
    "now_ms": ([], ["f64"]),
    "random": ([], ["f64"]),
    "kv_get": (["i32", "i32", "i32", "i32"], ["i32"]),
    "kv_set": (["i32", "i32", "i32", "i32"], []),
}


# the engine interface -------------------------------------------------------------------------------------
class Engine:
    """What an engine script implements. Instances returned by `instantiate` have `call(name, args)`,
    `run_start()`, `memory_view(name)`, `memory_pages()`, `close()`."""

    name = "engine"
    fd_output = True  # guest WASI output goes to fds 1/2 (else through GuestEnv.write)
    supports_dirs = True

    def version(self):
        return ""

    def compile(self, wasm, info):
        """An engine object for the (already memory-capped) module bytes; raises Problem("invalid") if bad."""
        raise NotImplementedError

    def instantiate(self, compiled, info, env):
        raise NotImplementedError

    def offset_map(self, compiled):
        """Segments mapping code offsets of the module `compile` actually compiled back to the bytes it was
        given (see map_offset), or None when it compiled them unchanged."""
        return None

    def stdin_done(self):
        """Called after a run or call that had stdin, with fd 0 back on /dev/null: drop what the engine may
        still buffer from it (wasmer reads fd 0 through Rust's process-wide buffered stdin)."""

    def frames_from_noise(self, text, instance):
        """Backtrace frames ({"name", "index", "offset"}) from what the engine printed to fd 1/2 in a trap."""
        return []


def check_link(info, engine_name):
    """Problem("link") for imports nobody provides (only WASI and the built-in `wasmlab` module exist)."""
    for module, name, kind, ftype in info.imports:
        if module.startswith("wasi"):
            continue
        if module == "wasmlab" and name in BUILTIN_TYPES and kind == "func":
            if tuple(map(tuple, ftype)) != tuple(map(tuple, BUILTIN_TYPES[name])):
                raise Problem("link", f"import wasmlab.{name} has the wrong type; it is {_sig(BUILTIN_TYPES[name])}")
            continue
        raise Problem(
            "link",
            f"unresolved import {module}.{name} ({kind}): {engine_name} in a worker offers only WASI and the "
            "built-in `wasmlab` host module (log, now_ms, random, kv_get, kv_set)",
        )


def _sig(ftype):
    return f"({', '.join(ftype[0])}) -> ({', '.join(ftype[1])})"


# the server -----------------------------------------------------------------------------------------------
class Loaded:
    def __init__(self, wasm):
        self.wasm = wasm
        self.info = WasmInfo(wasm)


class Live:
    """An instance kept across requests."""

    def __init__(self, instance, env, sha, cap, maps=None):
        self.instance, self.env, self.sha, self.cap, self.maps = instance, env, sha, cap, maps
        try:
            self.initial_pages = instance.memory_pages() or 0
        except Exception:
            self.initial_pages = 0


class Server:
    def __init__(self, engine):
        self.engine = engine
        self.capture = Capture()
        self.modules = {}  # sha -> Loaded
        self.compiled = {}  # (sha, cap) -> engine module, insertion ordered (LRU-ish)
        self.instances = {}  # id -> Live
        self.next_id = 1
        self.kv = {}
        self.boot = uuid.uuid4().hex

    # helpers ----------------------------------------------------------------------------------------
    def _module(self, sha):
        loaded = self.modules.get(sha)
        if loaded is None:
            raise Problem("error", f"module {sha[:12]} is not loaded in this worker")
        return loaded

    def _compiled(self, sha, max_memory, timings):
        """(loaded module, engine module, memory cap in pages, offset maps), compiling on first use."""
        loaded = self._module(sha)
        cap = None if max_memory is None else max(0, int(max_memory) // PAGE)
        key = (sha, cap)
        entry = self.compiled.pop(key, None)
        if entry is None:
            wasm, cap_map = cap_memory(loaded.wasm, loaded.info, cap)
            started = time.perf_counter()
            compiled = self.engine.compile(wasm, loaded.info)
            timings["compile"] = (time.perf_counter() - started) * 1000
            entry = (compiled, [self.engine.offset_map(compiled), cap_map])
            while len(self.compiled) >= COMPILED_CACHE:
                self.compiled.pop(next(iter(self.compiled)))
        else:
            timings.setdefault("compile", 0.0)
        self.compiled[key] = entry
        return loaded, entry[0], cap, entry[1]

    @staticmethod
    def _remap(frames, maps, info):
        """Frames with code offsets of the module as the parent sent it (the engine ran a rewritten copy), and
        the function index where the engine gave only an offset."""
        out = []
        for frame in frames[:MAX_FRAMES]:
            offset = frame.get("offset")
            for segments in maps or ():
                offset = map_offset(segments, offset)
            frame = {**frame, "offset": offset}
            if frame.get("index") is None and offset is not None:
                frame["index"] = info.function_at(offset)
            out.append(frame)
        return out

    def _instance(self, request):
        live = self.instances.get(request.get("id"))
        if live is None:
            raise Problem("usage", f"instance #{request.get('id')} is closed or unknown in this worker")
        return live

    def _instantiate(self, request, timings):
        """(live instance or None, loaded module, outcome): the outcome is {} or a trap/exit of the start
        function or `_initialize` (reactors are initialised once, here, inside the "instantiate" time)."""
        loaded, compiled, cap, maps = self._compiled(request["sha"], request.get("max_memory"), timings)
        check_link(loaded.info, self.engine.name)
        env = GuestEnv(self, request)
        if env.dirs and not self.engine.supports_dirs:
            raise Problem("unavailable", f"{self.engine.name} cannot preopen host directories (dirs=)")
        started = time.perf_counter()
        live, outcome = None, {}
        try:
            live = Live(self.engine.instantiate(compiled, loaded.info, env), env, request["sha"], cap, maps)
            if "_initialize" in loaded.info.exports and "_start" not in loaded.info.exports:
                outcome = self._guarded(live, lambda: live.instance.call("_initialize", []))
                outcome.pop("result", None)
        except GuestTrap as exc:  # in the start function
            outcome = {"trap_message": exc.message, "frames": self._remap(exc.frames, maps, loaded.info)}
        except GuestExit as exc:
            outcome = {"exit_code": exc.code}
        timings["instantiate"] = (time.perf_counter() - started) * 1000
        return live, loaded, outcome

    def _guarded(self, live, action):
        """Run `action()` (which calls into the guest) and translate traps, exits and the memory cap."""
        try:
            return {"result": action()}
        except GuestExit as exc:
            outcome = {"exit_code": exc.code}
            if exc.code and self._at_cap(live):
                outcome["limit"] = self._limit_message(live, f"exited with status {exc.code}")
            return outcome
        except GuestTrap as exc:
            frames = exc.frames
            if not frames and not self.engine.fd_output:  # fds hold only engine noise: a printed backtrace
                self.capture.flush()
                noise_out, noise_err = self.capture.drain(1 << 20)
                text = (noise_out + noise_err).decode("utf-8", "replace")
                frames = self.engine.frames_from_noise(text, live.instance if live is not None else None)
            info = self.modules[live.sha].info if live is not None else None
            outcome = {"trap_message": exc.message, "frames": self._remap(frames, live.maps, info) if live else frames}
            if self._at_cap(live):
                outcome["limit"] = self._limit_message(live, f"trapped: {exc.message.splitlines()[0]}")
            return outcome

    def _limit_message(self, live, what):
        pages = live.instance.memory_pages() or 0
        return (
            f"the guest {what} with its memory at {pages * PAGE / (1 << 20):.1f} of {live.cap * PAGE >> 20} MiB "
            "(max_memory): memory.grow failed at the cap; raise max_memory= if it needs more"
        )

    def _at_cap(self, live):
        """Whether the memory is so close to the cap that the guest's last memory.grow most likely failed
        (a trap or exit right after is then reported as the memory limit): it grew during this instance's
        life and is within 1 MiB or an eighth of the cap (allocators grow in steps)."""
        if live is None or live.cap is None:
            return False
        try:
            pages = live.instance.memory_pages()
        except Exception:
            return False
        return pages is not None and pages > live.initial_pages and live.cap - pages <= max(16, live.cap // 8)

    def _output(self, live, answer, max_output):
        """Attach what the guest wrote (fd capture and/or buffers) to `answer`."""
        self.capture.flush()
        fd_out, fd_err = self.capture.drain(max_output)
        out, err = (fd_out, fd_err) if self.engine.fd_output else (b"", b"")
        if live is not None:
            buf_out, buf_err = live.env.take_output()
            out, err = (out + buf_out)[:max_output], (err + buf_err)[:max_output]
        if out:
            answer["stdout"] = b64(out)
        if err:
            answer["stderr"] = b64(err)
        return answer

    def _finish(self, live, outcome, timings, max_output):
        answer = {"ok": True, "timings": timings}
        if "result" in outcome:
            answer["result"] = encode_value(outcome["result"])
        if "exit_code" in outcome:
            answer["exit_code"] = outcome["exit_code"]
        if "trap_message" in outcome:
            answer.update(ok=False, kind="trap", error=outcome["trap_message"].splitlines()[0])
            answer["trap_message"], answer["frames"] = outcome["trap_message"], outcome["frames"]
        if "limit" in outcome:
            answer.update(ok=False, kind="limit:memory", error=outcome["limit"])
        return self._output(live, answer, max_output)

    def _call(self, live, name, args, timings):
        info = self.modules[live.sha].info
        ftype = info.export_type(name)
        if ftype is None:
            exported = ", ".join(info.function_exports()) or "none"
            raise Problem("usage", f"the module exports no function {name!r}: it exports {exported}")
        params, results = ftype
        if len(args) != len(params):
            raise Problem("usage", f"{name} takes {len(params)} argument(s) ({', '.join(params)}), got {len(args)}")
        values = [convert_arg(decode_value(a), t) for a, t in zip(args, params, strict=True)]
        instance = live.instance

        def action():
            started = time.perf_counter()
            try:
                return instance.call(name, values)
            finally:
                timings["call"] = (time.perf_counter() - started) * 1000

        outcome = self._guarded(live, action)
        if "result" in outcome:
            value = outcome["result"]
            if len(results) == 1 and isinstance(value, (list, tuple)):
                value = value[0]
            elif len(results) > 1:
                value = list(value)
            outcome["result"] = value
        return outcome

    # ops ----------------------------------------------------------------------------------------------
    def op_ping(self, request):
        return {"ok": True}

    def op_version(self, request):
        return {"ok": True, "version": self.engine.version()}

    def op_load(self, request):
        sha = request["sha"]
        if sha not in self.modules:
            self.modules[sha] = Loaded(unb64(request["wasm"]))
        return {"ok": True}

    def op_prepare(self, request):
        """Compile ahead of a run, so compile time does not count against the run's time limit."""
        timings = {"compile": 0.0}
        self._compiled(request["sha"], request.get("max_memory"), timings)
        return {"ok": True, "timings": timings}

    def op_run(self, request):
        """One whole run: instantiate, then `_start` (invoke=None) or an export, then free the instance."""
        timings = {}
        max_output = int(request.get("max_output") or (1 << 20))
        invoke = request.get("invoke")
        stdin = unb64(request.get("stdin")) if self.engine.fd_output else b""
        self.capture.set_stdin(stdin or None)
        live = None
        try:
            live, loaded, outcome = self._instantiate(request, timings)
            if outcome:
                pass
            elif invoke is not None:
                outcome = self._call(live, invoke, request.get("args") or [], timings)
            elif "_start" not in loaded.info.exports:
                raise Problem("usage", "the module is not a WASI command (no _start export): pass invoke=")
            else:

                def start():
                    started = time.perf_counter()
                    try:
                        return live.instance.call("_start", [])
                    finally:
                        timings["run"] = (time.perf_counter() - started) * 1000

                outcome = self._guarded(live, start)
                if "result" in outcome:
                    outcome = {"exit_code": 0}
            return self._finish(live, outcome, timings, max_output)
        finally:
            if live is not None:
                live.instance.close()
            if stdin:
                self.capture.set_stdin(None)
                self.engine.stdin_done()

    def op_instantiate(self, request):
        timings = {}
        live, loaded, outcome = self._instantiate(request, timings)
        if outcome:
            if live is not None:
                live.instance.close()
            if "exit_code" in outcome and "limit" not in outcome:
                raise Problem("usage", f"the guest exited with status {outcome['exit_code']} while starting")
            return self._finish(None, outcome, timings, 1 << 20)
        instance_id, self.next_id = self.next_id, self.next_id + 1
        self.instances[instance_id] = live
        answer = self._output(live, {"ok": True, "id": instance_id, "timings": timings}, live.env.max_output)
        answer["exports"] = loaded.info.function_exports()
        return answer

    def op_call(self, request):
        live = self._instance(request)
        timings = {}
        env = live.env
        stdin = env.stdin[env.stdin_pos :] if self.engine.fd_output else b""
        if stdin:  # what earlier calls left of the instance's stdin
            self.capture.set_stdin(stdin)
        try:
            outcome = self._call(live, request["name"], request.get("args") or [], timings)
        finally:
            if stdin:
                env.stdin_pos += os.lseek(0, 0, os.SEEK_CUR)
                self.capture.set_stdin(None)
                self.engine.stdin_done()
        return self._finish(live, outcome, timings, live.env.max_output)

    def _view(self, request):
        live = self._instance(request)
        view = live.instance.memory_view(request.get("memory"))
        if view is None:
            raise Problem("usage", f"the instance has no memory {request.get('memory') or 'memory'!r}")
        return view

    def op_memory_size(self, request):
        return {"ok": True, "size": len(self._view(request))}

    def op_read(self, request):
        view = self._view(request)
        address, length = int(request["address"]), int(request["length"])
        if address < 0 or length < 0 or address + length > len(view):
            raise Problem("usage", f"[{address}, {address + length}) is outside memory of {len(view)} bytes")
        return {"ok": True, "data": b64(view[address : address + length])}

    def op_write(self, request):
        view = self._view(request)
        address, data = int(request["address"]), unb64(request.get("data"))
        if address < 0 or address + len(data) > len(view):
            raise Problem("usage", f"[{address}, {address + len(data)}) is outside memory of {len(view)} bytes")
        view[address : address + len(data)] = data
        return {"ok": True}

    def op_exports(self, request):
        live = self._instance(request)
        return {"ok": True, "exports": self.modules[live.sha].info.function_exports()}

    def op_close(self, request):
        live = self.instances.pop(request.get("id"), None)
        if live is not None:
            live.instance.close()
        return {"ok": True}

    def op_kv_clear(self, request):
        self.kv.clear()
        return {"ok": True}

    def op_kv_items(self, request):
        return {"ok": True, "items": {b64(k): b64(v) for k, v in self.kv.items()}}

    # loop -----------------------------------------------------------------------------------------------
    def handle(self, request):
        for instance_id in request.get("release") or ():  # instances the parent dropped
            live = self.instances.pop(instance_id, None)
            if live is not None:
                live.instance.close()
        handler = getattr(self, "op_" + str(request.get("op")), None)
        if handler is None:
            return {"ok": False, "kind": "error", "error": f"unknown op {request.get('op')!r}"}
        try:
            return handler(request)
        except Problem as exc:
            self.capture.drain(0)
            return exc.answer()
        except MemoryError:
            self.capture.drain(0)
            return {"ok": False, "kind": "limit:memory", "error": f"{self.engine.name}: out of memory"}
        except Exception as exc:
            traceback.print_exc()
            self.capture.drain(0)
            return {"ok": False, "kind": "error", "error": f"{self.engine.name} worker: {type(exc).__name__}: {exc}"}

    def serve(self):
        self.capture.send(
            {
                "ready": True,
                "protocol": PROTOCOL,
                "engine": self.engine.name,
                "version": self.engine.version(),
                "python": sys.version.split()[0],
                "pid": os.getpid(),
                "boot": self.boot,
            }
        )
        for line in self.capture.proto_in:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except ValueError as exc:
                self.capture.send({"ok": False, "kind": "error", "error": f"bad request: {exc}"})
                continue
            self.capture.send(self.handle(request))


def set_stack_limit(size):
    """Set how far the main thread's native stack may grow (engines that run Wasm on it recurse natively
    for Wasm calls: the limit decides how deep guest recursion goes before a stack-overflow trap)."""
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_STACK)
        resource.setrlimit(resource.RLIMIT_STACK, (size if hard == resource.RLIM_INFINITY else min(size, hard), hard))
    except (ValueError, OSError):
        pass


def serve(engine_factory):
    """Start a worker: build the engine (reporting a failure as a one-line startup error), then serve."""
    try:
        engine = engine_factory()
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        sys.stderr.write(traceback.format_exc())
        sys.stdout.write(json.dumps({"ready": False, "error": message}) + "\n")
        sys.stdout.flush()
        sys.exit(3)
    Server(engine).serve()


__all__ = [
    "Engine",
    "GuestEnv",
    "GuestExit",
    "GuestTrap",
    "Problem",
    "WasmInfo",
    "cap_memory",
    "convert_arg",
    "serve",
]
