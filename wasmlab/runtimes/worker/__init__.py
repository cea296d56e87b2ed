"""The engine kit for engines that run guests outside this process: a worker process (or the browser page's Web
Worker) spoken to in JSON lines, with the limits the guest cannot escape enforced from here.

    protocol.py       the wire format: base64 bytes, timings, the answer kinds only workers say
    process.py        `Worker`: one engine process, a request at a time; kills it past the time limit or the
                      resident-memory cap (LimitExceeded) and reports a death (EngineCrashed)
    backend.py        `WorkerRuntime` / `WorkerInstance`: a backend whose engine lives in a `Worker`: starts it,
                      caps its memory per request, frees dropped instances, loses instances of a stopped worker
                      (InstanceLost), reads its key-value store
    jscodec.py        values and traps of JavaScript's WebAssembly API (node, JS shells, the browser page)
    jsshell.py        `JsShellRuntime`: an engine in a JS shell process speaking the node worker protocol
    python.py         `PyWorkerRuntime`: an engine in a Python process running `scripts/pyserve.py`
    browser_comm.py   the comm to the JupyterLab page, whose Web Worker runs the browser engine
    scripts/          what runs inside the workers: wasmcore.js (the JS engines' protocol) with its adapters
                      node_worker.mjs and jsshell_worker.js (jsc, SpiderMonkey); pyserve.py (+ wasm3_worker.py,
                      wasmer_worker.py)

The protocol. One JSON object per line each way; the worker first says {"ready": true, ...versions}. Requests
carry "op"; module bytes travel once per process ({"op": "load", "sha", "wasm": base64}) and by sha256 after.

    load         {sha, wasm}                                        -> {ok, compile_ms}
    run          {sha, invoke|null, args, argv, env, stdin, dirs, max_output, max_memory}
                                                   -> {result | trap, stdout, stderr, exit_code, timings}
    instantiate  {sha, argv, env, stdin, dirs, max_output, max_memory}  -> {handle | id, exports, timings}
    call         {handle | id, name, args}                          -> like run
    read / write / memory_size  {handle | id, address, length | data, memory}
    close        {handle | id} or {handles: [...]};  kv_clear / kv_items  -> {ok} / {items: {b64 key: b64 value}}

A failed answer is {"error": one line, "kind": an `errors.ErrorKind` or `protocol.LINK` / `CANCELLED`}; a trap
is {"trap": message, "frames": [{name, index, offset}]}; timings are milliseconds measured inside the worker.
Values are JSON numbers (i64 exact), non-finite floats tagged (`jscodec` and `python` say how, per family).

Adding an engine that runs in a worker is a backend file plus its worker script: subclass `JsShellRuntime`
(give `worker_argv()`: the shell, its flags, a script speaking the node worker protocol) or `PyWorkerRuntime`
(give `worker_python()` and a script defining a `pyserve.Engine`), and see `wasmlab.runtimes` for the rest.
"""

from __future__ import annotations

from ...procfs import rss_bytes
from .backend import WorkerInstance, WorkerRuntime
from .process import Worker
from .protocol import CONTROL_TIMEOUT, b64, unb64

__all__ = ["CONTROL_TIMEOUT", "Worker", "WorkerInstance", "WorkerRuntime", "b64", "rss_bytes", "unb64"]
