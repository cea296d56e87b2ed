"""The wasmer-sdk engine worker: JSON lines on stdin/stdout (`wasmlab.runtimes.worker.process.Worker`), each
run on an in-process `WasmerSdkRuntime` (its runs stay in this process, which the parent kills after a limit).
Started by `wasmlab/runtimes/wasmer_sdk.py` with the directory holding `wasmlab` on PYTHONPATH."""

from __future__ import annotations

import json
import os
import sys

from wasmlab.errors import ErrorKind, LimitExceeded, UsageError, WasmlabError
from wasmlab.module import Module
from wasmlab.runtimes.base import RunOptions
from wasmlab.runtimes.wasmer_sdk import WasmerSdkRuntime
from wasmlab.runtimes.worker.protocol import b64, unb64


def serve() -> None:
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # nothing the SDK prints can corrupt an answer
    runtime, modules = WasmerSdkRuntime(isolated=False), {}
    channel.write(json.dumps({"ready": True, "version": runtime.version()}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "load":
            modules[request["sha"]] = unb64(request["wasm"])
            channel.write('{"ok": true}\n')
            continue
        options = RunOptions(
            argv=tuple(request["argv"]),
            env=request["env"],
            stdin=unb64(request["stdin"]),
            timeout=request["timeout"],
            max_memory=request["max_memory"],
            max_output=request["max_output"],
        )
        try:
            result = runtime.run(Module(modules[request["sha"]], name=request["name"]), options)
            answer = {
                "ok": True,
                "stdout": b64(result.stdout),
                "stderr": b64(result.stderr),
                "exit_code": result.exit_code,
                "trap": result.trap,
                "frames": result.trap_frames,
                "timings": result.timings,
            }
        except (LimitExceeded, UsageError) as exc:
            answer = {"ok": False, "kind": exc.kind, "error": str(exc)}
        except Exception as exc:
            message = str(exc) if isinstance(exc, WasmlabError) else f"{runtime.label}: {type(exc).__name__}: {exc}"
            answer = {"ok": False, "kind": ErrorKind.ERROR, "error": message}
        channel.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    serve()
