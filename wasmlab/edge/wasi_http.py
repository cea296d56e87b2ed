"""The lab's host for standard handlers: the wasi:http/types, wasi:io and proxy-world imports of a handler's core
module, implemented in Python and linked as host functions (`RunOptions.imports`), one `HttpHost` per instance.

Why our own: wasmtime-py's component API links only the outgoing half of wasi:http and cannot make the
`incoming-request` / `response-outparam` a host must pass to `incoming-handler.handle` (FACTS.md). The core
module underneath a `wasm-tools component new` component imports the canonical ABI's lowered functions
(`[method]incoming-request.path-with-query(self, retptr)`...), so a host that implements those runs the very
bytes workerd and jco run. Results that hold strings or lists are written into memory the guest allocates with
its `cabi_realloc`, as the canonical ABI says.

    host = HttpHost()
    instance = runtime.instantiate(module, options.with_(imports=host.imports(module)))
    host.bind(instance)
    response = host.serve(instance, "GET", "/x?y=1", [("accept", "*/*")], b"")   # -> abi.Response

Resources are small Python objects in a per-instance table (handles are table indices). Streams never block:
the request body is all in memory, the response body is collected and sent when the handler returns.
Only the imports a module declares are linked; an import this host lacks is one error naming it.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError, WasmlabError
from .abi import BadResponse, Response

HANDLE = "wasi:http/incoming-handler@0.2.0#handle"
TYPES = "wasi:http/types@0.2.0"
STREAMS = "wasi:io/streams@0.2.0"
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
FORBIDDEN = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"host"})
MAX_RESPONSE = 16 << 20
_U32 = struct.Struct("<I")
_I32x2 = struct.Struct("<II")


class HandlerFailed(WasmlabError):
    """The handler answered with an error-code, or returned without setting a response."""


@dataclass
class Fields:
    items: list[tuple[bytes, bytes]] = field(default_factory=list)
    mutable: bool = True


@dataclass
class Request:
    method: str
    target: str
    headers: int
    body: bytes
    consumed: bool = False


@dataclass
class InputStream:
    data: bytes
    pos: int = 0


@dataclass
class OutgoingBody:
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    finished: bool = False


@dataclass
class OutgoingResponse:
    headers: Fields
    status: int = 200
    body: OutgoingBody | None = None


@dataclass
class OutputStream:
    body: OutgoingBody | None  # None: the console (stdout/stderr)
    log: list[bytes] | None = None


@dataclass
class Binding:
    """The per-instance state of the host: its resource table, the instance, what the handler answered."""

    instance: Any
    realloc: Any = None
    store: Any = None
    table: dict[int, Any] = field(default_factory=dict)
    next: int = 1
    response: OutgoingResponse | None = None
    error: str | None = None
    log: list[bytes] = field(default_factory=list)


class HttpHost:
    """The wasi:http host of a deployment: one set of import functions (so the engine links them once per
    module), acting on the `Binding` of the instance whose request this thread is serving."""

    LOG_LIMIT = 1 << 16

    def __init__(self) -> None:
        self._local = threading.local()
        self._imports: dict[str, dict[str, dict[str, Any]]] = {}

    @property
    def _b(self) -> Binding:
        binding = getattr(self._local, "binding", None)
        if binding is None:
            raise UsageError("a wasi:http import was called outside a request")
        return binding

    # table ---------------------------------------------------------------------------------------------------
    def _add(self, item: Any) -> int:
        handle = self._b.next
        self._b.next += 1
        self._b.table[handle] = item
        return handle

    def _get(self, handle: int, kind: type) -> Any:
        item = self._b.table.get(handle)
        if not isinstance(item, kind):
            raise UsageError(f"handler used handle {handle} as a {kind.__name__}: it is {type(item).__name__}")
        return item

    def _drop(self, handle: int) -> None:
        self._b.table.pop(handle, None)

    # memory --------------------------------------------------------------------------------------------------
    def bind(self, instance: Any) -> Binding:
        """The state for a new `instance` (its memory and cabi_realloc are what the imports use)."""
        binding = Binding(instance)
        get = getattr(instance, "_get_export", None)
        if get is not None and "cabi_realloc" in instance.module.export_names("func"):
            # wasmtime: call cabi_realloc as a raw nested call, so the outer call's time limit stays armed
            binding.realloc, binding.store = get("cabi_realloc"), instance._store
        return binding

    def _alloc(self, size: int, align: int = 1) -> int:
        b = self._b
        state = getattr(b.instance, "_state", None)
        if state is not None and state.fuel is None and hasattr(state, "t0"):
            # wasmtime without fuel: the fast call path, then the outer call's start time put back (the
            # watchdog times the outer call from it); with fuel, a raw call that leaves the budget alone
            started = state.t0
            try:
                return b.instance.call("cabi_realloc", 0, 0, align, size) & 0xFFFFFFFF
            finally:
                state.t0 = started
        if b.realloc is not None:
            return b.realloc(b.store, 0, 0, align, size) & 0xFFFFFFFF
        return b.instance.call("cabi_realloc", 0, 0, align, size) & 0xFFFFFFFF

    def _read(self, ptr: int, length: int) -> bytes:
        return self._b.instance.read_memory(ptr & 0xFFFFFFFF, length & 0xFFFFFFFF)

    def _write(self, ptr: int, data: bytes) -> None:
        self._b.instance.write_memory(ptr & 0xFFFFFFFF, data)

    def _put(self, data: bytes) -> int:
        """Copy `data` into guest memory (allocated by the guest); its address."""
        ptr = self._alloc(len(data), 1)
        if data:
            self._write(ptr, data)
        return ptr

    def _result(self, ret: int, ok: bool, payload: bytes = b"", at: int = 4) -> None:
        self._write(ret, bytes([0 if ok else 1]) + b"\0" * (at - 1) + payload)

    def _string_list(self, items: list[tuple[bytes, bytes]]) -> tuple[int, int]:
        """A list<tuple<string, list<u8>>> in guest memory, array and bytes in one allocation: (pointer, count)."""
        size = 16 * len(items)
        base = self._alloc(size + sum(len(n) + len(v) for n, v in items), 4)
        parts, blob, offset = [], [], base + size
        for name, value in items:
            parts.append(struct.pack("<IIII", offset, len(name), offset + len(name), len(value)))
            blob += (name, value)
            offset += len(name) + len(value)
        data = b"".join(parts) + b"".join(blob)
        if data:
            self._write(base, data)
        return base, len(items)

    # serving -------------------------------------------------------------------------------------------------
    def serve(
        self, binding: Binding, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> Response:
        """One request through `wasi:http/incoming-handler.handle` on the bound instance; its response."""
        binding.table.clear()
        binding.response = binding.error = None
        self._local.binding = binding
        try:
            fields = self._add(Fields([(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers], False))
            request = self._add(Request(method, target, fields, bytes(body)))
            outparam = self._add("outparam")
            binding.instance.call(HANDLE, request, outparam)
        finally:
            self._local.binding = None
            binding.table.clear()
        if binding.error is not None:
            raise HandlerFailed(binding.error)
        response = binding.response
        if response is None:
            raise BadResponse("handler returned without setting a response (response-outparam.set was not called)")
        headers_out = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.items]
        data = b"".join(response.body.chunks) if response.body is not None else b""
        return Response(response.status, headers_out, data)

    # the imports ---------------------------------------------------------------------------------------------
    def imports(self, module: Any) -> dict[str, dict[str, Any]]:
        """{module: {name: callable}} for every import of `module` (UsageError for one this host lacks); the
        same dict for the same module, so an engine can keep the linked module."""
        known = self._imports.get(module.sha256)
        if known is not None:
            return known
        table = self._functions()
        out: dict[str, dict[str, Any]] = {}
        missing = []
        for imp in module.imports:
            fn = table.get((imp.module, imp.name))
            if fn is None:
                missing.append(f"{imp.module}.{imp.name}")
            else:
                out.setdefault(imp.module, {})[imp.name] = fn
        if not missing:
            self._imports[module.sha256] = out
        if missing:
            raise UsageError(
                f"{module.name} imports {', '.join(missing[:4])}{'...' if len(missing) > 4 else ''}: the lab's "
                "wasi:http host implements the proxy world's request/response, streams, clocks, random and console"
            )
        return out

    def _functions(self) -> dict[tuple[str, str], Any]:
        get, add, drop = self._get, self._add, self._drop

        def method(req: int, ret: int) -> None:
            name = get(req, Request).method.upper()
            if name in METHODS:
                self._write(ret, bytes([METHODS.index(name)]))
            else:
                data = name.encode()
                self._write(ret, b"\x09\0\0\0" + _I32x2.pack(self._put(data), len(data)))

        def path_with_query(req: int, ret: int) -> None:
            data = get(req, Request).target.encode("latin-1")
            self._write(ret, b"\x01\0\0\0" + _I32x2.pack(self._put(data), len(data)))

        def scheme(req: int, ret: int) -> None:
            get(req, Request)
            self._write(ret, b"\x01\0\0\0\x00")  # some(HTTP)

        def authority(req: int, ret: int) -> None:
            request = get(req, Request)
            host = next((v for k, v in get(request.headers, Fields).items if k == b"host"), None)
            if host is None:
                self._write(ret, b"\x00")
            else:
                self._write(ret, b"\x01\0\0\0" + _I32x2.pack(self._put(host), len(host)))

        def request_headers(req: int) -> int:
            source = get(get(req, Request).headers, Fields)
            return add(Fields(list(source.items), False))

        def consume(req: int, ret: int) -> None:
            request = get(req, Request)
            if request.consumed:
                self._result(ret, False)
                return
            request.consumed = True
            self._result(ret, True, _U32.pack(add(InputStream(request.body))))  # the body, as a stream source

        def body_stream(body: int, ret: int) -> None:
            source = get(body, InputStream)
            self._result(ret, True, _U32.pack(add(InputStream(source.data))))

        def read(stream: int, length: int, ret: int) -> None:
            s = get(stream, InputStream)
            if s.pos >= len(s.data):
                self._write(ret, b"\x01\0\0\0\x01")  # err(closed)
                return
            chunk = s.data[s.pos : s.pos + max(0, length)]
            s.pos += len(chunk)
            self._write(ret, b"\x00\0\0\0" + _I32x2.pack(self._put(chunk), len(chunk)))

        def skip(stream: int, length: int, ret: int) -> None:
            s = get(stream, InputStream)
            if s.pos >= len(s.data):
                self._write(ret, b"\x01\0\0\0\0\0\0\0\x01")
                return
            n = min(max(0, length), len(s.data) - s.pos)
            s.pos += n
            self._write(ret, b"\x00" + b"\0" * 7 + struct.pack("<Q", n))

        def fields_new() -> int:
            return add(Fields())

        def from_list(ptr: int, count: int, ret: int) -> None:
            raw = self._read(ptr, count * 16)
            items = []
            for i in range(count):
                np, nl, vp, vl = struct.unpack_from("<IIII", raw, i * 16)
                name, value = self._read(np, nl), self._read(vp, vl)
                if not _valid_name(name) or b"\n" in value or b"\r" in value:
                    self._write(ret, b"\x01\x00")  # err(invalid-syntax)
                    return
                if name.lower() in FORBIDDEN:
                    self._write(ret, b"\x01\x01")  # err(forbidden)
                    return
                items.append((name.lower(), value))
            self._result(ret, True, _U32.pack(add(Fields(items))))

        def entries(handle: int, ret: int) -> None:
            self._write(ret, _I32x2.pack(*self._string_list(get(handle, Fields).items)))

        def fields_get(handle: int, ptr: int, length: int, ret: int) -> None:
            name = self._read(ptr, length).lower()
            values = [v for k, v in get(handle, Fields).items if k == name]
            blob_ptr = self._put(b"".join(values))
            parts, offset = [], blob_ptr
            for v in values:
                parts.append(_I32x2.pack(offset, len(v)))
                offset += len(v)
            array = b"".join(parts)
            list_ptr = self._alloc(len(array), 4)
            if array:
                self._write(list_ptr, array)
            self._write(ret, _I32x2.pack(list_ptr, len(values)))

        def fields_has(handle: int, ptr: int, length: int) -> int:
            name = self._read(ptr, length).lower()
            return int(any(k == name for k, _ in get(handle, Fields).items))

        def _change(handle: int, ret: int, name: bytes, values: list[bytes] | None, replace: bool) -> None:
            f = get(handle, Fields)
            name = name.lower()
            if not f.mutable:
                self._write(ret, b"\x01\x02")  # err(immutable)
                return
            if not _valid_name(name) or any(b"\n" in v or b"\r" in v for v in values or ()):
                self._write(ret, b"\x01\x00")
                return
            if name in FORBIDDEN:
                self._write(ret, b"\x01\x01")
                return
            if replace:
                f.items = [(k, v) for k, v in f.items if k != name]
            f.items += [(name, v) for v in values or ()]
            self._write(ret, b"\x00\x00")

        def fields_set(handle: int, np: int, nl: int, lp: int, count: int, ret: int) -> None:
            raw = self._read(lp, count * 8)
            values = [self._read(*struct.unpack_from("<II", raw, i * 8)) for i in range(count)]
            _change(handle, ret, self._read(np, nl), values, True)

        def fields_append(handle: int, np: int, nl: int, vp: int, vl: int, ret: int) -> None:
            _change(handle, ret, self._read(np, nl), [self._read(vp, vl)], False)

        def fields_delete(handle: int, np: int, nl: int, ret: int) -> None:
            _change(handle, ret, self._read(np, nl), None, True)

        def fields_clone(handle: int) -> int:
            return add(Fields(list(get(handle, Fields).items)))

        def response_new(headers: int) -> int:
            f = get(headers, Fields)
            drop(headers)  # the response takes ownership of its headers
            return add(OutgoingResponse(Fields(f.items, True)))

        def set_status(resp: int, status: int) -> int:
            if not 100 <= status <= 599:
                return 1
            get(resp, OutgoingResponse).status = status
            return 0

        def status_code(resp: int) -> int:
            return get(resp, OutgoingResponse).status

        def response_headers(resp: int) -> int:
            return add(get(resp, OutgoingResponse).headers)  # a child handle: the response's own fields

        def response_body(resp: int, ret: int) -> None:
            r = get(resp, OutgoingResponse)
            if r.body is not None:
                self._result(ret, False)
                return
            r.body = OutgoingBody()
            self._result(ret, True, _U32.pack(add(r.body)))

        def body_write(body: int, ret: int) -> None:
            self._result(ret, True, _U32.pack(add(OutputStream(get(body, OutgoingBody)))))

        def body_finish(body: int, has_trailers: int, trailers: int, ret: int) -> None:
            get(body, OutgoingBody).finished = True
            drop(body)  # finish takes ownership of the body
            self._write(ret, b"\x00")

        def outparam_set(param: int, tag: int, a: int, b: int, c: int, d: int, e: int, f: int, g: int) -> None:
            if self._b.table.get(param) != "outparam":
                raise UsageError(f"response-outparam.set on handle {param}, which is not the response-outparam")
            drop(param)
            if tag == 0:
                self._b.response = get(a, OutgoingResponse)
                drop(a)  # set takes ownership of the response
                self._b.response.headers.mutable = False
            else:
                self._b.error = f"the handler answered with wasi:http error-code {a & 0xFF}"

        def check_write(stream: int, ret: int) -> None:
            get(stream, OutputStream)
            self._write(ret, b"\x00" + b"\0" * 7 + struct.pack("<Q", 1 << 20))

        def write(stream: int, ptr: int, length: int, ret: int) -> None:
            s = get(stream, OutputStream)
            data = self._read(ptr, length)
            if s.body is None:
                if sum(map(len, self._b.log)) < self.LOG_LIMIT:
                    self._b.log.append(data)
            else:
                if s.body.size + len(data) > MAX_RESPONSE:
                    raise BadResponse(f"handler wrote more than the {MAX_RESPONSE >> 20} MiB a response may have")
                s.body.chunks.append(data)
                s.body.size += len(data)
            self._write(ret, b"\x00")

        def flush(stream: int, ret: int) -> None:
            get(stream, OutputStream)
            self._write(ret, b"\x00")

        def pollable(handle: int) -> int:
            return add("pollable")

        def poll(ptr: int, count: int, ret: int) -> None:
            ready = b"".join(_U32.pack(i) for i in range(count))
            out = self._alloc(len(ready), 4)
            if ready:
                self._write(out, ready)
            self._write(ret, _I32x2.pack(out, count))

        def console() -> int:
            return add(OutputStream(None))

        def stdin() -> int:
            return add(InputStream(b""))

        def wall_now(ret: int) -> None:
            ns = time.time_ns()
            self._write(ret, struct.pack("<QI", ns // 1_000_000_000, ns % 1_000_000_000))

        def random_bytes(length: int, ret: int) -> None:
            data = os.urandom(min(max(0, length), 1 << 20))
            self._write(ret, _I32x2.pack(self._put(data), len(data)))

        def debug_string(handle: int, ret: int) -> None:
            data = b"stream error"
            self._write(ret, _I32x2.pack(self._put(data), len(data)))

        def no_outgoing(req: int, opts: int, has: int, ret: int) -> None:
            raise UsageError("outgoing HTTP requests are not available on the lab's platform (no network)")

        t, s = TYPES, STREAMS
        table: dict[tuple[str, str], Any] = {
            (t, "[method]incoming-request.method"): method,
            (t, "[method]incoming-request.path-with-query"): path_with_query,
            (t, "[method]incoming-request.scheme"): scheme,
            (t, "[method]incoming-request.authority"): authority,
            (t, "[method]incoming-request.headers"): request_headers,
            (t, "[method]incoming-request.consume"): consume,
            (t, "[method]incoming-body.stream"): body_stream,
            (t, "[constructor]fields"): fields_new,
            (t, "[static]fields.from-list"): from_list,
            (t, "[method]fields.entries"): entries,
            (t, "[method]fields.get"): fields_get,
            (t, "[method]fields.has"): fields_has,
            (t, "[method]fields.set"): fields_set,
            (t, "[method]fields.append"): fields_append,
            (t, "[method]fields.delete"): fields_delete,
            (t, "[method]fields.clone"): fields_clone,
            (t, "[constructor]outgoing-response"): response_new,
            (t, "[method]outgoing-response.set-status-code"): set_status,
            (t, "[method]outgoing-response.status-code"): status_code,
            (t, "[method]outgoing-response.headers"): response_headers,
            (t, "[method]outgoing-response.body"): response_body,
            (t, "[method]outgoing-body.write"): body_write,
            (t, "[static]outgoing-body.finish"): body_finish,
            (t, "[static]response-outparam.set"): outparam_set,
            (s, "[method]input-stream.read"): read,
            (s, "[method]input-stream.blocking-read"): read,
            (s, "[method]input-stream.skip"): skip,
            (s, "[method]input-stream.blocking-skip"): skip,
            (s, "[method]input-stream.subscribe"): pollable,
            (s, "[method]output-stream.check-write"): check_write,
            (s, "[method]output-stream.write"): write,
            (s, "[method]output-stream.blocking-write-and-flush"): write,
            (s, "[method]output-stream.flush"): flush,
            (s, "[method]output-stream.blocking-flush"): flush,
            (s, "[method]output-stream.subscribe"): pollable,
            ("wasi:io/poll@0.2.0", "[method]pollable.ready"): lambda handle: 1,
            ("wasi:io/poll@0.2.0", "[method]pollable.block"): lambda handle: None,
            ("wasi:io/poll@0.2.0", "poll"): poll,
            ("wasi:io/error@0.2.0", "[method]error.to-debug-string"): debug_string,
            ("wasi:cli/stdout@0.2.0", "get-stdout"): console,
            ("wasi:cli/stderr@0.2.0", "get-stderr"): console,
            ("wasi:cli/stdin@0.2.0", "get-stdin"): stdin,
            ("wasi:clocks/monotonic-clock@0.2.0", "now"): time.monotonic_ns,
            ("wasi:clocks/monotonic-clock@0.2.0", "resolution"): lambda: 1,
            ("wasi:clocks/monotonic-clock@0.2.0", "subscribe-instant"): pollable,
            ("wasi:clocks/monotonic-clock@0.2.0", "subscribe-duration"): pollable,
            ("wasi:clocks/wall-clock@0.2.0", "now"): wall_now,
            ("wasi:clocks/wall-clock@0.2.0", "resolution"): lambda ret: self._write(ret, struct.pack("<QI", 0, 1)),
            ("wasi:random/random@0.2.0", "get-random-u64"): lambda: int.from_bytes(os.urandom(8), "little"),
            ("wasi:random/random@0.2.0", "get-random-bytes"): random_bytes,
            ("wasi:http/outgoing-handler@0.2.0", "handle"): no_outgoing,
        }
        for interface in (t, s, "wasi:io/poll@0.2.0", "wasi:io/error@0.2.0"):
            for resource in (
                "fields",
                "incoming-request",
                "incoming-body",
                "outgoing-response",
                "outgoing-body",
                "response-outparam",
                "future-trailers",
                "input-stream",
                "output-stream",
                "pollable",
                "error",
                "request-options",
                "outgoing-request",
                "incoming-response",
                "future-incoming-response",
            ):
                table.setdefault((interface, f"[resource-drop]{resource}"), drop)
        return table


def _valid_name(name: bytes) -> bool:
    return bool(name) and all(33 <= c <= 126 and c not in b'"(),/:;<=>?@[\\]{}' for c in name)
