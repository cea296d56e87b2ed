"""wasmer: wasmer-python 1.1 (Universal engine) in a worker process on CPython 3.10, one per compiler.

Variants are wasmer's compilers: "cranelift" (the default), "singlepass" (fast compile, slower code, no
multi-value) and "llvm" (slow compile, fastest code). wasmer-python has wheels for CPython 3.10 only (on 3.11+
pip installs a stub), so the worker (`worker/scripts/wasmer_worker.py`, standard library + wasmer only) runs on the
Python in `<repo>/.venv-py310` that the set-up creates, or on `$WASMLAB_WASMER_PYTHON`.

wasmer holds the GIL while the guest runs and its WASI writes to the real fds 1 and 2: the worker protects its
protocol channel and captures that output per run; time and memory limits are enforced from here by killing
the worker. Importing wasmer's LLVM compiler aborts the process unless libtinfo.so.5 is loaded first, so the
LLVM variant is first probed in a throwaway process: a failure makes it unavailable, never kills the kernel.

Not here: fuel, Python host functions (the guest runs in another process: use the built-in `wasmlab` host
module), components (use wasmtime).
"""

from __future__ import annotations

import os
import subprocess
import threading
from functools import cache
from pathlib import Path

from .worker.python import SCRIPTS, PyWorkerInstance, PyWorkerRuntime

__all__ = ["WasmerInstance", "WasmerRuntime"]

WasmerInstance = PyWorkerInstance
REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-py310"
PACKAGES = {
    "cranelift": "wasmer_compiler_cranelift",
    "singlepass": "wasmer_compiler_singlepass",
    "llvm": "wasmer_compiler_llvm",
}
SETUP_HINT = "run the set-up (make setup, or scripts/setup.sh), which creates .venv-py310"
PROBE_TIMEOUT = 120.0
_probe_lock = threading.Lock()


def wasmer_python() -> Path | None:
    """The Python 3.10 that runs the wasmer worker: $WASMLAB_WASMER_PYTHON, else <repo>/.venv-py310."""
    env = os.environ.get("WASMLAB_WASMER_PYTHON")
    path = Path(env).expanduser() if env else VENV / "bin" / "python"
    return path if path.exists() else None


def _site_packages(python: Path) -> list[Path]:
    venv = python.parent.parent
    return sorted(venv.glob("lib/python3*/site-packages"))


@cache
def installed(python: Path, package: str) -> str | None:
    """The version of `package` (a distribution name with underscores) in `python`'s environment."""
    for site in _site_packages(python):
        for dist in site.glob(f"{package}-*.dist-info"):
            return dist.name[len(package) + 1 : -len(".dist-info")]
    try:  # not a venv layout: ask the interpreter
        out = subprocess.run(
            [str(python), "-c", f"from importlib.metadata import version; print(version({package!r}))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@cache
def python_version(python: Path) -> str:
    for site in _site_packages(python):
        return site.parent.name.removeprefix("python")
    try:
        out = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


@cache
def probe(python: Path, variant: str) -> str | None:
    """None when `variant` compiles and runs a tiny module in a throwaway worker process, else why not."""
    script = SCRIPTS / "wasmer_worker.py"
    try:
        out = subprocess.run(
            [str(python), str(script), "--probe", variant], capture_output=True, text=True, timeout=PROBE_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return f"the {variant} compiler probe did not finish in {PROBE_TIMEOUT:g} s"
    except OSError as exc:
        return f"{python} does not run: {exc}"
    if out.returncode == 0:
        return None
    tail = (out.stderr.strip().splitlines() or [""])[-1]
    if variant == "llvm" and (out.returncode < 0 or "libtinfo" in out.stderr):
        how = f"killed by signal {-out.returncode}" if out.returncode < 0 else tail
        return (
            f"wasmer's LLVM compiler cannot load here ({how}): it needs libtinfo.so.5; install it with "
            "`apt-get install libtinfo5` (or `patchelf --replace-needed libtinfo.so.5 libtinfo.so.6` on the "
            "bundled library)"
        )
    return f"the {variant} compiler probe failed ({tail or f'exit status {out.returncode}'})"


class WasmerRuntime(PyWorkerRuntime):
    """wasmer-python 1.1 with the Universal engine and one compiler per variant, in a Python 3.10 worker."""

    name = "wasmer"
    variants = ("cranelift", "singlepass", "llvm")
    install = (
        "python3.10 -m venv .venv-py310 && .venv-py310/bin/pip install -r scripts/wasmer-requirements.txt "
        "(what `make setup` does); or set WASMLAB_WASMER_PYTHON"
    )
    worker_script = SCRIPTS / "wasmer_worker.py"

    def worker_python(self) -> str | None:
        python = wasmer_python()
        return str(python) if python else None

    def worker_argv(self) -> list[str]:
        return [*super().worker_argv(), self.variant or self.variants[0]]

    def unavailable_reason(self) -> str | None:
        python = wasmer_python()
        if python is None:
            where = os.environ.get("WASMLAB_WASMER_PYTHON") or str(VENV / "bin" / "python")
            return f"wasmer-python has wheels for CPython 3.10 only and {where} does not exist; {SETUP_HINT}"
        version = python_version(python)
        if version != "3.10":
            return (
                f"wasmer-python has wheels for CPython 3.10 only and {python} is Python {version or '?'} (on 3.11+ "
                f"pip installs a stub that does not import); {SETUP_HINT}"
            )
        if installed(python, "wasmer") is None:
            return f"wasmer-python is not installed for {python} (it has wheels for CPython 3.10 only); {SETUP_HINT}"
        package = PACKAGES[self.variant or self.variants[0]]
        if installed(python, package) is None:
            return f"{package.replace('_', '-')} is not installed for {python}; {SETUP_HINT}"
        if not self.worker_script.is_file():
            return f"the worker script {self.worker_script} is missing"
        if self.variant == "llvm":
            with _probe_lock:
                return probe(python, self.variant)
        return None

    def version(self) -> str:
        if self.worker_info.get("version"):
            return self.worker_info["version"]
        python = wasmer_python()
        version = installed(python, "wasmer") if python else None
        return f"wasmer-python {version} ({self.variant})" if version else ""

    def baseline_rss(self) -> int:
        return 64 << 20
