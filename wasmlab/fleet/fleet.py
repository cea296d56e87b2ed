"""`Fleet`: simulated edge devices on a Dask cluster, rule rollouts in waves, and self-healing when a worker dies.

The controller (this object, in the caller's process) holds the fleet's desired state: for every device, the
worker hosting it, the version it runs and the index of its next reading. Each worker holds one `DeviceHost`
actor with that worker's devices. Every change is a call to the actors, chunk by chunk, one thread per worker;
a worker that stops answering is dropped, and its devices are recreated on the workers that remain (a worker
the cluster restarts joins as a new one) at the version they last ran, after which the operation that was
under way continues for them. Rollouts never depend on which worker dies or when.

Clusters: by default a `distributed.LocalCluster` of worker processes on loopback (its dashboard too), closed
with the fleet; or any running cluster, by `client=` or `scheduler="tcp://HOST:PORT"` (its workers need
wasmlab installed). The fleet closes only what it started.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import math
import os
import random
import signal
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError, WasmlabError
from ..module import Module
from .gate import Gate, WaveHealth, parse_strategy
from .report import RolloutReport

DECIDE_TYPE = "(i32, f64) -> i32"
BATCH = 64  # devices per call to a worker: small enough to spread a wave, large enough to amortise the call
CALL_TIMEOUT = 300.0  # seconds one call to a worker may take before the fleet gives up on it
MAX_ROUNDS = 8  # an operation is retried on the remaining workers at most this often (each round loses a worker)
CONNECT_TIMEOUT = 5.0  # seconds to reach a scheduler given by address
POLL = 0.02  # seconds between looks at a rollout's progress (for --kill-worker-at)


class ClusterUnavailable(WasmlabError):
    """Dask is missing, or the cluster cannot be reached or used; the message says how to fix it."""

    exit_code = 2


class _HostLost(Exception):
    """A worker (and the devices it hosted) is gone."""


@dataclass
class _Host:
    address: str
    actor: Any
    info: dict[str, Any]
    modules: set[str] = field(default_factory=set)


@dataclass
class _Record:
    id: int
    host: str | None  # worker address; None while the device waits to be recreated
    sha: str  # the version it runs
    position: int = 0  # index of its next reading


def as_rules(rules: Module | bytes | str | Path) -> Module:
    """A rule module from a Module, .wasm bytes, or a path (a .wasm file, or a source file to compile); checks
    that it exports `decide(sensor: i32, value: f64) -> i32`."""
    from ..build import compile
    from ..module import load

    if isinstance(rules, Module):
        module = rules
    elif isinstance(rules, (bytes, bytearray, memoryview)):
        module = load(bytes(rules))
    else:
        path = Path(rules)
        if not path.is_file():
            raise UsageError(f"no such rule module or source file: {path}")
        module = load(path) if path.suffix == ".wasm" else compile(path, opt="Oz")
    if module.is_component:
        raise UsageError(f"{module.name} is a component: a rule module is a core module exporting decide")
    found = str(module.func_type("decide"))
    if found != DECIDE_TYPE:
        raise UsageError(f"{module.name}: decide is {found}, a rule module's decide must be {DECIDE_TYPE}")
    return module


def _dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterUnavailable("the fleet needs Dask: pip install 'wasmlab[fleet]' (dask, distributed)") from None
    return distributed


class Fleet:
    """`devices` simulated devices running `rules`, spread over the workers of a Dask cluster.

        >>> with Fleet(examples.build(examples.RULES_V1), devices=1000) as fleet:  # doctest: +SKIP
        ...     fleet.run(readings=50)
        ...     report = fleet.rollout(examples.build(examples.RULES_V2), strategy="canary:5,25,100")

    `workers` is the size of the LocalCluster it starts (ignored with `client` or `scheduler`). Devices run on
    `runtime` with `timeout` seconds per decision and `max_memory` bytes of linear memory at most."""

    def __init__(
        self,
        rules: Module | bytes | str | Path,
        devices: int = 1000,
        *,
        client: Any = None,
        scheduler: str | None = None,
        workers: int = 2,
        seed: int = 0,
        runtime: str = "wasmtime",
        timeout: float = 0.25,
        max_memory: int = 8 << 20,
        batch: int = BATCH,
    ) -> None:
        if devices < 1:
            raise UsageError(f"devices={devices}: a fleet needs at least one device")
        module = as_rules(rules)
        self.seed, self.runtime, self.batch = seed, runtime, max(1, batch)
        self.limits = {"timeout": timeout, "max_memory": max_memory}
        self.modules: dict[str, Module] = {module.sha256: module}
        self.stats: dict[str, Counter] = {}  # sha -> readings, alarms, failures by kind
        self.latency_us: dict[str, array] = {}  # sha -> µs per decision
        self.bytes_shipped = self.modules_shipped = 0
        self.faults: list[dict[str, Any]] = []
        self._hosts: dict[str, _Host] = {}
        self._dead: set[str] = set()
        self._lock = threading.Lock()
        self._cluster = None
        self._own_client = client is None
        self.records = {i: _Record(i, None, module.sha256) for i in range(devices)}
        self.client = self._connect(client, scheduler, workers)
        try:
            self._heal()
        except BaseException:
            self.close()
            raise

    # cluster ----------------------------------------------------------------------------------------------
    def _connect(self, client: Any, scheduler: str | None, workers: int) -> Any:
        distributed = _dask()
        if client is not None:
            return client
        if scheduler:
            try:
                return distributed.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ClusterUnavailable(
                    f"no Dask scheduler answers at {scheduler} ({type(exc).__name__}): start one "
                    "(dask scheduler --host 127.0.0.1) or leave --scheduler out for a local cluster"
                ) from None
        if workers < 1:
            raise UsageError(f"workers={workers}: a cluster needs at least one worker")
        self._cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # loopback, a free port (the scheduler's HTTP server starts anyway)
            silence_logs=logging.CRITICAL,  # a killed worker is expected here, not an error to print
        )
        return distributed.Client(self._cluster, set_as_default=False)

    @property
    def dashboard_link(self) -> str | None:
        with contextlib.suppress(Exception):
            return self.client.dashboard_link
        return None

    @property
    def workers(self) -> list[str]:
        """Addresses of the workers hosting devices now."""
        return sorted(self._hosts)

    def cluster_info(self) -> dict[str, Any]:
        return {
            "scheduler": self.client.scheduler.address,
            "workers": self.workers,
            "dashboard": self.dashboard_link,
            "hosts": {address: host.info for address, host in sorted(self._hosts.items())},
        }

    def _ensure_hosts(self) -> None:
        """One DeviceHost on every live worker that has none (a restarted worker joins as a new one)."""
        from .host import DeviceHost

        for address in sorted(self.client.scheduler_info(n_workers=-1)["workers"]):
            if address in self._hosts or address in self._dead:
                continue
            try:
                future = self.client.submit(
                    DeviceHost, self.seed, self.runtime, **self.limits,
                    actor=True, workers=[address], allow_other_workers=False, pure=False,
                )
                with self.client.as_current():  # the actor binds to the current client: ours, not another one
                    actor = future.result(timeout=60)
                info = actor.describe().result(timeout=60)
            except (OSError, TimeoutError):
                self._dead.add(address)  # it died as we asked
                continue
            except ImportError as exc:
                raise ClusterUnavailable(
                    f"worker {address} cannot host devices ({exc}): install wasmlab on every worker"
                ) from None
            self._hosts[address] = _Host(address, actor, info)
        if not self._hosts:
            raise ClusterUnavailable("the cluster has no worker left to host devices: add workers and retry")

    def _call(self, host: _Host, method: str, *args: Any) -> Any:
        try:
            return getattr(host.actor, method)(*args).result(timeout=CALL_TIMEOUT)
        except (OSError, concurrent.futures.CancelledError) as exc:
            raise _HostLost(host.address) from exc
        except TimeoutError:
            raise _HostLost(host.address) from None
        except RuntimeError as exc:  # distributed: "Worker holding Actor was lost"
            if "Actor was lost" in str(exc):
                raise _HostLost(host.address) from exc
            raise

    def _lose(self, address: str) -> None:
        with self._lock:
            if self._hosts.pop(address, None) is None:
                return
            self._dead.add(address)
            orphans = [r for r in self.records.values() if r.host == address]
            for record in orphans:
                record.host = None
        self.faults.append({"worker": address, "devices": len(orphans), "t": time.perf_counter(), "recreated_on": {}})

    def _ship(self, host: _Host, sha: str) -> None:
        """Send module `sha` to `host` unless it has it: once per worker, not once per device."""
        if sha in host.modules:
            return
        data = self.modules[sha].bytes
        self._call(host, "store", data)
        host.modules.add(sha)
        with self._lock:
            self.bytes_shipped += len(data)
            self.modules_shipped += 1

    def kill_worker(self, address: str | None = None) -> str:
        """Kill a worker process for real (SIGKILL; default: the one hosting most devices) and return its
        address. Its devices are recreated on the other workers by the next operation that finds it gone."""
        if len(self._hosts) < 2:
            raise UsageError("the fleet has one worker: killing it would leave its devices nowhere to go")
        if address is None:
            load = Counter(r.host for r in self.records.values())
            address = max(sorted(self._hosts), key=lambda a: load[a])
        host = self._hosts.get(address)
        if host is None:
            raise UsageError(f"no worker {address} in this fleet: its workers are {', '.join(self.workers)}")
        pid = host.info["pid"]
        if self._cluster is not None:  # ours, on this machine: by its pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        else:  # a worker elsewhere kills itself, the same signal
            self.client.run(os.kill, pid, signal.SIGKILL, workers=[address], wait=False)
        return address

    # running devices -------------------------------------------------------------------------------------
    def _dispatch(
        self,
        work: dict[str, list[list[int]]],
        call: Callable[[_Host, list[int]], Any],
        done: Callable[[_Host, list[int], Any, float], None],
        watch: Callable[[], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """Run `call(host, chunk)` for every chunk, in order per worker, one thread per worker; `done(host, chunk,
        result, sent)` records each result (`sent`: perf_counter when the call went out). A worker that dies
        is lost with its devices (the caller heals and retries). `watch` runs every POLL s meanwhile; once
        `stop()` is true no new chunk is sent."""

        def serve(address: str, chunks: list[list[int]]) -> None:
            host = self._hosts.get(address)
            for chunk in chunks:
                if host is None or (stop is not None and stop()):
                    return
                sent = time.perf_counter()
                try:
                    result = call(host, chunk)
                except _HostLost:
                    self._lose(address)
                    return
                done(host, chunk, result, sent)

        with concurrent.futures.ThreadPoolExecutor(max(1, len(work)), thread_name_prefix="wasmlab-fleet") as pool:
            futures = [pool.submit(serve, address, chunks) for address, chunks in work.items()]
            while futures:
                finished, pending = concurrent.futures.wait(futures, timeout=POLL)
                for future in finished:
                    future.result()  # a bug in `done` surfaces here
                futures = list(pending)
                if watch is not None:
                    watch()

    def _chunks(self, device_ids: Iterable[int]) -> dict[str, list[list[int]]]:
        by_host: dict[str, list[int]] = {}
        for device_id in device_ids:
            by_host.setdefault(self.records[device_id].host or "", []).append(device_id)
        by_host.pop("", None)
        return {a: [ids[i : i + self.batch] for i in range(0, len(ids), self.batch)] for a, ids in by_host.items()}

    def _heal(self) -> None:
        """Recreate every device that has no worker (its worker died, or the fleet is new) on the live workers,
        the least loaded first, at the version it ran, from the reading it had reached."""
        moved: Counter = Counter()

        def place(host: _Host, chunk: list[int]) -> Any:
            for sha in {self.records[i].sha for i in chunk}:
                self._ship(host, sha)
            return self._call(host, "place", [(i, self.records[i].sha, self.records[i].position) for i in chunk])

        def placed(host: _Host, chunk: list[int], result: Any, sent: float) -> None:
            moved[host.address] += len(chunk)

        for _ in range(MAX_ROUNDS):
            self._ensure_hosts()
            orphans = [r for r in self.records.values() if r.host is None]
            if not orphans:
                if self.faults and moved:
                    recreated = self.faults[-1]["recreated_on"]
                    for address, n in moved.items():
                        recreated[address] = recreated.get(address, 0) + n
                return
            load = Counter({a: 0 for a in self._hosts}) + Counter(r.host for r in self.records.values() if r.host)
            for record in orphans:
                address = min(sorted(self._hosts), key=lambda a: load[a])
                record.host = address
                load[address] += 1
            self._dispatch(self._chunks(r.id for r in orphans), place, placed)
        raise ClusterUnavailable(f"workers kept dying: devices could not be placed after {MAX_ROUNDS} rounds")

    def _absorb(self, result: dict[str, Any]) -> None:
        """Add a host's counts and latencies to the fleet's totals."""
        with self._lock:
            for sha, counts in result["counts"].items():
                self.stats.setdefault(sha, Counter()).update(counts)
            for sha, raw in result["latency_us"].items():
                values = array("f")
                values.frombytes(raw)
                self.latency_us.setdefault(sha, array("f")).extend(values)

    def run(self, readings: int = 50):  # -> pandas.DataFrame
        """Every device handles its next `readings` readings on the version it runs; returns `summary()`."""
        remaining = set(self.records)
        for _ in range(MAX_ROUNDS):
            self._heal()
            if not remaining:
                break
            def step(host: _Host, chunk: list[int]) -> Any:
                return self._call(host, "run", readings, chunk)

            def stepped(host: _Host, chunk: list[int], result: Any, sent: float) -> None:
                self._absorb(result)
                for device_id in chunk:
                    self.records[device_id].position += readings
                    remaining.discard(device_id)

            self._dispatch(self._chunks(remaining), step, stepped)
        return self.summary()

    # state ------------------------------------------------------------------------------------------------
    def census(self) -> dict[int, tuple[str, str]]:
        """What the workers themselves say: device id -> (worker, sha of the version it runs). Lost workers
        are found (and their devices recreated) on the way."""
        for _ in range(MAX_ROUNDS):
            self._heal()
            seen: dict[int, tuple[str, str]] = {}
            try:
                for address, host in sorted(self._hosts.items()):
                    for device_id, (sha, _) in self._call(host, "census").items():
                        seen[device_id] = (address, sha)
            except _HostLost as lost:
                self._lose(lost.args[0])
                continue
            return seen
        raise ClusterUnavailable(f"workers kept dying: no census after {MAX_ROUNDS} rounds")

    def versions(self) -> dict[str, int]:
        """sha256 -> devices running it, as the workers report."""
        return dict(Counter(sha for _, sha in self.census().values()))

    def summary(self):  # -> pandas.DataFrame
        """Per version: readings decided, alarms by code, failures by kind, decision latency (µs, on the worker)."""
        import pandas as pd

        from ..bench.stats import describe

        rows = []
        for sha, counts in self.stats.items():
            row: dict[str, Any] = {"version": sha[:12], "module": self.modules[sha].name if sha in self.modules else ""}
            row.update(sorted(counts.items()))
            latency = self.latency_us.get(sha)
            if latency:
                stats = describe(list(latency))
                row["median_us"] = round(stats["median"], 2)
                row["p99_us"] = round(_quantile(latency, 0.99), 2)
            rows.append(row)
        return pd.DataFrame(rows).fillna(0)

    def memory(self) -> dict[str, Any]:
        """Resident memory of every worker now (bytes) and its devices."""
        out = {}
        for address, host in sorted(self._hosts.items()):
            with contextlib.suppress(_HostLost):
                out[address] = self._call(host, "describe")
        return out

    def ping(self, calls: int = 100) -> dict[str, float]:
        """Median round trip (ms) of an empty call to each worker's host: what every chunk of work pays on top."""
        out = {}
        for address, host in sorted(self._hosts.items()):
            times = []
            for _ in range(calls):
                started = time.perf_counter()
                self._call(host, "has")
                times.append((time.perf_counter() - started) * 1000)
            out[address] = sorted(times)[len(times) // 2]
        return out

    # rollouts ---------------------------------------------------------------------------------------------
    def rollout(
        self,
        rules: Module | bytes | str | Path,
        strategy: str | list[float] = "canary:5,25,100",
        *,
        gate: Gate | None = None,
        canary_readings: int = 20,
        kill_worker_at: float | None = None,
        order_seed: int | None = None,
    ) -> RolloutReport:
        """Move every device to `rules`, in the waves `strategy` names ("all", "canary:5,25,100"), each wave's
        devices after a canary of `canary_readings` readings decided by both versions. After each wave `gate`
        judges it; one that fails rolls every device back to the version it ran before. `kill_worker_at`
        (0..1) kills a worker once that share of the devices has been through its canary."""
        module = as_rules(rules)
        gate = gate or Gate()
        percents = parse_strategy(strategy)
        if kill_worker_at is not None and not 0 <= kill_worker_at <= 1:
            raise UsageError(f"kill_worker_at={kill_worker_at}: give a share of the rollout between 0 and 1")
        old = Counter(r.sha for r in self.records.values()).most_common(1)[0][0]
        new = module.sha256
        self.modules[new] = module
        shipped_before = (self.bytes_shipped, self.modules_shipped)
        faults_before = len(self.faults)
        report = RolloutReport(
            len(self.records), {}, old, new, percents, gate.to_dict()
        )
        order = sorted(self.records)
        random.Random(self.seed if order_seed is None else order_seed).shuffle(order)
        started = time.perf_counter()
        progress = {"devices": 0, "killed": kill_worker_at is None}
        total = len(order)

        def watch() -> None:
            if kill_worker_at is None or progress["killed"]:
                return
            if progress["devices"] >= kill_worker_at * total and len(self._hosts) > 1:
                progress["killed"] = True
                victim = self.kill_worker()
                report.faults.append(
                    {"killed": victim, "at_share": round(progress["devices"] / total, 3),
                     "ms": round((time.perf_counter() - started) * 1000, 1)}
                )

        reached = 0
        for percent in percents:
            wave = order[reached : math.ceil(total * percent / 100)]
            reached += len(wave)
            if not wave:
                continue
            health = self._upgrade_wave(wave, new, percent, gate, canary_readings, report, started, progress, watch)
            report.waves.append(health.judge(gate))
            if not health.ok:
                report.rolled_back = True
                self._switch_all(old, report, started)
                break
        if not progress["killed"]:  # the rollout ended before reaching the share: kill now, heal below
            watch()
        census = self.census()  # finds a worker that died late, and recreates its devices
        report.seconds = time.perf_counter() - started
        report.versions = dict(Counter(sha for _, sha in census.values()))
        report.lost = len(set(self.records) - set(census))
        report.cluster = self.cluster_info()
        report.bytes_shipped = self.bytes_shipped - shipped_before[0]
        report.modules_shipped = self.modules_shipped - shipped_before[1]
        for fault in self.faults[faults_before:]:
            lost = {k: v for k, v in fault.items() if k != "t"}
            report.faults.append({**lost, "ms": round((fault["t"] - started) * 1000, 1)})
        return report

    def _upgrade_wave(
        self,
        wave: list[int],
        new: str,
        percent: float,
        gate: Gate,
        readings: int,
        report: RolloutReport,
        started: float,
        progress: dict[str, Any],
        watch: Callable[[], None],
    ) -> WaveHealth:
        health = WaveHealth(percent, len(wave), 0.0)
        allowed = math.floor(gate.max_failure_rate * len(wave) + 1e-9)
        latency = array("f")
        remaining = set(wave)
        t0 = time.perf_counter()

        def upgrade(host: _Host, chunk: list[int]) -> Any:
            self._ship(host, new)
            budget = max(0, allowed - health.errors)
            return self._call(host, "upgrade", chunk, new, readings, budget, gate.memory_budget)

        def upgraded(host: _Host, chunk: list[int], result: Any, sent: float) -> None:
            offset_ms = (sent - started) * 1000
            with self._lock:
                for device_id, seconds in result["switched"].items():
                    record = self.records[device_id]
                    if record.sha != new:
                        record.position += readings
                    record.sha = new
                    ms = offset_ms + seconds * 1000
                    report.switch_ms[device_id] = ms
                    report.events.append((ms, device_id, new))
                for device_id, kind in result["failed"].items():
                    self.records[device_id].position += readings
                    health.failures[kind] += 1
                health.skipped += len(result["skipped"])
                health.compared += result["compared"]
                health.changed += result["changed"]
                remaining.difference_update(chunk)
                progress["devices"] += len(chunk)
                report.worker_seconds[host.address] = report.worker_seconds.get(host.address, 0.0) + result["seconds"]
                raw = result["latency_us"].get(new)
                if raw:
                    latency.frombytes(raw)
            self._absorb(result)

        def exhausted() -> bool:
            return health.errors > allowed

        for _ in range(MAX_ROUNDS):
            self._heal()
            todo = [i for i in wave if i in remaining]
            if not todo:
                break
            if exhausted():  # the wave has failed already: what is left is not tried
                health.skipped += len(todo)
                break
            self._dispatch(self._chunks(todo), upgrade, upgraded, watch, exhausted)
        else:
            raise ClusterUnavailable(f"workers kept dying: wave {percent:g}% did not finish after {MAX_ROUNDS} rounds")
        health.seconds = time.perf_counter() - t0
        health.p99_ms = _quantile(latency, 0.99) / 1000 if latency else None
        return health

    def _switch_all(self, sha: str, report: RolloutReport, started: float) -> None:
        """Every device back on `sha` (a rollback: no canary, the old version is known good)."""
        for _ in range(MAX_ROUNDS):
            self._heal()
            todo = [i for i, r in self.records.items() if r.sha != sha]
            if not todo:
                return

            def switch(host: _Host, chunk: list[int]) -> Any:
                self._ship(host, sha)
                return self._call(host, "switch", chunk, sha)

            def switched(host: _Host, chunk: list[int], result: Any, sent: float) -> None:
                with self._lock:
                    for device_id, seconds in result.items():
                        self.records[device_id].sha = sha
                        report.events.append(((sent - started + seconds) * 1000, device_id, sha))

            self._dispatch(self._chunks(todo), switch, switched)
        raise ClusterUnavailable(f"workers kept dying: the rollback did not finish after {MAX_ROUNDS} rounds")

    # lifetime ---------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Free the devices; close the client and the cluster if this fleet started them."""
        for host in list(self._hosts.values()):
            with contextlib.suppress(Exception):
                host.actor.close().result(timeout=30)
        self._hosts.clear()
        if self._own_client:
            with contextlib.suppress(Exception):
                self.client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
            self._cluster = None

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.client.scheduler.address
        return f"<Fleet {len(self.records):,} devices on {len(self._hosts)} worker(s) at {where}>"


def _quantile(values: Any, q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]) if ordered else float("nan")
