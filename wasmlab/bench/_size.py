"""Size vs speed: one snippet built in every available language and with several options (optimisation
level, strip, a wasm-opt pass), each build's size (raw, stripped, gzip) against its run time. The snippet is the
built-in recursive fib, or your own sources (a language -> source mapping) and the call to time.

Sizes: `raw_bytes` as built, `stripped_bytes` with every custom section removed (names, producers, DWARF),
`gzip_bytes` gzip -9 of the stripped module (what a server would send). Run time: the time per call on one
runtime (`time_ms`), from batches of `calls` calls in an in-guest loop (`batch.with_loop`; host loops where F's
signature cannot be looped), engine-side, each build's answer checked (fib: the known one; your code: the
first build's); `compile_ms` is that engine's first compile.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError, WasmlabError
from ..module import Module, Provenance
from ..runtimes import RunOptions, get_runtime
from . import batch as B
from . import env as envmod
from ._calls import GuestLoop, HostLoop, calibrate
from .figures import size_figure
from .kernels import TARGET_MS, ChecksumMismatch, with_nonce
from .method import Clock, Plan, Progress, interleaved
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
NO_OPT_LEVELS = {"go", "wat"}  # no optimisation levels: only O2 and its variants are built


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


def _build(lang: str, source: str | Path, opt: str, strip: bool, post: tuple[str, ...] | None, name: str) -> Module:
    from ..build import compile

    module = compile(source, lang, kind="library", opt=opt, strip=strip, name=name)
    if post:
        from ..tools import wasm_opt

        data = wasm_opt(module.bytes, *post)
        if data is None:
            raise WasmlabError(f"wasm-opt {' '.join(post)} is not installed or refused the {lang} module")
        module = Module(data, Provenance("bytes", module.provenance.source_name, lang, "library", opt), module.name)
    return module


def size_vs_speed(
    langs: str | list[str] | Mapping[str, str | Path] | None = None,
    *,
    invoke: str | None = None,
    args: Sequence[Any] = (),
    runtime: str = "wasmtime",
    n: int | None = None,
    target_ms: float | None = None,
    check: bool = True,
    **sampling: Unpack[Sampling],
) -> SizeResult:
    """Build one snippet in each language with each option set, and time one call of it on `runtime`:
    `samples` batches each (30, quick 5; `sampling`: see `method.Sampling`), builds interleaved, each batch
    calibrated to about `target_ms` (10 ms, quick 2 ms) and run in an in-guest loop (`batch`), so the time per
    call excludes the host's call cost.

    Your own code: `langs` maps a language to its source (text or path), e.g. `{"c": C_SRC, "rust": "f.rs"}`,
    and `invoke`/`args` name the call; every build must compute the first one's result (ChecksumMismatch, or
    a note with `check=False`). Otherwise the built-in fib snippet in `langs` (default: every language whose
    toolchain is installed), timing `fib(n)` (27, quick 24) against its known answer."""
    import pandas as pd

    from ..toolchains import get_toolchain, normalize_lang
    from ..tools import strip_all

    plan = Plan.make(**sampling)
    clock = Clock()
    quick = plan.quick
    target = target_ms or TARGET_MS[plan.mode]
    own = isinstance(langs, Mapping)
    if isinstance(langs, Mapping):
        if not invoke:
            raise UsageError("size_vs_speed of your own sources needs invoke= (and args=): the call to time")
        sources: dict[str, str | Path] = {normalize_lang(k): v for k, v in langs.items()}
        call, expected = (invoke, tuple(args)), None
    else:
        if invoke or args:
            raise UsageError("invoke and args are for your own sources: pass langs={lang: source, ...}")
        n = n or (24 if quick else 27)
        if n not in FIB:
            raise WasmlabError(f"n must be one of {', '.join(map(str, FIB))} (the answers are known)")
        wanted = (
            list(LANGS)
            if langs is None
            else [x.strip() for x in (langs.split(",") if isinstance(langs, str) else langs)]
        )
        unknown = [lang for lang in wanted if lang not in LANGS]
        if unknown:
            raise WasmlabError(f"no fib snippet for {unknown[0]!r}: use any of {', '.join(LANGS)}")
        sources = {lang: SNIPPETS / LANGS[lang] for lang in wanted}
        call, expected = ("fib", (n,)), FIB[n]
    engine = get_runtime(runtime)
    notes, builds, instances, answers, results = [], [], {}, {}, {}
    for lang, source in sources.items():
        try:
            toolchain = get_toolchain(lang)
        except WasmlabError as exc:
            notes.append(f"skipped {lang}: {exc}")
            continue
        for label, opt, strip, post in QUICK_BUILDS if quick else FULL_BUILDS:
            if lang in NO_OPT_LEVELS and opt != "O2":
                continue
            try:
                module = _build(lang, source, opt, strip, post, f"{call[0]}-{lang}")
            except WasmlabError as exc:
                notes.append(f"skipped {lang} {label}: {str(exc).splitlines()[0]}")
                continue
            stripped = strip_all(module.bytes)
            inst = engine.instantiate(with_nonce(module, uuid.uuid4().hex), RunOptions())
            compile_ms = float(inst.timings.get("compile", float("nan")))
            inst.close()
            looped = B.with_loop(module, *call) if B.can_loop(module, call[0]) is None else module
            inst = instances[(lang, label)] = engine.instantiate(looped, RunOptions())
            answers[(lang, label)] = inst.call(call[0], *call[1])
            results[(lang, label)] = module.func_type(call[0]).results
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
    _check_answers(answers, expected, call, check, notes)
    for lang in sorted({str(b["lang"]) for b in builds} & NO_OPT_LEVELS):
        notes.append(f"{lang} has no optimisation levels: only its O2 builds are shown")
    env = envmod.snapshot([engine.label])
    rows: list[dict[str, Any]] = []
    interrupted = False
    keys = list(instances)
    bar = Progress(len(keys) * plan.samples, "size", plan.progress)
    try:
        runners = {key: _runner(engine.label, instances[key], call, results[key]) for key in keys}
        calls = {key: calibrate(runner, target) for key, runner in runners.items()}
        for key in keys:
            for _ in range(plan.warmup):
                runners[key].measure(calls[key])
        for r, key in interleaved(keys, plan.samples, plan.seed):
            _, ms = runners[key].measure(calls[key])
            rows.append({"lang": key[0], "options": key[1], "round": r, "n": n, "calls": calls[key],
                         "time_ms": ms / calls[key]})  # fmt: skip
            bar.update()
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted by Ctrl-C: partial results")
    finally:
        bar.close()
        for inst in instances.values():
            inst.close()
    table = pd.DataFrame(rows, columns=["lang", "options", "round", "n", "calls", "time_ms"])
    build_table = pd.DataFrame(
        builds, columns=["lang", "options", "raw_bytes", "stripped_bytes", "gzip_bytes", "compile_ms", "toolchain"]
    )
    params = {
        "langs": list(sources),
        "runtime": engine.label,
        "samples": plan.samples,
        "n": n,
        "call": {"export": call[0], "args": list(call[1])},
        "target_ms": target,
        "quick": quick,
        "seed": plan.seed,
    }
    if own:
        params["sources"] = {lang: str(src) if isinstance(src, Path) else "(text)" for lang, src in sources.items()}
    tables = {"samples": table, "builds": build_table}
    return SizeResult(tables, envmod.finish(env, clock.started, notes), params, notes, interrupted)


def _runner(label: str, instance: Any, call: tuple[str, tuple[Any, ...]], results: tuple[str, ...]) -> Any:
    """The in-guest loop on a looped build, else host loops of the call (the answers were checked apart)."""
    if B.LOOP_EXPORT in instance.export_names():
        return GuestLoop(label, instance)
    return HostLoop(label, instance, call[0], call[1], results)


def _check_answers(answers: dict, expected: Any, call: tuple, check: bool, notes: list[str]) -> None:
    """Every build computes the known answer (the built-in fib), else the first build's."""
    if not answers:
        return
    first_key, first = next(iter(answers.items()))
    want = first if expected is None else expected
    wrong = {k: v for k, v in answers.items() if v != want}
    if not wrong:
        return
    label = f"{call[0]}({', '.join(map(repr, call[1]))})"
    message = f"the builds disagree on {label}: " + ", ".join(f"{lang} {o} {v!r}" for (lang, o), v in wrong.items())
    message += f" (expected {want!r}" + ("" if expected is not None else f", from {' '.join(first_key)}") + ")"
    if check:
        raise ChecksumMismatch(message)
    notes.append(message)
