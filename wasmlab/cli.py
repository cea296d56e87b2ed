"""The `wasmlab` command line. Every command takes `--json`; errors are one line on stderr (exit 1 for a compile
error, a trap or an exceeded limit; 2 for bad usage, an invalid module or a missing backend)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import UsageError, WasmlabError
from .runtimes.values import parse_cli_value

SOURCE_HELP = "a .wasm module, or a source file to compile (.wat .c .cpp .zig .rs .go .ts .py)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasmlab", description="Compile, inspect and run WebAssembly side by side.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return p

    def build_options(p: argparse.ArgumentParser, kind: str | None = "library") -> None:
        p.add_argument("--lang", help="source language (default: from the file extension)")
        p.add_argument("--toolchain", help="where a language has several (js: starlingmonkey, quickjs)")
        p.add_argument("--kind", choices=("library", "command"), default=kind, help="what to build")
        p.add_argument("-O", dest="opt", default="O2", help="optimisation level: 0 1 2 3 s z (default 2)")
        p.add_argument("--no-strip", action="store_true", help="keep DWARF and other custom sections")
        p.add_argument("--lto", action="store_true", help="link-time optimisation")
        p.add_argument("--no-cache", action="store_true", help="compile even when the cache has the module")

    def limits(p: argparse.ArgumentParser) -> None:
        p.add_argument("--fuel", type=int, help="instruction budget (engines with fuel)")
        p.add_argument("--timeout", type=float, help="wall-clock limit in seconds")
        p.add_argument("--max-memory", type=float, metavar="MIB", help="linear memory cap in MiB")
        p.add_argument("--env", action="append", default=[], metavar="K=V", help="WASI environment variable")
        p.add_argument("--dir", action="append", default=[], metavar="GUEST=HOST", help="WASI preopened directory")
        p.add_argument("--stdin", metavar="FILE", help="file fed to the guest's stdin")
        p.add_argument("--invoke", nargs="+", metavar=("F", "ARGS"), help="call export F with ARGS")

    p = command("compile", "compile a source file to a Wasm module")
    p.add_argument("source", help="source file")
    p.add_argument("-o", "--output", help="output .wasm (default: SOURCE with .wasm)")
    build_options(p)

    p = command("inspect", "show imports, exports, memories, sections and function sizes")
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument("--top", type=int, default=10, help="largest functions to list (default 10)")
    p.add_argument("--sizes", action="store_true", help="add a size report (stripped, wasm-opt -Oz, gzip, brotli)")
    build_options(p)

    command("toolchains", "list the languages and whether their compilers are installed")
    command("runtimes", "list the runtimes and whether they are installed")
    p = command("features", "which Wasm proposals each engine and tier runs, measured with detection modules")
    p.add_argument("--runtimes", help="comma-separated engines or name:variant (default: every engine and tier here)")

    p = command("run", "run a module on one runtime")
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument("--runtime", "-r", default="wasmtime", help="runtime, e.g. wasmtime, node:liftoff")
    build_options(p, kind=None)
    limits(p)

    p = command("compare", "run the same work on several runtimes and compare results and timings")
    p.add_argument("source", help=SOURCE_HELP)
    p.add_argument("--runtimes", help="comma-separated runtimes (default: every available one)")
    p.add_argument("--repeat", type=int, default=3, help="runs per runtime (default 3)")
    build_options(p, kind=None)
    limits(p)

    command("demo", "compile fib in C and compare it on every available runtime")

    from .bench.cli import add_arguments as bench_arguments

    bench_arguments(command("bench", "benchmarks: startup, throughput vs native, size vs speed, sweeps, the suite"))

    from .edge.cli import add_arguments as edge_arguments

    edge_arguments(command("edge", "an HTTP edge worker on loopback with Wasm handlers, and a load generator"))

    from .mcp.cli import add_arguments as mcp_arguments

    mcp_arguments(command("mcp", "a module's functions as sandboxed MCP tools for AI assistants (like Wassette)"))

    from .fleet.cli import add_arguments as fleet_arguments

    fleet_arguments(command("fleet", "roll rule modules out to a fleet of simulated devices on a Dask cluster"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    guest_argv: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, guest_argv = argv[:cut], argv[cut + 1 :]
    parser = _parser()
    args = parser.parse_args(argv)
    args.guest_argv = guest_argv
    try:
        return COMMANDS[args.command](args)
    except WasmlabError as exc:
        if args.debug:
            raise
        print(f"wasmlab: {exc}", file=sys.stderr)
        detail = exc.details()
        if detail:
            print(detail.rstrip(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("wasmlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


# commands --------------------------------------------------------------------------------------------------
def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def _module(args: argparse.Namespace, default_kind: str = "library"):
    """Load a .wasm file or compile a source file, as the command line describes."""
    from .build import as_module

    path = Path(args.source)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    return as_module(
        path,
        args.lang,
        kind=args.kind or default_kind,
        opt=args.opt,
        strip=not args.no_strip,
        lto=args.lto,
        toolchain=args.toolchain,
        use_cache=not args.no_cache,
    )


def cmd_compile(args: argparse.Namespace) -> int:
    module = _module(args)
    out = Path(args.output) if args.output else Path(args.source).with_suffix(".wasm")
    if out.resolve() == Path(args.source).resolve():
        raise UsageError(f"output {out} would overwrite the source: pass -o OUT")
    module.save(out)
    p = module.provenance
    data = {
        "path": str(out),
        "size": module.size,
        "sha256": module.sha256,
        "lang": p.lang,
        "kind": p.kind,
        "opt": p.opt,
        "toolchain": p.toolchain,
        "cached": p.cached,
        "compile_ms": round(p.compile_ms, 3),
    }
    cached = " (cached)" if p.cached else ""
    _emit(args, data, f"{out}: {module.size:,} bytes, {p.lang} {p.kind} -{p.opt}, {p.compile_ms:.0f} ms{cached}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    module = _module(args)
    data = module.summary()
    if args.sizes:
        data["size_report"] = module.size_report()
    if args.json:
        _emit(args, data, "")
        return 0
    print(_inspect_text(module, data, args.top))
    return 0


def _inspect_text(module, data: dict[str, Any], top: int) -> str:
    lines = [f"{module.name}: {data['kind']}, {data['size']:,} bytes, sha256 {data['sha256'][:16]}"]
    if module.is_component:
        lines.append("sections:")
        lines += [f"  {s['name']:<24} {s['size']:>10,} bytes at {s['offset']:#x}" for s in data["sections"]]
        try:
            lines += ["wit:", *("  " + line for line in module.wit().splitlines())]
        except WasmlabError as exc:
            lines.append(f"wit: unavailable ({exc})")
        return "\n".join(lines)
    lines.append(f"imports ({len(data['imports'])}):")
    lines += [f"  {i['module']}.{i['name']}: {i['kind']} {i['type']}" for i in data["imports"]]
    lines.append(f"exports ({len(data['exports'])}):")
    lines += [f"  {e['name']}: {e['kind']} {e['type']}" for e in data["exports"]]
    for m in data["memories"]:
        lines.append(f"memory: {m['min']} pages min, {m['max'] if m['max'] is not None else 'no'} max")
    lines.append(
        f"start: {data['start']}  data segments: {data['data_segments']}  "
        f"element segments: {data['element_segments']}  DWARF: {'yes' if data['has_dwarf'] else 'no'}"
    )
    lines.append("sections:")
    lines += [f"  {s['name']:<24} {s['size']:>10,} bytes at {s['offset']:#x}" for s in data["sections"]]
    biggest = sorted(data["functions"], key=lambda f: f["size"], reverse=True)[:top]
    if biggest:
        lines.append(f"largest functions (of {len(data['functions'])}):")
        lines += [f"  {f['size']:>8,} bytes  [{f['index']}] {f['name'] or ''}" for f in biggest]
    if "size_report" in data:
        lines.append(
            "sizes: " + ", ".join(f"{k} {v:,}" if v is not None else f"{k} n/a" for k, v in data["size_report"].items())
        )
    return "\n".join(lines)


def cmd_toolchains(args: argparse.Namespace) -> int:
    from .toolchains import list_toolchains

    rows = list_toolchains()
    data = [
        {
            "lang": r.lang,
            "toolchain": r.toolchain,
            "available": r.available,
            "version": r.version,
            "reason": r.reason,
            "install": r.install,
            "extensions": list(r.extensions),
            "kinds": list(r.kinds),
        }
        for r in rows
    ]
    text = "\n".join(
        f"{'ok ' if r.available else 'no '} {(r.lang + (f' ({r.toolchain})' if r.toolchain else '')):<28} "
        + (r.version if r.available else f"{r.reason} (install: {r.install})")
        for r in rows
    )
    _emit(args, data, text)
    return 0


def cmd_runtimes(args: argparse.Namespace) -> int:
    from .runtimes import list_runtimes

    rows = list_runtimes()
    data = [
        {
            "name": r.name,
            "available": r.available,
            "version": r.version,
            "capabilities": list(r.capabilities),
            "variants": list(r.variants),
            "reason": r.reason,
            "install": r.install,
        }
        for r in rows
    ]
    text = "\n".join(
        f"{'ok ' if r.available else 'no '} {r.name:<12} "
        + (f"{r.version}  [{', '.join(r.capabilities)}]" if r.available else f"{r.reason} (install: {r.install})")
        for r in rows
    )
    _emit(args, data, text)
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from .features import FEATURES, detect

    specs = [s.strip() for s in args.runtimes.split(",") if s.strip()] if args.runtimes else None
    table = detect(specs)
    marks = {True: "yes", False: "no", None: "-"}
    width = max(len(spec) for spec in table) if table else 8
    lines = [" " * width + "  " + "  ".join(f"{f:<3}" for f in FEATURES)]
    for spec, row in table.items():
        cells = "  ".join(f"{marks[row[f]]:<{max(3, len(f))}}" for f in FEATURES)
        lines.append(f"{spec:<{width}}  {cells}")
    _emit(args, table, "\n".join(lines) + "\n(- : this engine cannot be asked; see wasmlab.features)")
    return 0


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    def pairs(items: list[str], what: str) -> dict[str, str]:
        out = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                raise UsageError(f"--{what} {item!r} needs the form KEY=VALUE")
            out[key] = value
        return out

    options: dict[str, Any] = {
        "argv": tuple(args.guest_argv),
        "env": pairs(args.env, "env"),
        "dirs": pairs(args.dir, "dir"),
    }
    if args.stdin:
        options["stdin"] = Path(args.stdin).read_bytes()
    if args.fuel is not None:
        options["fuel"] = args.fuel
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.max_memory is not None:
        options["max_memory"] = int(args.max_memory * (1 << 20))
    return options


def _invocation(args: argparse.Namespace) -> tuple[str | None, tuple[Any, ...]]:
    if not args.invoke:
        return None, ()
    return args.invoke[0], tuple(parse_cli_value(a) for a in args.invoke[1:])


def cmd_run(args: argparse.Namespace) -> int:
    invoke, values = _invocation(args)
    module = _module(args, "library" if invoke else "command")
    result = module.run(args.runtime, invoke, values, check=False, **_run_options(args))
    if args.json:
        _emit(args, result.to_dict(), "")
    else:
        sys.stdout.write(result.output)
        sys.stderr.write(result.stderr.decode(errors="replace"))
        if invoke:
            print(result.result)
    if not args.json:
        result.raise_for_error()
    elif not result.ok and result.exit_code in (None, 0):
        return 1
    return result.exit_code or 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare

    invoke, values = _invocation(args)
    module = _module(args, "library" if invoke else "command")
    comparison = compare(module, invoke, values, runtimes=args.runtimes, repeat=args.repeat, **_run_options(args))
    if args.json:
        _emit(args, comparison.to_dict(), "")
    else:
        import pandas as pd

        with pd.option_context("display.width", 160, "display.max_columns", 20, "display.max_colwidth", 30):
            print(comparison.table.to_string(index=False))
        for name, why in comparison.skipped.items():
            print(f"skipped {name}: {why}")
        print("all runtimes agree" if comparison.agree else "runtimes DISAGREE")
    return 0 if comparison.agree else 1


DEMO_SOURCE = """\
int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
"""


def cmd_demo(args: argparse.Namespace) -> int:
    from .build import compile
    from .compare import compare

    module = compile(DEMO_SOURCE, "c", name="fib")
    comparison = compare(module, "fib", (27,), repeat=3)
    if args.json:
        _emit(args, comparison.to_dict(), "")
        return 0
    print(f"fib(27) compiled from C ({module.size} bytes), run on {len(comparison.results)} runtimes:\n")
    print(comparison.table.to_string(index=False))
    for name, why in comparison.skipped.items():
        print(f"skipped {name}: {why}")
    return 0 if comparison.agree else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench.cli import run

    return run(args)


def cmd_edge(args: argparse.Namespace) -> int:
    from .edge.cli import run

    return run(args)


def cmd_mcp(args: argparse.Namespace) -> int:
    from .mcp.cli import run

    return run(args)


def cmd_fleet(args: argparse.Namespace) -> int:
    from .fleet.cli import run

    return run(args)


COMMANDS = {
    "compile": cmd_compile,
    "inspect": cmd_inspect,
    "toolchains": cmd_toolchains,
    "runtimes": cmd_runtimes,
    "features": cmd_features,
    "run": cmd_run,
    "compare": cmd_compare,
    "demo": cmd_demo,
    "bench": cmd_bench,
    "edge": cmd_edge,
    "mcp": cmd_mcp,
    "fleet": cmd_fleet,
}

if __name__ == "__main__":
    sys.exit(main())
