"""The wasm3 worker: pywasm3 (the wasm3 interpreter) behind `pyserve`'s JSON-lines protocol.

pywasm3 0.5 has no WASI (no `link_wasi`), so this file links a small WASI preview 1 in Python: argv, environ,
stdin, stdout/stderr, clocks, random and proc_exit; no files or preopened directories (other WASI calls
return ENOSYS). It also reaches past pywasm3 through ctypes for what its Python API lacks: running the start
function (`m3_RunStart`) and freeing a runtime (`m3_FreeRuntime`; pywasm3 never frees one).

Traps come back as RuntimeError("[trap] ...") and wasm3 prints the backtrace to fd 2 (or 1), which
`pyserve` captures and this file parses into frames.
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pyserve
from pyserve import GuestExit, GuestTrap, Problem

STACK_BYTES = int(os.environ.get("WASMLAB_WASM3_STACK", 1 << 20))  # wasm3's value stack per instance
SIG = {"i32": "i", "i64": "I", "f32": "f", "f64": "F"}
TYPE_IDS = {1: "i32", 2: "i64", 3: "f32", 4: "f64"}
ERRNO = {"success": 0, "badf": 8, "inval": 28, "nosys": 52, "spipe": 70}
_FRAME = re.compile(r"^\s*\d+:\s*0x([0-9a-fA-F]+)\s*-\s*(?:[^!\s]*!)?(.*?)\s*$")


# wasm3 0.5 reads the table index of call_indirect (and the memory index of memory.size/grow/copy/fill) as a
# single-byte LEB; LLVM >= 19 writes call_indirect's table index as a 5-byte LEB ("call-indirect-overlong"),
# which wasm3 rejects with "LEB encoded value overflow" when it compiles the function. So such modules are
# re-encoded with the shortest LEBs (code offsets in backtraces then refer to the re-encoded module).
_OVERLONG = re.compile(rb"\x11[\x80-\xff]{0,4}[\x00-\x7f][\x80-\xff]+[\x00-\x7f]|[\x3f\x40][\x80-\xff]")
_NO_IMMEDIATE = {0x00, 0x01, 0x05, 0x0B, 0x0F, 0x1A, 0x1B, 0xD1, 0xD3, 0xD4, *range(0x45, 0xC5)}
_ONE_INDEX = {0x0C, 0x0D, 0x10, 0x12, 0x14, 0x15, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0xD2, 0xD5, 0xD6}


def _leb(data, pos):
    return pyserve.read_uleb(data, pos)


def _skip_sleb(data, pos):
    while data[pos] & 0x80:
        pos += 1
    return pos + 1


class _Writer:
    """Output bytes plus the segments (new start, old start) of stretches copied unchanged from the input."""

    def __init__(self, data):
        self.data, self.out, self.segments = data, bytearray(), []

    def copy(self, start, end):
        if end > start:
            if not self.segments or self.segments[-1][1] + (len(self.out) - self.segments[-1][0]) != start:
                self.segments.append((len(self.out), start))
            self.out += self.data[start:end]

    def emit(self, data):
        self.out += data


def _canonical_body(data, pos, end, w):
    """Copy the function body data[pos:end] into `w` with canonical LEBs for the reserved indices wasm3 reads
    as one byte; False when the body uses instructions this walker does not know (which wasm3 0.5 could not
    run either: SIMD, threads, GC, exceptions)."""
    count, p = _leb(data, pos)
    for _ in range(count):
        _, p = _leb(data, p)
        p += 1
    w.copy(pos, p)
    pos = p
    while pos < end:
        op = data[pos]
        start = pos
        pos += 1
        if op in _NO_IMMEDIATE:
            pass
        elif op in (0x02, 0x03, 0x04, 0x41, 0x42, 0xD0):
            pos = _skip_sleb(data, pos)
        elif op in _ONE_INDEX:
            _, pos = _leb(data, pos)
        elif op == 0x0E:
            n, pos = _leb(data, pos)
            for _ in range(n + 1):
                _, pos = _leb(data, pos)
        elif op in (0x11, 0x13):
            type_index, pos = _leb(data, pos)
            table, pos = _leb(data, pos)
            w.emit(bytes([op]) + pyserve.write_uleb(type_index) + pyserve.write_uleb(table))
            continue
        elif op == 0x1C:
            n, pos = _leb(data, pos)
            pos += n
        elif 0x28 <= op <= 0x3E:
            align, pos = _leb(data, pos)
            if align & 0x40:
                _, pos = _leb(data, pos)
            _, pos = _leb(data, pos)
        elif op in (0x3F, 0x40):
            memory, pos = _leb(data, pos)
            w.emit(bytes([op]) + pyserve.write_uleb(memory))
            continue
        elif op == 0x43:
            pos += 4
        elif op == 0x44:
            pos += 8
        elif op == 0xFC:
            sub, pos = _leb(data, pos)
            if sub <= 7:
                pass
            elif sub in (8, 10, 12, 14, 9, 11, 13, 15, 16, 17):
                indices = []
                for _ in range(2 if sub in (8, 10, 12, 14) else 1):
                    index, pos = _leb(data, pos)
                    indices.append(index)
                w.emit(b"\xfc" + b"".join(pyserve.write_uleb(v) for v in (sub, *indices)))
                continue
            else:
                return False
        else:
            return False
        w.copy(start, pos)
    return True


class Compiled:
    """What the worker instantiates: the module bytes as wasm3 can run them, and the offset map back."""

    def __init__(self, wasm, segments=None):
        self.wasm, self.segments = wasm, segments


def canonicalize(wasm):
    """`wasm` with canonical reserved-index LEBs in its code section, as a Compiled (unchanged bytes and no
    offset map when nothing needs it)."""
    if not _OVERLONG.search(wasm):
        return Compiled(wasm)
    pos = 8
    while pos < len(wasm):
        section, header = wasm[pos], pos
        size, pos = pyserve.read_uleb(wasm, pos + 1)
        if section != 10:
            pos += size
            continue
        end = pos + size
        count, p = pyserve.read_uleb(wasm, pos)
        body = _Writer(wasm)
        body.emit(pyserve.write_uleb(count))
        for _ in range(count):
            length, p = pyserve.read_uleb(wasm, p)
            inner = _Writer(wasm)
            if not _canonical_body(wasm, p, p + length, inner):
                return Compiled(wasm)
            size_leb = pyserve.write_uleb(len(inner.out))
            body.emit(size_leb)
            base = len(body.out)
            body.out += inner.out
            body.segments += [(base + new, old) for new, old in inner.segments]
            p += length
        head = b"\x0a" + pyserve.write_uleb(len(body.out))
        base = header + len(head)
        segments = [(0, 0), *((base + new, old) for new, old in body.segments), (base + len(body.out), end)]
        return Compiled(wasm[:header] + head + bytes(body.out) + wasm[end:], segments)
    return Compiled(wasm)


def signature(ftype):
    params, results = ftype
    return (SIG[results[0]] if results else "v") + "(" + "".join(SIG[p] for p in params) + ")"


class Wasi:
    """WASI preview 1, the subset C, Rust, Zig and AssemblyScript programs need to print and exit."""

    def __init__(self, env, memory):
        self.env, self.memory = env, memory
        self.args = [a.encode() for a in (env.argv or ["main"])]
        self.environ = [f"{k}={v}".encode() for k, v in env.env.items()]

    def _mem(self):
        mem = self.memory()
        if mem is None:
            raise GuestTrap("WASI call without an exported memory")
        return mem

    def _strings(self, items, ptrs, buf):
        mem = self._mem()
        for item in items:
            struct.pack_into("<I", mem, ptrs, buf)
            mem[buf : buf + len(item) + 1] = item + b"\0"
            ptrs, buf = ptrs + 4, buf + len(item) + 1
        return 0

    def _sizes(self, items, count_ptr, size_ptr):
        mem = self._mem()
        struct.pack_into("<I", mem, count_ptr, len(items))
        struct.pack_into("<I", mem, size_ptr, sum(len(i) + 1 for i in items))
        return 0

    def args_get(self, argv, argv_buf):
        return self._strings(self.args, argv, argv_buf)

    def args_sizes_get(self, count_ptr, size_ptr):
        return self._sizes(self.args, count_ptr, size_ptr)

    def environ_get(self, environ, environ_buf):
        return self._strings(self.environ, environ, environ_buf)

    def environ_sizes_get(self, count_ptr, size_ptr):
        return self._sizes(self.environ, count_ptr, size_ptr)

    def fd_write(self, fd, iovs, iovs_len, nwritten):
        if fd not in (1, 2):
            return ERRNO["badf"]
        mem = self._mem()
        total = 0
        for i in range(iovs_len):
            ptr, length = struct.unpack_from("<II", mem, iovs + 8 * i)
            self.env.write(fd, bytes(mem[ptr : ptr + length]))
            total += length
        struct.pack_into("<I", mem, nwritten, total)
        return 0

    def fd_read(self, fd, iovs, iovs_len, nread):
        if fd != 0:
            return ERRNO["badf"]
        mem = self._mem()
        total = 0
        for i in range(iovs_len):
            ptr, length = struct.unpack_from("<II", mem, iovs + 8 * i)
            data = self.env.read_stdin(length)
            mem[ptr : ptr + len(data)] = data
            total += len(data)
            if len(data) < length:
                break
        struct.pack_into("<I", mem, nread, total)
        return 0

    def fd_close(self, fd):
        return 0 if fd in (0, 1, 2) else ERRNO["badf"]

    def fd_seek(self, fd, offset, whence, newoffset):
        return ERRNO["spipe"] if fd in (0, 1, 2) else ERRNO["badf"]

    def fd_fdstat_get(self, fd, buf):
        if fd not in (0, 1, 2):
            return ERRNO["badf"]
        # filetype character_device, no flags, all rights
        struct.pack_into("<BxHxxxxQQ", self._mem(), buf, 2, 0, (1 << 64) - 1, (1 << 64) - 1)
        return 0

    def fd_fdstat_set_flags(self, fd, flags):
        return 0 if fd in (0, 1, 2) else ERRNO["badf"]

    def fd_prestat_get(self, fd, buf):
        return ERRNO["badf"]  # no preopened directories

    def fd_prestat_dir_name(self, fd, path, path_len):
        return ERRNO["badf"]

    def proc_exit(self, code):
        raise GuestExit(code)

    def clock_time_get(self, clock_id, precision, time_ptr):
        now = time.time_ns() if clock_id == 0 else time.perf_counter_ns()
        struct.pack_into("<Q", self._mem(), time_ptr, now)
        return 0

    def clock_res_get(self, clock_id, res_ptr):
        struct.pack_into("<Q", self._mem(), res_ptr, 1000)
        return 0

    def random_get(self, buf, length):
        self._mem()[buf : buf + length] = secrets.token_bytes(length)
        return 0

    def sched_yield(self):
        return 0


class Instance:
    def __init__(self, engine, wasm, info, env):
        self.engine, self.info, self.env, self.wasm = engine, info, env, wasm
        self.runtime = engine.env.new_runtime(STACK_BYTES)
        self.module = engine.env.parse_module(wasm)
        self.functions = {}
        self._view, self._view_key = None, None
        self._runtime_pointer = self._pointer(self.runtime)
        self.closed = False
        try:
            self.runtime.load(self.module)
        except RuntimeError as exc:
            engine.lib.m3_FreeModule(self._pointer(self.module))  # not loaded: the runtime does not own it
            self.module = None
            self.closed = True
            self._free()
            raise Problem("invalid", f"wasm3 rejected the module: {exc}") from None
        env.memory = self.memory_view
        try:
            self._link()
        except BaseException:
            self.close()
            raise
        err = engine.lib.m3_RunStart(self._pointer(self.module))
        if err:
            self.close()
            raise GuestTrap(err.decode(errors="replace"))

    @staticmethod
    def _pointer(obj):
        # pywasm3's C structs: PyObject_HEAD (16 bytes), the environment object, then the wasm3 handle.
        return ctypes.c_void_p.from_address(id(obj) + 24).value

    def _link(self):
        wasi = Wasi(self.env, self.memory_view)
        for module, name, kind, ftype in self.info.imports:
            if kind != "func":
                raise Problem("link", f"wasm3 worker cannot provide the imported {kind} {module}.{name}")
            if module.startswith("wasi"):
                impl = getattr(wasi, name, None)
                if impl is None or impl.__code__.co_argcount - 1 != len(ftype[0]):
                    impl = _enosys(module, name, ftype)
            else:  # the built-in `wasmlab` module (pyserve.check_link rejected anything else)
                impl = self.env.builtin(name)[0]
            try:
                self.module.link_function(module, name, signature(ftype), _guard(impl))
            except RuntimeError as exc:
                raise Problem("link", f"wasm3 could not link {module}.{name}: {exc}") from None

    def memory_view(self, name=None):
        """Memory 0 as a writable memoryview. Not pywasm3's `get_memory`, which leaks a buffer per call (WASI
        calls it all the time): wasm3's own m3_GetMemory, and one view while the memory does not move."""
        if name not in (None, "memory", "0") or self.runtime is None:
            return None
        size = ctypes.c_uint32()
        address = self.engine.lib.m3_GetMemory(self._runtime_pointer, ctypes.byref(size), 0)
        if not address:
            return None
        if self._view_key != (address, size.value):
            self._view = self.engine.memory_from_address(address, size.value)
            self._view_key = (address, size.value)
        return self._view

    def memory_pages(self):
        mem = self.memory_view()
        return None if mem is None else len(mem) // pyserve.PAGE

    def call(self, name, args):
        function = self.functions.get(name)
        if function is None:
            try:
                function = self.functions[name] = self.runtime.find_function(name)
            except RuntimeError as exc:
                raise Problem("usage", f"wasm3 cannot find export {name!r}: {exc}") from None
        try:
            return function(*args)
        except RuntimeError as exc:
            raise GuestTrap(str(exc)) from None
        except NotImplementedError:
            raise Problem(
                "unavailable", f"pywasm3 cannot return multiple values ({name}); use wasmtime or wasmer"
            ) from None

    def close(self):
        if not self.closed:
            self.closed = True
            self.env.memory = None
            self.functions.clear()
            self._view = self._view_key = None
            self._free()

    def _free(self):
        if self.runtime is None:
            return
        pointer = self._runtime_pointer
        self.runtime = self.module = None
        if pointer:
            self.engine.lib.m3_FreeRuntime(pointer)  # frees the loaded module and the linear memory too


def _guard(impl):
    """Host functions may only raise GuestExit/GuestTrap; anything else becomes a trap with its message."""

    def host(*args):
        try:
            return impl(*args)
        except (GuestExit, GuestTrap):
            raise
        except (IndexError, struct.error, ValueError) as exc:
            raise GuestTrap(f"out of bounds memory access in a host function ({exc})") from None
        except Exception as exc:
            raise GuestTrap(f"host function failed: {type(exc).__name__}: {exc}") from None

    return host


def _enosys(module, name, ftype):
    results = ftype[1]

    def stub(*args):
        if not results:
            raise GuestTrap(f"{module}.{name} is not implemented by wasm3's WASI shim")
        return ERRNO["nosys"] if results[0] in ("i32", "i64") else 0.0

    return stub


class Wasm3Engine(pyserve.Engine):
    name = "wasm3"
    fd_output = False  # guest output goes through the Python WASI shim; fds carry wasm3's own prints
    supports_dirs = False

    def __init__(self):
        import wasm3

        self.wasm3 = wasm3
        self.env = wasm3.Environment()
        self.lib = ctypes.CDLL(wasm3.__file__)
        self.lib.m3_RunStart.argtypes = [ctypes.c_void_p]
        self.lib.m3_RunStart.restype = ctypes.c_char_p
        self.lib.m3_FreeRuntime.argtypes = [ctypes.c_void_p]
        self.lib.m3_FreeRuntime.restype = None
        self.lib.m3_FreeModule.argtypes = [ctypes.c_void_p]
        self.lib.m3_FreeModule.restype = None
        self.lib.m3_GetMemory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint32]
        self.lib.m3_GetMemory.restype = ctypes.c_void_p
        from_memory = ctypes.pythonapi.PyMemoryView_FromMemory
        from_memory.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int]
        from_memory.restype = ctypes.py_object
        self.memory_from_address = lambda address, size: from_memory(address, size, 0x200)  # PyBUF_WRITE

    def version(self):
        try:
            from importlib.metadata import version

            pywasm3 = version("pywasm3")
        except Exception:
            pywasm3 = "?"
        return f"pywasm3 {pywasm3} (wasm3 {getattr(self.wasm3, 'M3_VERSION', '?')})"

    def compile(self, wasm, info):
        for params, results in info.types:
            if len(results) > 1:
                raise Problem("unavailable", "pywasm3 cannot run modules with multi-value functions")
            if any(t not in SIG for t in (*params, *results)):
                raise Problem("unavailable", "the module uses value types wasm3 cannot pass (v128 or references)")
        compiled = canonicalize(bytes(wasm))
        try:  # parse once to report malformed modules now; each instance parses its own copy
            parsed = self.env.parse_module(compiled.wasm)
        except RuntimeError as exc:
            raise Problem("invalid", f"wasm3 rejected the module: {exc}") from None
        self.lib.m3_FreeModule(Instance._pointer(parsed))  # never loaded, so no runtime owns it
        return compiled

    def offset_map(self, compiled):
        return compiled.segments

    def instantiate(self, compiled, info, env):
        return Instance(self, compiled.wasm, info, env)

    def frames_from_noise(self, text, instance):
        size = len(instance.wasm) if instance is not None else 1 << 32
        frames = []
        for line in text.splitlines():
            m = _FRAME.match(line)
            if m and int(m.group(1), 16) < size:  # wasm3 prints a bogus native frame first on stack overflow
                name = m.group(2)
                frames.append({"name": None if name in ("", "<unnamed>") else name, "offset": int(m.group(1), 16)})
        return frames


if __name__ == "__main__":
    pyserve.set_stack_limit(256 << 20)  # wasm3 recurses natively per Wasm call; its own stack overflows first
    pyserve.serve(Wasm3Engine)
