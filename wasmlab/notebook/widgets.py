"""Notebook widgets (anywidget): the Python side does all the work, the front end only draws and sends messages.

    ModuleExplorer(module)                  imports, exports with types, sections with size bars, functions by size
    MemoryViewer(instance)                  hex + ASCII pages of linear memory, typed views, C strings, and the
                                            bytes each `viewer.call(...)` changed
    ComparisonDashboard(module)             pick runtimes / export / arguments / repeat, Run: table + bar chart
    LimitsExplorer(module, invoke, args)    fuel / timeout / memory sliders; each change runs on wasmtime and
                                            shows where the guest was stopped and what the run cost

Every widget is usable without a browser: its state is in synced traits, set by Python methods (`run()`,
`call()`, `goto()`...), and a message from the front end (`{"type": "run"}`, `{"type": "call", ...}`) calls the
same methods. Front-end code is plain ES modules in `static/` (no build step).
"""

from __future__ import annotations

import contextlib
import re
import struct
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

from ..compare import PHASES, Comparison, compare, outcome
from ..errors import ErrorKind, WasmlabError
from ..module import Module
from ..runtimes.base import RunResult
from ..runtimes.values import parse_value
from ..runtimes.views import DTYPES
from .display import group_sections, jsonable, named_functions

__all__ = ["ComparisonDashboard", "LimitsExplorer", "MemoryViewer", "ModuleExplorer", "parse_args"]

STATIC = Path(__file__).parent / "static"
CSS = STATIC / "widgets.css"


def front_end(name: str) -> str:
    """A widget's ES module: the shared DOM helpers (`static/dom.js`), then the widget's own file."""
    return (STATIC / "dom.js").read_text() + "\n" + (STATIC / name).read_text()

HIDDEN_EXPORTS = ("_initialize", "_start", "__wasm_call_ctors")


def parse_args(text: str) -> tuple[Any, ...]:
    """ "10, 2.5 0x1f" -> (10, 2.5, 31): export arguments typed in the front end (commas or spaces)."""
    return tuple(parse_value(word) for word in re.split(r"[\s,]+", text.strip()) if word)


def _call_text(invoke: str | None, args: tuple[Any, ...]) -> str:
    return f"{invoke}({', '.join(map(repr, args))})" if invoke else "WASI command"


def _callable_exports(module: Module) -> list[dict[str, str]]:
    return [
        {"name": e.name, "type": str(e.type)}
        for e in module.exports
        if e.kind == "func" and e.name not in HIDDEN_EXPORTS
    ]


# ------------------------------------------------------------------------------------------ ModuleExplorer
class ModuleExplorer(anywidget.AnyWidget):
    """What is inside a module: `imports`, `exports` (with types), `sections` (with sizes and shares) and the
    largest `functions`, filtered by `filter` (a substring of the name) and cut at `top`."""

    _esm = front_end("module_explorer.js")
    _css = CSS

    info = t.Dict().tag(sync=True)
    imports = t.List(t.Dict()).tag(sync=True)
    exports = t.List(t.Dict()).tag(sync=True)
    sections = t.List(t.Dict()).tag(sync=True)
    functions = t.List(t.Dict()).tag(sync=True)
    function_count = t.Int(0).tag(sync=True)  # functions matching `filter` (before the `top` cut)
    filter = t.Unicode("").tag(sync=True)
    top = t.Int(20).tag(sync=True)

    def __init__(self, module: Module, **kwargs: Any) -> None:
        self._all_functions: list[dict[str, Any]] = []  # before traits: `top=`/`filter=` fire the observer
        super().__init__(**kwargs)
        self.module = module
        self.set_module(module)

    def set_module(self, module: Module) -> None:
        s = module.summary()
        self.module = module
        p = s.get("provenance") or {}
        self.info = jsonable(
            {
                "name": s["name"],
                "kind": s["kind"],
                "size": s["size"],
                "sha256": s["sha256"],
                "origin": p.get("origin"),
                "lang": p.get("lang"),
                "build": p.get("kind"),
                "opt": p.get("opt"),
                "toolchain": p.get("toolchain"),
                "memories": s.get("memories", []),
            }
        )
        self.imports = jsonable(s["imports"])
        self.exports = jsonable(s["exports"])
        total = s["size"] or 1
        ordered = sorted(s["sections"], key=lambda x: x["offset"])
        self.sections = [{**jsonable(sec), "share": sec["size"] / total} for sec in group_sections(ordered)]
        self._all_functions = sorted(
            (jsonable(f) for f in named_functions(module, s)), key=lambda f: f["size"], reverse=True
        )
        self._update_functions()

    @t.observe("filter", "top")
    def _on_filter(self, change: Any) -> None:
        self._update_functions()

    def _update_functions(self) -> None:
        needle = self.filter.strip().lower()
        matching = [
            f for f in self._all_functions if not needle or needle in (f["name"] or f"func[{f['index']}]").lower()
        ]
        self.function_count = len(matching)
        self.functions = matching[: max(0, self.top)]


# ------------------------------------------------------------------------------------------ MemoryViewer


def diff_ranges(before: bytes, after: bytes, block: int = 4096) -> list[tuple[int, int]]:
    """Changed byte ranges `[(start, end)]` between two memory snapshots (a grown memory's new tail counts as
    zeros before)."""
    size = max(len(before), len(after))
    a, b = bytes(before).ljust(size, b"\0"), bytes(after).ljust(size, b"\0")
    ranges: list[tuple[int, int]] = []
    for base in range(0, size, block):
        stop = min(base + block, size)
        if a[base:stop] == b[base:stop]:
            continue
        for i in range(base, stop):
            if a[i] != b[i]:
                if ranges and ranges[-1][1] == i:
                    ranges[-1] = (ranges[-1][0], i + 1)
                else:
                    ranges.append((i, i + 1))
    return ranges


class MemoryViewer(anywidget.AnyWidget):
    """Linear memory of a live instance, one page at a time (`offset`, `page_size`), as hex + ASCII, as typed
    values (`dtype`), with the C string at `cstring_address`. `call(name, *args)` calls an export, refreshes,
    and records in `changed` the byte ranges `[start, end)` the call wrote."""

    _esm = front_end("memory_viewer.js")
    _css = CSS

    offset = t.Int(0).tag(sync=True)
    page_size = t.Int(256).tag(sync=True)
    row_size = t.Int(16).tag(sync=True)
    memory_size = t.Int(0).tag(sync=True)
    page = t.Bytes(b"").tag(sync=True)
    dtype = t.Enum(list(DTYPES), "u8").tag(sync=True)
    typed = t.List(t.Unicode()).tag(sync=True)  # values of the page as `dtype` (strings: i64 exceeds JS numbers)
    changed = t.List(t.List(t.Int())).tag(sync=True)
    changed_count = t.Int(0).tag(sync=True)
    cstring_address = t.Int(-1).tag(sync=True)
    cstring = t.Unicode("").tag(sync=True)
    exports = t.List(t.Dict()).tag(sync=True)
    last_call = t.Unicode("").tag(sync=True)
    last_result = t.Unicode("").tag(sync=True)
    error = t.Unicode("").tag(sync=True)

    def __init__(self, instance: Any, memory: str | None = None, runtime: str = "wasmtime", **kwargs: Any) -> None:
        if isinstance(instance, Module):
            instance = instance.instantiate(runtime)
        self.instance = instance
        self.memory = memory
        module = getattr(instance, "module", None)
        super().__init__(**kwargs)
        if isinstance(module, Module):
            self.exports = _callable_exports(module)
        else:
            self.exports = [{"name": n, "type": ""} for n in instance.export_names() if n not in HIDDEN_EXPORTS]
        self.on_msg(self._on_message)
        self.refresh()

    # reading ------------------------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        return self.instance.read_memory(0, self.instance.memory_size(self.memory), self.memory)

    def read_cstring(self, address: int, max_length: int = 4096) -> str:
        """The NUL-terminated string at `address` (UTF-8, at most `max_length` bytes)."""
        size = self.instance.memory_size(self.memory)
        if not 0 <= address < size:
            raise WasmlabError(f"address {address} is outside linear memory ({size} bytes)")
        data = self.instance.read_memory(address, min(max_length, size - address), self.memory)
        return data.split(b"\0", 1)[0].decode(errors="replace")

    def values(self, dtype: str | None = None) -> list[Any]:
        """The current page as numbers of `dtype` (default: the `dtype` trait)."""
        code = DTYPES[dtype or self.dtype]
        width = struct.calcsize(code)
        data = bytes(self.page)[: len(self.page) // width * width]
        return list(struct.unpack(f"<{len(data) // width}{code}", data))

    def changed_addresses(self) -> list[int]:
        """Every byte address the last `call` changed."""
        return [a for start, end in self.changed for a in range(start, end)]

    def refresh(self) -> None:
        """Read the current page (and the C string) again."""
        try:
            size = self.instance.memory_size(self.memory)
        except WasmlabError as exc:
            self.error = str(exc)
            return
        self.memory_size = size
        page = max(16, min(self.page_size, 1 << 16))
        offset = max(0, min(self.offset, max(0, size - page)))
        offset -= offset % max(1, self.row_size)
        with self.hold_sync():
            if offset != self.offset:
                self.offset = offset
            self.page = self.instance.read_memory(offset, max(0, min(page, size - offset)), self.memory)
            self.typed = [repr(v) if isinstance(v, float) else str(v) for v in self.values()]
            if self.cstring_address >= 0:
                try:
                    self.cstring = self.read_cstring(self.cstring_address)
                except WasmlabError as exc:
                    self.cstring = ""
                    self.error = str(exc)
            else:
                self.cstring = ""

    @t.observe("offset", "page_size", "dtype", "cstring_address")
    def _on_view(self, change: Any) -> None:
        self.refresh()

    # navigation ---------------------------------------------------------------------------------------
    def goto(self, address: int) -> None:
        """Show the page starting at the row that holds `address`."""
        self.offset = max(0, int(address))

    def next_page(self) -> None:
        self.offset = self.offset + self.page_size

    def prev_page(self) -> None:
        self.offset = max(0, self.offset - self.page_size)

    # calling ------------------------------------------------------------------------------------------
    def call(self, name: str, *args: Any) -> Any:
        """Call export `name`, refresh the view and mark the bytes the call changed (`changed`). A trap or
        exceeded limit is recorded in `error` and raised."""
        before = self.snapshot()
        self.error = ""
        self.last_call = _call_text(name, args)
        try:
            value = self.instance.call(name, *args)
        except WasmlabError as exc:
            self.last_result = ""
            self.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            after = self.snapshot()
            ranges = diff_ranges(before, after)
            with self.hold_sync():
                self.changed = [[s, e] for s, e in ranges]
                self.changed_count = sum(e - s for s, e in ranges)
                self.refresh()
        self.last_result = repr(value)
        return value

    def _on_message(self, widget: Any, content: dict[str, Any], buffers: Any) -> None:
        kind = content.get("type")
        try:
            if kind == "call":
                self.call(str(content.get("name", "")), *parse_args(str(content.get("args", ""))))
            elif kind == "goto":
                self.goto(int(str(content.get("address", "0")), 0))
            elif kind == "refresh":
                self.refresh()
        except (WasmlabError, ValueError, TypeError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------------------------------ ComparisonDashboard
def comparison_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One JSON-ready row per runtime (what the dashboard's table shows)."""
    ref = comparison.reference()
    rows = []
    for r in comparison.results:
        row = {
            "runtime": r.runtime,
            "result": repr(r.result) if r.invoke is not None and r.ok else "",
            "ok": r.ok,
            "agrees": ref is not None and outcome(r) == outcome(ref),
            "trap": r.trap or "",
            "error": r.error or "",
            "exit_code": r.exit_code,
            "stdout": r.output,
        }
        row.update({f"{p}_ms": r.timings.get(p) for p in PHASES})
        rows.append(jsonable(row))
    return rows


class ComparisonDashboard(anywidget.AnyWidget):
    """Choose `runtimes`, `invoke` (an export, or "" for a WASI command), `args` (text), `repeat`; `run()` (or
    the Run button) compares and fills `rows`, `agree`, `skipped`; `comparison` keeps the last `Comparison`."""

    _esm = front_end("comparison_dashboard.js")
    _css = CSS

    available_runtimes = t.List(t.Unicode()).tag(sync=True)
    runtimes = t.List(t.Unicode()).tag(sync=True)
    exports = t.List(t.Dict()).tag(sync=True)
    invoke = t.Unicode("").tag(sync=True)
    args = t.Unicode("").tag(sync=True)
    repeat = t.Int(3).tag(sync=True)
    timeout = t.Float(10.0).tag(sync=True)
    running = t.Bool(False).tag(sync=True)
    rows = t.List(t.Dict()).tag(sync=True)
    phases = t.List(t.Unicode(), list(PHASES)).tag(sync=True)
    agree = t.Bool(None, allow_none=True).tag(sync=True)
    skipped = t.Dict().tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    runs = t.Int(0).tag(sync=True)

    def __init__(
        self,
        module: Module,
        invoke: str | None = None,
        args: tuple[Any, ...] | list[Any] | str = (),
        runtimes: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        from ..runtimes import default_runtimes, list_runtimes

        super().__init__(**kwargs)
        self.module = module
        self.comparison: Comparison | None = None
        self.exports = _callable_exports(module)
        if invoke is None:
            invoke = "" if module.is_command or not self.exports else self.exports[0]["name"]
        self.invoke = invoke
        self.args = args if isinstance(args, str) else ", ".join(map(repr, args))
        self.available_runtimes = [r.name for r in list_runtimes() if r.available]
        self.runtimes = list(runtimes) if runtimes is not None else default_runtimes()
        self.on_msg(self._on_message)

    def run(self) -> Comparison | None:
        """Compare now with the current choices; the table updates in place. Errors land in `error`."""
        self.error = ""
        self.running = True
        try:
            args = parse_args(self.args)
            if not self.runtimes:
                raise WasmlabError("pick at least one runtime")
            comparison = compare(
                self.module,
                self.invoke or None,
                args,
                runtimes=list(self.runtimes),
                repeat=max(1, self.repeat),
                timeout=self.timeout or None,
            )
        except (WasmlabError, ValueError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return None
        finally:
            self.running = False
        self.comparison = comparison
        with self.hold_sync():
            self.rows = comparison_rows(comparison)
            self.agree = comparison.agree if comparison.results else None
            self.skipped = dict(comparison.skipped)
            self.runs += 1
        return comparison

    def figure(self) -> Any:
        """The plotly figure of the last comparison (stacked phase times per runtime)."""
        if self.comparison is None:
            raise WasmlabError("nothing compared yet: call run() first")
        return self.comparison.plot()

    def _on_message(self, widget: Any, content: dict[str, Any], buffers: Any) -> None:
        if content.get("type") == "run":
            self.run()


# ------------------------------------------------------------------------------------------ LimitsExplorer
FUEL_MEASURE = 1 << 62  # "no fuel limit" still meters, so every run reports the fuel it used
_STOPPED = re.compile(r"\(stopped(?: in (.+?\)))?\)")
MAX_HISTORY = 50


class LimitsExplorer(anywidget.AnyWidget):
    """Resource limits on one call: change `fuel` (0: no limit), `timeout` (seconds, 0: none) or `max_memory`
    (bytes, 0: the runtime default) and the call runs again on `runtime` (wasmtime). `status` is ok / trap /
    limit / exit / error, `limit` the LimitExceeded kind, `stopped_at` the function the guest was in,
    `fuel_used` and `elapsed_ms` what the run cost; `history` keeps the recent runs."""

    _esm = front_end("limits_explorer.js")
    _css = CSS

    fuel = t.Int(0).tag(sync=True)
    timeout = t.Float(1.0).tag(sync=True)
    max_memory = t.Int(0).tag(sync=True)
    auto_run = t.Bool(True).tag(sync=True)
    call_text = t.Unicode("").tag(sync=True)
    status = t.Unicode("").tag(sync=True)
    limit = t.Unicode("").tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    stopped_at = t.Unicode("").tag(sync=True)
    result = t.Unicode("").tag(sync=True)
    fuel_used = t.Int(None, allow_none=True).tag(sync=True)
    elapsed_ms = t.Float(0.0).tag(sync=True)
    history = t.List(t.Dict()).tag(sync=True)
    running = t.Bool(False).tag(sync=True)

    def __init__(
        self,
        module: Module,
        invoke: str | None = None,
        args: tuple[Any, ...] | list[Any] = (),
        *,
        runtime: str = "wasmtime",
        run: bool = True,
        **kwargs: Any,
    ) -> None:
        self._batch = True
        super().__init__(**kwargs)
        self.module = module
        self.invoke = invoke
        self.args = tuple(args)
        self.runtime = runtime
        self.last: RunResult | None = None
        self.call_text = _call_text(invoke, self.args)
        self._batch = False
        self.on_msg(self._on_message)
        if run:
            self.run()

    def set_limits(self, **limits: Any) -> RunResult | None:
        """Change several of fuel / timeout / max_memory at once, then run once (if `auto_run`)."""
        self._batch = True
        try:
            for name, value in limits.items():
                if name not in ("fuel", "timeout", "max_memory"):
                    raise TypeError(f"unknown limit {name!r}: use fuel, timeout or max_memory")
                setattr(self, name, value)
        finally:
            self._batch = False
        return self.run() if self.auto_run else None

    @t.observe("fuel", "timeout", "max_memory")
    def _on_limits(self, change: Any) -> None:
        if self.auto_run and not self._batch:
            self.run()

    def run(self) -> RunResult:
        """Run the call once under the current limits and record what happened."""
        options: dict[str, Any] = {
            "fuel": self.fuel if self.fuel > 0 else FUEL_MEASURE,
            "timeout": self.timeout if self.timeout > 0 else None,
        }
        if self.max_memory > 0:
            options["max_memory"] = self.max_memory
        self.running = True
        try:
            result = self.module.run(self.runtime, self.invoke, self.args, check=False, **options)
        except WasmlabError as exc:
            result = RunResult(self.runtime, self.invoke, error=str(exc), error_kind=exc.kind)
        finally:
            self.running = False
        self.last = result
        limit = ErrorKind.limit_of(result.error_kind)
        if result.trap:
            status = "trap"
        elif limit is not None:
            status = "limit"
        elif result.error:
            status = "error"
        elif result.exit_code not in (None, 0):
            status = "exit"
        else:
            status = "ok"
        stopped = ""
        if result.trap_frames:
            stopped = result.trap_frames[0]
        elif result.error and (match := _STOPPED.search(result.error)):
            stopped = match.group(1) or ""
        elapsed = result.timings.get("call", result.timings.get("run", 0.0))
        with self.hold_sync():
            self.status = status
            self.limit = limit or ""
            self.message = result.error or (f"trap: {result.trap}" if result.trap else "")
            self.stopped_at = stopped
            self.result = repr(result.result) if status == "ok" and self.invoke else ""
            self.fuel_used = result.fuel_used
            self.elapsed_ms = float(elapsed or 0.0)
            entry = {
                "fuel": self.fuel,
                "timeout": self.timeout,
                "max_memory": self.max_memory,
                "status": status,
                "limit": self.limit,
                "fuel_used": result.fuel_used,
                "elapsed_ms": self.elapsed_ms,
            }
            self.history = [*self.history, jsonable(entry)][-MAX_HISTORY:]
        return result

    def _on_message(self, widget: Any, content: dict[str, Any], buffers: Any) -> None:
        if content.get("type") == "run":
            with contextlib.suppress(WasmlabError):
                self.run()
