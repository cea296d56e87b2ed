# %% [markdown]
# # 14. Claims audit: the seed article's numbers, measured here
#
# **What you will get:** every quantitative claim in the seed article ("Understanding WebAssembly and Edge
# Computing: The Perfect Match for 2026") next to what this lab measures on this machine, in one table and one
# figure, each measured in this notebook in a minute or two: binary sizes, speed against native, instantiation
# time, edge vs origin latency, size reduction from optimisation, and data reduction by edge aggregation.
#
# An audit is only as good as its method, so each section says what is measured, what is simulated, and what
# the measurement cannot tell you. Measured values vary from run to run (their cells are tagged so the tests
# ignore them); the claims, the builds' answers and the aggregation's byte counts do not.

# %%
import io
import random

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

import wasmlab
from wasmlab import bench, edge
from wasmlab.runtimes import available_runtimes

# %% [markdown]
# ## The claims

# %%
CLAIMS = [
    ("size", "Compiled binaries are remarkably compact, typically 10-50 MB for complete applications"),
    ("speed", "Wasmer 6.0 achieving 95% native speed performance"),
    ("startup", "Instantiating a new Wasm module takes milliseconds"),
    ("latency", "This proximity dramatically reduces latency, from hundreds of milliseconds to single-digit milliseconds"),
    ("optimise", "Link-time optimization (LTO) and careful dependency selection reduce 5MB binaries to 500KB"),
    ("ingest", "Stream processing engines [...] aggregate data [...] reducing data ingestion costs by 90%+ percent"),
    ("memory", "Wasm applications consume far less memory and compute than containerized workloads"),
]
for key, text in CLAIMS:
    print(f"{key:<9} \"{text}\"")

# %% [markdown]
# ## 1. Binary size: "10-50 MB for complete applications"
# Four complete programs (WASI commands), each the same small tool, a word counter reading stdin: in C, Rust
# (std, a HashMap), Go (its runtime and garbage collector), and Python (componentize-py: a component carrying
# CPython; ~10 s to build the first time, cached afterwards). Default lab options: `-O2`, stripped.

# %%
WORDCOUNT = {
    "c": r"""#include <stdio.h>
#include <ctype.h>
int main(void) {
    long words = 0, lines = 0; int c, in = 0;
    while ((c = getchar()) != EOF) {
        if (c == '\n') lines++;
        if (isspace(c)) in = 0; else if (!in) { in = 1; words++; }
    }
    printf("%ld lines, %ld words\n", lines, words);
    return 0;
}
""",
    "rust": r"""use std::collections::HashMap;
fn main() {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut lines = 0;
    for line in std::io::stdin().lines() {
        let line = line.unwrap();
        lines += 1;
        for w in line.split_whitespace() { *counts.entry(w.to_lowercase()).or_insert(0) += 1; }
    }
    println!("{} lines, {} words", lines, counts.values().sum::<usize>());
}
""",
    "go": """package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

func main() {
	scanner := bufio.NewScanner(os.Stdin)
	lines, words := 0, 0
	for scanner.Scan() {
		lines++
		words += len(strings.Fields(scanner.Text()))
	}
	fmt.Printf("%d lines, %d words\\n", lines, words)
}
""",
    "python": """import sys
text = sys.stdin.read()
print(f"{len(text.splitlines())} lines, {len(text.split())} words")
""",
}
text_in = "the quick brown fox\njumps over\nthe lazy dog\n"
programs = {lang: wasmlab.compile(src, lang, kind="command", name=f"wc-{lang}") for lang, src in WORDCOUNT.items()}
for lang, module in programs.items():
    print(f"{lang:<7} {module.run('wasmtime', stdin=text_in).output.strip()}")

# %% tags=["nbval-ignore-output"]
sizes = pd.DataFrame({"lang": lang, "kind": m.kind, "bytes": m.size, "MB": round(m.size / 1e6, 3)}
                     for lang, m in programs.items())
sizes

# %% [markdown]
# ## 2. Speed: "Wasmer 6.0 achieving 95% native speed"
# The kernel suite of notebook 5 (seven C kernels, gcc `-O2` native baseline, checksums checked), quick mode.
# `wasmer-sdk` is the modern Wasmer engine (Cranelift), the closest this machine has to Wasmer 6.0; wasmtime
# and the three browser engines (V8 in node, JavaScriptCore, SpiderMonkey) for reference. 95% of native speed
# means a time ratio of at most 1.053.

# %%
ENGINES = ["wasmer-sdk", "wasmtime", "node", "jsc", "spidermonkey"]
speed = bench.throughput(available_runtimes(ENGINES), quick=True, samples=3, progress=False)
print("all checksums matched native:", bool(speed.table["correct"].all()))
ratios = speed.ratios.set_index("runtime")

# %% tags=["nbval-ignore-output"]
ratios[["geomean_ratio", "ci_low", "ci_high", "native_speed_pct"]].round(3)

# %% [markdown]
# ## 3. Startup: "Instantiating a new Wasm module takes milliseconds"
# `bench.startup` on wasmtime, quick: compiling a never-seen module, and instantiating an already-compiled one.

# %%
startup = bench.startup(["wasmtime"], samples=3, quick=True, progress=False)
warm = startup.summary[startup.summary["state"] == "warm"].set_index("phase")["median_ms"]
print("phases:", ", ".join(p for p in ("compile", "deserialize", "instantiate_repeat") if p in warm.index))

# %% tags=["nbval-ignore-output"]
warm[["compile", "deserialize", "instantiate_first", "instantiate_repeat"]].round(4)

# %% [markdown]
# ## 4. Latency: "from hundreds of milliseconds to single-digit milliseconds"
# The network distance cannot be measured on one machine: it is **simulated** (an origin 150 ms away, an edge
# node 2 ms away). What is measured is everything else: HTTP, routing, a pooled Wasm instance, the handler.
# The claim holds here if the edge's total stays in single-digit milliseconds.

# %%
hello = edge.compile_handler(
    """
void on_request(const edge_request *req, edge_response *res) {
    edge_str country = edge_get_header(req, "x-geo-country");
    edge_set_header(res, "content-type", "text/plain");
    edge_write_str(res, "hello, visitor from ");
    if (country.len) edge_write_s(res, country); else edge_write_str(res, "somewhere");
    edge_write_str(res, "\\n");
}""",
    lang="c",
)
server = edge.EdgeServer().start()
server.route("/edge", hello, strategy="pooled", delay_ms=2)
server.origin("/origin", delay_ms=150, body="hello from the origin\n")
print(server.fetch("/edge", headers={"x-geo-country": "NZ"}).text.strip())
latency = edge.compare_urls(
    {"origin (+150 ms)": server.url + "/origin", "edge (+2 ms)": server.url + "/edge"},
    requests=100,
    concurrency=4,
    headers={"x-geo-country": "NZ"},
    warmup=5,
)
server.stop()
lat = latency.table.set_index("label")
print("every request answered:", bool((lat["failed"] == 0).all()))

# %% tags=["nbval-ignore-output"]
lat[["requests", "rps", "p50_ms", "p99_ms"]].round(2)

# %% [markdown]
# ## 5. Optimisation: "LTO [...] reduce 5MB binaries to 500KB"
# The Rust word counter built four ways: a debug-style build (`-O0`, DWARF kept), `-O2` with DWARF, the lab's
# default (`-O2`, stripped) and `-Oz` + LTO. Each build still gives the same answer.

# %%
RUST_BUILDS = {
    "O0 + debug info": dict(opt="O0", strip=False),
    "O2 + debug info": dict(strip=False),
    "O2 stripped": dict(),
    "Oz + LTO stripped": dict(opt="Oz", lto=True),
}
rust_builds = {label: wasmlab.compile(WORDCOUNT["rust"], "rust", kind="command", name="wc-rust", **options)
               for label, options in RUST_BUILDS.items()}
answers = {label: m.run("wasmtime", stdin=text_in).output.strip() for label, m in rust_builds.items()}
print("same answer from every build:", len(set(answers.values())) == 1, "|", answers["Oz + LTO stripped"])

# %% tags=["nbval-ignore-output"]
rust_sizes = pd.Series({label: m.size for label, m in rust_builds.items()}, name="bytes")
largest, smallest = rust_sizes.max(), rust_sizes.min()
print(rust_sizes.to_string())
print(f"largest / smallest: {largest / smallest:.0f}x; "
      f"LTO alone (O2 stripped -> Oz + LTO): {rust_sizes['O2 stripped'] / rust_sizes['Oz + LTO stripped']:.2f}x")

# %% [markdown]
# ## 6. Ingestion: "reducing data ingestion costs by 90%+"
# [`data/14_aggregate.c`](data/14_aggregate.c) is a WASI command that reads sensor readings
# (`timestamp_ms,sensor,value`) and writes one summary per sensor per minute (count, min, max, mean). The readings
# are generated here from a fixed seed: 20 sensors, one reading a second each, for ten minutes. Bytes forwarded
# stand in for ingestion cost; this is deterministic, so it is not ignored by the tests.

# %%
rng = random.Random(14)
readings = []
t0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
for second in range(600):
    for sensor in range(20):
        ts = t0 + second * 1000 + rng.randrange(1000)
        readings.append((ts, f"sensor-{sensor:02d}", 2000 + sensor * 10 + rng.randrange(-150, 150)))
readings.sort()
raw = "".join(f"{ts},{name},{value}\n" for ts, name, value in readings)

aggregator = wasmlab.compile(open("data/14_aggregate.c").read(), "c", kind="command", name="aggregate")
run = aggregator.run("wasmtime", stdin=raw)
summary_text = run.output
print(run.stderr.decode().strip())

frame = pd.DataFrame(readings, columns=["ts", "sensor", "value"])
frame["minute"] = frame["ts"] - frame["ts"] % 60000
expected = frame.groupby(["minute", "sensor"])["value"].agg(["count", "min", "max", "sum"]).reset_index()
got = pd.read_csv(io.StringIO(summary_text), names=["minute", "sensor", "count", "min", "max", "mean"])
merged = got.merge(expected, on=["minute", "sensor"], suffixes=("", "_pd"))
print("summaries:", len(got), "| match pandas:", len(merged) == len(expected) == len(got)
      and bool((merged["count"] == merged["count_pd"]).all() and (merged["min"] == merged["min_pd"]).all()
               and (merged["max"] == merged["max_pd"]).all()
               and (merged["mean"] == merged["sum"] // merged["count"]).all()))
raw_bytes, out_bytes = len(raw.encode()), len(summary_text.encode())
reduction = 1 - out_bytes / raw_bytes
print(f"raw readings: {raw_bytes:,} B; summaries: {out_bytes:,} B; reduction {reduction:.1%}")

# %% [markdown]
# ## 7. Memory: "far less memory and compute than containerized workloads"
# There is no container engine on this machine. A container is at least one process (plus its runtime's shim,
# image layers and cgroup), so a native process per copy is the *floor* of what a container costs. `bench.density`
# keeps 1, 10 and 100 copies of one small stateful C service alive at once: as an instance on each engine, and as
# a gcc-built process (the same source). Per copy it measures the marginal memory (the host's resident memory
# growth per instance; for processes, their proportional set size) and the time to create a copy and get its
# first answer.

# %%
dense = bench.density(counts=(1, 10, 100), samples=3, progress=False)
per_copy = dense.per_copy().set_index("unit")
print("units:", list(per_copy.index), "| counts:", sorted(int(c) for c in dense.table["count"].unique()))

# %% tags=["nbval-ignore-output"]
per_copy.round(2)

# %% tags=["nbval-ignore-output"]
dense.figure()

# %% [markdown]
# An instance on a JIT engine costs tens of KiB and a tenth of a millisecond or so; the smallest possible
# process costs several times the memory and milliseconds to start, before any container machinery. The
# interpreter (wasm3) materialises the whole linear memory of the module (17 pages here: 1 MiB of stack) and so
# costs more than a process. The engine itself is paid once per host (`host_mib`).

# %% [markdown]
# ## The audit, in one table

# %%
def mb(n):
    return f"{n / 1e6:.2f} MB"


sdk = ratios.loc["wasmer-sdk"]
edge_p50, origin_p50 = lat.loc["edge (+2 ms)", "p50_ms"], lat.loc["origin (+150 ms)", "p50_ms"]
audit = pd.DataFrame(
    [
        {
            "claim": "size: 10-50 MB per application",
            "measured here": ", ".join(f"{lang} {mb(m.size)}" for lang, m in programs.items()),
            "verdict": "only Python (an interpreter inside) is in 10-50 MB; compiled languages are KB to a few MB"
            if not all(10e6 <= m.size <= 50e6 for m in programs.values()) else "holds",
        },
        {
            "claim": "speed: Wasmer 6.0 at 95% of native",
            "measured here": f"wasmer-sdk {sdk['native_speed_pct']:.0f}% of native "
            f"(ratio {sdk['geomean_ratio']:.2f}, CI {sdk['ci_low']:.2f}-{sdk['ci_high']:.2f})",
            "verdict": "holds here" if sdk["ci_high"] <= 1 / 0.95 else "not on this suite and machine (no LLVM tier, no SIMD)",
        },
        {
            "claim": "startup: instantiating takes milliseconds",
            "measured here": f"compile {warm['compile']:.2f} ms; instantiate (compiled) {warm['instantiate_repeat'] * 1000:.0f} us",
            "verdict": "compiling: milliseconds; instantiating a compiled module: well under a millisecond"
            if warm["instantiate_repeat"] < 1 else "holds",
        },
        {
            "claim": "latency: hundreds of ms -> single-digit ms",
            "measured here": f"origin p50 {origin_p50:.1f} ms -> edge p50 {edge_p50:.1f} ms (distances simulated)",
            "verdict": "holds for the edge's own overhead" if edge_p50 < 10 else "edge above 10 ms here",
        },
        {
            "claim": "optimise: LTO takes 5 MB to 500 KB",
            "measured here": f"Rust {mb(largest)} -> {mb(smallest)} ({largest / smallest:.0f}x); "
            f"LTO alone {rust_sizes['O2 stripped'] / rust_sizes['Oz + LTO stripped']:.2f}x",
            "verdict": "the 10x is real, but stripping debug info does most of it, not LTO",
        },
        {
            "claim": "ingest: 90%+ less data",
            "measured here": f"{raw_bytes:,} B -> {out_bytes:,} B ({reduction:.1%} less), per-minute summaries",
            "verdict": "holds for minute summaries of 1 Hz readings" if reduction >= 0.9 else "below 90% here",
        },
        {
            "claim": "memory: far less than containers",
            "measured here": f"per copy: wasmtime instance {per_copy.loc['wasmtime', 'memory_kib']:.0f} KiB, "
            f"{per_copy.loc['wasmtime', 'create_ms']:.2f} ms; native process {per_copy.loc['native', 'memory_kib']:.0f} KiB, "
            f"{per_copy.loc['native', 'create_ms']:.2f} ms",
            "verdict": f"holds: {per_copy.loc['native', 'memory_kib'] / per_copy.loc['wasmtime', 'memory_kib']:.1f}x less "
            "memory than even a bare process" if per_copy.loc["wasmtime", "memory_kib"] < per_copy.loc["native", "memory_kib"]
            else "not here: an instance cost more than a process",
        },
    ]
)

# %% tags=["nbval-ignore-output"]
with pd.option_context("display.max_colwidth", 120, "display.width", 250):
    display(audit)

# %% [markdown]
# ## The audit, in one figure
# Each panel puts the claim (grey) next to the measurement (colour), in the claim's own unit.

# %%
panels = [
    ("Size (MB, log)", ["claim low", "claim high", *programs], [10, 50, *(m.size / 1e6 for m in programs.values())], True),
    ("% of native speed", ["claim", *ratios.index], [95, *ratios["native_speed_pct"]], False),
    ("Startup (ms, log)", ["claim ~1 ms", "compile", "instantiate"], [1, warm["compile"], warm["instantiate_repeat"]], True),
    ("Latency p50 (ms, log)", ["claim before", "claim after", "origin", "edge"], [100, 9, origin_p50, edge_p50], True),
    ("Optimised size (MB, log)", ["claim before", "claim after", "Rust O0+debug", "Rust Oz+LTO"],
     [5, 0.5, largest / 1e6, smallest / 1e6], True),
    ("Data forwarded (% of raw)", ["claim", "measured"], [10, 100 * out_bytes / raw_bytes], False),
    ("Memory per copy (KiB, log)", list(per_copy.index), list(per_copy["memory_kib"]), True),
]
figure = make_subplots(rows=2, cols=4, subplot_titles=[p[0] for p in panels])
for i, (title, labels, values, log) in enumerate(panels):
    row, col = divmod(i, 4)
    colours = ["#b0b0b0" if str(label).startswith("claim") else bench.PALETTE.get(str(label), "#1f77b4")
               for label in labels]
    figure.add_trace(go.Bar(x=labels, y=values, marker_color=colours, showlegend=False), row=row + 1, col=col + 1)
    if log:
        figure.update_yaxes(type="log", row=row + 1, col=col + 1)
figure.update_layout(height=650, width=1200, title="Seed article claims (grey) vs this machine")
print("panels:", [p[0] for p in panels])

# %% tags=["nbval-ignore-output"]
figure

# %% [markdown]
# ## What to take away
# * Sizes depend on the language far more than on Wasm: a C tool is kilobytes, Go megabytes, Python tens of MB.
# * "95% of native" is a best case; on a mixed suite the modern Wasmer engine here is slower than that, and the
#   confidence interval says so.
# * Instantiation is cheap once code is compiled (or deserialised); compiling is the millisecond-scale part.
# * The edge's own overhead is small; the latency win is the network distance, which you choose, not Wasm.
# * Size optimisation: strip debug info first; LTO is the last few percent.
# * Data reduction depends on the aggregation window and the reading rate, not on Wasm.
# * Density is real: an instance on a JIT engine costs a fraction of even a bare process, in memory and in
#   start time; an interpreter that materialises linear memory does not share that advantage.
#
# ## Exercises
# 1. Change the aggregation to 10-second windows. Is the reduction still 90%+? At what window does it drop below?
# 2. Rerun section 2 with `native_extra=("-fno-tree-vectorize",)`: how much of the gap to 95% was SIMD?
# 3. Add Zig and AssemblyScript to the size table (`kind="command"`). Where do they fall?
