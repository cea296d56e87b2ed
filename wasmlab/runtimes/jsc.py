"""jsc: JavaScriptCore (Safari's engine, from WebKitGTK) through a long-lived `jsc` shell worker, one per tier.

Variants pick JSC's Wasm tiers (shell flags are per process, so each variant has its own worker):

    default    JSC's normal tiering: the in-place interpreter (IPInt), then BBQ (baseline JIT), then OMG
    bbq        IPInt and BBQ only (`--useOMGJIT=0`)
    ipint      the in-place interpreter only (`--useBBQJIT=0 --useOMGJIT=0`)

The worker is `worker/scripts/wasmcore.js` (the protocol every JS engine worker speaks) run by
`worker/scripts/jsshell_worker.js`; WASI preview 1 is the core's shim (args, env, stdin, stdout/stderr,
clocks, random; no files: `dirs=` is refused). Limits, values and traps as every JS worker engine
(`worker.jsshell.JsShellRuntime`). JSC's stack traces name functions but give no code offsets, so trap frames
here are names only.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from functools import cache

from ..errors import RuntimeUnavailable
from .worker.jsshell import SCRIPTS, JsShellRuntime

__all__ = ["JscRuntime", "webkitgtk_version"]

FLAGS: dict[str, tuple[str, ...]] = {
    "default": (),
    "bbq": ("--useOMGJIT=0",),
    "ipint": ("--useBBQJIT=0", "--useOMGJIT=0"),
}
LIBRARY = "libjavascriptcoregtk-4.0.so.18"  # what Debian's `jsc` links; its version is WebKitGTK's


def jsc_executable() -> str | None:
    return os.environ.get("WASMLAB_JSC") or shutil.which("jsc")


@cache
def webkitgtk_version() -> str:
    """The WebKitGTK release of the JavaScriptCore library the shell runs on (e.g. "2.50.6"); "" if unknown."""
    try:
        lib = ctypes.CDLL(LIBRARY)
    except OSError:
        return ""
    return f"{lib.jsc_get_major_version()}.{lib.jsc_get_minor_version()}.{lib.jsc_get_micro_version()}"


class JscRuntime(JsShellRuntime):
    """JavaScriptCore through a JSON-lines `jsc` worker; `variant` picks the tiers."""

    name = "jsc"
    variants = tuple(FLAGS)
    install = "apt-get install libjavascriptcoregtk-4.0-bin"
    worker_script = SCRIPTS / "jsshell_worker.js"
    preopens = False  # the shell has no file system for WASI

    def unavailable_reason(self) -> str | None:
        if not jsc_executable():
            return "the JavaScriptCore shell `jsc` is not installed"
        return None

    def version(self) -> str:
        version = webkitgtk_version()
        return f"JavaScriptCore (WebKitGTK {version})" if version else "JavaScriptCore"

    def worker_argv(self) -> list[str]:
        jsc = jsc_executable()
        if not jsc:
            raise RuntimeUnavailable(self.label, "the JavaScriptCore shell `jsc` is not installed", self.install)
        return [jsc, *FLAGS[self.variant or self.variants[0]], str(SCRIPTS / "wasmcore.js"), str(self.worker_script)]
