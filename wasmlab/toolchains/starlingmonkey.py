"""JavaScript -> Wasm component with StarlingMonkey (`toolchain="starlingmonkey"`, the default for javascript):
npm `@bytecodealliance/componentize-js` (in tools/npm) embeds the snippet in SpiderMonkey, the engine Fastly's
JavaScript runs on. A ~12 MB component in ~40 s (cached like every build; wasmtime compiles it in ~24 s once,
then its compiled-code cache serves it).

* ``kind="library"``: the exported functions (see `javascript`) become a generated world
  ``wasmlab:snippet/library`` with one f64 function per export, kebab-case (``addTwo`` -> ``add-two``; the
  JavaScript name must be the camelCase of its WIT name, as componentize-js maps them). With ``options.wit``
  (and ``options.world``) the world is the user's and the snippet exports what componentize-js expects for it.
  Top-level code runs at build time (componentize-js snapshots the initialised engine with Wizer).
* ``kind="command"``: the snippet is the body of ``wasi:cli/run`` (world ``wasmlab:snippet/command``), so its
  top-level code runs each time the component runs, ``console.log`` writing to stdout; an uncaught exception
  prints to stderr and makes ``run`` fail (exit status 1). No ``import``/``export`` statements in a command.

The build disables the wasi:http features (``-d http fetch-event``), so components import only WASI CLI
interfaces (stdio, clocks, random) and run wherever WASI preview 2 does. Syntax errors are reported with the
snippet's line by componentize-js's own parser (oxc), through `componentize_js.mjs`.
"""

from __future__ import annotations

import json
import re
import shutil
from functools import cache
from pathlib import Path

from ..errors import CompileError, UsageError
from .base import CompileOptions, Toolchain, npm_package, run_tool
from .javascript import LANG, JsExport, derive_exports, js_error, user_error
from .worlds import WIT_DIR, wit_name

GLUE_REVISION = "1"  # bump when the generated wrapper or world changes what a build produces
PACKAGE = "@bytecodealliance/componentize-js"
DRIVER = Path(__file__).with_name("componentize_js.mjs")
DISABLED = ("http", "fetch-event")
WORLD_PACKAGE = "wasmlab:snippet"
_PACKAGE_HEADER = re.compile(r"^\s*package\s+[^\s;{]+\s*;", re.MULTILINE)
# A command: the snippet becomes the body of run(), its first line on the wrapper's first line (lines unchanged).
COMMAND_HEAD = "export const run = { run() { try { "
COMMAND_TAIL = (
    "\n} catch (e) { console.error(e instanceof Error ? `${e.name}: ${e.message}` : String(e)); throw e } } };\n"
)


def camel(wit: str) -> str:
    first, *rest = wit.split("-")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


class StarlingMonkeyToolchain(Toolchain):
    lang = LANG
    name = "starlingmonkey"
    extensions = (".js", ".mjs")
    install = "npm install --prefix tools/npm (@bytecodealliance/componentize-js): make setup does it"
    produces_component = True

    def unavailable_reason(self) -> str | None:
        if not shutil.which("node"):
            return "node is not installed (apt-get install nodejs)"
        if npm_package(PACKAGE) is None:
            return f"the npm package {PACKAGE} is not installed"
        return None

    @cache  # noqa: B019 (one toolchain object per process)
    def version(self) -> str:
        meta = json.loads((self.found(npm_package(PACKAGE)) / "package.json").read_text())
        return f"componentize-js {meta.get('version', '?')} (wasmlab glue {GLUE_REVISION})"

    def build(self, source: str, options: CompileOptions, workdir: Path, filename: str) -> bytes:
        package = npm_package(PACKAGE)
        if package is None:
            raise CompileError(f"{LANG}: {PACKAGE} is not installed; install: {self.install}", lang=LANG)
        if options.kind == "command" and (options.wit is not None or options.world is not None):
            raise UsageError("javascript commands use wasmlab's wasi:cli/run world: wit/world apply to kind='library'")
        witdir = workdir / "wit"
        shutil.copytree(WIT_DIR / "deps", witdir / "deps")
        if options.kind == "command":
            statement = re.search(r"^[ \t]*(import|export)\b", source, re.MULTILINE)
            if statement:
                line = source.count("\n", 0, statement.start()) + 1
                raise user_error(filename, line, "a command's code runs inside wasi:cli/run: no import or export "
                                 "statements (use kind='library' to export functions)")
            shutil.copyfile(WIT_DIR / "command.wit", witdir / "command.wit")
            code, world = COMMAND_HEAD + source + COMMAND_TAIL, "command"
        elif options.wit is not None:
            (witdir / "world.wit").write_text(options.wit, encoding="utf-8")
            if not _PACKAGE_HEADER.search(options.wit):
                (witdir / "package.wit").write_text(f"package {WORLD_PACKAGE};\n", encoding="utf-8")
            code, world = source, options.world or ""
        else:
            world = options.world or "library"
            (witdir / "library.wit").write_text(library_wit(world, derive_exports(source, filename), filename))
            code = source
        (workdir / filename).write_text(code, encoding="utf-8")
        cmd = ["node", str(DRIVER), str(package.parent.parent), str(workdir), filename, "wit", world, "out.wasm"]
        try:
            run_tool([*cmd, *DISABLED, *options.flags], lang=LANG, workdir=workdir, timeout=options.timeout)
        except CompileError as exc:
            if not exc.diagnostics:
                raise
            shift = len(COMMAND_HEAD) if options.kind == "command" else 0
            raise js_error(exc.diagnostics, filename, shift) from None
        return (workdir / "out.wasm").read_bytes()


def library_wit(world: str, exports: list[JsExport], filename: str) -> str:
    """The world of a library: one `f64` function per exported JavaScript function."""
    lines = [f"package {WORLD_PACKAGE};", "", f"world {world} {{"]
    for exp in exports:
        name = wit_name(exp.name)
        if name is None or camel(name) != exp.name:
            hint = f" (e.g. {camel(name)})" if name else ""
            raise user_error(filename, exp.line, f"cannot export {exp.name}(): componentize-js needs a camelCase name "
                             f"that maps to a kebab-case WIT name{hint}; or pass a WIT world (wit=...)")
        params = ", ".join(f"p{i + 1}: f64" for i in range(exp.arity))
        lines.append(f"  export {name}: func({params}) -> f64;")
    return "\n".join([*lines, "}", ""])
