"""Malformed modules through inspection and through every runtime: InvalidModule (or another of wasmlab's own
errors), never a crash, a hang or a foreign exception, and the engines keep working. The targeted cases come
first, then a seeded mutation fuzz (tests/fuzz.py; `make fuzz` runs the long version).

tests/test_binary.py fuzzes the parser alone; here the same kind of input goes all the way to the engines.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

import wasmlab
from wasmlab.errors import InvalidModule, LimitExceeded, RuntimeUnavailable, UsageError
from wasmlab.leb128 import uleb as leb
from wasmlab.module import Module
from wasmlab.runtimes import list_runtimes

from . import fuzz

AVAILABLE = {row.name: row for row in list_runtimes() if row.available}
EXPORTS = [name for name, row in AVAILABLE.items() if "exports" in row.capabilities]
HEADER = b"\0asm\1\0\0\0"


def section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + leb(len(payload)) + payload


def module_with_body(body: bytes, memory: bytes = b"") -> bytes:
    """A module with one exported function "f" (result i32) whose code is `body` (locals vector included)."""
    types = section(1, b"\x01\x60\x00\x01\x7f")
    code = section(10, b"\x01" + leb(len(body)) + body)
    memories = section(5, b"\x01" + memory) if memory else b""
    return HEADER + types + section(3, b"\x01\x00") + memories + section(7, b"\x01\x01f\x00\x00") + code


GOOD = module_with_body(b"\x00\x41\x2a\x0b")  # (func (export "f") (result i32) i32.const 42)


def test_the_good_module_runs_everywhere() -> None:
    for runtime in EXPORTS:
        assert Module(GOOD).run(runtime, "f").result == 42


MALFORMED = {
    "empty": b"",
    "not wasm": b"\x7fELF\x02\x01\x01\x00" + bytes(100),
    "header only, truncated": HEADER[:6],
    "truncated in the code section": GOOD[:-2],
    "bit flip in a section size": GOOD[:9] + bytes([GOOD[9] ^ 0x40]) + GOOD[10:],
    "LEB128 longer than 5 bytes": HEADER + b"\x01\x80\x80\x80\x80\x80\x00",
    "LEB128 out of range": HEADER + b"\x01\xff\xff\xff\xff\x7f",
    "huge type count": HEADER + section(1, b"\xff\xff\xff\xff\x0f"),
    "huge function count": HEADER + section(1, b"\x01\x60\x00\x00") + section(3, b"\xff\xff\xff\xff\x0f\x00"),
    "huge local count": module_with_body(b"\x01\xff\xff\xff\xff\x0f\x7f\x41\x00\x0b"),
    "huge memory": module_with_body(b"\x00\x41\x2a\x0b", memory=b"\x00\xff\xff\xff\xff\x0f"),
    "unknown section": GOOD + b"\x42\x00",
    "body without end": module_with_body(b"\x00\x41\x2a"),
}

# Well-formed (the parser accepts them) but invalid: only full validation rejects them.
INVALID = {
    "i32.add on an empty stack": module_with_body(b"\x00\x6a\x0b"),
    "wrong result type": module_with_body(b"\x00\x42\x01\x0b"),
    "branch to a missing label": module_with_body(b"\x00\x0c\x05\x41\x00\x0b"),
    "unknown opcode": module_with_body(b"\x00\xff\x0b"),
    "unbalanced blocks": module_with_body(b"\x00" + b"\x02\x40" * 50 + b"\x0b" * 20 + b"\x41\x00\x0b"),
    "call to a missing function": module_with_body(b"\x00\x10\x07\x0b"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_bytes_are_invalid_module_everywhere(case: str) -> None:
    data = MALFORMED[case]
    with pytest.raises(InvalidModule) as info:
        wasmlab.load(data)
    assert info.value.offset is None or 0 <= info.value.offset <= len(data)
    assert "\n" not in str(info.value)
    for runtime in EXPORTS:  # a memory too big for wasm32 may first meet the max_memory check
        with pytest.raises(InvalidModule if case != "huge memory" else (InvalidModule, LimitExceeded)):
            Module(data, name=case).run(runtime, "f")


@pytest.mark.parametrize("case", INVALID)
def test_invalid_code_is_rejected_by_every_engine(case: str) -> None:
    data = INVALID[case]
    module = wasmlab.load(data, validate=False)  # the structure parses...
    assert module.export_names() == ["f"]
    with pytest.raises(InvalidModule, match="validation failed"):
        module.validate()  # ...the code does not validate
    with pytest.raises(InvalidModule):
        wasmlab.load(data)
    for runtime in EXPORTS:
        started = time.monotonic()
        with pytest.raises((InvalidModule, RuntimeUnavailable)):  # wasm3 may call it an opcode it lacks
            Module(data, name=case).run(runtime, "f", timeout=5)
        assert time.monotonic() - started < 10


# Found by the long fuzz run (tests/fuzz.py --seed 2026): a mutated C module whose invalid code made the
# wasm3 worker's LEB rewriter raise IndexError, reported as a generic error instead of InvalidModule.
FUZZ_FOUND = bytes.fromhex(
    "0061736d01000000010f0360000060017f017f60027c7f017c0307060000010102010405017001010105030100110609017f01418080c000"
    "0b073f06066d656d6f727902000f5f5f737461636b5f706f696e74657203000b5f696e697469616c697a6500010373756d0002066c656e67"
    "74680003036d697800040a96010602000b23000240410028028080c08000450d00000b4100410136028080c080001080808080000b270101"
    "7f0240200041014e0d0041000f0b2000417f6a22012001ad2000417e6aad7e420188a76a0b0a0020001085808080000b120020002001b7a2"
    "44000000000000e03fa00b27ff037f410021010340200020016a2102200141016a2203210120022d00000d000b2003417f6a0b006d046e61"
    "6d650009086f75742e7761736d01470600115f5f7761736d5f63616c6c5f63746f7273010b5f696e697469616c697a65020373756d03066c"
    "656e67746804036d69780512636f6d70696c65725f72742e7374726c656e071201000f5f5f737461636b5f706f696e746572"
)


def test_fuzz_found_modules_are_invalid_everywhere() -> None:
    with pytest.raises(InvalidModule):
        wasmlab.load(FUZZ_FOUND)
    for runtime in EXPORTS:
        with pytest.raises(InvalidModule):
            Module(FUZZ_FOUND, name="found").run(runtime, "sum", (0,))


def nested_blocks(depth: int) -> bytes:
    return module_with_body(b"\x00" + b"\x02\x40" * depth + b"\x0b" * depth + b"\x41\x07\x0b")


def test_deeply_nested_blocks_run_or_are_refused_within_limits() -> None:
    """10,000 nested blocks: valid, and every engine runs it (wasmer's Cranelift compile time grows
    quadratically with depth: 200,000 took 80 s, bounded by the worker's compile limit and Ctrl-C)."""
    data = nested_blocks(10_000)
    assert wasmlab.load(data).run("wasmtime", "f").result == 7
    for runtime in EXPORTS:
        started = time.monotonic()
        try:
            assert Module(data, name="deep").run(runtime, "f", timeout=20).result == 7
        except (LimitExceeded, RuntimeUnavailable) as exc:
            assert runtime != "wasmtime", exc
        assert time.monotonic() - started < 30


@pytest.mark.parametrize("memory", ["", "(memory 1)", '(memory (export "mem") 1)'])
def test_a_wasi_module_without_an_exported_memory(memory: str) -> None:
    """A valid WASI command whose memory is missing or not exported as "memory": a clear error or a run, never
    a foreign exception (wasmer-sdk raised its own WasmerError, wasmtime a generic error)."""
    module = wasmlab.compile(
        '(module (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32))) '
        f'{memory} (func (export "_start") (drop (call $w (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)))))',
        "wat",
    )
    for runtime in [name for name, row in AVAILABLE.items() if "wasi" in row.capabilities]:
        try:
            result = module.run(runtime, check=False)
            assert result.exit_code == 0 or result.trap, (runtime, result)
        except (UsageError, RuntimeUnavailable) as exc:
            assert "memory" in str(exc).lower(), (runtime, exc)


def test_a_shared_memory_gets_a_clear_answer_from_every_engine() -> None:
    """Found by the mutation fuzz: a module with a shared memory (threads proposal). wasmtime raised a generic
    error when instantiating it; now every engine runs it or refuses it in one clear line."""
    module = wasmlab.compile('(module (memory 1 2 shared) (func (export "f") (result i32) (i32.const 7)))', "wat")
    assert module.memories[0].limits.shared
    for runtime in EXPORTS:
        try:
            assert module.run(runtime, "f").result == 7, runtime
        except RuntimeUnavailable as exc:
            assert "shared memory (the threads proposal)" in str(exc) and "fix:" in str(exc), exc
        except InvalidModule as exc:
            assert "threads must be enabled for shared memories" in str(exc), exc


# ------------------------------------------------------------------------------------------ mutation fuzz

CASES = 5000
SAMPLE = 20  # every 20th case that parses also runs on the worker backends


def test_mutation_fuzz_through_parser_validation_and_engines(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(fuzz, "WORKER_TIMEOUT", 0.5)
    rng = random.Random(20260101)
    corpus = fuzz.seed_corpus(rng, smith_count=8)
    started = time.monotonic()
    stats = fuzz.fuzz(CASES, seed=20260101, sample=SAMPLE, save_dir=tmp_path, corpus=corpus)
    elapsed = time.monotonic() - started
    counts = stats.counts
    print(
        f"\nmutation fuzz: {CASES} cases in {elapsed:.1f} s: "
        + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    )
    assert stats.findings == [], "\n".join(map(str, stats.findings))
    assert counts["cases"] == CASES
    assert counts["rejected:parse"] > CASES // 4  # the mutations break things...
    assert counts["valid"] > CASES // 20  # ...and enough still validate to reach the engines
    ran = sum(n for key, n in counts.items() if key.startswith("run:wasmtime:") and not key.endswith("Module"))
    assert ran > CASES // 10
    for runtime in fuzz.worker_runtimes():
        assert sum(n for key, n in counts.items() if key.startswith(f"run:{runtime}:")) >= CASES // SAMPLE // 5
    assert elapsed < 90


def test_mutations_are_seeded() -> None:
    data = fuzz.wasmlab.compile(fuzz.SEED_WATS[0], "wat").bytes
    one = [fuzz.mutate(random.Random(5), data) for _ in range(3)]
    two = [fuzz.mutate(random.Random(5), data) for _ in range(3)]
    assert one == two and any(m != data for m in one)
