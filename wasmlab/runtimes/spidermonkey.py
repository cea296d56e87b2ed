"""spidermonkey: SpiderMonkey (Firefox's engine) through a long-lived `js` shell worker, one per tier.

Variants pick SpiderMonkey's Wasm compilers (`--wasm-compiler=`; shell flags are per process, so each variant
has its own worker):

    default    baseline first, hot code re-compiled by Ion (`baseline+ion`)
    baseline   the baseline compiler only
    ion        the optimizing compiler Ion only

The worker is `worker/scripts/wasmcore.js` (the protocol every JS engine worker speaks) run by
`worker/scripts/jsshell_worker.js`; WASI preview 1 is the core's shim (args, env, stdin, stdout/stderr,
clocks, random; no files: `dirs=` is refused). Limits, values and traps as every JS worker engine
(`worker.jsshell.JsShellRuntime`). SpiderMonkey says "index out of bounds" for memory and table accesses
alike: the trap code comes from the instruction at the trapping offset (`worker.jscodec.trap_codes`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache

from ..errors import RuntimeUnavailable
from .worker.jsshell import SCRIPTS, JsShellRuntime

__all__ = ["SpiderMonkeyRuntime", "spidermonkey_version"]

FLAGS: dict[str, tuple[str, ...]] = {
    "default": (),
    "baseline": ("--wasm-compiler=baseline",),
    "ion": ("--wasm-compiler=ion",),
}
SHELLS = ("js", "js128", "js115", "js102", "js91")  # Debian names the shell after its ESR release


def js_executable() -> str | None:
    return os.environ.get("WASMLAB_SPIDERMONKEY") or next(filter(None, map(shutil.which, SHELLS)), None)


@cache
def spidermonkey_version(shell: str) -> str:
    """The shell's SpiderMonkey release ("102.15.1" from "JavaScript-C102.15.1"); "" if it does not say."""
    try:
        out = subprocess.run([shell, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    match = re.search(r"JavaScript-C([\d.]+)", out)
    return match.group(1) if match else ""


class SpiderMonkeyRuntime(JsShellRuntime):
    """SpiderMonkey through a JSON-lines `js` shell worker; `variant` picks the compilers."""

    name = "spidermonkey"
    variants = tuple(FLAGS)
    install = "apt-get install libmozjs-102-dev"
    worker_script = SCRIPTS / "jsshell_worker.js"
    preopens = False  # the shell has no file system for WASI

    def unavailable_reason(self) -> str | None:
        shell = js_executable()
        if not shell:
            return "the SpiderMonkey shell (js102, from libmozjs-102-dev) is not installed"
        if not spidermonkey_version(shell):
            return f"{shell} is not a SpiderMonkey shell (`{shell} --version` does not say JavaScript-C)"
        return None

    def version(self) -> str:
        shell = js_executable()
        version = spidermonkey_version(shell) if shell else ""
        return f"SpiderMonkey {version}" if version else "SpiderMonkey"

    def worker_argv(self) -> list[str]:
        shell = js_executable()
        if not shell:
            raise RuntimeUnavailable(self.label, "the SpiderMonkey shell is not installed", self.install)
        flags = FLAGS[self.variant or self.variants[0]]
        return [shell, *flags, "-f", str(SCRIPTS / "wasmcore.js"), "-f", str(self.worker_script)]
