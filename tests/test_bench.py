"""The benchmark harness, with real engines and real compilers on tiny inputs: sample counts, the correctness
check (a wrong checksum must fail loudly), the CV flag, JSON/CSV round trips, figures, Ctrl-C, the CLI."""

from __future__ import annotations

import _thread
import json
import threading

import pandas as pd
import pytest

from wasmlab import bench
from wasmlab.bench import kernels as K
from wasmlab.bench.figures import PALETTE
from wasmlab.bench.stats import describe, ratio_ci
from wasmlab.errors import UsageError
from wasmlab.runtimes import RunOptions, get_runtime

SMALL = {"fib": 3, "hash": 200, "memstream": 1, "matmul": 5, "mandel": 4, "parse": 5, "sort": 2}


@pytest.fixture(scope="module")
def tput(runtimes):
    return bench.throughput(runtimes, ["fib", "parse"], samples=3, iterations=SMALL, progress=False)


# ---------------------------------------------------------------------------------------------- kernels
def test_kernels_give_the_native_checksum_on_wasmtime():
    exe = K.native_executable()
    with get_runtime("wasmtime").instantiate(K.wasm_library(), RunOptions()) as inst:
        for kernel, n in SMALL.items():
            (native, _ns), (again, _) = K.run_native(exe, kernel, n, warmup=3, repeats=2)
            assert native == again  # a checksum depends on the iteration count only
            assert int(inst.call(K.export_name(kernel), n)) & 0xFFFFFFFF == native
            assert int(inst.call(K.export_name(kernel), n)) & 0xFFFFFFFF == native  # ...not on earlier calls


def test_unknown_kernel_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown kernel"):
        K.kernel_names("fib,nope")


# ---------------------------------------------------------------------------------------------- throughput
def test_throughput_takes_the_samples_asked_for(tput, runtimes):
    table = tput.table
    assert set(table["runtime"]) == {"native", *runtimes}
    counts = table.groupby(["runtime", "kernel"]).size()
    assert (counts == 3).all() and len(counts) == 2 * (len(runtimes) + 1)
    assert table["correct"].all()
    assert (table["checksum"] == table["expected"]).all()
    for col in ("time_ms", "ns_per_op", "ops_per_s", "mb_per_s", "iterations"):
        assert col in table.columns
    parse = table[table["kernel"] == "parse"]
    assert (parse["mb_per_s"] > 0).all() and (parse["bytes_per_op"] > 1000).all()  # the text's length
    assert table[table["kernel"] == "fib"]["mb_per_s"].isna().all()  # fib has no bytes: ops/s only
    assert not tput.interrupted


def test_throughput_summary_ratios_and_geomean(tput, runtimes):
    s = tput.summary
    wasm = s[s["runtime"] != "native"]
    assert wasm["ratio_to_native"].gt(0).all()
    assert (wasm["ratio_ci_low"] <= wasm["ratio_to_native"]).all()
    assert (wasm["ratio_to_native"] <= wasm["ratio_ci_high"]).all()
    assert s[s["runtime"] == "native"]["ratio_to_native"].isna().all()
    g = tput.ratios
    assert list(g["runtime"]) == runtimes and (g["kernels"] == 2).all()
    assert (g["ci_low"] <= g["geomean_ratio"]).all() and (g["geomean_ratio"] <= g["ci_high"]).all()
    assert g["geomean_ratio_of_minima"].gt(0).all() and wasm["ratio_of_minima"].gt(0).all()
    over = tput.overhead
    assert set(over["runtime"]) == set(runtimes) and (over["host_us_per_call"] > 0).all()
    assert tput.env["cpu"] and tput.env["load_before"] and tput.env["load_after"]
    assert set(tput.env["runtimes"]) == set(runtimes)


def test_a_wrong_checksum_fails_loudly(runtimes):
    with pytest.raises(bench.ChecksumMismatch, match="wrong checksum for fib"):
        bench.throughput(runtimes[:1], ["fib"], samples=3, iterations=SMALL, expected={"fib": 12345}, progress=False)


def test_a_wrong_checksum_is_flagged_when_not_raised(runtimes):
    result = bench.throughput(
        runtimes,
        ["fib"],
        samples=3,
        iterations=SMALL,
        expected={"fib": 12345},
        check=False,
        progress=False,
        overhead=False,
    )
    assert not result.table["correct"].any()
    assert not result.summary["correct"].any()
    assert any("wrong checksum" in n for n in result.notes)


def test_cv_flag():
    assert describe([10.0, 10.1, 9.9, 10.0])["noisy"] is False
    steady = describe([10.0, 10.1, 9.9, 10.0])
    assert steady["cv"] < 0.05 and steady["median"] == 10.0 and steady["min"] == 9.9
    noisy = describe([10.0, 13.0, 8.0, 10.0])
    assert noisy["noisy"] is True and noisy["cv"] > 0.05
    ratio, low, high, _ = ratio_ci([2.0, 2.1, 1.9] * 5, [1.0, 1.05, 0.95] * 5)
    assert ratio == pytest.approx(2.0) and low <= ratio <= high


def test_summary_flags_noisy_rows(tput):
    s = tput.summary
    assert (s["noisy"] == (s["cv_pct"] > 5)).all()


# ---------------------------------------------------------------------------------------------- exports
def test_json_round_trip(tput, tmp_path):
    path = tmp_path / "t.json"
    text = tput.to_json(path)
    json.loads(text)  # strict JSON: no NaN
    back = bench.BenchResult.from_json(path)
    assert isinstance(back, bench.ThroughputResult)
    for name, df in tput.tables.items():
        pd.testing.assert_frame_equal(back.tables[name], df, check_exact=True)
    pd.testing.assert_frame_equal(back.summary, tput.summary, check_exact=True)
    pd.testing.assert_frame_equal(back.ratios, tput.ratios, check_exact=True)
    assert back.env == json.loads(json.dumps(tput.env)) and back.params == json.loads(json.dumps(tput.params))


def test_csv_round_trip(tput, tmp_path):
    path = tmp_path / "t.csv"
    tput.to_csv(path)
    back = bench.ThroughputResult.from_csv(path, params=tput.params)
    pd.testing.assert_frame_equal(back.table, tput.table, check_exact=True)
    pd.testing.assert_frame_equal(back.summary, tput.summary, check_exact=True)


def test_html_report_is_self_contained(tput, tmp_path):
    html = tput.to_html(tmp_path / "r.html")
    assert html.count("Plotly.newPlot") == len(tput.figures()) == 3
    assert "<script src=" not in html and len(html) > 1_000_000  # plotly.js is inlined, nothing is fetched
    assert "Wasm/native geometric mean" in html


# ---------------------------------------------------------------------------------------------- figures
def test_throughput_figures_have_the_expected_traces(tput, runtimes):
    figs = tput.figures()
    fig = figs["Throughput"]
    names = [t.name for t in fig.data]
    assert names == ["native", *runtimes]
    for trace in fig.data:
        assert trace.type == "bar" and trace.marker.color == PALETTE[trace.name]
        assert len(trace.error_y.array) == 2 and list(trace.x) == ["fib", "parse"]
    assert "ops/s" in fig.layout.yaxis.title.text
    ratio = figs["Ratio to native"]
    assert [t.name for t in ratio.data] == runtimes
    assert all(list(t.x)[-1] == "geomean" for t in ratio.data)
    assert any(s.type == "line" and s.y0 == 1.0 and s.y1 == 1.0 for s in ratio.layout.shapes)
    assert "ratio" in ratio.layout.yaxis.title.text
    assert "µs" in figs["Per-call overhead"].layout.yaxis.title.text


# ---------------------------------------------------------------------------------------------- startup
def test_startup_phases(runtimes):
    result = bench.startup(runtimes, samples=3, cold=1, progress=False)
    table = result.table
    warm = table[(table["state"] == "warm") & table["supported"]]
    assert (warm.groupby(["runtime", "phase"]).size() == 3).all()
    assert set(table[table["state"] == "cold"]["runtime"]) == set(runtimes)
    pivot = result.pivot("warm").set_index("runtime")
    assert pivot.loc["wasmtime", "deserialize"] > 0  # wasmtime exposes serialize/deserialize
    assert pivot.loc[runtimes[1], "deserialize"] == "not supported"
    for phase in ("compile", "instantiate_first", "instantiate_repeat", "first_call", "command_first", "command_run"):
        assert pivot.loc["wasmtime", phase] > 0, phase
    fig = result.figure()
    bars = [t for t in fig.data if t.showlegend is False]  # the others are grey legend keys
    assert fig.layout.barmode == "stack" and [t.name for t in bars] == ["compile", "instantiate_first", "first_call"]
    assert all(list(t.marker.color) == [PALETTE[r] for r in t.x] for t in bars)
    assert list(bars[0].x) == runtimes or set(bars[0].x) == set(runtimes)
    assert fig.layout.yaxis.title.text == "time (ms)"
    back = bench.BenchResult.from_json(result.to_json())
    pd.testing.assert_frame_equal(back.table, result.table, check_exact=True)


# ---------------------------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_keeps_the_samples_taken(runtimes):
    bench.throughput(runtimes, ["fib"], samples=1, iterations=SMALL, progress=False, overhead=False)  # warm caches
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        result = bench.throughput(runtimes, ["fib"], samples=5000, iterations={"fib": 20}, progress=False)
    except KeyboardInterrupt:  # pragma: no cover - would mean the harness let it escape
        pytest.fail("the KeyboardInterrupt escaped the harness")
    finally:
        timer.cancel()
    assert result.interrupted
    assert 0 < len(result.table) < 5000 * 3
    assert result.table["correct"].all()
    assert any("interrupted" in n for n in result.notes)
    assert get_runtime("wasmtime").instantiate(K.wasm_library(), RunOptions()).call("bench_nop", 3) == 3


# ---------------------------------------------------------------------------------------------- others
def test_crosscheck_runs_an_independent_process():
    result = bench.crosscheck("mandel", samples=3, iterations=4, progress=False)
    s = result.summary.set_index("source")
    assert len(s) == 3 and (s["n"] >= 3).all()
    assert result.agreement == result.agreement  # a number, not NaN
    assert "Cross-check" in result.figures()


def test_sweeps_tiny(runtimes):
    result = bench.sweep(
        ["fuel", "scaling"],
        runtimes=runtimes,
        kernels=["fib"],
        samples=2,
        iterations=SMALL,
        sizes_mb=[0.005, 0.02],
        progress=False,
    )
    fuel = result.fuel_summary()
    assert list(fuel["config"]) == ["plain", "epoch", "fuel", "fuel+epoch"]
    assert fuel.set_index("config").loc["plain", "ratio_to_plain"] == pytest.approx(1.0)
    scaling = result.scaling_summary()
    assert set(scaling["runtime"]) == set(runtimes) and scaling["compile_ms"].gt(0).all()
    assert scaling["module_bytes"].nunique() == 2
    figs = result.figures()
    assert len(figs["Fuel and epoch interruption (wasmtime)"].data) == 4
    lines = figs["Compile time vs module size"]
    assert [t.name for t in lines.data] == runtimes and all(t.line.color == PALETTE[t.name] for t in lines.data)
    back = bench.BenchResult.from_json(result.to_json())
    pd.testing.assert_frame_equal(back.summary, result.summary, check_exact=True)


def test_size_vs_speed_c(compile_or_skip):
    compile_or_skip("int f(void) { return 1; }", "c")
    result = bench.size_vs_speed(["c"], samples=3, quick=True, n=20, progress=False)
    s = result.summary
    assert set(s["lang"]) == {"c"} and len(s) >= 2
    assert (s["raw_bytes"] >= s["stripped_bytes"]).all() and s["gzip_bytes"].gt(0).all()
    assert (s["n"] == 3).all()
    fig = result.figure()
    assert len(fig.data) == 1 and fig.data[0].mode == "markers" and "bytes" in fig.layout.xaxis.title.text


def test_cli_bench_suite_quick(tmp_path, capsys, runtimes):
    from wasmlab.cli import main

    out = tmp_path / "s"
    code = main(
        [
            "bench",
            "suite",
            "--runtimes",
            ",".join(runtimes),
            "--kernels",
            "fib",
            "--quick",
            "--samples",
            "3",
            "--json",
            "--csv",
            str(out) + ".csv",
            "--html",
            str(out) + ".html",
            "--no-progress",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "suite" and set(data["parts"]) == {"startup", "throughput", "crosscheck"}
    suite = bench.BenchResult.from_dict(data)
    assert list(suite.summary["runtime"]) == runtimes
    assert suite.summary["geomean_ratio"].gt(0).all()
    assert (tmp_path / "s.startup.csv").exists() and (tmp_path / "s.crosscheck.csv").exists()
    assert pd.read_csv(out.with_suffix(".csv"))["correct"].all()
    assert "Plotly.newPlot" in (tmp_path / "s.html").read_text()


# ---------------------------------------------------------------------------------------------- density
def test_density_instances_and_processes(runtimes):
    result = bench.density(runtimes, counts=(1, 4), samples=2, progress=False)
    table = result.table
    assert set(table["unit"]) == {*runtimes, "native"}  # every copy answered correctly, or the run would raise
    assert (table.groupby(["unit", "count"]).size() == 2).all()
    assert (table["create_ms"] > 0).all() and (table["memory_kib"] >= 0).all()
    native = table[table["unit"] == "native"]
    assert (native["memory_kib"] > 0).all() and (native["host_mib"] == 0).all()  # a process has a PSS, no host
    assert (table[table["unit"] != "native"]["host_mib"] > 0).all()
    per_copy = result.per_copy().set_index("unit")
    assert list(per_copy["count"].unique()) == [4]
    assert per_copy.loc["native", "copies_per_gib"] == pytest.approx((1 << 20) / per_copy.loc["native", "memory_kib"])
    fig = result.figure()
    assert [t.name for t in fig.data if t.showlegend] == [*(f"{r} instance" for r in runtimes), "native process"]
    back = bench.BenchResult.from_json(result.to_json())
    assert isinstance(back, bench.DensityResult)
    pd.testing.assert_frame_equal(back.table, table, check_exact=True)


def test_density_cli_and_bad_counts(capsys):
    from wasmlab.cli import main

    assert main(["bench", "density", "--runtimes", "wasmtime", "--counts", "2", "--samples", "1", "--json",
                 "--no-progress"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "density" and data["params"]["counts"] == [2]
    assert main(["bench", "density", "--counts", "1,x"]) == 2
    assert "--counts takes comma-separated integers" in capsys.readouterr().err
