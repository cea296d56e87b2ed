"""node: V8's WebAssembly through a long-lived node worker process, one per tier variant.

Variants pick V8's compilers (node flags are per process, so each variant has its own worker):

    default    node's normal tiering: Liftoff (baseline) first, hot functions re-compiled by TurboFan
    liftoff    Liftoff only (`--liftoff --no-wasm-tier-up --no-wasm-dynamic-tiering`)
    turbofan   TurboFan only (`--no-liftoff`)

The worker (`worker/scripts/node_worker.mjs`, no npm dependencies) compiles each module once per process (sent by
sha256), runs WASI commands through `node:wasi` with argv (`[module.name, *argv]`), env, stdin, preopened dirs
and captured, capped stdout/stderr, keeps instances under handles and offers the built-in `wasmlab` host
module (its key-value store lives in the worker: `kv_items()`, `kv_clear()`; a worker restart empties it).

Timings are measured inside the worker, never across the pipe, with wasmtime's convention: "compile" is what
this run spent compiling (0.0 when the worker had the compiled module; `compiled_ms[sha256]` keeps the real
figure), "instantiate" includes a reactor's `_initialize`, "call" or "run" is the guest's own time.

Limits, values and traps are those of every JS worker engine (`worker.jsshell.JsShellRuntime`): the parent
kills the worker past `timeout` (a guest in a loop blocks node's event loop), memories are capped inside V8 by
lowering their declared maxima, and the worker's resident memory is capped at `max_memory` + what it already
holds (at least `NODE_BASELINE_RSS`). Trap frames are "name (0xOFFSET)" in the module's own bytes.

`run()` records traps, exit codes and exceeded limits in the RunResult; `NodeInstance.call` raises them.
Instances living in a killed worker are lost: using one raises `InstanceLost` saying why.

Components run through `jco transpile`, one node process per run (`node_component`): `run` and `compare`, not
kept instances. Not here: fuel, Python host functions (the guest runs in another process: use the built-in
`wasmlab` module).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from typing import TYPE_CHECKING

from ..errors import RuntimeUnavailable
from . import node_component
from .base import RunOptions, RunResult
from .worker.jscodec import trap_code
from .worker.jsshell import SCRIPTS, JsInstance, JsShellRuntime

if TYPE_CHECKING:
    from ..module import Module

__all__ = ["NodeInstance", "NodeRuntime", "trap_code"]

WORKER_SCRIPT = SCRIPTS / "node_worker.mjs"
MIN_NODE_MAJOR = 18  # node:wasi with returnOnExit and fd options
# V8 flags per variant. On node 20 (V8 11.3) `--liftoff --no-wasm-tier-up` alone still tiers hot functions up
# to TurboFan (dynamic tiering): `--no-wasm-dynamic-tiering` makes it Liftoff only (checked with
# --trace-wasm-compilation-times). Flags this node does not know are dropped (node refuses unknown flags).
FLAGS: dict[str, tuple[str, ...]] = {
    "default": (),
    "liftoff": ("--liftoff", "--no-wasm-tier-up", "--no-wasm-dynamic-tiering"),
    "turbofan": ("--no-liftoff",),
}
# Resident memory the worker may use besides the guest's linear memory: node idles at ~45 MiB; compiled code
# and V8's heap for large modules (Go: ~2 MB of Wasm) add tens of MiB.
NODE_BASELINE_RSS = 128 << 20


def node_executable() -> str | None:
    return os.environ.get("WASMLAB_NODE") or shutil.which("node")


@cache
def node_versions(node: str) -> tuple[str, str]:
    """(node version, V8 version) of the node at `node`, e.g. ("v20.20.2", "11.3.244.8-node.38")."""
    out = subprocess.run(
        [node, "-p", "process.version + ' ' + process.versions.v8"], capture_output=True, text=True, timeout=30
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or f"exit status {out.returncode}")
    version, _, v8 = out.stdout.strip().partition(" ")
    return version, v8


@cache
def v8_flag_names(node: str) -> frozenset[str]:
    """The V8 flags this node accepts, without dashes or "no-" (e.g. "wasm-tier-up")."""
    out = subprocess.run([node, "--v8-options"], capture_output=True, text=True, timeout=30)
    return frozenset(re.findall(r"^\s+--([a-z0-9-]+)", out.stdout, re.MULTILINE))


def supported_flags(node: str, flags: tuple[str, ...]) -> list[str]:
    known = v8_flag_names(node)
    return [f for f in flags if f.removeprefix("--").removeprefix("no-") in known]


class NodeRuntime(JsShellRuntime):
    """V8 (node) through a JSON-lines worker process; `variant` picks the compiler tiers."""

    name = "node"
    variants = ("default", "liftoff", "turbofan")
    install = "apt-get install nodejs"
    worker_script = WORKER_SCRIPT
    capabilities = JsShellRuntime.capabilities | {"components"}

    # availability ---------------------------------------------------------------------------------------
    def unavailable_reason(self) -> str | None:
        node = node_executable()
        if not node:
            return "node is not installed"
        try:
            version, _ = node_versions(node)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            return f"{node} does not run: {exc}"
        match = re.match(r"v(\d+)", version)
        if not match or int(match.group(1)) < MIN_NODE_MAJOR:
            return f"node {version} is too old: wasmlab needs node {MIN_NODE_MAJOR} or newer (node:wasi)"
        if not WORKER_SCRIPT.is_file():
            return f"the worker script {WORKER_SCRIPT} is missing"
        return None

    def version(self) -> str:
        info = self.worker_info
        if info:
            version, v8 = info.get("node", ""), info.get("v8", "")
        else:
            node = node_executable()
            if not node:
                return ""
            try:
                version, v8 = node_versions(node)
            except (OSError, RuntimeError, subprocess.SubprocessError):
                return ""
        return f"node {version} (V8 {v8.split('-')[0]})"

    @property
    def flags(self) -> tuple[str, ...]:
        return FLAGS[self.variant or self.variants[0]]

    # worker ---------------------------------------------------------------------------------------------
    def worker_argv(self) -> list[str]:
        node = node_executable()
        if not node:
            raise RuntimeUnavailable(self.label, "node is not installed", self.install)
        return [node, "--no-warnings", *supported_flags(node, self.flags), str(self.worker_script)]

    def baseline_rss(self) -> int:
        return NODE_BASELINE_RSS

    # components -----------------------------------------------------------------------------------------
    def run(self, module: Module, options: RunOptions) -> RunResult:
        if module.is_component:
            node = node_executable()
            if not node:
                raise RuntimeUnavailable(self.label, "node is not installed", self.install)
            flags = supported_flags(node, (*self.flags, *node_component.COMPONENT_FLAGS))
            return node_component.run_component(self, module, options, node, flags)
        return super().run(module, options)

    def instantiate(self, module: Module, options: RunOptions) -> NodeInstance:
        if module.is_component:
            raise RuntimeUnavailable(self.label, "components run one call per process here: use run(), or wasmtime "
                                     "for kept component instances")
        return super().instantiate(module, options)


NodeInstance = JsInstance  # an instance kept in the node worker under a handle
