"""Plotly figures, each one call on a summary table. One palette keyed by runtime label: a runtime has the same
colour in every figure (variants share their engine's hue family); native is dark grey."""

from __future__ import annotations

from typing import Any

PALETTE: dict[str, str] = {
    "native": "#3b3b3b",
    "wasmtime": "#1f77b4",
    "wasmtime:winch": "#6baed6",
    "wasmtime:pulley": "#08306b",
    "wasmer": "#9467bd",
    "wasmer:singlepass": "#c5b0d5",
    "wasmer:llvm": "#54278f",
    "wasmer-sdk": "#e377c2",
    "node": "#2ca02c",
    "node:liftoff": "#98df8a",
    "node:turbofan": "#006d2c",
    "wasm3": "#ff7f0e",
    "wasmedge": "#8c564b",
    "browser": "#17becf",
}
_SPARE = ["#bcbd22", "#d62728", "#7f7f7f", "#aec7e8", "#ffbb78", "#ff9896", "#c49c94"]
PHASE_PATTERNS = {
    "compile": "",
    "deserialize": "",
    "instantiate_first": "/",
    "instantiate_repeat": "/",
    "first_call": "x",
    "command_run": ".",
}
LANG_COLOURS = {
    "c": "#555555",
    "rust": "#dea584",
    "zig": "#f7a41d",
    "go": "#00add8",
    "assemblyscript": "#007acc",
    "cpp": "#f34b7d",
    "wat": "#654ff0",
}


def colour(label: str) -> str:
    """The colour of a runtime label (new labels get a spare colour, then keep it)."""
    if label not in PALETTE:
        PALETTE[label] = _SPARE[len([k for k in PALETTE if k not in _BUILTIN]) % len(_SPARE)]
    return PALETTE[label]


_BUILTIN = frozenset(PALETTE)


def _go():
    import plotly.graph_objects as go

    return go


def _layout(fig: Any, title: str, **kw: Any) -> Any:
    fig.update_layout(title=title, template="plotly_white", legend_title_text=kw.pop("legend", "runtime"), **kw)
    return fig


def startup_figure(summary: Any, phases: tuple[str, ...] = ("compile", "instantiate_first", "first_call")) -> Any:
    """Stacked bars per runtime: median (warm) ms of compile + first instantiation + first call; each bar in its
    runtime's colour, phases told apart by pattern."""
    go = _go()
    fig = go.Figure()
    warm = summary[(summary["state"] == "warm") & summary["supported"]]
    runtimes = list(dict.fromkeys(warm["runtime"]))
    for phase in phases:
        rows = warm[warm["phase"] == phase].set_index("runtime")
        xs = [r for r in runtimes if r in rows.index]
        if not xs:
            continue
        pattern = {"shape": PHASE_PATTERNS.get(phase, "")}
        fig.add_bar(
            name=phase,
            x=xs,
            y=[rows.loc[r, "median_ms"] for r in xs],
            marker={"color": [colour(r) for r in xs], "pattern": pattern},
            marker_line={"color": "white", "width": 1},
            hovertemplate="%{x} " + phase + ": %{y:.3f} ms<extra></extra>",
            legendgroup=phase,
            showlegend=False,
        )
        # the legend shows the phase's pattern on neutral grey (the bars are in their runtime's colour)
        fig.add_bar(
            name=phase,
            x=[xs[0]],
            y=[0],
            marker={"color": "#999999", "pattern": pattern},
            legendgroup=phase,
            hoverinfo="skip",
        )
    return _layout(
        fig,
        "Startup of a new module: compile + first instantiate + first call (warm engine, medians)",
        barmode="stack",
        xaxis_title="runtime",
        yaxis_title="time (ms)",
        legend="phase (pattern)",
    )


def throughput_figure(summary: Any) -> Any:
    """Grouped bars: ops/s per kernel and runtime (log axis), error bars from the interquartile range."""
    go = _go()
    fig = go.Figure()
    for runtime in dict.fromkeys(summary["runtime"]):
        rows = summary[summary["runtime"] == runtime]
        ops = rows["ops_per_s"]
        hi = rows["ops_per_s_q3"] - ops  # q3 of ops/s is 1/q1 of time: the upper error
        lo = ops - rows["ops_per_s_q1"]
        fig.add_bar(
            name=runtime,
            x=list(rows["kernel"]),
            y=list(ops),
            marker_color=colour(runtime),
            error_y={"type": "data", "symmetric": False, "array": list(hi), "arrayminus": list(lo)},
            hovertemplate="%{x} on " + runtime + ": %{y:.4g} ops/s<extra></extra>",
        )
    return _layout(
        fig,
        "Throughput per kernel (median, IQR error bars; higher is better)",
        barmode="group",
        xaxis_title="kernel",
        yaxis_title="throughput (ops/s, log scale)",
        yaxis_type="log",
    )


def call_figure(summary: Any, label: str) -> Any:
    """Time per call of one function of your own code: one bar per runtime (native first), the median with IQR
    error bars, on a log axis (engines and native can be orders of magnitude apart)."""
    go = _go()
    fig = go.Figure()
    for _, row in summary.iterrows():
        us = row["ns_per_op"] / 1000.0
        fast, slow = 1e6 / row["ops_per_s_q3"], 1e6 / row["ops_per_s_q1"]  # µs at the quartiles of time
        ratio = row.get("ratio_to_native")
        extra = f" ({ratio:.2f}x native)" if ratio == ratio and ratio is not None else ""
        fig.add_bar(
            name=row["runtime"],
            x=[row["runtime"]],
            y=[us],
            marker_color=colour(row["runtime"]),
            error_y={"type": "data", "symmetric": False, "array": [slow - us], "arrayminus": [us - fast]},
            hovertemplate=f"{row['runtime']}: %{{y:.4g}} µs per call{extra}<extra></extra>",
        )
    return _layout(
        fig,
        f"Time per call of {label} (median, IQR error bars; lower is better)",
        xaxis_title="runtime",
        yaxis_title="time per call (µs, log scale)",
        yaxis_type="log",
        showlegend=False,
    )


def ratio_figure(summary: Any, geomeans: Any | None = None) -> Any:
    """Wasm time / native time per kernel and runtime, 95% bootstrap CI error bars, the 1.0 line, and the
    geometric mean over the suite as the last group."""
    go = _go()
    fig = go.Figure()
    rows_all = summary[summary["runtime"] != "native"].dropna(subset=["ratio_to_native"])
    for runtime in dict.fromkeys(rows_all["runtime"]):
        rows = rows_all[rows_all["runtime"] == runtime]
        x, y = list(rows["kernel"]), list(rows["ratio_to_native"])
        lo, hi = list(rows["ratio_ci_low"]), list(rows["ratio_ci_high"])
        if geomeans is not None and runtime in set(geomeans["runtime"]):
            g = geomeans[geomeans["runtime"] == runtime].iloc[0]
            x, y, lo, hi = [*x, "geomean"], [*y, g["geomean_ratio"]], [*lo, g["ci_low"]], [*hi, g["ci_high"]]
        fig.add_bar(
            name=runtime,
            x=x,
            y=y,
            marker_color=colour(runtime),
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [h - v for h, v in zip(hi, y, strict=True)],
                "arrayminus": [v - lo_ for v, lo_ in zip(y, lo, strict=True)],
            },
            hovertemplate="%{x} on " + runtime + ": %{y:.3f}x native<extra></extra>",
        )
    fig.add_hline(y=1.0, line_dash="dash", line_color=colour("native"), annotation_text="native = 1.0")
    return _layout(
        fig,
        "Wasm / native time (ratio of medians, 95% bootstrap CI; lower is better)",
        barmode="group",
        xaxis_title="kernel",
        yaxis_title="time ratio to native (x, log scale)",
        yaxis_type="log",
    )


def overhead_figure(overhead: Any) -> Any:
    """Per-call cost of an empty export: from Python (host round trip) and inside the engine."""
    go = _go()
    fig = go.Figure()
    for runtime in dict.fromkeys(overhead["runtime"]):
        rows = overhead[overhead["runtime"] == runtime]
        fig.add_bar(
            name=runtime,
            x=["host round trip", "inside engine"],
            y=[rows["host_us_per_call"].median(), rows["engine_us_per_call"].median()],
            marker_color=colour(runtime),
        )
    return _layout(
        fig,
        "Per-call overhead of an empty export (median)",
        barmode="group",
        xaxis_title="where it is measured",
        yaxis_title="time per call (µs, log scale)",
        yaxis_type="log",
    )


def size_figure(summary: Any, size_column: str = "gzip_bytes") -> Any:
    """Size against speed: one marker per build (colour: language, symbol: options)."""
    go = _go()
    fig = go.Figure()
    symbols = ["circle", "square", "diamond", "triangle-up", "x", "star", "cross", "pentagon"]
    options = list(dict.fromkeys(summary["options"]))
    for lang in dict.fromkeys(summary["lang"]):
        rows = summary[summary["lang"] == lang]
        fig.add_scatter(
            name=lang,
            x=list(rows[size_column]),
            y=list(rows["median_ms"]),
            mode="markers",
            marker={
                "color": LANG_COLOURS.get(lang, "#999"),
                "size": 11,
                "symbol": [symbols[options.index(o) % len(symbols)] for o in rows["options"]],
                "line": {"width": 1, "color": "white"},
            },
            text=[f"{lang} {o}: {s:,} B" for o, s in zip(rows["options"], rows[size_column], strict=True)],
            hovertemplate="%{text}<br>%{y:.3f} ms<extra></extra>",
        )
    return _layout(
        fig,
        f"Size vs speed of one snippet ({size_column.replace('_bytes', '')} size; run time on wasmtime)",
        xaxis_title=f"module size, {size_column.replace('_bytes', '')} (bytes, log scale)",
        yaxis_title="run time (ms, median)",
        xaxis_type="log",
        legend="language (symbol: options)",
    )


def scaling_figure(summary: Any) -> Any:
    """Compile time against module size, one line per runtime."""
    go = _go()
    fig = go.Figure()
    for runtime in dict.fromkeys(summary["runtime"]):
        rows = summary[summary["runtime"] == runtime].sort_values("module_mb")
        fig.add_scatter(
            name=runtime,
            x=list(rows["module_mb"]),
            y=list(rows["compile_ms"]),
            mode="lines+markers",
            line={"color": colour(runtime)},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": list(rows["compile_q3_ms"] - rows["compile_ms"]),
                "arrayminus": list(rows["compile_ms"] - rows["compile_q1_ms"]),
            },
        )
    return _layout(
        fig,
        "Compile time vs module size (generated WAT modules; median, IQR)",
        xaxis_title="module size (MB)",
        yaxis_title="compile time (ms, log scale)",
        yaxis_type="log",
    )


def tiers_figure(summary: Any) -> Any:
    """Compile time against run time per compiler tier: each marker one runtime label."""
    go = _go()
    fig = go.Figure()
    for _, row in summary.iterrows():
        fig.add_scatter(
            name=row["runtime"],
            x=[row["compile_ms"]],
            y=[row["geomean_ratio"]],
            mode="markers+text",
            text=[row["runtime"]],
            textposition="top center",
            marker={"color": colour(row["runtime"]), "size": 13},
        )
    fig.add_hline(y=1.0, line_dash="dash", line_color=colour("native"), annotation_text="native")
    return _layout(
        fig,
        "Compiler tiers: compile time of the kernel suite vs run time (geomean over kernels, x native)",
        xaxis_title="compile time of the suite module (ms, log scale)",
        yaxis_title="run time ratio to native (geomean, log scale)",
        xaxis_type="log",
        yaxis_type="log",
    )


def fuel_figure(summary: Any) -> Any:
    """Cost of fuel metering and epoch interruption on wasmtime: time relative to a plain engine, per kernel."""
    go = _go()
    fig = go.Figure()
    shades = {"plain": "#c6dbef", "epoch": "#6baed6", "fuel": "#2171b5", "fuel+epoch": "#08306b"}
    for config in dict.fromkeys(summary["config"]):
        rows = summary[summary["config"] == config]
        fig.add_bar(
            name=config,
            x=list(rows["kernel"]),
            y=list(rows["ratio_to_plain"]),
            marker_color=shades.get(config, colour("wasmtime")),
            error_y={
                "type": "data",
                "symmetric": False,
                "array": list(rows["ci_high"] - rows["ratio_to_plain"]),
                "arrayminus": list(rows["ratio_to_plain"] - rows["ci_low"]),
            },
        )
    fig.add_hline(y=1.0, line_dash="dash", line_color="#555")
    return _layout(
        fig,
        "wasmtime: cost of fuel metering and epoch interruption (time / plain engine, 95% CI)",
        barmode="group",
        xaxis_title="kernel",
        yaxis_title="time ratio to a plain engine (x)",
        legend="engine config",
    )


def density_figure(summary: Any) -> Any:
    """Two panels, lines over the number of copies kept at once: memory per copy (KiB) and time to create one
    copy and get its first answer (ms), both on log axes; each unit (runtime or native process) in its colour."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("memory per copy (KiB)", "create + first answer (ms)"))
    for unit in dict.fromkeys(summary["unit"]):
        rows = summary[summary["unit"] == unit].sort_values("count")
        style = {"color": colour(unit), "dash": "dot" if unit == "native" else "solid"}
        for col, column, unit_name in ((1, "memory_kib", "KiB"), (2, "create_ms", "ms")):
            fig.add_scatter(
                x=list(rows["count"]),
                y=list(rows[column]),
                name="native process" if unit == "native" else f"{unit} instance",
                mode="lines+markers",
                line=style,
                legendgroup=unit,
                showlegend=col == 1,
                hovertemplate=f"{unit}, %{{x}} copies: %{{y:.3g}} {unit_name}<extra></extra>",
                row=1,
                col=col,
            )
    fig.update_xaxes(type="log", title_text="copies kept at once")
    fig.update_yaxes(type="log")
    return _layout(fig, "What one more isolated copy of a service costs (medians)", legend="copy")
