# %% [markdown]
# # 16. A fleet: 1,000 devices, one rollout
#
# **What you will get:** a thousand simulated edge devices, each a Wasm instance of a rule module with its own
# sensor stream, hosted on the worker processes of a real distributed engine (a Dask `LocalCluster`; the same
# code runs on any Dask cluster by its scheduler address). You roll a new rule version out in canary waves
# (5 %, 25 %, 100 %) with a health gate after each wave, watch the version mix change over time, then push
# three hostile versions (one traps, one loops, one eats memory) and see the gate roll every device back. Last,
# a worker process is killed for real in the middle of a rollout, and no device is lost; and the benchmark
# matrix runs on the cluster's workers, each row naming its host.
#
# The seed article: *"Push new rule sets to thousands of devices instantly"*, and services on edge nodes that
# *"self-heal"*. Tutorial 10 hot-swaps one module in one process; this one goes beyond one process.

# %%
import pandas as pd

from wasmlab import bench
from wasmlab.fleet import Fleet, Gate, examples

# %% [markdown]
# ## The rule modules
# A rule module exports `decide(sensor: i32, value: f64) -> i32`: sensor 0 is a temperature (°C), 1 a
# vibration (mm/s; an idle machine reads 0), 2 a pressure (kPa); the answer is 0 (ok) or an alarm code
# (1 warn, 2 alarm). `examples` holds two good versions in C; v2 tightens the temperature band and raises the
# vibration alarm a step earlier.

# %%
print(examples.RULES_V2)
v1 = examples.build(examples.RULES_V1, "v1")
v2 = examples.build(examples.RULES_V2, "v2")
pd.DataFrame(
    [{"version": m.name, "bytes": m.size, "decide": str(m.func_type("decide")), "pages": m.memories[0].limits.min}
     for m in (v1, v2)]
)

# %% [markdown]
# ## A thousand devices on a cluster
# `Fleet` starts a `LocalCluster` of two worker processes, listening on loopback only, and puts one
# `DeviceHost` actor on each worker; the actor keeps that worker's devices. The module travels once to each
# worker (by its sha256), and each device there gets its own instance of it. With `Fleet(client=...)` or
# `Fleet(scheduler="tcp://HOST:PORT")` the same fleet runs on a cluster you already have.

# %%
fleet = Fleet(v1, devices=1000, workers=2)
print(f"{len(fleet.records):,} devices on {len(fleet.workers)} workers")
print({sha[:12]: n for sha, n in fleet.versions().items()})

# %% [markdown]
# **The Dask dashboard.** In JupyterLab, open the Dask panel in the left sidebar (dask-labextension) and press
# its search button: it finds the cluster this kernel started (or paste the link below). Open *Task Stream*,
# *Workers* and *Memory (by worker)*, then run the cells below and watch the workers do the rollout. (On Binder
# the link goes through the notebook server's proxy.)

# %% tags=["nbval-ignore-output"]
print(fleet.dashboard_link)

# %% [markdown]
# ## Normal operation
# Every device handles its next 50 readings on the version it runs. Readings are a pure function of (seed,
# device, index), so every run of this notebook sees the same 50,000 readings and the same decisions.

# %%
summary = fleet.run(readings=50)
summary.drop(columns=["median_us", "p99_us"])

# %% [markdown]
# The decision latency is measured next to the engine, on the workers (µs per `decide` call, Python included):

# %% tags=["nbval-ignore-output"]
summary[["version", "median_us", "p99_us"]]

# %% [markdown]
# ## A canary rollout
# `canary:5,25,100` moves 5 % of the devices first, then up to 25 %, then everyone. Each device in a wave first
# runs a canary: its next 20 readings, decided by both its current version and the new one. The gate then
# looks at the wave: devices that trapped or hit a limit (none allowed by default), the wave's time, the p99
# latency of the new version, and the share of readings the new version decided differently (at most 25 %).

# %%
report = fleet.rollout(v2, "canary:5,25,100")
print(report.rolled_back, report.lost, {report.label(sha): n for sha, n in report.versions.items()})
print(f"shipped {report.bytes_shipped} bytes: {report.modules_shipped} copies of a {v2.size}-byte module")
report.wave_table()[["percent", "devices", "errors", "compared", "changed", "ok"]]

# %% [markdown]
# v2 changed about 3 % of the decisions: the new thresholds at work, well under the gate's 25 %. How long it
# took, and when half, 99 % and all of the devices ran v2:

# %% tags=["nbval-ignore-output"]
print({"seconds": round(report.seconds, 2), **report.propagation_ms})
report.wave_table()[["percent", "devices", "seconds", "p99_ms"]]

# %% tags=["nbval-ignore-output"]
report.figure()

# %% tags=["nbval-ignore-output"]
report.wave_figure()

# %% [markdown]
# ## Hostile versions
# Three versions that compile, export the right `decide`, and still must never reach the fleet:
# `TRAPS` divides by a vibration reading (an idle machine reads 0), `LOOPS` never returns for a pressure
# reading, `MEMORY_BOMB` grows its memory until the engine refuses. The limits stop each one on the first
# device that meets it (a trap; the time limit of 0.25 s per decision; the memory budget of 2 MiB, under a
# hard cap of 8 MiB), the gate fails the 5 % wave, the rest of the wave is not tried, and every device is
# rolled back.

# %%
print(examples.TRAPS)

# %%
hostile = {}
for name in ("TRAPS", "LOOPS", "MEMORY_BOMB"):
    bad = examples.build(getattr(examples, name), name.lower())
    hostile[name] = fleet.rollout(bad, "canary:5,25,100")
pd.DataFrame(
    [
        {
            "version": name,
            "rolled back": r.rolled_back,
            "waves run": len(r.waves),
            "failed": ", ".join(r.waves[0].failures),
            "devices on v2 after": r.versions.get(v2.sha256, 0),
            "lost": r.lost,
        }
        for name, r in hostile.items()
    ]
)

# %% [markdown]
# What the gate said, one line each (the CLI prints this line on stderr and exits 1):

# %%
for name, r in hostile.items():
    print(f"{name}: {r.caught}")

# %% [markdown]
# ## A worker dies mid-rollout
# v3 tightens the pressure band. Half-way through its rollout one worker process is killed for real
# (`SIGKILL`, by its pid). The next call to it fails, the fleet drops it, recreates its devices on the worker
# that remains (at the version each one ran, from the reading it had reached), and the rollout carries on.
# Dask's nanny starts a new worker in place of the dead one; the fleet puts a host on it when it joins.

# %%
v3 = examples.build(examples.RULES_V2.replace("95.0", "96.0"), "v3")
report = fleet.rollout(v3, "canary:5,25,100", kill_worker_at=0.5)
print("rolled back:", report.rolled_back, "| lost:", report.lost, "| workers lost:", len(report.faults) - 1)
print({report.label(sha): n for sha, n in report.versions.items()})

# %% tags=["nbval-ignore-output"]
for fault in report.faults:
    print(fault)
print("workers now:", fleet.workers)

# %% tags=["nbval-ignore-output"]
report.figure()

# %% [markdown]
# Every one of the 1,000 devices answers the census, on v3, each exactly once:

# %%
census = fleet.census()
print(len(census), sorted(census) == list(range(1000)), {sha[:12]: n for sha, n in fleet.versions().items()})

# %% [markdown]
# ## A stricter gate
# A gate is data. One that allows no more than 0.1 % changed decisions rejects v1 -> v2 (which changes about
# 3 % of them): for rules where a change of behaviour needs a human to look first.

# %%
strict = fleet.rollout(v1, "canary:5,100", gate=Gate(max_changed=0.001))
print(strict.rolled_back, strict.caught.split(":")[0], {strict.label(s): n for s, n in strict.versions.items()})

# %% [markdown]
# ## Memory per device
# The workers' resident memory with 1,000 devices (engine, Python and Dask included). The benchmark
# (`benchmarks/bench_fleet.py --devices 10000`) measures the growth per device against a one-device fleet.

# %% tags=["nbval-ignore-output"]
pd.DataFrame(fleet.memory()).T[["host", "pid", "devices", "rss"]].assign(rss_mib=lambda d: d["rss"] / 2**20)

# %% [markdown]
# ## The benchmark matrix on the cluster
# `bench.suite(..., client=...)` runs the runtime x kernel cells on the cluster's workers instead of this
# kernel: every row names the host (and worker) that measured it, and the environment is recorded per host.
# By default it runs once per host (two workers of one machine would measure that machine twice); here
# `per="worker"` runs it on both workers, one after the other. Each worker checks every checksum against its
# own native build, as the suite does locally.

# %%
matrix = bench.suite("wasmtime", "fib", quick=True, include="throughput", client=fleet.client, per="worker")
print(len(matrix.hosts), "runs;", "every checksum correct:", bool(matrix.table["correct"].all()))

# %% tags=["nbval-ignore-output"]
matrix.summary[["host", "runtime", "geomean_ratio", "ci_low", "ci_high"]]

# %%
fleet.close()

# %% [markdown]
# ## What this shows
# - A rule update is a few hundred bytes shipped once per worker, then one instance per device: 1,000 devices
#   move in well under a second on a 2-core machine, in waves that each prove the new version on real readings
#   before the next wave starts.
# - A version that traps, loops or eats memory is stopped by the limits on the first device that meets it,
#   the gate fails its wave, and every device goes back: nothing depends on luck.
# - A worker that dies takes no device with it: the controller knows where every device should be and at which
#   version, and rebuilds what was lost on the workers that remain.
#
# ## Exercises
# 1. Roll `TRAPS` out with `Gate(max_failure_rate=0.1)`. How far does it get, and which devices end up on it?
#    Why is a failure rate above zero a dangerous default for rules?
# 2. Kill a worker yourself between two rollouts (`fleet.kill_worker()`), then call `fleet.census()`. Where did
#    its devices go, and at which reading do they continue?
# 3. Start a scheduler and two workers in a terminal (`dask scheduler --host 127.0.0.1`, `dask worker
#    tcp://127.0.0.1:8786 --host 127.0.0.1`) and run `wasmlab fleet rollout v1.c v2.c --devices 10000
#    --scheduler tcp://127.0.0.1:8786`. What changes in the propagation times?
