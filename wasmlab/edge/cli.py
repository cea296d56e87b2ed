"""`wasmlab edge build`, `serve` and `load`: standard wasi:http handlers, an edge worker on loopback, a load generator.

wasmlab edge build hello.c -o hello.wasm          (a wasi:http/proxy@0.2.0 component; --core-out for the core)
wasmlab edge serve hello.c --route /hello --strategy pooled --port 8080 --runtime wasmtime
wasmlab edge serve /hello=hello.c /echo=echo.rs --origin /far=80      (several routes, a slow origin)
wasmlab edge load http://127.0.0.1:8080/hello --requests 2000 --concurrency 8 --rate 200 --json
wasmlab edge serve hello.wasm --platform workerd --port 8787          (one edge platform, in the foreground)
wasmlab edge compare hello.wasm --platforms wasmlab,workerd,jco --requests 2000 [--rate R] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `edge` command's sub-commands (serve, load) on the parser `wasmlab.cli` made for it."""
    sub = parser.add_subparsers(dest="edge_command", required=True, metavar="SUBCOMMAND")

    def subcommand(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return p

    p = subcommand("build", "build a standard wasi:http/proxy component from a handler (C, C++, WAT, .wasm)")
    p.add_argument("source", metavar="SRC", help="handler source file, or a core .wasm module to wrap")
    p.add_argument("-o", "--output", help="component file to write (default: SRC with .wasm)")
    p.add_argument("--core-out", help="also write the core module here (hosts that take core Wasm)")
    p.add_argument("--lang", help="source language (default: from the file extension)")
    p.add_argument("--opt", default="O2", help="optimisation level (default O2)")

    p = subcommand("serve", "serve HTTP on loopback with Wasm handlers (until Ctrl-C)")
    p.add_argument(
        "handlers",
        nargs="+",
        metavar="HANDLER",
        help="a handler source or .wasm file, or ROUTE=FILE (e.g. /hello=hello.c)",
    )
    p.add_argument("--route", help="the route of a single HANDLER (default: /, every path)")
    p.add_argument("--strategy", choices=("fresh", "pooled", "reused"), default="pooled", help="instance strategy")
    p.add_argument("--runtime", "-r", default="wasmtime", help="runtime, e.g. wasmtime, node, wasm3, wasmer")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (0: a free one; default 8080)")
    p.add_argument("--pool-size", type=int, default=4, help="ready instances per pooled route (default 4)")
    p.add_argument("--reset", choices=("instantiate", "snapshot"), default="instantiate", help="pooled reset")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds per request (default 1)")
    p.add_argument("--fuel", type=int, help="instruction budget per request (wasmtime)")
    p.add_argument("--max-memory", type=float, default=64, metavar="MIB", help="linear memory cap (default 64)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="simulated network delay per request")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="random extra delay, up to this much")
    p.add_argument("--origin", action="append", default=[], metavar="ROUTE=MS", help="a simulated far origin")
    p.add_argument("--workers", type=int, default=4, help="threads running guests (default 4)")
    p.add_argument("--inline", action="store_true", help="run guests on the event loop (lowest latency)")
    p.add_argument("--lang", help="source language (default: from the file extension)")
    p.add_argument("--kind", choices=("library", "command"), default="library", help="library: alloc/handle ABI")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    p.add_argument(
        "--platform",
        default="wasmlab",
        metavar="PLATFORM",
        help="the edge platform: wasmlab (default), workerd, jco (`wasmlab edge compare --list` shows all)",
    )

    p = subcommand("load", "send a bounded load to a loopback URL; report requests/s and latency percentiles")
    p.add_argument("url", help="http://127.0.0.1:PORT/path (loopback only)")
    p.add_argument("--requests", "-n", type=int, default=1000, help="at most this many requests (default 1000)")
    p.add_argument("--concurrency", "-c", type=int, default=8, help="connections (default 8)")
    p.add_argument("--rate", type=float, help="requests per second (default: as fast as answers come)")
    p.add_argument("--duration", type=float, default=30.0, help="at most this many seconds (default 30)")
    p.add_argument("--method", default="GET", help="HTTP method (default GET)")
    p.add_argument("--body", default="", help="request body text")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help="request header")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    p.add_argument("--warmup", type=int, default=0, help="requests sent first and not counted")
    p.add_argument("--records", action="store_true", help="with --json: include every request's record")

    p = subcommand("compare", "serve one handler on several edge platforms: agreement, cold start, req/s, latency, RSS")
    p.add_argument("handler", metavar="HANDLER", nargs="?", help="a component .wasm, or handler source")
    p.add_argument("--platforms", default="wasmlab,workerd,jco", help="comma-separated (default wasmlab,workerd,jco)")
    p.add_argument("--requests", "-n", type=int, default=2000, help="at most this many requests each (default 2000)")
    p.add_argument("--rate", type=float, help="open loop at this many requests/s (default: closed loop)")
    p.add_argument("--concurrency", "-c", type=int, default=8, help="connections (default 8)")
    p.add_argument("--duration", type=float, default=10.0, help="at most this many seconds of load each (default 10)")
    p.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto", help="load tool (default: wrk if any)")
    p.add_argument("--lang", help="source language (default: from the file extension)")
    p.add_argument("--list", action="store_true", help="list the platforms, what they need, and stop")


def run(args: argparse.Namespace) -> int:
    if args.edge_command == "build":
        return _build(args)
    if args.edge_command == "compare":
        return _compare(args)
    if args.edge_command == "serve" and args.platform != "wasmlab":
        return _serve_platform(args)
    if args.edge_command == "serve":
        return _serve(args)
    return _load(args)


def _build(args: argparse.Namespace) -> int:
    from .standard import build

    source = Path(args.source)
    handler = build(source, args.lang, opt=args.opt)
    out = Path(args.output) if args.output else source.with_suffix(".wasm")
    if out.resolve() == source.resolve():
        out = source.with_name(f"{source.stem}.component.wasm")
    handler.save(out)
    if args.core_out:
        handler.save_core(args.core_out)
    info = {
        "component": str(out),
        "sha256": handler.sha256,
        "bytes": len(handler.component),
        "core": args.core_out,
        "core_bytes": len(handler.core) if handler.core is not None else None,
        "lang": handler.lang,
        "world": "wasi:http/proxy@0.2.0",
    }
    if getattr(args, "json", False):
        print(json.dumps(info))
    else:
        core = f", core module {info['core_bytes']:,} B" if handler.core is not None else ""
        print(f"{out}: wasi:http/proxy@0.2.0 component, {info['bytes']:,} B{core}, sha256 {handler.sha256[:16]}")
    return 0


def _handler_specs(args: argparse.Namespace) -> list[tuple[str, str]]:
    specs = []
    for item in args.handlers:
        route, sep, path = item.partition("=")
        if sep and route.startswith("/"):
            specs.append((route, path))
        else:
            specs.append(("", item))
    if args.route:
        if len(specs) != 1 or specs[0][0]:
            raise UsageError("--route names the route of a single HANDLER; for several, write ROUTE=FILE")
        specs = [(args.route, specs[0][1])]
    out = []
    for route, path in specs:
        if not Path(path).is_file():
            raise UsageError(f"no such handler file: {path}")
        # one handler serves every path, as on an edge platform; several get /NAME each
        out.append((route or ("/" if len(specs) == 1 else "/" + Path(path).stem), path))
    return out


def _origins(items: list[str]) -> list[tuple[str, float]]:
    out = []
    for item in items:
        route, sep, ms = item.partition("=")
        try:
            out.append((route, float(ms) if sep else 50.0))
        except ValueError:
            raise UsageError(f"--origin {item!r} needs the form ROUTE=MILLISECONDS") from None
    return out


def _serve(args: argparse.Namespace) -> int:
    from .server import EdgeServer

    specs = _handler_specs(args)
    server = EdgeServer(
        args.host,
        args.port,
        runtime=args.runtime,
        strategy=args.strategy,
        pool_size=args.pool_size,
        reset=args.reset,
        timeout=args.timeout if args.timeout and args.timeout > 0 else None,
        fuel=args.fuel,
        max_memory=int(args.max_memory * (1 << 20)) if args.max_memory else None,
        delay_ms=args.delay_ms,
        workers=args.workers,
        execution="inline" if args.inline else "threads",
    )
    try:
        for route, path in specs:
            server.route(route, path, args.lang, kind=args.kind, jitter_ms=args.jitter_ms)
        for route, ms in _origins(args.origin):
            server.origin(route, ms, jitter_ms=args.jitter_ms)
        server.start()
        rows = _clean_rows(server.stats().to_dict("records"))
        if getattr(args, "json", False):
            print(json.dumps({"url": server.url, "routes": rows}), flush=True)
        else:
            print(f"wasmlab edge serving on {server.url} (Ctrl-C stops)", flush=True)
            for row in rows:
                what = (
                    f"origin, {row['delay_ms']:g} ms away"
                    if row["kind"] == "origin"
                    else f"{row['handler']} ({row['module']}), {row['strategy']} on {row['runtime']}"
                )
                print(f"  {server.url}{row['route']}  ->  {what}", flush=True)
        _stop_on_sigterm()
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C (or SIGTERM) is how a server is meant to stop
            server.serve_forever(args.duration)
    finally:
        server.stop()
        stats = _clean_rows(server.stats().to_dict("records")) if server.routes else []
    if getattr(args, "json", False):
        print(json.dumps({"stopped": True, "routes": stats}), flush=True)
    else:
        for row in stats:
            print(f"{row['route']}: {row['requests']} requests, {row['errors']} errors", file=sys.stderr)
    return 0


def _stop_on_sigterm() -> None:
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        signal.signal(signal.SIGTERM, interrupt)


def _clean_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: None if isinstance(v, float) and v != v else v for k, v in row.items()} for row in rows]


def _load(args: argparse.Namespace) -> int:
    from .loadgen import load

    headers = {}
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep:
            raise UsageError(f"--header {item!r} needs the form 'NAME: VALUE'")
        headers[name.strip()] = value.strip()
    report = load(
        args.url,
        args.requests,
        args.concurrency,
        args.rate,
        args.duration,
        method=args.method,
        body=args.body,
        headers=headers,
        timeout=args.timeout,
        warmup=args.warmup,
    )
    data = report.to_dict()
    if getattr(args, "json", False):
        if args.records:
            data["records"] = report.records
        print(json.dumps(_clean_rows([data])[0]))
    else:
        s = data
        print(
            f"{s['requests']} requests in {s['duration_s']:.2f} s: {s['rps']:.1f}/s, {s['failed']} failed\n"
            f"latency ms: p50 {s['p50_ms']:.3f}  p90 {s['p90_ms']:.3f}  p99 {s['p99_ms']:.3f}  "
            f"mean {s['mean_ms']:.3f}  max {s['max_ms']:.3f}\n"
            f"statuses: {', '.join(f'{k}: {v}' for k, v in sorted(s['statuses'].items()))}"
        )
        for error in s["errors"]:
            print(f"error: {error}", file=sys.stderr)
    return 1 if data["failed"] else 0


def _serve_platform(args: argparse.Namespace) -> int:
    """`serve --platform P`: start that platform's process on the handler and wait (Ctrl-C or --duration stops)."""
    import time

    from .platforms import get

    if len(args.handlers) != 1 or "=" in args.handlers[0]:
        raise UsageError(f"--platform {args.platform} serves one HANDLER (a component .wasm or source), not routes")
    platform = get(args.platform)
    server = platform.start(args.handlers[0], args.port, lang=args.lang)
    info = {"platform": platform.name, "url": server.url, "pid": server.pid, "cold_start_s": server.cold_start_s}
    info["sha256"] = server.sha256
    if getattr(args, "json", False):
        print(json.dumps(info), flush=True)
    else:
        print(
            f"{platform.title} serving on {server.url} (pid {server.pid}, first answer after "
            f"{server.cold_start_s:.3f} s; Ctrl-C stops)",
            flush=True,
        )
    _stop_on_sigterm()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            deadline = time.monotonic() + args.duration if args.duration else None
            while server.alive() and (deadline is None or time.monotonic() < deadline):
                time.sleep(0.2)
    finally:
        code = server.stop()
    if code not in (0, None, -15) and not getattr(args, "json", False):
        print(server.stderr_tail(5), file=sys.stderr, end="")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .compare import compare_platforms
    from .platforms import list_platforms

    if args.list:
        table = list_platforms(args.handler or "handler.wasm")
        if getattr(args, "json", False):
            print(json.dumps(_clean_rows(table.to_dict("records"))))
        else:
            for row in table.to_dict("records"):
                state = row["version"] or "available" if row["available"] else row["reason"]
                print(f"{row['platform']:15} {state}")
                print(
                    f"{'':15} {'run elsewhere: ' + row['command'] if row['command'] else 'get it: ' + row['install']}"
                )
        return 0
    if not args.handler:
        raise UsageError("compare needs a HANDLER (a component .wasm, or handler source)")
    progress = None if getattr(args, "json", False) else (lambda name: print(f"[{name}]", file=sys.stderr, flush=True))
    result = compare_platforms(
        args.handler,
        args.platforms,
        requests=args.requests,
        rate=args.rate,
        concurrency=args.concurrency,
        duration=args.duration,
        tool=args.tool,
        lang=args.lang,
        progress=progress,
    )
    if getattr(args, "json", False):
        print(json.dumps(result.to_dict(), default=str))
        return 0 if result.agree else 1
    meta = result.meta
    print(
        f"{meta['handler']} ({meta['bytes']:,} B, sha256 {meta['sha256'][:16]}), {meta['tool']} load: "
        f"{meta['requests']} requests max, {meta['concurrency']} connections, {meta['duration_s']:g} s max"
        + (f", {meta['rate']:g}/s" if meta["rate"] else "")
    )
    columns = ("platform", "sha256", "cold_start_s", "requests", "errors", "rps", "p50_ms", "p90_ms", "p99_ms")
    columns += ("rss_mib", "agrees")
    print(" | ".join(columns))
    for row in result.rows:
        print(" | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns))
    for d in result.disagreements:
        print(
            f"DISAGREE {d['probe']}: {d['platform']} vs {d['reference']} in {d['differs_in']}: "
            f"got {d['got']}, expected {d['expected']}"
        )
    for name, why in result.skipped.items():
        print(f"skipped {name}: {why}", file=sys.stderr)
    if result.agree:
        print(f"all {len(result.rows)} platforms agree on all {meta['probes']} probes")
    return 0 if result.agree else 1
