"""Benchmarks of your own code, with real engines and compilers on tiny inputs: a C snippet and a WAT module
through startup and throughput (sample counts, the engines' agreement, the native ratio for C), the in-guest
loop and its checksum on every engine, the native harness per language, the mismatch checks, the CLI."""

from __future__ import annotations

import json
import struct

import pandas as pd
import pytest

import wasmlab
from wasmlab import bench
from wasmlab.bench import batch as B
from wasmlab.bench.native import native_program
from wasmlab.bench.subject import Subject, is_subject
from wasmlab.binary import FuncType
from wasmlab.errors import UsageError
from wasmlab.runtimes import RunOptions, get_runtime

from .conftest import need_toolchain
from .snippets import SNIPPETS

C_SOURCE = "int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }\n"
WAT_SOURCE = (SNIPPETS / "fib.wat").read_text()
FIB = {12: 144, 15: 610, 18: 2584}
FAST = {"samples": 3, "quick": True, "progress": False, "target_ms": 1.0}
SCALE_WAT = (
    '(module (func (export "scale") (param f64 i64) (result f64) local.get 0 local.get 1 f64.convert_i64_s f64.mul))'
)
MIX_WAT = """(module (func (export "mix") (param i64 f32 f64) (result i32 i64 f32 f64)
  i32.const -7 local.get 0 local.get 1 local.get 2))"""


@pytest.fixture(scope="module")
def c_throughput(runtimes):
    need_toolchain("c")
    return bench.throughput(wasmlab.compile(C_SOURCE, "c", name="fib"), "fib", (15,), runtimes=runtimes, **FAST)


# ---------------------------------------------------------------------------------------------- the loop
def test_checksum_closed_form_matches_the_fold():
    for bits in ([], [5], [1 << 63, 3, 0xFFFFFFFF]):
        acc = B.OFFSET
        for n in range(40):
            assert B.checksum(bits, n) == acc
            for b in bits:
                acc = (acc * B.PRIME + b) & B.MASK64


def test_in_guest_loop_checksums_on_every_engine(runtimes):
    scale = B.with_loop(wasmlab.compile(SCALE_WAT, "wat"), "scale", (1.5, -3))
    mix = B.with_loop(wasmlab.compile(MIX_WAT, "wat"), "mix", (-2, 0.5, -1.25))
    scale.validate()
    mix.validate()
    assert scale.export_names() == ["scale", B.LOOP_EXPORT]
    checked = []
    for name in dict.fromkeys([*runtimes, "wasm3", "wasmer"]):
        try:
            engine = get_runtime(name)
        except wasmlab.RuntimeUnavailable:
            continue
        for looped, call, results in ((scale, ("scale", 1.5, -3), ("f64",)), (mix, ("mix", -2, 0.5, -1.25),
                                      ("i32", "i64", "f32", "f64"))):  # fmt: skip
            try:
                inst = engine.instantiate(looped, RunOptions())
            except wasmlab.RuntimeUnavailable:  # wasm3 runs no multi-value functions
                continue
            with inst:
                value = inst.call(*call)
                bits = B.result_bits(value, results)
                for n in (0, 1, 1000):
                    assert int(inst.call(B.LOOP_EXPORT, n)) & B.MASK64 == B.checksum(bits, n), (name, call, n)
                checked.append((name, call[0], value))
    assert ("wasmtime", "scale", -4.5) in checked and ("wasmtime", "mix", (-7, -2, 0.5, -1.25)) in checked
    assert {name for name, *_ in checked} >= set(runtimes)
    assert B.result_bits(-4.5, ("f64",)) == [struct.unpack("<Q", struct.pack("<d", -4.5))[0]]


def test_a_module_with_imports_and_globals_keeps_working_with_the_loop():
    # imported functions and globals come first in their index spaces: the loop must call F, not an import
    wat = """(module
      (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (global $calls (mut i32) (i32.const 0))
      (func $helper (param i32) (result i32) local.get 0 i32.const 3 i32.mul)
      (func (export "next") (param i32) (result i32)
        global.get $calls i32.const 1 i32.add global.set $calls
        local.get 0 call $helper global.get $calls i32.add call $yield i32.add))"""
    looped = B.with_loop(wasmlab.compile(wat, "wat"), "next", (4,))
    looped.validate()
    with get_runtime("wasmtime").instantiate(looped, RunOptions()) as inst:
        assert inst.call("next", 4) == 13
        inst.call(B.LOOP_EXPORT, 10)  # F keeps state: the loop really called it 10 times
        assert inst.call("next", 4) == 12 + 12


def test_what_cannot_be_looped_says_why():
    module = wasmlab.compile('(module (func (export "r") (param externref) (result i32) i32.const 1))', "wat")
    assert "externref" in B.can_loop(module, "r")
    with pytest.raises(B.NotLoopable, match="externref"):
        B.with_loop(module, "r", (None,))
    with pytest.raises(UsageError, match="exports no function 'nope'"):
        B.can_loop(module, "nope")


# ---------------------------------------------------------------------------------------------- native
@pytest.mark.parametrize("lang,file", [("c", "fib.c"), ("cpp", "fib.cpp"), ("rust", "fib.rs"), ("zig", "fib.zig"),
                                       ("go", "fib.go")])  # fmt: skip
def test_native_harness_computes_the_guest_checksum(lang, file):
    need_toolchain(lang)  # the wasm toolchain; the native compilers come with it (gcc, g++, rustc, zig, go)
    program = native_program((SNIPPETS / file).read_text(), lang, "fib", FuncType(("i32",), ("i32",)))
    rows = program.run(50, (12,), warmup=1, repeats=2)
    assert [c for c, _ in rows] == [B.checksum([144], 50)] * 2
    assert all(ns > 0 for _, ns in rows)


def test_native_harness_floats_and_wide_ints():
    program = native_program("double scale(double x, long long k) { return x * k; }", "c", "scale",
                             FuncType(("f64", "i64"), ("f64",)))  # fmt: skip
    got = program.run(9, (0.1, -(1 << 40)))[0][0]
    assert got == B.checksum(B.result_bits(0.1 * -(1 << 40), ("f64",)), 9)


# ---------------------------------------------------------------------------------------------- throughput
def test_c_snippet_throughput_with_native_ratio(c_throughput, runtimes):
    r = c_throughput
    table = r.table
    assert set(table["runtime"]) == {"native", *runtimes}
    assert (table.groupby("runtime").size() == 3).all()
    assert table["correct"].all() and (table["checksum"] == table["expected"]).all()
    assert set(table["kernel"]) == {"fib(15)"}
    s = r.summary.set_index("runtime")
    for name in runtimes:
        assert s.loc[name, "ratio_to_native"] > 0
        assert s.loc[name, "ratio_ci_low"] <= s.loc[name, "ratio_to_native"] <= s.loc[name, "ratio_ci_high"]
    assert s.loc["native", "ratio_to_native"] != s.loc["native", "ratio_to_native"]  # NaN: the baseline itself
    assert r.params["native"].startswith("gcc -O2")
    batching = r.tables["batching"].set_index("runtime")
    assert set(batching["batch"]) == {"native loop", "in-guest loop"} and (batching["calls_per_sample"] >= 1).all()
    assert list(r.ratios["runtime"]) == runtimes  # the geomean of the one call: the same ratio, with its CI


def test_throughput_names_the_module_and_the_call(c_throughput, tmp_path):
    subject = c_throughput.subject
    module = wasmlab.compile(C_SOURCE, "c", name="fib")
    assert subject["sha256"] == module.sha256 and subject["call"] == {"export": "fib", "args": [15]}
    data = json.loads(c_throughput.to_json())
    assert data["params"]["subject"]["sha256"] == module.sha256 and data["params"]["kernels"] == ["fib(15)"]
    back = bench.BenchResult.from_json(c_throughput.to_json())
    pd.testing.assert_frame_equal(back.table, c_throughput.table, check_exact=True)
    pd.testing.assert_frame_equal(back.summary, c_throughput.summary, check_exact=True)
    html = c_throughput.to_html(tmp_path / "r.html")
    assert module.sha256 in html and "fib(15)" in html and "Time per call" in html
    figs = c_throughput.figures()
    assert list(figs) == ["Time per call", "Ratio to native", "Per-call overhead"]
    assert [t.name for t in figs["Time per call"].data] == ["native", "wasmtime", c_throughput.params["runtimes"][1]]
    assert [list(t.x) for t in figs["Ratio to native"].data] == [["fib(15)"]] * 2  # no geomean of one call


def test_wat_module_throughput_in_guest_and_host_loops(runtimes):
    module = wasmlab.compile(WAT_SOURCE, "wat")
    guest = bench.throughput(module, "fib", (12,), runtimes=runtimes, **FAST)
    host = bench.throughput(module, "fib", (12,), runtimes=runtimes, batch="host", **FAST)
    for result, mode in ((guest, "in-guest loop"), (host, "host loop")):
        table = result.table
        assert set(table["runtime"]) == set(runtimes)  # no source: no native build
        assert (table.groupby("runtime").size() == 3).all() and table["correct"].all()
        assert set(result.tables["batching"]["batch"]) == {mode}
        assert result.params["result"] == [FIB[12]]
        assert any("no native baseline" in n for n in result.notes)
        over = result.overhead
        assert set(over["runtime"]) == set(runtimes) and (over["host_us_per_call"] > 0).all()
    assert (host.tables["batching"]["calls_per_sample"] <= 2000).all()


def test_engines_that_disagree_or_state_fail_loudly(runtimes):
    need_toolchain("c")
    # tick keeps state; f uses long, 32 bits in wasm32 and 64 natively, so the native build computes another number
    source = (
        "static int n; int tick(void) { return ++n; }\nunsigned long f(unsigned long x) { return x * 100000UL / 7; }"
    )
    module = wasmlab.compile(source, "c")
    with pytest.raises(bench.ChecksumMismatch, match="same result on every call"):
        bench.throughput(module, "tick", runtimes=runtimes[:1], native=False, **FAST)
    kept = bench.throughput(module, "tick", runtimes=runtimes[:1], native=False, check=False, **FAST)
    assert not kept.table["correct"].all()
    with pytest.raises(bench.ChecksumMismatch, match="native build"):
        bench.throughput(module, "f", (100000,), runtimes=runtimes[:1], **FAST)


def test_throughput_usage_errors():
    with pytest.raises(UsageError, match="exports no function 'nope'"):
        bench.throughput(WAT_SOURCE, "nope", (1,), runtimes="wasmtime", **FAST)
    with pytest.raises(UsageError, match="native=True needs"):
        bench.throughput(WAT_SOURCE, "fib", (1,), runtimes="wasmtime", native=True, **FAST)
    with pytest.raises(UsageError, match="batch='guest' is impossible"):
        bench.throughput('(module (func (export "r") (param externref)))', "r", (None,), batch="guest", **FAST)
    with pytest.raises(UsageError, match="takes 1 argument"):
        bench.throughput(WAT_SOURCE, "fib", (), runtimes="wasmtime", **FAST)
    assert is_subject("fib.c") and is_subject(WAT_SOURCE) and not is_subject("wasmtime,node")
    assert not is_subject(["wasmtime"])


# ---------------------------------------------------------------------------------------------- startup
def test_c_and_wat_startup_on_every_engine_that_runs_them(runtimes):
    need_toolchain("c")
    for source in (C_SOURCE, WAT_SOURCE):
        lang = "c" if source is C_SOURCE else "wat"
        result = bench.startup(module=source, lang=lang, invoke="fib", args=(12,), runtimes=[*runtimes, "wasmer-sdk"],
                               samples=3, cold=1, progress=False)  # fmt: skip
        table = result.table
        warm = table[(table["state"] == "warm") & table["supported"]]
        assert (warm.groupby(["runtime", "phase"]).size() == 3).all()
        assert set(warm["runtime"]) == set(runtimes)
        assert any("skipped wasmer-sdk" in n for n in result.notes)  # it runs WASI commands only
        assert result.params["answers"] == dict.fromkeys(runtimes, FIB[12])
        pivot = result.pivot("warm").set_index("runtime")
        for phase in ("compile", "instantiate_first", "instantiate_repeat", "first_call", "deserialize"):
            assert pivot.loc["wasmtime", phase] > 0, phase
        assert set(result.pivot("cold")["runtime"]) == set(runtimes)
        assert result.params["subject"]["call"] == {"export": "fib", "args": [12]}


def test_startup_of_a_wasi_command(runtimes):
    need_toolchain("c")
    result = bench.startup(module=SNIPPETS / "hello.c", runtimes=runtimes, samples=2, cold=1, progress=False)
    pivot = result.pivot("warm").set_index("runtime")
    for phase in ("compile", "instantiate_first", "first_call", "command_first", "command_run"):
        assert pivot.loc["wasmtime", phase] > 0
    assert result.params["subject"]["kind"] == "command" and set(result.params["answers"].values()) == {0}
    assert "_start" in result.table[result.table["phase"] == "first_call"]["note"].iloc[0]


def test_startup_usage():
    with pytest.raises(UsageError, match="not a WASI command"):
        bench.startup(module=WAT_SOURCE, runtimes="wasmtime", samples=1, progress=False)
    with pytest.raises(UsageError, match="for your own code"):
        bench.startup(["wasmtime"], invoke="fib", samples=1, progress=False)
    assert Subject.make(WAT_SOURCE, "fib", (3,)).label == "fib(3)"


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_benchmarks_a_c_file_and_a_wat_file(tmp_path, capsys, runtimes):
    from wasmlab.cli import main

    need_toolchain("c")
    src = tmp_path / "fib.c"
    src.write_text(C_SOURCE)
    names = ",".join(runtimes)
    common = ["--runtimes", names, "--samples", "2", "--quick", "--no-progress"]
    assert (
        main(["bench", "throughput", str(src), "--invoke", "fib", "12", *common, "--html", str(tmp_path / "t.html")])
        == 0
    )
    out = capsys.readouterr().out
    assert "throughput of fib(12) in fib.c" in out and "native" in out and "ratio_to_native" in out
    assert "fib(12)" in (tmp_path / "t.html").read_text()
    wat = tmp_path / "fib.wat"
    wat.write_text(WAT_SOURCE)
    assert main(["bench", "startup", str(wat), "--invoke", "fib", "12", *common, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "startup" and data["params"]["subject"]["sha256"] == wasmlab.compile(wat).sha256
    assert main(["bench", "throughput", str(wat), *common]) == 2
    assert "needs --invoke F ARGS" in capsys.readouterr().err
    assert main(["bench", "sweep", str(wat)]) == 2
    assert "startup or throughput" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- size vs speed
def test_size_vs_speed_of_your_own_sources(tmp_path):
    need_toolchain("c")
    (tmp_path / "fib.c").write_text(C_SOURCE)
    result = bench.size_vs_speed({"wat": WAT_SOURCE, "c": tmp_path / "fib.c"}, invoke="fib", args=(12,), **FAST)
    s = result.summary
    assert set(s["lang"]) == {"wat", "c"} and (s["n"] == 3).all() and s["median_ms"].gt(0).all()
    assert list(s[s["lang"] == "wat"]["options"]) == ["O2"]  # WAT has no optimisation levels
    assert (result.table["calls"] >= 1).all() and result.params["call"] == {"export": "fib", "args": [12]}
    assert "Size vs speed" in result.figures()
    wrong = '(module (func (export "fib") (param i32) (result i32) i32.const 1))'
    with pytest.raises(bench.ChecksumMismatch, match="builds disagree on fib"):
        bench.size_vs_speed({"c": tmp_path / "fib.c", "wat": wrong}, invoke="fib", args=(12,), **FAST)
    with pytest.raises(UsageError, match="needs invoke="):
        bench.size_vs_speed({"wat": WAT_SOURCE}, **FAST)


def test_readings_under_the_clock_resolution_are_not_zeros():
    """A browser's clock steps 5 µs: a reading of 0 is 'under 5 µs', shown so, never as a measured 0."""
    from types import SimpleNamespace

    from wasmlab.bench._startup import StartupResult, _row, _unresolved

    page = SimpleNamespace(label="browser", timer_resolution_ms=0.005)
    rows = [_row("browser", "first_call", "warm", i, 0.0) for i in range(3)]
    rows += [_row("browser", "compile", "warm", i, 0.4 + i / 100) for i in range(3)]
    rows = _unresolved(page, rows)
    result = StartupResult({"samples": pd.DataFrame(rows)})
    pivot = result.pivot("warm").set_index("runtime")
    assert pivot.loc["browser", "first_call"] == "< 0.005" and pivot.loc["browser", "compile"] == pytest.approx(0.41)
    assert result.table["time_ms"].isna().sum() == 3
    bars = {t.name: list(t.y) for t in result.figure().data if t.showlegend is False}
    assert 0.0 not in bars["first_call"]  # no zero-height bar pretending to be a measurement
