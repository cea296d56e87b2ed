"""Benchmark results: tidy tables (pandas), exports that round-trip (JSON, CSV) and a self-contained HTML report.

Every result has `.table` (one row per sample, columns named with units), `.summary` (one row per runtime and
kernel or phase, computed from the samples, so a reloaded result summarises exactly as the original),
`.figure()` / `.figures()`, `.env` (the machine and engines), `.notes` (what was capped and why) and
`.interrupted` (True when a Ctrl-C stopped the run: the tables hold the samples taken until then).
"""

from __future__ import annotations

import html
import json
import math
from io import StringIO
from pathlib import Path
from typing import Any, ClassVar

from ..errors import UsageError

_KINDS: dict[str, type[BenchResult]] = {}


def frame_to_obj(df: Any) -> dict[str, Any]:
    """A DataFrame as plain JSON data that `frame_from_obj` restores exactly (dtypes and float bits)."""
    rows = []
    for row in df.itertuples(index=False, name=None):
        rows.append([_plain(v) for v in row])
    return {
        "columns": [str(c) for c in df.columns],
        "dtypes": {str(c): str(t) for c, t in df.dtypes.items()},
        "rows": rows,
    }


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None:
        return None
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:
        pass
    return value


def frame_from_obj(obj: dict[str, Any]) -> Any:
    import pandas as pd

    columns = obj.get("columns", [])
    df = pd.DataFrame(obj.get("rows", []), columns=columns)
    for col, dtype in obj.get("dtypes", {}).items():
        if col not in df.columns:
            continue
        if dtype.startswith("float"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(dtype)
        elif dtype.startswith(("int", "uint", "bool")):
            df[col] = df[col].astype(dtype)
        else:
            df[col] = df[col].astype(object).where(df[col].notna(), None) if dtype == "object" else df[col]
    return df


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


class BenchResult:
    """Base of every result: tables, environment, parameters, notes, exports and the HTML report."""

    kind: ClassVar[str] = "bench"
    title: ClassVar[str] = "Benchmark"
    main: str = "samples"  # the table `.table` and `to_csv()` give (a class default; a result may pick its own)

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        _KINDS[cls.kind] = cls

    def __init__(
        self,
        tables: dict[str, Any],
        env: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        notes: list[str] | None = None,
        interrupted: bool = False,
    ) -> None:
        self.tables = dict(tables)
        self.env = env or {}
        self.params = params or {}
        self.notes = list(notes or [])
        self.interrupted = interrupted
        self._summary: Any = None

    # tables ---------------------------------------------------------------------------------------------
    @property
    def table(self):  # -> pandas.DataFrame
        """One row per sample."""
        return self.tables[self.main]

    @property
    def summary(self):  # -> pandas.DataFrame
        """Medians, IQR, min, CV and the noisy flag per group (computed from `.table`)."""
        if self._summary is None:
            self._summary = self.summarise()
        return self._summary

    def summarise(self):  # -> pandas.DataFrame
        raise NotImplementedError

    # figures --------------------------------------------------------------------------------------------
    def figures(self) -> dict[str, Any]:
        """{title: plotly Figure}."""
        return {}

    def figure(self):  # -> plotly.graph_objects.Figure
        """The main figure."""
        figures = self.figures()
        if not figures:
            raise UsageError(f"{type(self).__name__} has no figure (no samples?)")
        return next(iter(figures.values()))

    # exports --------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "interrupted": self.interrupted,
            "params": self.params,
            "env": self.env,
            "notes": self.notes,
            "tables": {name: frame_to_obj(df) for name, df in self.tables.items()},
            "summary": frame_to_obj(self.summary),
        }

    def to_json(self, path: str | Path | None = None, indent: int | None = None) -> str:
        """The whole result as JSON (written to `path` when given); `BenchResult.from_json` reads it back."""
        text = json.dumps(self.to_dict(), indent=indent, default=_json_default, allow_nan=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchResult:
        """The result `to_dict` described, as an object of its own kind (StartupResult, SuiteResult...)."""
        import importlib

        for module in ("_startup", "_throughput", "_crosscheck", "_size", "_sweep", "_suite", "_density", "_cluster"):
            importlib.import_module(f"{__package__}.{module}")  # each registers its kind
        if data.get("kind") not in _KINDS:
            raise UsageError(f"not a wasmlab bench result (kind {data.get('kind')!r})")
        target = _KINDS[data["kind"]]
        if cls is not BenchResult and not issubclass(target, cls):
            raise UsageError(f"this JSON holds a {data.get('kind')!r} result, not {cls.kind!r}")
        return target._from_dict(data)

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> BenchResult:
        tables = {name: frame_from_obj(obj) for name, obj in data.get("tables", {}).items()}
        return cls(tables, data.get("env"), data.get("params"), data.get("notes"), bool(data.get("interrupted")))

    @classmethod
    def from_json(cls, source: str | Path) -> BenchResult:
        """Read a result written by `to_json` (a path or the JSON text)."""
        text = str(source)
        if not text.lstrip().startswith("{"):
            text = Path(source).read_text()
        return cls.from_dict(json.loads(text))

    def to_csv(self, path: str | Path | None = None, table: str | None = None) -> str:
        """One table (default: the samples) as CSV text, also written to `path` when given."""
        df = self.tables[table or self.main]
        text = df.to_csv(index=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_csv(cls, source: str | Path, **meta: Any) -> BenchResult:
        """A result rebuilt from `to_csv()` samples (a path or CSV text); environment and notes are not in a
        CSV, pass them as keywords (`env=`, `params=`, `notes=`) if needed."""
        import pandas as pd

        text = str(source)
        data = StringIO(text) if "\n" in text else source
        df = pd.read_csv(data, keep_default_na=True)
        for col in df.columns:  # CSV has no None: text columns read back empty cells as NaN
            if df[col].dtype == object:
                df[col] = df[col].where(df[col].notna(), None)
        return cls({cls.main: df}, **meta)

    def html_sections(self) -> list[tuple[str, str]]:
        """(heading, HTML) blocks of the report after the figures: summary, notes, environment."""
        sections = [("Summary", table_html(self.summary))]
        return sections

    def to_html(self, path: str | Path | None = None) -> str:
        """A self-contained HTML report (plotly.js inlined once; no network needed to view it)."""
        parts = [
            "<!DOCTYPE html><html><head><meta charset='utf-8'>",
            f"<title>wasmlab bench: {html.escape(self.title)}</title>",
            "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
            "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;"
            "text-align:right}th{background:#f3f3f3}pre{background:#f8f8f8;padding:1em;overflow:auto}"
            ".warn{color:#a40}</style></head><body>",
            f"<h1>wasmlab bench: {html.escape(self.title)}</h1>",
        ]
        if self.interrupted:
            parts.append("<p class='warn'><b>Interrupted</b>: partial results (the samples taken until Ctrl-C).</p>")
        included = False
        for title, fig in self.figures().items():
            parts.append(f"<h2>{html.escape(title)}</h2>")
            parts.append(fig.to_html(full_html=False, include_plotlyjs="inline" if not included else False))
            included = True
        for heading, block in self.html_sections():
            parts.append(f"<h2>{html.escape(heading)}</h2>{block}")
        if self.notes:
            items = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
            parts.append(f"<h2>Notes</h2><ul>{items}</ul>")
        parts.append("<h2>Environment and parameters</h2><pre>")
        parts.append(html.escape(json.dumps({"env": self.env, "params": self.params}, indent=2, default=str)))
        parts.append("</pre></body></html>")
        text = "\n".join(parts)
        if path is not None:
            Path(path).write_text(text)
        return text

    # display --------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        flag = " interrupted" if self.interrupted else ""
        return f"<{type(self).__name__} {len(self.table)} samples{flag}>"

    def _repr_html_(self) -> str:
        flag = " <b>(interrupted: partial)</b>" if self.interrupted else ""
        return f"<p>{html.escape(type(self).__name__)}: {len(self.table)} samples{flag}</p>" + table_html(self.summary)


def table_html(df: Any) -> str:
    if df is None or len(df) == 0:
        return "<p>(no rows)</p>"
    return df.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0)
