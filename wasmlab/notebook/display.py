"""Rich displays for notebooks: HTML, a versioned vendor MIME bundle and a text fallback for `Module`,
`RunResult` and `Comparison`, registered with IPython's display formatter when the extension loads.

    MIME type                                   object       payload
    application/vnd.wasmlab.module.v1+json      Module       `Module.summary()`
    application/vnd.wasmlab.run.v1+json         RunResult    `RunResult.to_dict()`
    application/vnd.wasmlab.comparison.v1+json  Comparison   `Comparison.to_dict()`

The core classes have no `_repr_html_`: the renderers live here and `register(ip)` attaches them with
`for_type`, so `wasmlab` itself never imports IPython. Every string that reaches HTML goes through
`html.escape`; styles are inline so the output reads the same in classic notebooks, JupyterLab and exported HTML.
`RunView` and `ComparisonView` wrap a result with presentation options (arguments shown, timings on or off).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from typing import Any

from ..compare import PHASES, Comparison
from ..errors import ErrorKind, WasmlabError, error_for
from ..module import Module
from ..runtimes.base import RunResult

__all__ = [
    "COMPARISON_MIME",
    "MODULE_MIME",
    "RUN_MIME",
    "ComparisonView",
    "RunView",
    "comparison_html",
    "comparison_text",
    "figure_bundle",
    "group_sections",
    "jsonable",
    "module_bundle",
    "module_html",
    "module_text",
    "register",
    "run_html",
    "run_text",
    "unregister",
]

MODULE_MIME = "application/vnd.wasmlab.module.v1+json"
RUN_MIME = "application/vnd.wasmlab.run.v1+json"
COMPARISON_MIME = "application/vnd.wasmlab.comparison.v1+json"

MAX_ROWS = 40  # imports / exports listed before "... N more"
TOP_FUNCTIONS = 10
MAX_OUTPUT_CHARS = 20_000  # guest stdout / stderr shown in HTML before it is cut

FONT = "font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;line-height:1.4;max-width:960px"
MONO = "font-family:var(--jp-code-font-family,monospace);font-size:12px"
TABLE = "border-collapse:collapse;margin:2px 0 6px 0;font-size:inherit"
CELL = "padding:1px 8px;border-bottom:1px solid rgba(128,128,128,.25);text-align:left;vertical-align:top"
HEAD = CELL + ";font-weight:600"
MUTED = "color:rgba(128,128,128,.95)"
GREEN, RED, AMBER = "#1a7f37", "#cf222e", "#9a6700"
SECTION_COLORS = {
    "type": "#8250df",
    "import": "#bf3989",
    "function": "#0969da",
    "table": "#1b7c83",
    "memory": "#4d2d00",
    "global": "#6e7781",
    "export": "#d1242f",
    "start": "#953800",
    "element": "#116329",
    "code": "#654ff0",
    "data": "#bc4c00",
    "datacount": "#57606a",
    "tag": "#a40e26",
}
CUSTOM_COLOR = "#afb8c1"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _size(n: int | None) -> str:
    if n is None:
        return "n/a"
    if n < 1024:
        return f"{n} B"
    if n < 1 << 20:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1 << 20):.2f} MiB"


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 1:
        return f"{value:.2f} ms"
    return f"{value * 1000:.1f} µs"


def jsonable(value: Any) -> Any:
    """`value` made strict-JSON safe: NaN and infinities become strings, bytes are decoded, tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode(errors="replace")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def _table(headers: list[str], rows: list[list[str]], total: int | None = None) -> str:
    """An HTML table from already-escaped cells; `total` > len(rows) adds a '... N more' line."""
    head = "".join(f'<th style="{HEAD}">{h}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f'<td style="{CELL}">{c}</td>' for c in row) + "</tr>" for row in rows)
    more = ""
    if total is not None and total > len(rows):
        more = f'<div style="{MUTED}">… {total - len(rows)} more</div>'
    return f'<table style="{TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}'


def _code(text: Any) -> str:
    return f'<code style="{MONO}">{_e(text)}</code>'


def _details(title: str, body: str, open_: bool = True) -> str:
    return (
        f'<details{" open" if open_ else ""} style="margin:2px 0">'
        f'<summary style="cursor:pointer;font-weight:600">{title}</summary>{body}</details>'
    )


def _badge(text: str, color: str) -> str:
    return (
        f'<span style="display:inline-block;padding:0 6px;border-radius:8px;border:1px solid {color};'
        f'color:{color};font-size:11px;font-weight:600">{_e(text)}</span>'
    )


# ----------------------------------------------------------------------------------------------- Module
def named_functions(module: Module, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """`summary["functions"]`, with functions missing from the name section named after their export."""
    exported = {e.index: e.name for e in module.exports if e.kind == "func"} if not module.is_component else {}
    return [{**f, "name": f["name"] or exported.get(f["index"])} for f in summary.get("functions") or []]


MAX_SECTIONS = 24  # more than this (components have hundreds) are grouped by name


def group_sections(sections: list[dict[str, Any]], limit: int = MAX_SECTIONS) -> list[dict[str, Any]]:
    """Sections as they are, or (past `limit`) one entry per name in order of first appearance, with `count`
    and the summed `size` (`offset` is the first one's)."""
    if len(sections) <= limit:
        return [{**s, "count": 1} for s in sections]
    groups: dict[str, dict[str, Any]] = {}
    for s in sections:
        group = groups.setdefault(s["name"], {"name": s["name"], "offset": s["offset"], "size": 0, "count": 0})
        group["size"] += s["size"]
        group["count"] += 1
    return list(groups.values())


def _sections_bar(sections: list[dict[str, Any]], total: int) -> str:
    if not sections or total <= 0:
        return ""
    parts, legend = [], []
    grouped = group_sections(sections)
    for s in grouped:
        name = s["name"]
        color = CUSTOM_COLOR if name.startswith("custom") else SECTION_COLORS.get(name, "#8c959f")
        share = 100.0 * s["size"] / total
        where = f"at {s['offset']:#x}" if s["count"] == 1 else f"in {s['count']} sections"
        title = _e(f"{name}: {s['size']:,} bytes {where} ({share:.1f}%)")
        parts.append(f'<div title="{title}" style="width:{share:.3f}%;background:{color};min-width:1px"></div>')
        if share >= 1 or len(grouped) <= 8:
            times = f" ×{s['count']}" if s["count"] > 1 else ""
            legend.append(
                f'<span style="white-space:nowrap;margin-right:10px"><span style="display:inline-block;width:9px;'
                f'height:9px;background:{color};margin-right:3px"></span>'
                f"{_e(name)}{times} {_e(_size(s['size']))}</span>"
            )
    bar = (
        f'<div style="display:flex;height:12px;width:100%;max-width:720px;border-radius:3px;overflow:hidden;'
        f'background:rgba(128,128,128,.15)">{"".join(parts)}</div>'
    )
    return f'{bar}<div style="font-size:11px;margin-top:2px">{"".join(legend)}</div>'


def _functions_table(functions: list[dict[str, Any]], n: int = TOP_FUNCTIONS) -> str:
    biggest = sorted(functions, key=lambda f: f["size"], reverse=True)[:n]
    if not biggest:
        return ""
    top = biggest[0]["size"] or 1
    rows = []
    for f in biggest:
        width = max(1.0, 120.0 * f["size"] / top)
        bar = f'<div style="width:{width:.0f}px;height:8px;background:{SECTION_COLORS["code"]};margin-top:4px"></div>'
        rows.append([_e(f["index"]), _code(f["name"] or ""), f"{f['size']:,}", bar])
    return _table(["#", "function", "bytes", ""], rows)


def _provenance_line(summary: dict[str, Any]) -> str:
    p = summary.get("provenance") or {}
    bits = []
    if p.get("origin") == "compile":
        bits.append(f"{p.get('lang', '')} {p.get('kind', '')} -{p.get('opt', '')}".strip())
        if p.get("toolchain"):
            bits.append(p["toolchain"])
        cached = " (cached)" if p.get("cached") else ""
        bits.append(f"compiled in {_ms(p.get('compile_ms'))}{cached}")
    elif p.get("source_name"):
        bits.append(f"{p.get('origin')} {p['source_name']}")
    return " · ".join(_e(b) for b in bits if b)


def module_html(module: Module, summary: dict[str, Any] | None = None) -> str:
    """A compact summary card: identity, exports and imports with types, memories, a section bar, the largest
    functions."""
    s = summary if summary is not None else module.summary()
    head = (
        f'<div><b style="font-size:14px">{_e(s["name"])}</b> '
        f'<span style="{MUTED}">Wasm {_e(s["kind"])} · {_e(_size(s["size"]))} · sha256 '
        f"{_code(s['sha256'][:12])}</span></div>"
    )
    origin = _provenance_line(s)
    parts = [head]
    if origin:
        parts.append(f'<div style="{MUTED};font-size:12px">{origin}</div>')

    exports = s["exports"]
    rows = [[_code(e["name"]), _e(e["kind"]), _code(e["type"])] for e in exports[:MAX_ROWS]]
    body = _table(["name", "kind", "type"], rows, len(exports)) if exports else f'<div style="{MUTED}">none</div>'
    parts.append(_details(f"exports ({len(exports)})", body))

    imports = s["imports"]
    rows = [
        [_code(f"{i['module']}.{i['name']}" if i.get("module") else i["name"]), _e(i["kind"]), _code(i["type"])]
        for i in imports[:MAX_ROWS]
    ]
    body = _table(["name", "kind", "type"], rows, len(imports)) if imports else f'<div style="{MUTED}">none</div>'
    parts.append(_details(f"imports ({len(imports)})", body, open_=len(imports) <= 12))

    facts = []
    for m in s.get("memories", []):
        most = "no max" if m["max"] is None else f"max {m['max']} pages"
        facts.append(f"memory {m['min']} pages ({_size(m['min'] * 65536)}), {most}{', shared' if m['shared'] else ''}")
    if s.get("start") is not None:
        facts.append(f"start function {s['start']}")
    if s.get("data_segments"):
        facts.append(f"{s['data_segments']} data segments")
    if s.get("has_dwarf"):
        facts.append("DWARF debug info")
    if facts:
        parts.append(f'<div style="font-size:12px">{_e(" · ".join(facts))}</div>')

    parts.append(_details(f"sections ({len(s['sections'])})", _sections_bar(s["sections"], s["size"])))
    functions = named_functions(module, s)
    if functions:
        title = f"largest functions (of {len(functions)})"
        parts.append(_details(title, _functions_table(functions), open_=len(functions) > 1))
    return f'<div class="wasmlab-module" style="{FONT}">{"".join(parts)}</div>'


def module_bundle(module: Module) -> dict[str, Any]:
    """The vendor MIME entry for a module (the `summary()` dict)."""
    return {MODULE_MIME: jsonable(module.summary())}


def module_text(module: Module, summary: dict[str, Any] | None = None, top: int = TOP_FUNCTIONS) -> str:
    """The same facts as plain text (what `%wasm_inspect` shows in a terminal)."""
    s = summary if summary is not None else module.summary()
    lines = [f"{s['name']}: Wasm {s['kind']}, {s['size']:,} bytes, sha256 {s['sha256'][:16]}"]
    lines.append(f"exports ({len(s['exports'])}):")
    lines += [f"  {e['name']}: {e['kind']} {e['type']}" for e in s["exports"][:MAX_ROWS]]
    lines.append(f"imports ({len(s['imports'])}):")
    lines += [
        f"  {i['module'] + '.' if i.get('module') else ''}{i['name']}: {i['kind']} {i['type']}"
        for i in s["imports"][:MAX_ROWS]
    ]
    for m in s.get("memories", []):
        lines.append(f"memory: {m['min']} pages min, {m['max'] if m['max'] is not None else 'no'} max")
    lines.append("sections:")
    lines += [
        f"  {x['name']:<20} {x['size']:>10,} bytes "
        + (f"at {x['offset']:#x}" if x["count"] == 1 else f"in {x['count']} sections")
        for x in group_sections(s["sections"])
    ]
    biggest = sorted(named_functions(module, s), key=lambda f: f["size"], reverse=True)[:top]
    if biggest:
        lines.append(f"largest functions (of {len(s['functions'])}):")
        lines += [f"  {f['size']:>8,} bytes  [{f['index']}] {f['name'] or ''}" for f in biggest]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- RunResult
def _status(result: RunResult) -> tuple[str, str]:
    """(label, colour): ok, trap CODE, limit KIND, exit N, error."""
    if result.trap:
        return f"trap: {result.trap}", RED
    if result.error:
        limit = ErrorKind.limit_of(result.error_kind)
        if limit is not None:
            return f"limit: {limit}", AMBER
        return result.error_kind or ErrorKind.ERROR, RED
    if result.exit_code not in (None, 0):
        return f"exit {result.exit_code}", RED
    return "ok", GREEN


def _error_title(result: RunResult) -> str:
    """The error class the result stands for, as `raise_for_error` would raise it."""
    if result.trap:
        return "Trap"
    limit = ErrorKind.limit_of(result.error_kind)
    if limit is not None:
        return f"LimitExceeded ({limit})"
    error = type(error_for(result.error_kind, result.error or "", result.runtime))
    return "Error" if error is WasmlabError else error.__name__


def _call_text(result: RunResult, args: tuple[Any, ...] | None) -> str:
    if result.invoke is None:
        return "WASI command"
    shown = "…" if args is None else ", ".join(map(repr, args))
    return f"{result.invoke}({shown})"


def _cut(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    return text[:MAX_OUTPUT_CHARS] + f"\n… ({len(text) - MAX_OUTPUT_CHARS:,} more characters)"


def _timings_text(timings: dict[str, float]) -> str:
    order = [p for p in PHASES if p in timings] + [p for p in timings if p not in PHASES]
    return " · ".join(f"{p} {_ms(timings[p])}" for p in order)


def run_html(result: RunResult, args: tuple[Any, ...] | None = None, show_timings: bool = True) -> str:
    """One run: status badge, the value (or exit code), guest output, trap code and backtrace, limit, timings."""
    label, color = _status(result)
    parts = [
        f"<div><b>{_e(result.runtime)}</b> {_code(_call_text(result, args))} {_badge(label, color)}",
    ]
    if result.invoke is not None and result.ok:
        parts.append(f" → <b>{_code(repr(result.result))}</b>")
    elif result.invoke is None and result.exit_code is not None:
        parts.append(f' <span style="{MUTED}">exit code {_e(result.exit_code)}</span>')
    if result.fuel_used is not None:
        parts.append(f' <span style="{MUTED}">fuel used {result.fuel_used:,}</span>')
    parts.append("</div>")
    if result.trap:
        frames = "".join(f"<li>{_code(f)}</li>" for f in result.trap_frames)
        backtrace = f'<ol start="0" style="margin:2px 0 2px 18px;padding:0">{frames}</ol>' if frames else ""
        parts.append(
            f'<div style="color:{RED}">Trap: <b>{_e(result.trap)}</b></div>'
            + (f'<div style="font-size:12px">Wasm backtrace (innermost first):{backtrace}</div>' if frames else "")
        )
    if result.error:
        parts.append(f'<div style="color:{color}"><b>{_e(_error_title(result))}</b>: {_e(result.error)}</div>')
    pre = f"margin:2px 0;padding:4px 6px;background:rgba(128,128,128,.08);white-space:pre-wrap;{MONO}"
    if result.stdout:
        parts.append(
            f'<div style="{MUTED};font-size:11px">stdout</div><pre style="{pre}">{_e(_cut(result.output))}</pre>'
        )
    if result.stderr:
        err = _cut(result.stderr.decode(errors="replace"))
        parts.append(f'<div style="{MUTED};font-size:11px">stderr</div><pre style="{pre}">{_e(err)}</pre>')
    if show_timings and result.timings:
        parts.append(f'<div style="{MUTED};font-size:11px">{_e(_timings_text(result.timings))}</div>')
    return f'<div class="wasmlab-run" style="{FONT}">{"".join(parts)}</div>'


def run_text(result: RunResult, args: tuple[Any, ...] | None = None, show_timings: bool = True) -> str:
    label, _ = _status(result)
    lines = [f"{result.runtime}: {_call_text(result, args)} [{label}]"]
    if result.invoke is not None and result.ok:
        lines[0] += f" -> {result.result!r}"
    if result.invoke is None and result.exit_code is not None:
        lines[0] += f" exit code {result.exit_code}"
    if result.fuel_used is not None:
        lines[0] += f" (fuel used {result.fuel_used:,})"
    if result.stdout:
        lines.append(_cut(result.output).rstrip("\n"))
    if result.stderr:
        lines.append("stderr: " + _cut(result.stderr.decode(errors="replace")).rstrip("\n"))
    if result.trap:
        lines.append(f"Trap: {result.trap}")
        lines += [f"  {i}: {frame}" for i, frame in enumerate(result.trap_frames)]
    if result.error:
        lines.append(f"{_error_title(result)}: {result.error}")
    if show_timings and result.timings:
        lines.append(_timings_text(result.timings))
    return "\n".join(lines)


def run_bundle(result: RunResult) -> dict[str, Any]:
    return {RUN_MIME: jsonable(result.to_dict())}


@dataclass
class RunView:
    """A `RunResult` with presentation options: the call's arguments and whether timings are shown."""

    result: RunResult
    args: tuple[Any, ...] | None = None
    show_timings: bool = True

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            "text/plain": run_text(self.result, self.args, self.show_timings),
            "text/html": run_html(self.result, self.args, self.show_timings),
            **run_bundle(self.result),
        }

    def __repr__(self) -> str:
        return run_text(self.result, self.args, self.show_timings)


# ----------------------------------------------------------------------------------------------- Comparison
def comparison_html(comparison: Comparison, show_timings: bool = True) -> str:
    """One row per runtime: result, ok, agrees, trap or error, stdout and median phase times."""
    ref = comparison.reference()
    from ..compare import outcome

    phases = [p for p in PHASES if any(p in r.timings for r in comparison.results)] if show_timings else []
    headers = ["runtime", "result", "ok", "agrees", "trap / error", "stdout", *(f"{p}" for p in phases)]
    rows = []
    for r in comparison.results:
        label, color = _status(r)
        agrees = ref is not None and outcome(r) == outcome(ref)
        problem = r.trap or (f"{_error_title(r)}: {r.error}" if r.error else "")
        if not problem and r.exit_code not in (None, 0):
            problem = f"exit {r.exit_code}"
        out = r.output
        out = out if len(out) <= 200 else out[:200] + "…"
        rows.append(
            [
                f"<b>{_e(r.runtime)}</b>",
                _code(repr(r.result)) if r.invoke is not None and r.ok else "",
                _badge(label, color),
                f'<span style="color:{GREEN if agrees else RED}">{"yes" if agrees else "NO"}</span>',
                f'<span style="color:{color}">{_e(problem)}</span>',
                f'<pre style="margin:0;white-space:pre-wrap;{MONO}">{_e(out)}</pre>' if out else "",
                *(_e(_ms(r.timings.get(p))) for p in phases),
            ]
        )
    what = _e(_call_text_cmp(comparison))
    verdict = _badge("all runtimes agree", GREEN) if comparison.agree else _badge("runtimes DISAGREE", RED)
    parts = [f"<div><b>{_e(comparison.module.name)}</b> {_code(what)} {verdict}</div>"]
    if rows:
        parts.append(_table(headers, rows))
    else:
        parts.append(f'<div style="{MUTED}">no runtime could run this</div>')
    if comparison.skipped:
        skipped = "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in comparison.skipped.items())
        parts.append(f'<div style="{MUTED};font-size:12px">skipped:<ul style="margin:0">{skipped}</ul></div>')
    if show_timings and phases:
        repeats = max((len(v) for v in comparison.samples.values()), default=1)
        parts.append(f'<div style="{MUTED};font-size:11px">times are medians of {repeats} run(s)</div>')
    return f'<div class="wasmlab-comparison" style="{FONT}">{"".join(parts)}</div>'


def _call_text_cmp(comparison: Comparison) -> str:
    if comparison.invoke is None:
        return "WASI command"
    return f"{comparison.invoke}({', '.join(map(repr, comparison.args))})"


def comparison_text(comparison: Comparison, show_timings: bool = True) -> str:
    import pandas as pd

    frame = comparison.table
    if not show_timings:
        frame = frame[[c for c in frame.columns if not c.endswith("_ms")]]
    lines = [f"{comparison.module.name}: {_call_text_cmp(comparison)}"]
    if len(frame):
        with pd.option_context("display.width", 160, "display.max_columns", 20, "display.max_colwidth", 40):
            lines.append(frame.to_string(index=False))
    lines += [f"skipped {name}: {why}" for name, why in comparison.skipped.items()]
    lines.append("all runtimes agree" if comparison.agree else "runtimes DISAGREE")
    return "\n".join(lines)


def comparison_bundle(comparison: Comparison) -> dict[str, Any]:
    return {COMPARISON_MIME: jsonable(comparison.to_dict())}


@dataclass
class ComparisonView:
    """A `Comparison` with presentation options."""

    comparison: Comparison
    show_timings: bool = True

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            "text/plain": comparison_text(self.comparison, self.show_timings),
            "text/html": comparison_html(self.comparison, self.show_timings),
            **comparison_bundle(self.comparison),
        }

    def __repr__(self) -> str:
        return comparison_text(self.comparison, self.show_timings)


# ----------------------------------------------------------------------------------------------- figures
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def figure_bundle(fig: Any) -> dict[str, Any]:
    """A plotly figure as a MIME bundle, without `fig.show()` (which opens a browser from a terminal shell):
    what the configured plotly renderer gives, plus the plotly MIME type JupyterLab renders natively."""
    import plotly.io as pio

    try:
        bundle = dict(fig._repr_mimebundle_() or {})
    except Exception:
        bundle = {}
    if PLOTLY_MIME not in bundle:
        bundle[PLOTLY_MIME] = json.loads(pio.to_json(fig, validate=False))
    title = fig.layout.title.text or "figure"
    bundle.setdefault("text/plain", f"<plotly figure: {title}>")
    return bundle


# ----------------------------------------------------------------------------------------------- registration
def _pretty(text_fn: Any) -> Any:
    def printer(obj: Any, p: Any, cycle: bool) -> None:
        p.text(text_fn(obj))

    return printer


_saved: dict[tuple[str, type], Any] = {}


def _formatters(ip: Any) -> dict[str, Any]:
    formatter = ip.display_formatter
    return {
        "text/html": formatter.formatters["text/html"],
        "text/plain": formatter.formatters["text/plain"],
        "mimebundle": formatter.mimebundle_formatter,
    }


def _printers() -> dict[tuple[str, type], Any]:
    return {
        ("text/html", Module): module_html,
        ("mimebundle", Module): module_bundle,
        ("text/html", RunResult): run_html,
        ("text/plain", RunResult): _pretty(run_text),
        ("mimebundle", RunResult): run_bundle,
        ("text/html", Comparison): comparison_html,
        ("text/plain", Comparison): _pretty(comparison_text),
        ("mimebundle", Comparison): comparison_bundle,
    }


def register(ip: Any) -> None:
    """Attach the renderers to `ip.display_formatter` (idempotent). Module keeps its one-line repr as text."""
    formatters = _formatters(ip)
    for (kind, cls), printer in _printers().items():
        old = formatters[kind].for_type(cls, printer)
        if (kind, cls) not in _saved:
            _saved[(kind, cls)] = old


def unregister(ip: Any) -> None:
    """Remove what `register` attached, restoring any printer that was there before."""
    formatters = _formatters(ip)
    for kind, cls in _printers():
        formatter = formatters[kind]
        formatter.type_printers.pop(cls, None)
        old = _saved.pop((kind, cls), None)
        if old is not None:
            formatter.for_type(cls, old)
