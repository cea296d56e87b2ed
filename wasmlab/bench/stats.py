"""Robust statistics for benchmark samples: medians with IQR and min, the coefficient of variation, and
bootstrap confidence intervals on a ratio of medians and on a geometric mean of ratios (numpy), and the same
over a tidy table of samples against the native baseline (`ratios_to_native`, `geomeans`: pandas)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

CV_LIMIT = 0.05  # a coefficient of variation above this flags the row as noisy
BOOTSTRAP = 2000  # resamples per interval
CONFIDENCE = 0.95


def describe(values: Sequence[float]) -> dict[str, Any]:
    """n, median, q1, q3, iqr, min, max, mean, cv (std/mean) and `noisy` (cv > 5%) of `values`."""
    import numpy as np

    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if x.size == 0:
        nan = float("nan")
        return {
            "n": 0,
            "median": nan,
            "q1": nan,
            "q3": nan,
            "iqr": nan,
            "min": nan,
            "max": nan,
            "mean": nan,
            "cv": nan,
            "noisy": False,
        }
    q1, median, q3 = np.percentile(x, [25, 50, 75])
    mean = float(x.mean())
    cv = float(x.std(ddof=1) / mean) if x.size > 1 and mean > 0 else 0.0
    return {
        "n": int(x.size),
        "median": float(median),
        "q1": float(q1),
        "q3": float(q3),
        "iqr": float(q3 - q1),
        "min": float(x.min()),
        "max": float(x.max()),
        "mean": mean,
        "cv": cv,
        "noisy": bool(cv > CV_LIMIT),
    }


def _boot_medians(x: Any, rng: Any, b: int) -> Any:
    import numpy as np

    idx = rng.integers(0, x.size, size=(b, x.size))
    return np.median(x[idx], axis=1)


def ratio_ci(
    num: Sequence[float], den: Sequence[float], *, seed: int = 0, b: int = BOOTSTRAP, confidence: float = CONFIDENCE
) -> tuple[float, float, float, Any]:
    """(median(num) / median(den), low, high, the bootstrap replicates): a percentile bootstrap interval on the
    ratio of medians, resampling both sides independently. With one sample on a side that side is fixed."""
    import numpy as np

    x, y = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if x.size == 0 or y.size == 0:
        nan = float("nan")
        return nan, nan, nan, np.full(b, nan)
    rng = np.random.default_rng(seed)
    reps = _boot_medians(x, rng, b) / _boot_medians(y, rng, b)
    alpha = (1 - confidence) / 2
    low, high = np.percentile(reps, [100 * alpha, 100 * (1 - alpha)])
    return float(np.median(x) / np.median(y)), float(low), float(high), reps


def geomean_ci(
    ratios: Sequence[float], replicates: Sequence[Any], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """The geometric mean of per-kernel ratios, with a percentile interval from the per-kernel bootstrap
    replicates (replicate i of the geomean is the geomean of every kernel's replicate i)."""
    import numpy as np

    r = np.asarray(ratios, dtype=float)
    if r.size == 0 or np.any(~np.isfinite(r)) or np.any(r <= 0):
        nan = float("nan")
        return nan, nan, nan
    point = float(np.exp(np.log(r).mean()))
    reps = np.vstack([np.asarray(rep, dtype=float) for rep in replicates])
    geo = np.exp(np.log(reps).mean(axis=0))
    alpha = (1 - confidence) / 2
    low, high = np.percentile(geo, [100 * alpha, 100 * (1 - alpha)])
    return point, float(low), float(high)


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): Student's t interval on the mean (t quantiles from a small table, no scipy)."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size < 2:
        m = float(x.mean()) if x.size else float("nan")
        return m, m, m
    mean, sem = float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))
    t = _t95(x.size - 1) if abs(confidence - 0.95) < 1e-9 else 1.96
    return mean, mean - t * sem, mean + t * sem


def _t95(df: int) -> float:
    table = {
        1: 12.706,
        2: 4.303,
        3: 3.182,
        4: 2.776,
        5: 2.571,
        6: 2.447,
        7: 2.365,
        8: 2.306,
        9: 2.262,
        10: 2.228,
        12: 2.179,
        15: 2.131,
        20: 2.086,
        25: 2.060,
        30: 2.042,
        40: 2.021,
        60: 2.000,
        120: 1.980,
    }
    for k in sorted(table):
        if df <= k:
            return table[k]
    return 1.96


# ------------------------------------------------------------------------------------------ tables of samples
# A table of samples has one row per sample with "runtime" (the native baseline is "native"), "kernel" and
# "ns_per_op" columns (throughput's samples, and the tiers sweep's).


def runtime_order(df: Any, order: list[str] | None) -> list[str]:
    """Runtimes in the order asked for (native first), then any others in order of appearance."""
    return list(dict.fromkeys(["native", *(order or []), *df["runtime"]]))


def ratios_to_native(df: Any, seed: int) -> dict[tuple[str, str], tuple[float, float, float, Any]]:
    """(runtime, kernel) -> (ratio, low, high, bootstrap replicates) of median ns/op against native."""
    out = {}
    native = {k: g["ns_per_op"].to_numpy() for k, g in df[df["runtime"] == "native"].groupby("kernel")}
    for i, ((runtime, kernel), group) in enumerate(df[df["runtime"] != "native"].groupby(["runtime", "kernel"])):
        if kernel in native and len(group):
            out[(runtime, kernel)] = ratio_ci(group["ns_per_op"].to_numpy(), native[kernel], seed=seed + i)
    return out


def geomeans(df: Any, seed: int = 0, order: list[str] | None = None) -> Any:
    """Per runtime: geomean over kernels of the ratio of medians to native, with a 95% bootstrap CI, and the
    geomean of the ratios of minima (the least disturbed estimate on a busy machine)."""
    import numpy as np
    import pandas as pd

    ratios = ratios_to_native(df, seed) if len(df) else {}
    minima = df.groupby(["runtime", "kernel"])["ns_per_op"].min().to_dict() if len(df) else {}
    rows = []
    present = {r for r, _ in ratios}
    for runtime in [r for r in runtime_order(df, order) if r in present] if len(df) else []:
        items = [(k, v) for (r, k), v in ratios.items() if r == runtime]
        point, low, high = geomean_ci([v[0] for _, v in items], [v[3] for _, v in items])
        of_minima = [minima[(runtime, k)] / minima[("native", k)] for k, _ in items]
        rows.append(
            {
                "runtime": runtime,
                "geomean_ratio": point,
                "ci_low": low,
                "ci_high": high,
                "kernels": len(items),
                "native_speed_pct": 100.0 / point if point == point and point > 0 else float("nan"),
                "geomean_ratio_of_minima": float(np.exp(np.mean(np.log(of_minima)))),
            }
        )
    columns = [
        "runtime",
        "geomean_ratio",
        "ci_low",
        "ci_high",
        "kernels",
        "native_speed_pct",
        "geomean_ratio_of_minima",
    ]
    return pd.DataFrame(rows, columns=columns)
