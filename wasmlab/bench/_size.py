"""Size vs speed: one snippet (recursive fib) built in every available language and with several options
(optimisation level, strip, a wasm-opt pass), each build's size (raw, stripped, gzip) against its run time.

Sizes: `raw_bytes` as built, `stripped_bytes` with every custom section removed (names, producers, DWARF),
`gzip_bytes` gzip -9 of the stripped module (what a server would send). Run time: `fib(N)` as one call on one
runtime (engine-side call time), checked against the known answer; `compile_ms` is that engine's first compile.
"""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import WasmlabError
from ..module import Module, Provenance
from ..runtimes import RunOptions, get_runtime
from . import env as envmod
from .figures import size_figure
from .kernels import with_nonce
from .method import Clock, Plan, Progress, call_ms, interleaved
from .results import BenchResult, table_html
from .stats import describe

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .method import Sampling

SNIPPETS = Path(__file__).parent / "kernels" / "fib"
LANGS = {"c": "fib.c", "rust": "fib.rs", "zig": "fib.zig", "go": "fib.go", "assemblyscript": "fib.ts"}
FIB = {20: 6765, 22: 17711, 24: 46368, 25: 75025, 27: 196418, 30: 832040}
# (label, opt, strip, wasm-opt flags or None)
FULL_BUILDS = (
    ("O2", "O2", True, None),
    ("O3", "O3", True, None),
    ("Os", "Os", True, None),
    ("Oz", "Oz", True, None),
    ("O2 unstripped", "O2", False, None),
    ("O2 + wasm-opt -O3", "O2", True, ("-O3",)),
    ("Oz + wasm-opt -Oz", "Oz", True, ("-Oz",)),
)
QUICK_BUILDS = (FULL_BUILDS[0], FULL_BUILDS[3], FULL_BUILDS[6])
NO_OPT_LEVELS = {"go"}  # the Go toolchain has no optimisation levels: only O2 and its variants are built


class SizeResult(BenchResult):
    kind = "size"
    title = "size vs speed"

    def summarise(self):
        import pandas as pd

        df = self.table
        if not len(df):
            return pd.DataFrame()
        builds = self.tables.get("builds")
        rows = []
        for (lang, options), group in df.groupby(["lang", "options"], sort=False):
            d = describe(group["time_ms"])
            row = {
                "lang": lang,
                "options": options,
                "n": d["n"],
                "median_ms": d["median"],
                "iqr_ms": d["iqr"],
                "min_ms": d["min"],
                "cv_pct": d["cv"] * 100,
                "noisy": d["noisy"],
            }
            if builds is not None:
                b = builds[(builds["lang"] == lang) & (builds["options"] == options)]
                if len(b):
                    for col in ("raw_bytes", "stripped_bytes", "gzip_bytes", "compile_ms", "toolchain"):
                        row[col] = b[col].iloc[0]
            else:
                for col in ("raw_bytes", "stripped_bytes", "gzip_bytes"):
                    row[col] = int(group[col].iloc[0])
            rows.append(row)
        out = pd.DataFrame(rows)
        if builds is not None and len(builds):
            order = {(lang, o): i for i, (lang, o) in enumerate(zip(builds["lang"], builds["options"], strict=True))}
            out["_o"] = [order.get(k, len(order)) for k in zip(out["lang"], out["options"], strict=True)]
            out = out.sort_values("_o").drop(columns="_o").reset_index(drop=True)
        return out

    def figures(self):
        if not len(self.table):
            return {}
        return {"Size vs speed": size_figure(self.summary)}

    def html_sections(self):
        return [("Builds: sizes and run time", table_html(self.summary))]


def _build(lang: str, opt: str, strip: bool, post: tuple[str, ...] | None) -> Module:
    from ..build import compile

    module = compile(SNIPPETS / LANGS[lang], lang, kind="library", opt=opt, strip=strip, name=f"fib-{lang}")
    if post:
        from ..tools import wasm_opt

        data = wasm_opt(module.bytes, *post)
        if data is None:
            raise WasmlabError(f"wasm-opt {' '.join(post)} is not installed or refused the {lang} module")
        module = Module(data, Provenance("bytes", module.provenance.source_name, lang, "library", opt), module.name)
    return module


def size_vs_speed(
    langs: str | list[str] | None = None,
    *,
    runtime: str = "wasmtime",
    n: int | None = None,
    **sampling: Unpack[Sampling],
) -> SizeResult:
    """Build fib in each language (default: every one whose toolchain is installed) with each option set, and
    time `fib(n)` (27, quick 24) on `runtime`, `samples` calls each (30, quick 5; `sampling`: see
    `method.Sampling`), builds interleaved."""
    import pandas as pd

    from ..toolchains import get_toolchain
    from ..tools import strip_all

    plan = Plan.make(**sampling)
    clock = Clock()
    quick = plan.quick
    n = n or (24 if quick else 27)
    if n not in FIB:
        raise WasmlabError(f"n must be one of {', '.join(map(str, FIB))} (the answers are known)")
    wanted = (
        list(LANGS) if langs is None else [x.strip() for x in (langs.split(",") if isinstance(langs, str) else langs)]
    )
    engine = get_runtime(runtime)
    notes, builds, modules = [], [], {}
    for lang in wanted:
        if lang not in LANGS:
            raise WasmlabError(f"no fib snippet for {lang!r}: use any of {', '.join(LANGS)}")
        try:
            toolchain = get_toolchain(lang)
        except WasmlabError as exc:
            notes.append(f"skipped {lang}: {exc}")
            continue
        for label, opt, strip, post in QUICK_BUILDS if quick else FULL_BUILDS:
            if lang in NO_OPT_LEVELS and opt != "O2":
                continue
            try:
                module = _build(lang, opt, strip, post)
            except WasmlabError as exc:
                notes.append(f"skipped {lang} {label}: {str(exc).splitlines()[0]}")
                continue
            stripped = strip_all(module.bytes)
            inst = engine.instantiate(with_nonce(module, uuid.uuid4().hex), RunOptions())
            compile_ms = float(inst.timings.get("compile", float("nan")))
            inst.close()
            modules[(lang, label)] = engine.instantiate(module, RunOptions())
            builds.append(
                {
                    "lang": lang,
                    "options": label,
                    "raw_bytes": module.size,
                    "stripped_bytes": len(stripped),
                    "gzip_bytes": len(gzip.compress(stripped, 9, mtime=0)),
                    "compile_ms": compile_ms,
                    "toolchain": toolchain.version(),
                }
            )
    if any(b["lang"] == "go" for b in builds):
        notes.append("go has no optimisation levels: only its O2 builds are shown")
    env = envmod.snapshot([engine.label])
    rows: list[dict[str, Any]] = []
    interrupted = False
    keys = list(modules)
    bar = Progress(len(keys) * plan.samples, "size", plan.progress)
    try:
        for key in keys:
            for _ in range(plan.warmup):
                modules[key].call("fib", n)
        for r, key in interleaved(keys, plan.samples, plan.seed):
            inst = modules[key]
            value = inst.call("fib", n)
            if value != FIB[n]:
                raise WasmlabError(f"{key[0]} {key[1]}: fib({n}) returned {value}, not {FIB[n]}")
            rows.append({"lang": key[0], "options": key[1], "round": r, "n": n, "time_ms": call_ms(inst)})
            bar.update()
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted by Ctrl-C: partial results")
    finally:
        bar.close()
        for inst in modules.values():
            inst.close()
    table = pd.DataFrame(rows, columns=["lang", "options", "round", "n", "time_ms"])
    build_table = pd.DataFrame(
        builds, columns=["lang", "options", "raw_bytes", "stripped_bytes", "gzip_bytes", "compile_ms", "toolchain"]
    )
    params = {
        "langs": wanted,
        "runtime": engine.label,
        "samples": plan.samples,
        "n": n,
        "quick": quick,
        "seed": plan.seed,
    }
    tables = {"samples": table, "builds": build_table}
    return SizeResult(tables, envmod.finish(env, clock.started, notes), params, notes, interrupted)
