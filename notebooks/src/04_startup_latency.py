# %% [markdown]
# # 4. Startup latency: cold, warm, precompiled, pooled
#
# **What you will get:** you will take a Wasm module apart into the phases an edge platform pays before it can
# answer a request (compile, load a precompiled artefact, instantiate, first call), measure each one on this
# machine, and turn the numbers into requests per second for a *fresh instance per request* and a *reused
# instance*. At the end you can say whether the seed article's sentence holds here:
#
# > "Startup Latency: Instantiating a new Wasm module takes milliseconds. [...] Solutions include module pooling
# > and instance reuse patterns."
#
# Timings vary from run to run (their cells are tagged so the tests ignore them); the facts that do not vary
# (answers, sizes of artefacts relative to each other) are printed untagged.

# %%
import statistics
import time

import pandas as pd

import wasmlab
from wasmlab import bench
from wasmlab.runtimes import get_runtime

# %% [markdown]
# ## A realistic module
# A small request-scoring function in C: it hashes a header value and looks it up in a table, the kind of work an
# edge handler does per request. The library exports every non-static function.

# %%
source = r"""
static unsigned table[256];
static int ready = 0;

static void init(void) {
    for (unsigned i = 0; i < 256; i++) {
        unsigned x = i * 2654435761u;
        table[i] = (x >> 13) ^ (x << 7);
    }
    ready = 1;
}

unsigned score(unsigned seed, int rounds) {
    if (!ready) init();
    unsigned h = seed ^ 0x9e3779b9u;
    for (int i = 0; i < rounds; i++) h = (h * 31u) ^ table[(h >> 3) & 255];
    return h;
}

int noop(void) { return 0; }
"""
scorer = wasmlab.compile(source, "c", name="scorer")
print(scorer)
print("exports:", scorer.export_names())
print("score(42, 1000) =", scorer.run("wasmtime", "score", (42, 1000)).result)

# %% [markdown]
# ## Cold: compile from bytes
# The first time an engine sees a module it compiles it to machine code (Cranelift, for wasmtime). The lab's
# wasmtime backend caches compiled code by sha256, so a second run skips compiling: `timings["compile"]` is then
# `0.0`, and the cost of the compile that filled the cache is kept in `runtime.compiled_ms`.

# %%
wt = get_runtime("wasmtime")
first = scorer.run("wasmtime", "score", (42, 1000))
again = scorer.run("wasmtime", "score", (42, 1000))
print("same answer both times:", first.result == again.result)
print("second run compiled nothing:", again.timings["compile"] == 0.0)

# %% tags=["nbval-ignore-output"]
print(f"compile (filled the cache): {wt.compiled_ms[scorer.sha256]:.2f} ms")
print(f"first run:  {first.timings}")
print(f"second run: {again.timings}")

# %% [markdown]
# ## AOT: serialise the compiled code, load it back
# Edge platforms do not compile on the request path: they compile once when you deploy, ship the machine code,
# and *deserialise* it on each node. wasmtime exposes exactly that: `serialize(module)` returns its precompiled
# artefact, and `load_serialized(module, data)` installs it as the compiled code of the module (timed).

# %%
artefact = wt.serialize(scorer)
print(f"wasm module: {scorer.size:,} B; the precompiled artefact is larger (machine code + metadata):",
      len(artefact) > scorer.size)
print("artefact starts with an ELF header:", artefact[:4] == b"\x7fELF")


# %%
def compile_fresh_ms(module, n=5):
    """Compile the same code as new bytes each time (a nonce custom section defeats the cache)."""
    import uuid

    from wasmlab.bench.kernels import with_nonce

    times = []
    for _ in range(n):
        fresh = with_nonce(module, uuid.uuid4().hex)
        wt.run(fresh, wasmlab.runtimes.RunOptions(invoke="noop"))
        times.append(wt.compiled_ms[fresh.sha256])
    return times


def deserialize_ms(module, data, n=5):
    return [wt.load_serialized(module, data)["deserialize"] for _ in range(n)]


compile_times = compile_fresh_ms(scorer)
load_times = deserialize_ms(scorer, artefact)
print("after loading the artefact the module still answers:",
      scorer.run("wasmtime", "score", (42, 1000)).result == first.result)

# %% tags=["nbval-ignore-output"]
print(f"compile:     median {statistics.median(compile_times):8.3f} ms  (5 fresh compiles)")
print(f"deserialize: median {statistics.median(load_times):8.3f} ms  (5 loads of the artefact)")
print(f"deserialising is {statistics.median(compile_times) / statistics.median(load_times):.0f}x faster here")

# %% [markdown]
# ## Instantiate: fresh instances vs one reused instance
# Instantiating a compiled module makes a new Store (its own linear memory, globals, tables) and runs the WASI
# reactor's `_initialize`. wasmtime keeps a pre-linked `InstancePre` per module, so repeated instantiation is
# cheap. A reused instance skips it altogether, at the price of sharing state between requests (notebook 8 shows
# why that matters for isolation).
#
# The loop below serves 300 "requests" both ways, in this process, and checks the answers are identical.

# %%
N = 300


def serve_fresh(n=N):
    answers, t0 = [], time.perf_counter()
    for i in range(n):
        with scorer.instantiate("wasmtime") as inst:
            answers.append(inst.call("score", i, 200))
    return answers, time.perf_counter() - t0


def serve_reused(n=N):
    answers = []
    with scorer.instantiate("wasmtime") as inst:
        t0 = time.perf_counter()
        for i in range(n):
            answers.append(inst.call("score", i, 200))
        elapsed = time.perf_counter() - t0
    return answers, elapsed


serve_fresh(20), serve_reused(20)  # warm-up
fresh_answers, fresh_s = serve_fresh()
reused_answers, reused_s = serve_reused()
print("fresh and reused instances give the same answers:", fresh_answers == reused_answers)

# %% tags=["nbval-ignore-output"]
rps = pd.DataFrame(
    [
        {"strategy": "fresh instance per request", "requests": N, "seconds": fresh_s, "requests_per_s": N / fresh_s,
         "us_per_request": fresh_s / N * 1e6},
        {"strategy": "one reused instance", "requests": N, "seconds": reused_s, "requests_per_s": N / reused_s,
         "us_per_request": reused_s / N * 1e6},
    ]
)
rps.round({"seconds": 4, "requests_per_s": 0, "us_per_request": 1})

# %% [markdown]
# ## The same phases on every engine
# `bench.startup` measures each phase apart, next to the engine, with fresh bytes for every "first" phase, on
# each runtime (quick mode: 3 warm samples and one cold one, a new engine or worker process). `deserialize` is
# "not supported" where the backend has no precompiled-artefact API.

# %%
startup = bench.startup(["wasmtime", "node", "jsc", "spidermonkey", "wasm3", "wasmer"], samples=3, quick=True,
                        progress=False)
print("phases measured:", sorted(set(startup.table["phase"])))
print("runtimes:", sorted(set(startup.table["runtime"])))

# %% tags=["nbval-ignore-output"]
startup.pivot("warm").round(3)

# %% tags=["nbval-ignore-output"]
startup.pivot("cold").round(3)

# %% tags=["nbval-ignore-output"]
startup.figure()

# %% [markdown]
# ## Your own code: the same phases for `scorer`
# The suite above times an empty export of the lab's own kernel library. Pass your module instead (a `Module`,
# a `.wasm` or source path, or source text with `lang=`) and the call to make on the first instance: the same
# phases, cold and warm, on every engine that can run it (the others are skipped with the reason), and the
# engines' answers are checked to agree. Without `invoke` it times the whole WASI command (`argv=`).
#
# The same from the command line, `wasmlab bench startup scorer.c --invoke score 42 1000 --quick`, or in a cell,
# `%wasm_bench scorer --invoke score 42 1000 startup --quick`.

# %%
mine = bench.startup(module=scorer, invoke="score", args=(42, 1000),
                     runtimes=["wasmtime", "node", "jsc", "spidermonkey", "wasm3"], samples=3, quick=True, progress=False)
print("measured:", mine.params["subject"]["label"], "in", mine.params["subject"]["name"],
      f"(sha256={mine.params['subject']['sha256'][:12]})")
print("every engine answered", first.result, ":", set(mine.params["answers"].values()) == {first.result})

# %% tags=["nbval-ignore-output"]
mine.pivot("warm").round(4)

# %% tags=["nbval-ignore-output"]
mine.figure()

# %% [markdown]
# ## Does "instantiating takes milliseconds" hold?
# The claim mixes two things. *Compiling* a module is milliseconds to tens of milliseconds; *instantiating* an
# already-compiled module is tens to hundreds of **micro**seconds. The cell below prints the order of magnitude
# measured for each on wasmtime.

# %%
import math


def magnitude(ms):
    if ms >= 1:
        return f"~{10 ** math.floor(math.log10(ms)):g} ms"
    return f"~{10 ** math.floor(math.log10(ms * 1000)):g} us"


warm = startup.summary[(startup.summary["state"] == "warm") & (startup.summary["runtime"] == "wasmtime")]
medians = dict(zip(warm["phase"], warm["median_ms"]))

# %% tags=["nbval-ignore-output"]
for phase in ("compile", "deserialize", "instantiate_first", "instantiate_repeat", "first_call"):
    print(f"wasmtime {phase:<19} {medians[phase]:9.4f} ms   order of magnitude {magnitude(medians[phase])}")
fresh_us = fresh_s / N * 1e6
print(f"a fresh instance per request costs ~{fresh_us:.0f} us end to end from Python")

# %% [markdown]
# So with a warm engine, "milliseconds" is pessimistic for instantiation and about right for compiling; the
# mitigations the article lists are real: **AOT artefacts** remove the compile, **pre-instantiation**
# (`InstancePre`) makes instantiation cheap, and **instance reuse** removes it, trading away per-request isolation.
#
# ## Exercises
# 1. Recompile `scorer` with `opt="O0"` and `opt="Oz"`. Does the compile time change? Does the deserialise time?
# 2. Run `bench.startup(["wasmtime:winch", "wasmtime:pulley", "wasmtime"], quick=True, progress=False)`: how
#    does a baseline compiler (Winch) or an interpreter (Pulley) change the compile phase and the first call?
# 3. Make `score` keep a counter in a global. Which strategy above still gives the same answers?
# 4. Time your own WASI program: `bench.startup(module=wasmlab.compile(my_c_main, "c", kind="command"),
#    quick=True, progress=False)`. Which phase dominates: compiling, instantiating, or running `_start`?
