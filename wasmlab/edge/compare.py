"""One handler on several edge platforms, side by side: do they answer the same, and how fast.

    result = compare_platforms("hello.c", "wasmlab,workerd,jco", requests=2000)
    result.table            # one row per platform: sha256, cold start, requests/s, p50/p90/p99, RSS, agrees
    result.responses        # one row per probe x platform: status, the headers the handler set, body
    result.disagreements    # every probe on which a platform differs from the first one (never hidden)
    result.tidy             # long form: platform, metric, value
    result.figure()         # requests/s, latency percentiles and cold start per platform (plotly)

Each platform is started in turn as a process on 127.0.0.1 (`wasmlab.edge.platforms`), so they do not compete
for the CPU, and gets the same requests:

1. agreement: a fixed set of probes (`PROBES`: methods, a query, request headers, a body of 64 KiB, a 404 path)
   sent one at a time; a response is its status, the headers the handler set (framing and the platform's own
   headers -- date, connection, content-length, transfer-encoding... -- are not the handler's), and its body;
2. load from a process of its own: `wrk` (Debian) when it is installed and no rate is asked for (closed loop,
   `concurrency` connections, at most `requests` requests and `duration` seconds, cut by a Lua counter), else
   the lab's generator (`loadgen.load(client="process")`, open loop at `rate` when given, no coordinated
   omission). Every run is bounded in count and time.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError, WasmlabError
from . import platforms as registry

__all__ = ["PROBES", "PlatformComparison", "Probe", "compare_platforms"]

# Headers the platform adds or owns (framing, connection management, its own diagnostics: the lab's server
# adds server-timing and x-wasmlab-*): not part of what the handler answered.
PLATFORM_HEADERS = frozenset(
    {"date", "connection", "keep-alive", "transfer-encoding", "content-length", "server", "via", "alt-svc"}
    | {"server-timing"}
)
PLATFORM_HEADER_PREFIXES = ("x-wasmlab-", "cf-")


def handler_header(name: str) -> bool:
    """Whether a response header is the handler's (not framing, nor one the platform adds itself)."""
    return bool(name) and name not in PLATFORM_HEADERS and not name.startswith(PLATFORM_HEADER_PREFIXES)


TABLE_COLUMNS = (
    "platform", "version", "sha256", "cold_start_s", "prepare_s", "tool", "requests", "errors", "duration_s",
    "rps", "p50_ms", "p90_ms", "p99_ms", "rss_mib", "agrees",
)  # fmt: skip
ANSWER_COLUMNS = ("probe", "platform", "reference", "status", "headers", "body", "error", "agrees")
MAX_REQUESTS = 1_000_000
MAX_DURATION = 600.0
PROBE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Probe:
    """One request of the agreement set."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @property
    def label(self) -> str:
        extra = f" +{len(self.body)} B" if self.body else ""
        extra += "".join(f" [{k}: {v}]" for k, v in self.headers)
        return f"{self.method} {self.path}{extra}"


PROBES = (
    Probe("GET", "/"),
    Probe("GET", "/hello/world?name=edge&n=1"),
    Probe("POST", "/echo", (("content-type", "text/plain"),), b"hello, body"),
    Probe("GET", "/headers", (("x-echo", "from the client"),)),
    Probe("PUT", "/upload", (), b"x" * 65536),
    Probe("DELETE", "/items/7"),
    Probe("GET", "/missing"),
    Probe("GET", "/caf%C3%A9?q=a%20b"),
)


def send(url: str, probe: Probe, timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """One probe on a fresh connection: status, the handler's headers (sorted, lower-case), body."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(probe.method, probe.path, body=probe.body or None, headers=dict(probe.headers))
        answer = conn.getresponse()
        body = answer.read()
        headers = sorted((k.lower(), v) for k, v in answer.getheaders() if handler_header(k.lower()))
        return {"status": answer.status, "headers": headers, "body": body, "error": ""}
    except (OSError, http.client.HTTPException) as exc:
        return {"status": 0, "headers": [], "body": b"", "error": f"{type(exc).__name__}: {exc}"[:200]}
    finally:
        conn.close()


# -- load ---------------------------------------------------------------------------------------------------
# wrk is not in loadgen.py (the lab's generator, owned with the server); if loadgen grows a wrk mode, use it here.
WRK_SCRIPT = """-- wasmlab: stop after {limit} responses and report when (wrk itself bounds only time, and its own
-- clock runs to -d even after a thread stops: the lab interrupts it). LuaJIT's ffi reads the monotonic clock.
local ffi = require("ffi")
ffi.cdef[[ typedef struct {{ long tv_sec; long tv_nsec; }} wasmlab_ts; int clock_gettime(int, wasmlab_ts *); ]]
local function now()
  local t = ffi.new("wasmlab_ts"); ffi.C.clock_gettime(1, t)
  return tonumber(t.tv_sec) + tonumber(t.tv_nsec) * 1e-9
end
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) started = now(); count = 0 end
function response(status, headers, body)
  count = count + 1
  if count == {limit} then
    stopped = now(); wrk.thread:stop()
    io.write("wasmlab-capped\\n"); io.flush()  -- the lab sends SIGINT: wrk then reports at once
  end
end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    if t:get("stopped") then
      io.write(string.format("wasmlab: %d requests in %.6f s\\n", t:get("count"), t:get("stopped") - t:get("started")))
    end
  end
end
"""
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    return float(match.group(1)) * UNITS[match.group(2)] if match else float("nan")


def wrk_load(url: str, requests: int, concurrency: int, duration: float, timeout: float = 10.0) -> dict[str, Any]:
    """Closed-loop load with wrk (one thread, `concurrency` connections), at most `requests` requests and
    `duration` seconds: requests, errors, duration_s, rps, p50/p90/p99 ms (wrk's --latency percentiles)."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise UsageError("wrk is not installed: apt-get install wrk (or use tool='python')")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="wasmlab-wrk-") as script:
        script.write(WRK_SCRIPT.format(limit=requests))
        script.flush()
        cmd = [wrk, "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", f"--timeout={max(1, round(timeout))}s"]
        cmd += ["--latency", "-s", script.name, url]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        watchdog = threading.Timer(duration + timeout + 30, proc.kill)
        watchdog.start()
        try:
            lines = []
            for line in proc.stdout:  # type: ignore[union-attr]
                if line.strip() == "wasmlab-capped":
                    proc.send_signal(signal.SIGINT)  # wrk's Ctrl-C: stop sleeping to -d, print the summary
                else:
                    lines.append(line)
            stderr = proc.stderr.read()  # type: ignore[union-attr]
            proc.wait()
        finally:
            watchdog.cancel()
    out = "".join(lines)
    if proc.returncode != 0 or "requests in" not in out:
        raise UsageError(f"wrk failed: {(stderr or out).strip()[-300:]}")
    total_text, took = re.search(r"(\d+) requests in ([\d.]+(?:us|ms|s|m))", out).groups()
    total, seconds = int(total_text), _ms(took) / 1000.0
    capped = re.search(r"^wasmlab: (\d+) requests in ([\d.]+) s", out, re.M)
    if capped:  # the count cap ended the run before -d did
        total, seconds = int(capped.group(1)), float(capped.group(2))
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = (sum(int(x) for x in socket.groups()) if socket else 0) + (int(non2xx.group(1)) if non2xx else 0)
    return {
        "tool": "wrk",
        "requests": total,
        "errors": errors,
        "duration_s": seconds,
        "rps": total / seconds if seconds else float("nan"),
        "p50_ms": pct.get("50", float("nan")),
        "p90_ms": pct.get("90", float("nan")),
        "p99_ms": pct.get("99", float("nan")),
    }


def python_load(
    url: str, requests: int, concurrency: int, duration: float, rate: float | None, timeout: float = 10.0
) -> dict[str, Any]:
    """The lab's generator in a process of its own (open loop at `rate`, else closed loop)."""
    from .loadgen import load

    report = load(url, requests, concurrency, rate, duration, client="process", timeout=timeout)
    s = report.summary()
    return {
        "tool": "python",
        "requests": s["requests"],
        "errors": s["failed"],
        "duration_s": s["duration_s"],
        "rps": s["rps"],
        "p50_ms": s["p50_ms"],
        "p90_ms": s["p90_ms"],
        "p99_ms": s["p99_ms"],
    }


def pick_tool(tool: str, rate: float | None) -> str:
    if tool == "auto":
        return "wrk" if shutil.which("wrk") and rate is None else "python"
    if tool not in ("wrk", "python"):
        raise UsageError(f"unknown load tool {tool!r}: use auto, wrk or python")
    if tool == "wrk" and rate is not None:
        raise UsageError("wrk sends as fast as answers come: a --rate needs tool='python' (the open-loop generator)")
    return tool


# -- the comparison -----------------------------------------------------------------------------------------
@dataclass
class PlatformComparison:
    """What `compare_platforms` measured (see the module docstring)."""

    rows: list[dict[str, Any]]
    answers: list[dict[str, Any]]
    skipped: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self):  # -> pandas.DataFrame
        import pandas as pd

        extra = [k for row in self.rows for k in row if k not in TABLE_COLUMNS]
        return pd.DataFrame(self.rows, columns=[*TABLE_COLUMNS, *dict.fromkeys(extra)])

    @property
    def responses(self):  # -> pandas.DataFrame
        import pandas as pd

        rows = [{**a, "headers": json.dumps(a["headers"]), "body": _show(a["body"])} for a in self.answers]
        return pd.DataFrame(rows, columns=list(ANSWER_COLUMNS))

    @property
    def tidy(self):  # -> pandas.DataFrame
        """Long form: one row per platform and metric."""
        numeric = ("cold_start_s", "rps", "p50_ms", "p90_ms", "p99_ms", "rss_mib", "requests", "errors")
        import pandas as pd

        return pd.DataFrame(
            [{"platform": r["platform"], "metric": m, "value": r[m]} for r in self.rows for m in numeric if m in r]
        )

    @property
    def disagreements(self) -> list[dict[str, Any]]:
        """Each probe on which a platform's answer differs from the reference (the first platform's)."""
        out = []
        for a in self.answers:
            if not a["agrees"]:
                ref = next(r for r in self.answers if r["probe"] == a["probe"] and r["platform"] == a["reference"])
                diff = [k for k in ("status", "headers", "body") if a[k] != ref[k]] or ["error"]
                out.append(
                    {
                        "probe": a["probe"],
                        "platform": a["platform"],
                        "reference": a["reference"],
                        "differs_in": ", ".join(diff),
                        "got": {k: _show(a[k]) if k == "body" else a[k] for k in diff if k in a},
                        "expected": {k: _show(ref[k]) if k == "body" else ref[k] for k in diff if k in ref},
                    }
                )
        return out

    @property
    def agree(self) -> bool:
        return bool(self.answers) and all(a["agrees"] for a in self.answers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "platforms": [{k: _plain(v) for k, v in row.items()} for row in self.rows],
            "agree": self.agree,
            "disagreements": self.disagreements,
            "skipped": self.skipped,
            "meta": self.meta,
        }

    def _repr_html_(self) -> str:
        html = self.table.to_html(index=False, float_format=lambda v: f"{v:.3f}")
        verdict = "all platforms agree on every probe" if self.agree else f"{len(self.disagreements)} disagreements"
        skipped = "".join(f"<br>skipped {k}: {v}" for k, v in self.skipped.items())
        return f"{html}<p>{verdict}{skipped}</p>"

    def figure(self):  # -> plotly Figure
        """Requests/s, latency p50/p90/p99 and cold start per platform."""
        try:
            import plotly.graph_objects as go
            from plotly.subplots import make_subplots
        except ImportError:
            raise UsageError("figures need plotly: pip install plotly (or wasmlab[notebook])") from None
        names = [r["platform"] for r in self.rows]
        fig = make_subplots(rows=1, cols=3, subplot_titles=("requests/s", "latency (ms)", "cold start (s)"))
        fig.add_trace(go.Bar(x=names, y=[r["rps"] for r in self.rows], name="requests/s"), 1, 1)
        for p in ("p50_ms", "p90_ms", "p99_ms"):
            fig.add_trace(go.Bar(x=names, y=[r[p] for r in self.rows], name=p.removesuffix("_ms")), 1, 2)
        fig.add_trace(go.Bar(x=names, y=[r["cold_start_s"] for r in self.rows], name="cold start"), 1, 3)
        fig.update_layout(
            barmode="group", height=380, title=f"One handler ({self.meta.get('handler', '')}) on each platform"
        )
        return fig

    def __repr__(self) -> str:
        parts = [f"{r['platform']} {r['rps']:.0f}/s p99 {r['p99_ms']:.2f} ms" for r in self.rows]
        verdict = "agree" if self.agree else f"{len(self.disagreements)} disagreements"
        return f"<PlatformComparison {'; '.join(parts)}; {verdict}>"


def _show(body: Any) -> str:
    if not isinstance(body, bytes):
        return body
    text = body[:200].decode("utf-8", "backslashreplace")
    return text + (f"... ({len(body)} B)" if len(body) > 200 else "")


def _plain(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


def compare_platforms(
    handler: Any,
    platforms: Any = registry.DEFAULT,
    *,
    requests: int = 2000,
    rate: float | None = None,
    concurrency: int = 8,
    duration: float = 10.0,
    warmup: int = 50,
    path: str = "/",
    tool: str = "auto",
    probes: tuple[Probe, ...] = PROBES,
    lang: str | None = None,
    progress: Any = None,
) -> PlatformComparison:
    """Serve `handler` (a built handler, a component, a .wasm file, or source with `lang=`) on each platform in
    turn and compare (see the module docstring). A platform that is not installed is skipped with its reason;
    one that fails to start is skipped with the one-line error carrying its stderr."""
    if not 1 <= requests <= MAX_REQUESTS:
        raise UsageError(f"requests must be 1..{MAX_REQUESTS:,}, got {requests}")
    if not 0 < duration <= MAX_DURATION:
        raise UsageError(f"duration must be in (0, {MAX_DURATION:g}] seconds, got {duration}")
    names = registry.parse(platforms)
    tool = pick_tool(tool, rate)
    art = registry.artefact(handler, lang)
    rows: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    reference: dict[Probe, dict[str, Any]] = {}
    for name in names:
        platform = registry.get(name)
        reason = platform.unavailable_reason()
        if reason:
            fix = (
                f"fix: {platform.install}"
                if platform.installable
                else f"elsewhere: {platform.elsewhere(art.name + '.wasm')}"
            )
            skipped[name] = f"{reason}; {fix}"
            continue
        if progress is not None:
            progress(name)
        try:
            server = platform.start(art)
        except WasmlabError as exc:
            skipped[name] = str(exc)
            continue
        with server:
            got = [(probe, send(server.url, probe)) for probe in probes]
            ref_name = next(iter(reference.values()))["platform"] if reference else name
            for probe, answer in got:
                ref = reference.setdefault(probe, {**answer, "platform": name})
                same = not answer["error"] and all(answer[k] == ref[k] for k in ("status", "headers", "body"))
                answers.append(
                    {"probe": probe.label, "platform": name, "reference": ref_name, **answer, "agrees": same}
                )
            url = server.url + path
            if warmup:
                _warm(url, warmup)
            if tool == "wrk":
                stats = wrk_load(url, requests, concurrency, duration)
            else:
                stats = python_load(url, requests, concurrency, duration, rate)
            rss = server.rss_bytes()
            errors = server.stderr_tail(5) if not server.alive() else ""
        rows.append(
            {
                "platform": name,
                "version": platform.version(),
                "sha256": server.sha256[:16],
                "cold_start_s": server.cold_start_s,
                "prepare_s": server.prepare_s,
                **stats,
                "rss_mib": rss / (1 << 20),
                "agrees": all(a["agrees"] for a in answers if a["platform"] == name),
                **({"died": errors} if errors else {}),
            }
        )
    meta = {
        "handler": art.name,
        "sha256": art.sha256,
        "bytes": len(art.component),
        "requests": requests,
        "rate": rate,
        "concurrency": concurrency,
        "duration_s": duration,
        "tool": tool,
        "python": sys.version.split()[0],
        "probes": len(probes),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return PlatformComparison(rows, answers, skipped, meta)


def _warm(url: str, count: int) -> None:
    """`count` requests on one keep-alive connection, not measured (JIT tiers, pools, caches)."""
    host, port = url.removeprefix("http://").split("/", 1)[0].rsplit(":", 1)
    target = "/" + url.removeprefix("http://").split("/", 1)[1] if "/" in url.removeprefix("http://") else "/"
    conn = http.client.HTTPConnection(host, int(port), timeout=PROBE_TIMEOUT)
    try:
        for _ in range(count):
            conn.request("GET", target)
            conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        pass
    finally:
        conn.close()
