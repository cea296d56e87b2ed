"""The kernel suite: one C file (`kernels/suite.c`) built three ways from the same text at the same -O level.

    wasm library   `wasmlab.compile(..., kind="library")`: exports `run_<kernel>(iterations) -> checksum` and
                   `bench_nop(x) -> x` (the per-call overhead probe)
    wasm command   `kind="command"` with `-DBENCH_MAIN`: `suite KERNEL ITERATIONS [WARMUP [REPEATS]]` prints
                   `KERNEL CHECKSUM NS` per repeat, NS timed inside the guest with clock_gettime(CLOCK_MONOTONIC)
    native         `gcc -O2 -DBENCH_MAIN`: the same program, run as a subprocess, timed the same way

The native build's checksum for (kernel, iterations) is the expected answer on every engine (`NativeBaseline`),
and the native build calibrates the iteration counts (`calibrate`). `SuiteBuild` names one build of the three
(the -O level and extra gcc flags), the parameter every benchmark of the suite passes on.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..cache import cache_dir
from ..errors import ToolchainUnavailable, UsageError, WasmlabError

if TYPE_CHECKING:
    from ..module import Module

SOURCE = Path(__file__).parent / "kernels" / "suite.c"
GCC = "/usr/bin/gcc"
NATIVE_TIMEOUT = 120.0
MASK = 0xFFFFFFFF  # checksums are compared as unsigned 32-bit numbers
TARGET_MS = {"full": 10.0, "quick": 2.0}  # one native call, after calibration


class ChecksumMismatch(WasmlabError):
    """An engine computed a different checksum than the native build: its numbers cannot be trusted."""


@dataclass(frozen=True)
class Kernel:
    """One benchmark kernel: `run_<name>(iterations)` does `iterations` ops of `op` each."""

    name: str
    what: str  # the kind of work, for tables and figure labels
    op: str  # what one iteration does
    bytes_per_op: int | None = None  # for MB/s (None: report ops/s only)
    guess_ns_per_op: float = 10_000.0  # starting point of the calibration (native, this machine's order)


KERNELS: dict[str, Kernel] = {
    k.name: k
    for k in (
        Kernel("fib", "recursion", "fib(20 or 21)", None, 20_000),
        Kernel("hash", "integer hashing", "hash 1 KiB (128 x 64-bit multiply/xor-shift)", 1024, 200),
        Kernel("memstream", "memory streaming", "read 1 MiB, write 1 MiB", 2 << 20, 60_000),
        Kernel("matmul", "matrix multiply", "32x32 double matmul (65,536 flops)", None, 9_000),
        Kernel("mandel", "float math", "16x16 Mandelbrot tile, at most 64 iterations a point", None, 20_000),
        Kernel("parse", "string/JSON-like parsing", "tokenise ~8 KB of JSON-like text", 8_000, 6_000),
        Kernel("sort", "sorting", "quicksort 1,024 integers", None, 80_000),
    )
}
PROBE = "bench_nop"  # the empty export: per-call overhead


def kernel_names(kernels: str | list[str] | tuple[str, ...] | None = None) -> list[str]:
    """Validated kernel names in suite order (None: all)."""
    if kernels is None:
        return list(KERNELS)
    names = [k.strip() for k in kernels.split(",")] if isinstance(kernels, str) else [str(k) for k in kernels]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in KERNELS]
    if unknown:
        raise UsageError(f"unknown kernel(s) {', '.join(unknown)}: use any of {', '.join(KERNELS)}")
    return [n for n in KERNELS if n in names]


def source_text() -> str:
    return SOURCE.read_text()


def export_name(kernel: str) -> str:
    return f"run_{kernel}"


def wasm_library(opt: str = "O2") -> Module:
    """The suite as a Wasm library (WASI reactor) exporting `run_<kernel>` and `bench_nop`."""
    from ..build import compile

    return compile(source_text(), "c", kind="library", opt=opt, name="suite")


def wasm_command(opt: str = "O2") -> Module:
    """The suite as a WASI command: `suite KERNEL ITERATIONS [WARMUP [REPEATS]]`."""
    from ..build import compile

    return compile(source_text(), "c", kind="command", opt=opt, flags=("-DBENCH_MAIN",), name="suite")


def native_flags(opt: str = "O2", extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    """gcc's flags: the same -O level as the Wasm build, plus `extra` (e.g. -fno-tree-vectorize: gcc -O2
    vectorises memstream and matmul with SSE2, while the wasm32 builds have no SIMD)."""
    return [f"-{opt}", "-DBENCH_MAIN", *extra]


@cache
def gcc_version() -> str:
    exe = shutil.which(GCC) or shutil.which("gcc")
    if not exe:
        return ""
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout else ""


def native_executable(opt: str = "O2", extra: tuple[str, ...] | list[str] = ()) -> Path:
    """The suite compiled natively with gcc (cached by source, flags and gcc version)."""
    exe = GCC if Path(GCC).exists() else shutil.which("gcc")
    if not exe:
        raise ToolchainUnavailable("native C", "gcc is not installed", "apt-get install gcc")
    text = source_text()
    flags = native_flags(opt, extra)
    key = hashlib.sha256("\0".join([text, *flags, gcc_version()]).encode()).hexdigest()[:20]
    out = cache_dir() / "bench" / f"suite-native-{key}"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    src = out.with_suffix(".c")
    src.write_text(text)
    proc = subprocess.run([exe, *flags, str(src), "-o", str(tmp)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise WasmlabError(f"gcc failed on the kernel suite: {proc.stderr.strip()[:500]}")
    tmp.replace(out)
    return out


def parse_lines(text: str, kernel: str) -> list[tuple[int, int]]:
    """(checksum, ns) per `KERNEL CHECKSUM NS` line of the suite program's output."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == kernel:
            rows.append((int(parts[1]) & MASK, int(parts[2])))
    if not rows:
        raise WasmlabError(f"the suite program printed no result for {kernel}: {text.strip()[:200]!r}")
    return rows


def run_native(exe: Path, kernel: str, iterations: int, warmup: int = 0, repeats: int = 1) -> list[tuple[int, int]]:
    """Run the native suite program: [(checksum, ns of the timed loop)] per repeat."""
    proc = subprocess.run(
        [str(exe), kernel, str(iterations), str(warmup), str(repeats)],
        capture_output=True,
        text=True,
        timeout=NATIVE_TIMEOUT,
    )
    if proc.returncode != 0:
        raise WasmlabError(f"native {kernel} failed (exit {proc.returncode}): {proc.stderr.strip()[:300]}")
    return parse_lines(proc.stdout, kernel)


def calibrate(exe: Path, kernels: Iterable[str], target_ms: float) -> dict[str, int]:
    """Iterations per kernel so that one native call takes about `target_ms` (two short native runs each)."""
    counts = {}
    for kernel in kernels:
        n = max(1, round(target_ms * 1e6 / 8 / KERNELS[kernel].guess_ns_per_op))  # ~1/8 of the target first
        for _ in range(3):
            ns = min(t for _, t in run_native(exe, kernel, n, warmup=max(1, n // 10), repeats=2))
            if ns >= target_ms * 1e6 / 10:
                break
            n *= 4
        counts[kernel] = max(1, round(n * target_ms * 1e6 / max(ns, 1)))
    return counts


@dataclass
class NativeBaseline:
    """The expected checksum of (kernel, iterations): the native build's, run once per pair and remembered;
    `overrides` replaces it per kernel (to test the check)."""

    exe: Path
    overrides: dict[str, int] = field(default_factory=dict)
    _seen: dict[tuple[str, int], int] = field(default_factory=dict)

    def expected(self, kernel: str, n: int) -> int:
        if kernel in self.overrides:
            return int(self.overrides[kernel]) & MASK
        if (kernel, n) not in self._seen:
            self._seen[(kernel, n)] = run_native(self.exe, kernel, n)[0][0]
        return self._seen[(kernel, n)]

    def verify(self, who: str, kernel: str, n: int, checksum: int, *, check: bool = True) -> bool:
        """True when `checksum` is the expected one; else ChecksumMismatch, or False with `check=False`."""
        want = self.expected(kernel, n)
        if checksum == want:
            return True
        if check:
            raise ChecksumMismatch(
                f"{who} computed a wrong checksum for {kernel}({n}): {checksum} instead of {want} (the native "
                "build's): its timings cannot be trusted"
            )
        return False


@dataclass(frozen=True)
class SuiteBuild:
    """One build of the suite: the -O level of the Wasm and native builds, and extra gcc flags for the native
    baseline (e.g. "-fno-tree-vectorize")."""

    opt: str = "O2"
    native_extra: tuple[str, ...] = ()

    def library(self) -> Module:
        return wasm_library(self.opt)

    def command(self) -> Module:
        return wasm_command(self.opt)

    def native(self) -> Path:
        return native_executable(self.opt, self.native_extra)

    @property
    def native_flags(self) -> list[str]:
        return native_flags(self.opt, self.native_extra)

    def calibrate(self, kernels: Iterable[str], target_ms: float) -> dict[str, int]:
        return calibrate(self.native(), kernels, target_ms)

    def iterations(self, kernels: list[str], given: int | dict[str, int] | None, target_ms: float) -> dict[str, int]:
        """Iterations per kernel: `given` (one count for all, or per kernel), else calibrated natively."""
        if given is None:
            return self.calibrate(kernels, target_ms)
        if isinstance(given, int):
            return dict.fromkeys(kernels, given)
        return {k: int(given.get(k, 1)) for k in kernels}

    def baseline(self, overrides: dict[str, int] | None = None) -> NativeBaseline:
        return NativeBaseline(self.native(), dict(overrides or {}))


def with_nonce(module, nonce: str):
    """A copy of `module` with a custom section holding `nonce`: the same code under a new sha256, so every
    engine compiles it afresh (engines cache compiled code by content)."""
    from ..leb128 import uleb
    from ..module import Module, Provenance

    name = b"wasmlab-bench-nonce"
    payload = bytes([len(name)]) + name + nonce.encode()
    section = b"\x00" + uleb(len(payload)) + payload
    provenance = Provenance("bytes", module.provenance.source_name, module.provenance.lang, module.provenance.kind)
    return Module(module.bytes + section, provenance, module.name)
