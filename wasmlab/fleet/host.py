"""`DeviceHost`: the Dask actor on each worker that hosts that worker's devices.

A device is a live instance of a rule module (on `runtime`, under the fleet's limits), its id and the index of its
next reading. The host keeps each module it was sent once, by sha256, so a rollout ships a version once per worker
and instantiates it for every device there. Every method takes and returns plain data (ids, shas, counts, latency
arrays): the controller (`Fleet`) keeps the fleet's desired state and can rebuild any device elsewhere.

Counts go back as deltas since the previous call, so when a worker dies only its call in flight is lost.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..errors import LimitExceeded, Trap, WasmlabError
from ..procfs import rss_bytes
from .sensors import reading

DECIDE = "decide"


@dataclass
class Device:
    id: int
    sha: str
    instance: Any
    position: int  # index of the next reading


def failure_of(error: BaseException) -> str:
    """A short, countable name for what stopped a guest: 'trap: integer divide by zero', 'limit: time'."""
    if isinstance(error, Trap):
        return f"trap: {error.code}"
    if isinstance(error, LimitExceeded):
        return f"limit: {error.limit}"
    return f"error: {type(error).__name__}"


class DeviceHost:
    """The devices of one worker. Created by the controller with `client.submit(DeviceHost, ..., actor=True)`."""

    def __init__(self, seed: int, runtime: str = "wasmtime", timeout: float = 0.25, max_memory: int = 8 << 20):
        self.seed, self.runtime = seed, runtime
        self.limits = {"timeout": timeout, "max_memory": max_memory}
        self.modules: dict[str, Any] = {}
        self.devices: dict[int, Device] = {}
        self._counts: Counter[tuple[str, str]] = Counter()  # (sha, what) -> n since the last `take_counts`
        self._latency: dict[str, array] = {}  # sha -> µs per call since the last `take_counts`

    # the host itself ---------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Where this host runs: host name, pid, Python, CPU, and its resident memory."""
        from ..bench.env import cores, cpu_model

        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "python": platform.python_version(),
            "cpu": cpu_model(),
            "cores": cores()["usable"],
            "rss": rss_bytes(os.getpid()),
            "devices": len(self.devices),
        }

    def has(self) -> list[str]:
        return list(self.modules)

    def store(self, data: bytes) -> str:
        """Keep a module (content-addressed); returns its sha256. Validated once, here, before any device uses it."""
        from ..module import load

        module = load(data, name="rules")
        self.modules.setdefault(module.sha256, module)
        return module.sha256

    def census(self) -> dict[int, tuple[str, int]]:
        """device id -> (sha of the version it runs, index of its next reading)."""
        return {d.id: (d.sha, d.position) for d in self.devices.values()}

    # devices ------------------------------------------------------------------------------------------------
    def _instance(self, sha: str) -> Any:
        return self.modules[sha].instantiate(self.runtime, **self.limits)

    def place(self, devices: list[tuple[int, str, int]]) -> dict[int, float]:
        """Create (or move here) devices `(id, sha, position)` running `sha`; returns id -> seconds after the
        call began when it ran that version."""
        started, switched = time.perf_counter(), {}
        for device_id, sha, position in devices:
            old = self.devices.get(device_id)
            self.devices[device_id] = Device(device_id, sha, self._instance(sha), position)
            if old is not None:
                old.instance.close()
            switched[device_id] = time.perf_counter() - started
        return switched

    def switch(self, device_ids: list[int], sha: str) -> dict[int, float]:
        """Run `sha` on these devices, no questions asked (a rollback, or a version already checked)."""
        return self.place([(i, sha, self.devices[i].position) for i in device_ids if i in self.devices])

    def drop(self, device_ids: list[int]) -> int:
        dropped = 0
        for device_id in device_ids:
            device = self.devices.pop(device_id, None)
            if device is not None:
                device.instance.close()
                dropped += 1
        return dropped

    def _decide(self, instance: Any, sha: str, sensor: int, value: float) -> tuple[int | None, str | None]:
        """One decision, counted and timed: (code, None), or (None, failure) when the guest trapped or was
        stopped by a limit."""
        started = time.perf_counter()
        try:
            code = instance.call(DECIDE, sensor, value)
        except WasmlabError as error:
            failure = failure_of(error)
            self._counts[sha, failure] += 1
            return None, failure
        finally:
            self._latency.setdefault(sha, array("f")).append((time.perf_counter() - started) * 1e6)
        self._counts[sha, "readings"] += 1
        if code:
            self._counts[sha, f"alarm {code}"] += 1
        return code, None

    def run(self, readings: int, device_ids: list[int] | None = None) -> dict[str, Any]:
        """Every device (or these) handles its next `readings` readings on the version it runs."""
        ids = self.devices if device_ids is None else device_ids
        for device_id in ids:
            device = self.devices[device_id]
            for _ in range(readings):
                self._decide(device.instance, device.sha, *reading(self.seed, device.id, device.position))
                device.position += 1
        return self.take_counts()

    def upgrade(
        self, device_ids: list[int], sha: str, readings: int, max_failures: int, memory_budget: int | None
    ) -> dict[str, Any]:
        """Move these devices to `sha`, each after a canary of its next `readings` readings judged by both its
        current version and `sha` (the same readings). A device whose new version traps, hits a limit or grows
        its memory past `memory_budget` bytes stays on its current version. After more than `max_failures`
        failures the rest are not tried (`skipped`): the gate has failed already, so nothing more is put at
        risk."""
        started = time.perf_counter()
        switched: dict[int, float] = {}
        failed: dict[int, str] = {}
        changed = compared = 0
        skipped = []
        for device_id in device_ids:
            device = self.devices.get(device_id)
            if device is None:
                continue
            if len(failed) > max_failures:
                skipped.append(device_id)
                continue
            if device.sha == sha:
                switched[device_id] = time.perf_counter() - started
                continue
            try:
                candidate = self._instance(sha)
            except WasmlabError as error:  # a start function that traps, a module too big for the cap
                failed[device_id] = failure_of(error)
                continue
            failure = None
            for offset in range(readings):
                sensor, value = reading(self.seed, device.id, device.position + offset)
                old, _ = self._decide(device.instance, device.sha, sensor, value)
                new, failure = self._decide(candidate, sha, sensor, value)
                if failure:
                    break
                if memory_budget and candidate.memory_size() > memory_budget:
                    failure = "limit: memory"
                    self._counts[sha, failure] += 1
                    break
                compared += 1
                changed += old != new
            device.position += readings
            if failure:
                failed[device_id] = failure
                candidate.close()
                continue
            device.instance.close()
            device.instance, device.sha = candidate, sha
            switched[device_id] = time.perf_counter() - started
        return {
            "seconds": time.perf_counter() - started,  # busy here: the rest of the call's round trip is Dask's
            "switched": switched,
            "failed": failed,
            "skipped": skipped,
            "compared": compared,
            "changed": changed,
            **self.take_counts(),
        }

    def take_counts(self) -> dict[str, Any]:
        """Counts and latencies (µs per decision) per version since the previous call."""
        counts: dict[str, dict[str, int]] = {}
        for (sha, what), n in self._counts.items():
            counts.setdefault(sha, {})[what] = n
        latency = {sha: values.tobytes() for sha, values in self._latency.items()}
        self._counts, self._latency = Counter(), {}
        return {"counts": counts, "latency_us": latency}

    def close(self) -> int:
        closed = self.drop(list(self.devices))
        self.modules.clear()
        return closed

