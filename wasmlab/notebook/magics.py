"""IPython magics: compile a cell to WebAssembly, inspect it, run it on several engines side by side.

    %load_ext wasmlab

    %%wasm c --name fib --run wasmtime --invoke fib 10
    int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

`%%wasm LANG` compiles the cell and binds the `Module` to `--name` (default `LANG_module`, e.g. `c_module`,
`wat_module`, with the canonical language name) in the user namespace, then shows it. `--run` runs it (one
runtime: the result and the guest's output; several, or `all`: a table). Line numbers in compiler diagnostics
count from the first line of the cell body (the line after `%%wasm`), e.g. `snippet.c:2`.

Failures never lose state: bad options, an unknown language, a missing toolchain or a compile error raise one
IPython `UsageError` (one line, then the compiler's diagnostics under it, no traceback) and leave the namespace
as it was; NAME is rebound only once the compile succeeded. A trap or an exceeded limit during `--run` is a
result (shown with its trap code, Wasm backtrace or the limit that stopped the guest), not a cell error, unless
`%config WasmMagics.raise_on_error = True`.

Line magics: `%wasm_runtimes`, `%wasm_toolchains`, `%wasm_inspect NAME`, `%wasm_compare NAME`, `%wasm_bench NAME`.
Options are traits of `WasmMagics` (`%config WasmMagics` lists them; `%config WasmMagics.timeout = 2`).
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from html import escape
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display
from traitlets import Bool, Float, Int, List, Unicode
from traitlets.config import Configurable

from ..errors import WasmlabError
from ..module import Module
from ..runtimes.values import parse_value

__all__ = ["WasmMagics", "load_ipython_extension", "unload_ipython_extension"]


def usage_error(message: str, detail: str = "") -> UsageError:
    """A user error as IPython's own `UsageError` (IPython prints `UsageError: message` without a traceback
    only for that exact class, not for subclasses); `detail` (compiler diagnostics, a backtrace) goes under it."""
    detail = detail.rstrip()
    return UsageError(f"{message}\n{detail}" if detail else message)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn wasmlab's errors into `UsageError` (one line + details), so no Python traceback is shown."""
    try:
        yield
    except UsageError:
        raise
    except WasmlabError as exc:
        raise usage_error(str(exc), exc.details()) from None


def _split_guest_argv(line: str) -> tuple[str, tuple[str, ...]]:
    """Everything after a lone `--` is the guest's argv."""
    try:
        words = shlex.split(line, posix=True)
    except ValueError as exc:
        raise usage_error(f"cannot parse the options: {exc}") from None
    if "--" not in words:
        return line, ()
    cut = words.index("--")
    return shlex.join(words[:cut]), tuple(words[cut + 1 :])


def _runtime_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


@magics_class
class WasmMagics(Magics, Configurable):
    """`%%wasm` and friends. Every option below is a trait: `%config WasmMagics.opt = "Os"`."""

    default_runtimes = List(
        Unicode(),
        default_value=[],
        help="Runtimes for `%wasm_compare` (without --runtimes) and a bare `--run`; empty means every available "
        "runtime (or $WASMLAB_RUNTIMES).",
    ).tag(config=True)
    timeout = Float(10.0, allow_none=True, help="Wall-clock limit of one run, in seconds (None: no limit).").tag(
        config=True
    )
    fuel = Int(None, allow_none=True, help="Instruction budget of one run on engines with fuel (None: unlimited).").tag(
        config=True
    )
    max_memory_mib = Float(None, allow_none=True, help="Cap on linear memory in MiB (None: the runtime default).").tag(
        config=True
    )
    opt = Unicode("O2", help="Optimisation level of `%%wasm`: O0 O1 O2 O3 Os Oz.").tag(config=True)
    strip = Bool(True, help="Strip DWARF and other custom sections after compiling (names stay).").tag(config=True)
    use_cache = Bool(True, help="Reuse modules from the wasmlab compile cache.").tag(config=True)
    show_module = Bool(True, help="`%%wasm` shows the compiled module's summary card.").tag(config=True)
    show_timings = Bool(True, help="Show per-phase timings in run results and tables.").tag(config=True)
    show_plot = Bool(True, help="`%wasm_compare` also shows a plotly figure of phase times.").tag(config=True)
    repeat = Int(3, help="Runs per runtime in `%wasm_compare` (timings are medians).").tag(config=True)
    raise_on_error = Bool(
        False, help="A trap, exceeded limit or non-zero exit in `%%wasm --run` fails the cell (after showing it)."
    ).tag(config=True)

    # helpers -------------------------------------------------------------------------------------------
    def _run_options(self, args: Any, guest_argv: tuple[str, ...] = ()) -> dict[str, Any]:
        options: dict[str, Any] = {}
        timeout = args.timeout if getattr(args, "timeout", None) is not None else self.timeout
        options["timeout"] = timeout if timeout is None or timeout > 0 else None
        fuel = args.fuel if getattr(args, "fuel", None) is not None else self.fuel
        if fuel is not None:
            if fuel <= 0:
                raise usage_error(f"--fuel must be a positive number of units, not {fuel}")
            options["fuel"] = fuel
        mib = args.max_memory if getattr(args, "max_memory", None) is not None else self.max_memory_mib
        if mib is not None:
            options["max_memory"] = int(mib * (1 << 20))
        argv = tuple(getattr(args, "argv", None) or ()) + guest_argv
        if argv:
            options["argv"] = argv
        env = {}
        for item in getattr(args, "env", None) or ():
            key, sep, value = item.partition("=")
            if not sep:
                raise usage_error(f"--env {item!r} needs the form KEY=VALUE")
            env[key] = value
        if env:
            options["env"] = env
        return options

    def _default_runtimes(self) -> list[str]:
        if self.default_runtimes:
            return list(self.default_runtimes)
        from ..runtimes import default_runtimes

        return default_runtimes()

    def _resolve_runtimes(self, text: str | None) -> list[str]:
        if text is None or text.strip() in ("", "default"):
            return self._default_runtimes()
        if text.strip() == "all":
            from ..runtimes import list_runtimes

            return [row.name for row in list_runtimes() if row.available]
        names = _runtime_list(text)
        if not names:
            raise usage_error(f"no runtime in {text!r}: pass e.g. --run wasmtime,node or --run all")
        return names

    def _module(self, name: str) -> Module:
        """The Module bound to `name` in the user namespace (or loaded from a .wasm path)."""
        ns = self.shell.user_ns if self.shell is not None else {}
        if name in ns:
            value = ns[name]
            if isinstance(value, Module):
                return value
            raise usage_error(f"{name} is a {type(value).__name__}, not a wasmlab Module")
        if name.endswith((".wasm", ".wat")):
            from ..build import as_module

            with user_errors():
                return as_module(name)
        raise usage_error(f"no module named {name!r}: compile one with %%wasm LANG --name {name}")

    def _invocation(self, invoke: list[str] | None) -> tuple[str | None, tuple[Any, ...]]:
        if not invoke:
            return None, ()
        return invoke[0], tuple(parse_value(a) for a in invoke[1:])

    def _show_run(self, result: Any, args: tuple[Any, ...]) -> None:
        from .display import RunView

        display(RunView(result, args, self.show_timings))

    def _compare(
        self, module: Module, invoke: str | None, args: tuple[Any, ...], names: list[str], repeat: int, options: dict
    ) -> Any:
        """`wasmlab.compare`, with runtimes that cannot honour `fuel` or `max_memory` moved to `skipped` up front
        (instead of failing the whole comparison)."""
        from ..compare import compare
        from ..runtimes import list_runtimes

        skipped: dict[str, str] = {}
        needed = [cap for cap in ("fuel", "max_memory") if options.get(cap) is not None]
        if needed:
            capabilities = {row.name: row.capabilities for row in list_runtimes()}
            for name in list(names):
                base = name.partition(":")[0].strip().lower()
                missing = [cap for cap in needed if base in capabilities and cap not in capabilities[base]]
                if missing:
                    option = ", ".join("--" + cap.replace("_", "-") for cap in missing)
                    skipped[name] = f"cannot apply {option} (drop it to include this runtime)"
                    names.remove(name)
        with user_errors():
            comparison = compare(module, invoke, args, runtimes=names, repeat=repeat, **options)
        comparison.skipped.update(skipped)
        return comparison

    # %%wasm ------------------------------------------------------------------------------------------------
    @magic_arguments()
    @argument("lang", help="language of the cell: c, cpp, rust, go, zig, as (assemblyscript), wat, python, js")
    @argument("--name", "-n", help="variable to bind the Module to (default: LANG_module, e.g. c_module)")
    @argument(
        "--kind",
        choices=("library", "command"),
        help="what to build (default: command for --run without --invoke, else library)",
    )
    @argument("-O", dest="opt", metavar="LEVEL", help="optimisation level 0 1 2 3 s z (default: WasmMagics.opt)")
    @argument("--toolchain", "-t", help="for js: starlingmonkey (a component, the default) or quickjs (a module)")
    @argument("--flags", help='extra compiler flags, quoted: --flags "-DN=3 -ffast-math"')
    @argument(
        "--run",
        "-r",
        nargs="?",
        const="default",
        metavar="RUNTIMES",
        help="run after compiling: one runtime, a comma-separated list, or 'all' (bare: default runtimes)",
    )
    @argument("--invoke", "-i", nargs="+", metavar="F", help="call export F with ARGS (else run the WASI command)")
    @argument("--timeout", type=float, metavar="S", help="wall-clock limit in seconds (0: none)")
    @argument("--fuel", type=int, metavar="N", help="instruction budget (engines with fuel)")
    @argument("--max-memory", type=float, metavar="MIB", help="linear memory cap in MiB")
    @argument("--argv", nargs="+", metavar="ARG", help="guest argv for a WASI command (or: -- ARG ...)")
    @argument("--env", action="append", metavar="K=V", help="guest environment variable (repeatable)")
    @argument("--quiet", "-q", action="store_true", help="do not show the module summary")
    @cell_magic
    def wasm(self, line: str, cell: str) -> None:
        """Compile the cell to WebAssembly, bind the Module to --name, show it, and optionally run it.

        Examples::

            %%wasm wat --name add --run wasmtime --invoke add 2 3
            (module (func (export "add") (param i32 i32) (result i32)
              local.get 0 local.get 1 i32.add))

            %%wasm c --kind command --run all -- first second
            #include <stdio.h>
            int main(int argc, char **argv) { printf("%d args\\n", argc); return 0; }
        """
        line, guest_argv = _split_guest_argv(line)
        args = parse_argstring(self.wasm, line)
        from ..build import compile
        from ..toolchains import normalize_lang

        with user_errors():
            lang = normalize_lang(args.lang)
        name = args.name or f"{lang}_module"
        if not name.isidentifier():
            raise usage_error(f"--name {name!r} is not a valid Python identifier")
        invoke, values = self._invocation(args.invoke)
        if invoke is not None and args.run is None:
            raise usage_error("--invoke needs --run RUNTIMES (e.g. --run wasmtime)")
        kind = args.kind or ("command" if args.run is not None and invoke is None else "library")
        run_options = self._run_options(args, guest_argv)
        names = self._resolve_runtimes(args.run) if args.run is not None else []
        flags = tuple(shlex.split(args.flags)) if args.flags else ()
        if not cell.strip():
            raise usage_error(f"the cell is empty: write {lang} source under %%wasm {args.lang}")

        with user_errors():
            module = compile(
                cell,
                lang,
                kind=kind,
                opt=args.opt or self.opt,
                strip=self.strip,
                flags=flags,
                name=name,
                toolchain=args.toolchain,
                use_cache=self.use_cache,
            )
        if self.shell is not None:
            self.shell.user_ns[name] = module  # only now: a failed compile leaves NAME as it was
        if self.show_module and not args.quiet:
            display(module)
        if args.run is None:
            return
        if len(names) == 1:
            with user_errors():
                result = module.run(names[0], invoke, values, check=False, **run_options)
            self._show_run(result, values)
            failed = not result.ok
        else:
            comparison = self._compare(module, invoke, values, names, 1, run_options)
            from .display import ComparisonView

            display(ComparisonView(comparison, self.show_timings))
            failed = not all(r.ok for r in comparison.results)
        if failed and self.raise_on_error:
            raise usage_error(f"{name}: the run did not succeed (WasmMagics.raise_on_error is on)")

    # line magics -----------------------------------------------------------------------------------------
    @line_magic
    def wasm_runtimes(self, line: str = "") -> Any:
        """Show every runtime: available here or not, version, capabilities, variants, how to install it."""
        import pandas as pd

        from ..runtimes import list_runtimes

        rows = [
            {
                "runtime": r.name,
                "available": r.available,
                "version": r.version,
                "capabilities": ", ".join(r.capabilities),
                "variants": ", ".join(r.variants),
                "note": "" if r.available else f"{r.reason} (install: {r.install})",
            }
            for r in list_runtimes()
        ]
        display(pd.DataFrame(rows))

    @line_magic
    def wasm_toolchains(self, line: str = "") -> Any:
        """Show every language: compiler installed or not, version, kinds, how to install it."""
        import pandas as pd

        from ..toolchains import ALIASES, list_toolchains

        aliases: dict[str, list[str]] = {}
        for alias, lang in ALIASES.items():
            aliases.setdefault(lang, []).append(alias)
        rows = [
            {
                "lang": t.lang,
                "toolchain": t.toolchain,
                "aliases": ", ".join(aliases.get(t.lang, [])),
                "available": t.available,
                "version": t.version,
                "kinds": ", ".join(t.kinds),
                "note": "" if t.available else f"{t.reason} (install: {t.install})",
            }
            for t in list_toolchains()
        ]
        display(pd.DataFrame(rows))

    @magic_arguments()
    @argument("name", help="a Module in the namespace (or a .wasm path)")
    @argument("--json", action="store_true", help="show the summary() dict as JSON")
    @argument("--sizes", action="store_true", help="add a size report (stripped, wasm-opt -Oz, gzip, brotli)")
    @argument("--top", type=int, default=10, help="largest functions to list (text view)")
    @line_magic
    def wasm_inspect(self, line: str) -> None:
        """Show a module: imports, exports with types, sections, the largest functions."""
        args = parse_argstring(self.wasm_inspect, line)
        module = self._module(args.name)
        import json

        from .display import jsonable, module_bundle, module_html, module_text

        with user_errors():
            summary = module.summary()
            if args.sizes:
                summary["size_report"] = module.size_report()
        if args.json:
            data = jsonable(summary)
            display({"application/json": data, "text/plain": json.dumps(data, indent=2)}, raw=True)
            return
        html = module_html(module, summary)
        text = module_text(module, summary, args.top)
        if args.sizes:
            report = summary["size_report"]
            sizes = ", ".join(f"{k} {v:,}" if v is not None else f"{k} n/a" for k, v in report.items())
            text += f"\nsizes: {sizes}"
            html += f"<div style='font-size:12px'>sizes in bytes: {escape(sizes)}</div>"

        display({"text/plain": text, "text/html": html, **module_bundle(module)}, raw=True)

    @magic_arguments()
    @argument("name", help="a Module in the namespace (or a .wasm path)")
    @argument("--invoke", "-i", nargs="+", metavar="F", help="call export F with ARGS (else run the WASI command)")
    @argument("--runtimes", "-r", help="comma-separated runtimes, or 'all' (default: WasmMagics.default_runtimes)")
    @argument("--repeat", type=int, help="runs per runtime (default: WasmMagics.repeat)")
    @argument("--timeout", type=float, metavar="S", help="wall-clock limit in seconds")
    @argument("--fuel", type=int, metavar="N", help="instruction budget (engines with fuel)")
    @argument("--max-memory", type=float, metavar="MIB", help="linear memory cap in MiB")
    @argument("--argv", nargs="+", metavar="ARG", help="guest argv for a WASI command (or: -- ARG ...)")
    @argument("--env", action="append", metavar="K=V", help="guest environment variable (repeatable)")
    @argument("--no-plot", action="store_true", help="table only")
    @argument("--out", "-o", metavar="VAR", help="also bind the Comparison to VAR")
    @line_magic
    def wasm_compare(self, line: str) -> None:
        """Run the same call on several runtimes: a table (result, agreement, median phase times) and a figure."""
        line, guest_argv = _split_guest_argv(line)
        args = parse_argstring(self.wasm_compare, line)
        module = self._module(args.name)
        invoke, values = self._invocation(args.invoke)
        repeat = args.repeat if args.repeat is not None else self.repeat
        if repeat < 1:
            raise usage_error("--repeat must be at least 1")
        names = self._resolve_runtimes(args.runtimes)
        comparison = self._compare(module, invoke, values, names, repeat, self._run_options(args, guest_argv))
        if args.out:
            if not args.out.isidentifier():
                raise usage_error(f"--out {args.out!r} is not a valid Python identifier")
            if self.shell is not None:
                self.shell.user_ns[args.out] = comparison
        from .display import ComparisonView, figure_bundle

        display(ComparisonView(comparison, self.show_timings))
        if self.show_plot and not args.no_plot and comparison.results:
            display(figure_bundle(comparison.plot()), raw=True)

    @line_magic
    def wasm_bench(self, line: str) -> None:
        """`%wasm_bench [startup|throughput|suite|size|sweep] [--runtimes a,b] [--kernels k1,k2] [--samples N]
        [--quick]`: the benchmark suite of `wasmlab.bench` on this machine's engines.

        `%wasm_bench NAME [--invoke F ARGS...] [startup|throughput] [--runtimes a,b] [--native|--no-native]
        [--batch auto|guest|host] [--samples N] [--quick]`: your own module (a Module in the namespace, or a
        .wasm or source path): its startup phases (the first call of F, or the whole WASI command), or the time
        per call of F(ARGS) against the same source built natively (throughput, the default with --invoke).

        Shows the summary table and the figure; the result is kept in `_wasm_bench`."""
        from .. import bench

        parts = {"startup": bench.startup, "throughput": bench.throughput, "suite": bench.suite,
                 "size": bench.size_vs_speed, "sweep": bench.sweep}  # fmt: skip
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise usage_error(f"cannot parse the options: {exc}") from None
        what = words.pop(0) if words and words[0] in parts else None
        target = words.pop(0) if words and not words[0].startswith("-") and words[0] not in parts else None
        options: dict[str, Any] = {"progress": False}
        invoke: list[str] = []
        while words:
            flag = words.pop(0)
            if flag in parts and what is None:
                what = flag
            elif flag == "--quick":
                options["quick"] = True
            elif flag in ("--native", "--no-native"):
                options["native"] = flag == "--native"
            elif flag == "--invoke" and words:
                while words and not words[0].startswith("--") and words[0] not in parts:
                    invoke.append(words.pop(0))
            elif flag in ("--runtimes", "--kernels", "--samples", "--batch") and words:
                value = words.pop(0)
                if flag == "--samples":
                    if not value.isdigit():
                        raise usage_error(f"--samples takes a number, not {value!r}")
                    options["samples"] = int(value)
                else:
                    options[flag[2:]] = value if flag == "--batch" else value.split(",")
            else:
                raise usage_error(f"unknown or incomplete option {flag!r}: see %wasm_bench?")
        if target is None:
            what = what or "throughput"
            if invoke or {"native", "batch"} & set(options):
                raise usage_error("--invoke, --native and --batch measure your own module: %wasm_bench NAME ...")
            if what == "size":
                options.pop("kernels", None)
                options.pop("runtimes", None)
            run = lambda: parts[what](**options)  # noqa: E731
        else:
            what = what or ("throughput" if invoke else "startup")
            if what not in ("startup", "throughput"):
                raise usage_error(f"{what} runs the lab's own code: measure {target} with startup or throughput")
            if "kernels" in options:
                raise usage_error("--kernels is for the kernel suite, not for your module")
            module = self._bench_target(target, parts)
            name, values = (invoke[0], tuple(parse_value(a) for a in invoke[1:])) if invoke else (None, ())
            if what == "startup":
                options.pop("native", None)
                options.pop("batch", None)
                run = lambda: bench.startup(module=module, invoke=name, args=values, **options)  # noqa: E731
            elif name is None:
                raise usage_error(f"throughput times one call: %wasm_bench {target} --invoke F ARGS throughput")
            else:
                run = lambda: bench.throughput(module, name, values, **options)  # noqa: E731
        with user_errors():
            result = run()
        from .display import figure_bundle

        if self.shell is not None:
            self.shell.user_ns["_wasm_bench"] = result
        display(result.summary)
        display(figure_bundle(result.figure()), raw=True)

    def _bench_target(self, name: str, parts: dict[str, Any]) -> Any:
        """The module `%wasm_bench` measures: a Module in the namespace, or a path to a module or source file."""
        from pathlib import Path

        ns = self.shell.user_ns if self.shell is not None else {}
        if name in ns or name.endswith((".wasm", ".wat")):
            return self._module(name)
        if Path(name).is_file():
            return name
        raise usage_error(
            f"unknown benchmark {name!r}: use one of {', '.join(parts)}, or name a Module (or a .wasm or source file)"
        )


_loaded: dict[int, WasmMagics] = {}


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext wasmlab`: register the magics and the rich displays (idempotent)."""
    from . import display as rich

    if id(ipython) not in _loaded:
        magics = WasmMagics(shell=ipython)
        ipython.register_magics(magics)
        _loaded[id(ipython)] = magics
    rich.register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext wasmlab`: remove the magics and the rich displays."""
    from . import display as rich

    magics = _loaded.pop(id(ipython), None)
    if magics is not None:
        for kind in ("line", "cell"):
            for name in magics.magics[kind]:
                ipython.magics_manager.magics[kind].pop(name, None)
        registry = ipython.magics_manager.registry
        for key, value in list(registry.items()):
            if value is magics:
                registry.pop(key)
        with contextlib.suppress(ValueError):
            ipython.configurables.remove(magics)
    rich.unregister(ipython)
