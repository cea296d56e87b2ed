"""How samples are taken: which runtimes, in what order (seeded, interleaved), with a progress bar, and how
a Ctrl-C keeps what was measured so far."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

from ..errors import RuntimeUnavailable, UsageError, WasmlabError

FULL_SAMPLES = 30
QUICK_SAMPLES = 5


class Sampling(TypedDict, total=False):
    """The sampling keywords every benchmark takes (`**sampling`), declared once: `samples` per measurement
    (None: the benchmark's default), `quick` (fewer samples, shorter calls), `seed` of the randomised order, and
    `progress` (a progress bar). `Plan.make(**sampling)` turns them into a `Plan`."""

    samples: int | None
    quick: bool
    seed: int
    progress: bool


@dataclass(frozen=True)
class Plan:
    """The sampling plan shared by every benchmark: sample counts, seed, mode, warm-up calls."""

    samples: int = FULL_SAMPLES
    quick: bool = False
    seed: int = 0
    progress: bool = True
    warmup: int = 2

    @classmethod
    def make(
        cls,
        samples: int | None = None,
        quick: bool = False,
        seed: int = 0,
        progress: bool = True,
        *,
        defaults: tuple[int, int] = (FULL_SAMPLES, QUICK_SAMPLES),
    ) -> Plan:
        """The plan for the `Sampling` keywords; `defaults` are the (full, quick) sample counts when `samples`
        is None."""
        if samples is not None and samples < 1:
            raise UsageError("samples must be at least 1")
        full, quick_default = defaults
        return cls(samples or (quick_default if quick else full), quick, seed, progress, 1 if quick else 2)

    @property
    def mode(self) -> str:
        """ "quick" or "full": the key of per-mode settings (`TARGET_MS`...)."""
        return "quick" if self.quick else "full"

    def sampling(self) -> Sampling:
        """This plan as keywords for another benchmark (a sweep running throughput with the same plan)."""
        return Sampling(samples=self.samples, quick=self.quick, seed=self.seed, progress=self.progress)


def runtime_list(runtimes: str | Iterable[str] | None, default: Iterable[str] | None = None) -> list[str]:
    """Runtime specs from a comma-separated string or a list; None gives `default`, else every available one."""
    from ..runtimes import default_runtimes

    if runtimes is None:
        return list(default) if default is not None else default_runtimes()
    names = runtimes.split(",") if isinstance(runtimes, str) else list(runtimes)
    return [n.strip() for n in names if n and n.strip()]


def resolve(names: list[str], need: tuple[str, ...] = ()) -> tuple[list[Any], dict[str, str]]:
    """(available Runtime objects, {label: why skipped}); `need`: capabilities of which one must be present."""
    from ..runtimes import get_runtime

    engines, skipped = [], {}
    for name in names:
        try:
            engine = get_runtime(name)
        except RuntimeUnavailable as exc:
            skipped[name] = exc.reason
            continue
        if need and not any(c in engine.capabilities for c in need):
            skipped[engine.label] = f"cannot do this benchmark (needs one of: {', '.join(need)})"
            continue
        engines.append(engine)
    return engines, skipped


def interleaved(items: list[Any], rounds: int, seed: int) -> Iterator[tuple[int, Any]]:
    """(round, item) for `rounds` rounds, every item once per round, in a fresh seeded random order each round:
    slow drifts of the machine (load, frequency) spread over every item instead of biasing one."""
    rng = random.Random(seed)
    for r in range(rounds):
        order = list(items)
        rng.shuffle(order)
        for item in order:
            yield r, item


class Progress:
    """A tqdm.auto bar (a no-op without tqdm or when disabled) that also records an interrupt."""

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        self.bar: Any = None
        if enabled:
            with contextlib.suppress(ImportError):
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=desc, unit="sample", leave=False, dynamic_ncols=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class Clock:
    """Wall-clock of the harness itself."""

    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def call_ms(instance) -> float:
    """Milliseconds of an instance's last call, as the engine measured it (inside the worker for workers)."""
    timings = instance.last_timings or {}
    if "call" not in timings:
        raise WasmlabError(f"{instance.runtime} reported no call time")
    return float(timings["call"])
