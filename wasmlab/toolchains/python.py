"""Python -> Wasm component with componentize-py (an ~18 MB component in ~8-17 s; the runtime is CPython 3.14).

Two kinds of snippet:

* ``kind="library"``: plain annotated functions. Every public (no leading ``_``) top-level ``def`` whose
  parameters and return are all annotated becomes an export of a generated world ``wasmlab:snippet/library``::

      def fib(n: int) -> int:          # -> export fib: func(n: s64) -> s64
          ...

  Types: ``int`` s64, ``float`` f64, ``str`` string, ``bool`` bool, ``bytes`` list<u8>, ``list[T]``,
  ``tuple[A, B]``, ``T | None`` / ``Optional[T]`` option<T>; ``-> None`` (or no result) for no result.
  Names become kebab-case (``fib_fast`` -> ``fib-fast``). Helpers: leave them unannotated or prefix them with ``_``.
  With ``options.wit`` (WIT text, ``options.world`` optional) the world is the user's instead, and the snippet
  follows componentize-py's convention: ``class WitWorld`` with a method per world-level export, one class per
  exported interface (e.g. ``class Run`` for ``wasi:cli/run``). The snippet's top-level code runs at build time
  (componentize-py snapshots the initialised interpreter).

* ``kind="command"``: an ordinary script (top-level code, ``print``). It is compiled at build time and run by
  ``wasi:cli/run`` (world ``wasmlab:snippet/command``, WIT bundled in ``toolchains/wit``) each time the component
  runs, as ``__main__``; ``sys.exit(n)`` or an uncaught exception make ``run`` return an error (exit status 1).

Only modules imported while the component is built exist at run time (the standard library is not on the
component's filesystem), so the snippet's ``import`` statements, wherever they are, are imported at build time.

Errors are reported in the user's terms: a SyntaxError, an exception raised by library top-level code, a missing
``WitWorld`` method or a WIT error name the snippet's (or WIT file's) line, never the generated glue's.
The build is hermetic: only the snippet and the standard library, never the host's site-packages.
"""

from __future__ import annotations

import ast
import keyword
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import CompileError, UsageError
from .base import (
    PYTHON,
    CompileOptions,
    Toolchain,
    find_program,
    python_module_available,
    run_tool,
    venv_bin,
)
from .worlds import WIT_DIR, WIT_NAME, wit_name

LANG = "python"
GLUE_REVISION = "1"  # bump when the generated glue changes what a build produces (it is part of version())
APP_MODULE = "wasmlab_app"  # the module componentize-py wraps: generated glue that loads the snippet
APP_DIR = ".wasmlab-app"  # under the workdir: the component's Python path (the glue only)
WORLD_PACKAGE = "wasmlab:snippet"
MARK_BEGIN = "@@wasmlab-python-error"
MARK_END = "@@end-wasmlab-python-error@@"
NO_RUST_BACKTRACE = {"RUST_BACKTRACE": "0", "RUST_LIB_BACKTRACE": "0"}  # keep errors short
NEWER_SYNTAX = "compiles with the component's Python but not with the one building it"

_WIT_SCALARS = {"int": "s64", "float": "f64", "str": "string", "bool": "bool", "bytes": "list<u8>"}
_PACKAGE_HEADER = re.compile(r"^\s*package\s+[^\s;{]+\s*;", re.MULTILINE)
_SUPPORTED = "int, float, str, bool, bytes, list[T], tuple[A, B], T | None"


class PythonToolchain(Toolchain):
    lang = LANG
    extensions = (".py",)
    install = "pip install componentize-py"
    produces_component = True

    def unavailable_reason(self) -> str | None:
        if _command() is None:
            return "componentize-py is not installed in this Python environment nor on PATH"
        return None

    def version(self) -> str:
        version = _componentize_version()
        return f"{version} (wasmlab glue {GLUE_REVISION})" if version else ""

    def build(self, source: str, options: CompileOptions, workdir: Path, filename: str) -> bytes:
        command = _command()
        if command is None:
            raise CompileError(f"python: componentize-py is not installed; install: {self.install}", lang=LANG)
        if options.kind == "command" and (options.wit is not None or options.world is not None):
            raise UsageError("python commands use wasmlab's wasi:cli/command world: wit/world apply to kind='library'")
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        filename = Path(filename).name
        modname = Path(filename).stem
        (workdir / filename).write_text(source, encoding="utf-8")

        mode, world, exports = _write_world(source, options, workdir / "wit", filename)
        # The component's Python path holds the glue only (it embeds the snippet's text): a snippet named
        # json.py or types.py shadows nothing, and stale pyc files (written there by the guest) cannot survive.
        appdir = workdir / APP_DIR
        if appdir.exists():
            shutil.rmtree(appdir)
        appdir.mkdir()
        glue = _glue(mode, source=source, filename=filename, modname=modname, exports=exports)
        (appdir / f"{APP_MODULE}.py").write_text(glue, encoding="utf-8")
        # componentize-py adds $VIRTUAL_ENV's (else this Python's) site-packages to the component's path:
        # point it at an empty one so that builds depend on the snippet and the standard library only.
        venv = workdir / ".wasmlab-empty-venv"
        (venv / "lib" / "site-packages").mkdir(parents=True, exist_ok=True)
        output = f"{modname}.wasm"
        cmd = [*command, "-q", "-d", "wit", *(["-w", world] if world else [])]
        cmd += ["componentize", "-p", APP_DIR, *options.flags, APP_MODULE, "-o", output]
        env = {"VIRTUAL_ENV": str(venv), "PYTHONDONTWRITEBYTECODE": "1", **NO_RUST_BACKTRACE}
        try:
            run_tool(cmd, lang=LANG, workdir=workdir, timeout=options.timeout, env=env)
        except CompileError as exc:
            if not exc.diagnostics:  # could not start, or timed out
                raise
            raise explain_failure(exc.diagnostics, filename, mode) from None
        if mode == "check":  # the glue stops a check build before it completes
            raise CompileError(f"python: componentize-py built {filename} without the expected check", lang=LANG)
        return (workdir / output).read_bytes()


def _write_world(
    source: str, options: CompileOptions, witdir: Path, filename: str
) -> tuple[str, str | None, list[Export]]:
    """Write the WIT for this build under `witdir`; returns (glue mode, world to target, derived exports).

    Modes: "command" (bundled world), "explicit" (the user's WIT), "auto" (world derived from annotations),
    "check" (this Python cannot parse the snippet: the component's Python reports its syntax error)."""
    if witdir.exists():
        shutil.rmtree(witdir)
    shutil.copytree(WIT_DIR / "deps", witdir / "deps")
    if options.kind == "command":
        shutil.copyfile(WIT_DIR / "command.wit", witdir / "command.wit")
        return "command", f"{WORLD_PACKAGE}/command", []
    if options.wit is not None:
        (witdir / f"{Path(filename).stem}.wit").write_text(options.wit, encoding="utf-8")
        if not _PACKAGE_HEADER.search(options.wit):  # a bare world: give it a package, its lines unchanged
            (witdir / "package.wit").write_text(f"package {WORLD_PACKAGE};\n", encoding="utf-8")
        return "explicit", options.world, []
    world_name = options.world or "library"
    if not WIT_NAME.match(world_name):
        raise UsageError(f"python: world name {world_name!r} is not a WIT name (kebab-case, like 'library')")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename)
    except SyntaxError:  # this Python may be older than the component's (3.14): let that one judge
        mode, exports = "check", []
    else:
        mode, exports = "auto", derive_exports(tree, source, filename)
    (witdir / "library.wit").write_text(_world_wit(world_name, exports, filename), encoding="utf-8")
    return mode, f"{WORLD_PACKAGE}/{world_name}", exports


# --- the componentize-py program ----------------------------------------------------------------------------


@cache
def _command() -> tuple[str, ...] | None:
    """How to run componentize-py: this venv's script, else this Python's module, else a program on PATH."""
    script = venv_bin() / "componentize-py"
    if script.is_file():
        return (str(script),)
    if python_module_available("componentize_py"):
        # Drop '' (the working directory, which holds the snippet) from the path: a snippet named typing.py
        # must not shadow the host's modules.
        return (
            PYTHON, "-c",
            "import sys; sys.path[:] = [p for p in sys.path if p]; from componentize_py import script; "
            "sys.argv[0] = 'componentize-py'; sys.exit(script())",
        )
    program = find_program("componentize-py")
    return (program,) if program else None


@cache
def _componentize_version() -> str:
    if python_module_available("componentize_py"):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"componentize-py {version('componentize-py')}"
        except PackageNotFoundError:
            pass
    command = _command()
    if command is None:
        return ""
    try:
        out = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return "componentize-py (unknown version)"
    return out.strip() or "componentize-py (unknown version)"


# --- WIT derived from annotated functions -------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """One exported function: the snippet's name, the WIT name, the glue method name, WIT params and result."""

    py_name: str
    wit_name: str
    method: str
    params: tuple[tuple[str, str], ...]  # (wit param name, wit type)
    result: str | None
    line: int


class _Unsupported(Exception):
    pass


def _method_name(wit: str) -> str:
    """The Python method name componentize-py expects for a WIT name."""
    name = wit.replace("-", "_")
    return name + "_" if keyword.iskeyword(name) else name


def _wit_type(node: ast.expr | None, *, result: bool = False) -> str | None:
    """The WIT type of an annotation (None for `-> None`); _Unsupported for anything else."""
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        if result:
            return None
        raise _Unsupported("None")
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # "int": a string annotation
        text = node.value
        try:
            node = ast.parse(text, mode="eval").body
        except SyntaxError:
            raise _Unsupported(repr(text)) from None
        return _wit_type(node, result=result)
    name = _dotted_tail(node)
    if name in _WIT_SCALARS:
        return _WIT_SCALARS[name]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # T | None, None | T
        left, right = node.left, node.right
        if _is_none(right):
            return f"option<{_wit_type(left)}>"
        if _is_none(left):
            return f"option<{_wit_type(right)}>"
    if isinstance(node, ast.Subscript):
        base = _dotted_tail(node.value)
        args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base in ("list", "List") and len(args) == 1:
            return f"list<{_wit_type(args[0])}>"
        if base in ("tuple", "Tuple") and args and not any(isinstance(a, ast.Constant) for a in args):
            return f"tuple<{', '.join(_wit_type(a) or '' for a in args)}>"
        if base == "Optional" and len(args) == 1:
            return f"option<{_wit_type(args[0])}>"
        if base == "Union" and len(args) == 2 and any(_is_none(a) for a in args):
            return f"option<{_wit_type(next(a for a in args if not _is_none(a)))}>"
    raise _Unsupported(ast.unparse(node))


def _dotted_tail(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):  # typing.List, builtins.int
        return node.attr
    return None


def _is_none(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and node.value is None) or _dotted_tail(node) == "NoneType"


def derive_exports(tree: ast.Module, source: str, filename: str) -> list[Export]:
    """The exports of a library snippet: its public, fully annotated top-level functions.

    A public function that is fully annotated but cannot be exported (an unsupported type, *args, a name with
    no WIT form) is a CompileError naming its line: prefixing it with `_` keeps it private."""
    lines = source.splitlines()
    found: dict[str, ast.FunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            found[node.name] = node  # a later definition replaces an earlier one, as in Python
    exports: list[Export] = []
    by_wit: dict[str, str] = {}
    skipped: list[str] = []
    for func in found.values():
        args = func.args
        positional = [*args.posonlyargs, *args.args]
        if func.returns is None or any(a.annotation is None for a in positional):
            skipped.append(f"{func.name} (line {func.lineno}): not fully annotated")
            continue

        def fail(problem: str, func: ast.FunctionDef = func) -> CompileError:
            return _user_error(
                filename, func.lineno, lines,
                f"cannot export {func.name}(): {problem}. Supported types: {_SUPPORTED}. "
                f"Rename it _{func.name} to keep it private, or pass a WIT world (wit=...)",
            )

        if args.vararg or args.kwarg or args.kwonlyargs:
            raise fail("*args, **kwargs and keyword-only parameters have no WIT form")
        name = wit_name(func.name)
        if name is None:
            raise fail("its name has no kebab-case WIT form")
        if name in by_wit:
            raise fail(f"its WIT name {name!r} is also the name of {by_wit[name]}()")
        by_wit[name] = func.name
        params: list[tuple[str, str]] = []
        seen: set[str] = set()
        for i, arg in enumerate(positional):
            try:
                wit_type = _wit_type(arg.annotation)
            except _Unsupported as exc:
                raise fail(f"parameter {arg.arg!r} has type {exc}, which has no WIT equivalent") from None
            pname = wit_name(arg.arg) or f"arg{i}"
            if pname in seen:
                pname = f"arg{i}"
            seen.add(pname)
            params.append((pname, wit_type or ""))
        try:
            result = _wit_type(func.returns, result=True)
        except _Unsupported as exc:
            raise fail(f"its return type {exc} has no WIT equivalent") from None
        exports.append(Export(func.name, name, _method_name(name), tuple(params), result, func.lineno))
    if not exports:
        why = ("; skipped: " + ", ".join(skipped)) if skipped else ""
        raise CompileError(
            f"python compile error: {filename}: nothing to export: a library exports its annotated top-level "
            f"functions, e.g. `def fib(n: int) -> int:` (or pass a WIT world with wit=...){why}",
            diagnostics="\n".join(skipped),
            lang=LANG,
        )
    return exports


def _world_wit(world: str, exports: list[Export], filename: str) -> str:
    out = [
        f"// Generated by wasmlab from the annotated top-level functions of {filename}.",
        f"package {WORLD_PACKAGE};",
        "",
        f"world {world} {{",
    ]
    for exp in exports:
        params = ", ".join(f"%{name}: {wit_type}" for name, wit_type in exp.params)
        result = f" -> {exp.result}" if exp.result else ""
        out.append(f"  // {filename}:{exp.line}: {exp.py_name}")
        out.append(f"  export %{exp.wit_name}: func({params}){result};")
    out.append("}")
    return "\n".join(out) + "\n"


# --- the glue module componentize-py wraps ------------------------------------------------------------------

_GLUE_HEAD = '''\
# Generated by wasmlab: loads {filename} (the user's snippet) inside componentize-py. Not the user's code.
import builtins as _wl_builtins
import sys as _wl_sys
import traceback as _wl_traceback
import types as _wl_types

_WL_FILENAME = {filename!r}
_WL_MODNAME = {modname!r}
_WL_SOURCE = {source!r}


def _wl_user_tb(exc):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != _WL_FILENAME:
        tb = tb.tb_next
    return tb


def _wl_fail(exc, text=None, line=0):
    """At build time: report an error in the user's terms between markers, then stop the build."""
    if text is None:
        tb = _wl_user_tb(exc)
        text = "".join(_wl_traceback.format_exception(type(exc), exc, tb))
        if isinstance(exc, SyntaxError) and exc.filename == _WL_FILENAME:
            line = exc.lineno or 0
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == _WL_FILENAME:
                line = tb.tb_lineno
            tb = tb.tb_next
    _wl_sys.stderr.write(f"{mark_begin} line={{line}}@@\\n{{text.rstrip()}}\\n{mark_end}\\n")
    _wl_sys.stderr.flush()
    raise RuntimeError("wasmlab: the snippet failed to load (see above)")


def _wl_preload(code_source):
    """Import, at build time, every module the snippet imports anywhere: only those exist at run time."""
    import ast
    import importlib

    for node in ast.walk(ast.parse(code_source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module] + [f"{{node.module}}.{{a.name}}" for a in node.names if a.name != "*"]
        else:
            continue
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:
                pass


try:
    _WL_CODE = compile(_WL_SOURCE, _WL_FILENAME, "exec", dont_inherit=True)
except SyntaxError as _wl_exc:
    _wl_fail(_wl_exc)

import linecache as _wl_linecache

# Tracebacks at run time show the snippet's lines (mtime None: never checked against a file).
_wl_linecache.cache[_WL_FILENAME] = (len(_WL_SOURCE), None, _WL_SOURCE.splitlines(True), _WL_FILENAME)
'''

_GLUE_CHECK = '''
_wl_fail(None, _WL_FILENAME + " {newer}")
'''

_GLUE_LIBRARY = '''
_WL_MODULE = _wl_types.ModuleType(_WL_MODNAME)
_WL_MODULE.__file__ = _WL_FILENAME


def _wl_may_register(name):
    """`import snippet` finds the snippet, unless that would shadow another module (a snippet named json.py)."""
    import importlib.util

    if not name.isidentifier() or name in _wl_sys.modules:
        return False
    try:
        return importlib.util.find_spec(name) is None
    except Exception:
        return False


if _wl_may_register(_WL_MODNAME):
    _wl_sys.modules[_WL_MODNAME] = _WL_MODULE
try:
    exec(_WL_CODE, _WL_MODULE.__dict__)
except BaseException as _wl_exc:
    _wl_fail(_wl_exc)
_wl_preload(_WL_SOURCE)
'''

_GLUE_EXPLICIT = '''
globals().update({{k: v for k, v in vars(_WL_MODULE).items() if not k.startswith(("__", "_wl_", "_WL_"))}})


def _wl_check_exports():
    """Every export of the WIT world needs its method in the snippet: say which are missing, now."""
    import wit_world

    protocols = [("WitWorld", getattr(wit_world, "WitWorld", None))]
    try:
        import wit_world.exports as exported
    except ImportError:
        exported = None
    if exported is not None:
        for name, value in vars(exported).items():
            if isinstance(value, type) and value.__module__ == exported.__name__:
                protocols.append((name, value))
    problems = []
    line = 0
    for name, protocol in protocols:
        needed = sorted(getattr(protocol, "__abstractmethods__", ()) or ())
        if not needed:
            continue
        impl = vars(_WL_MODULE).get(name)
        if not isinstance(impl, type):
            methods = ", ".join(needed)
            problems.append(f"define `class {{name}}:` with method(s) {{methods}} (the WIT world exports them)")
            continue
        missing = [m for m in needed if not callable(getattr(impl, m, None))]
        if missing:
            problems.append(f"class {{name}} lacks method(s) {{', '.join(missing)}} (the WIT world exports them)")
            line = line or getattr(impl, "__firstlineno__", 0)
    if problems:
        _wl_fail(None, "; ".join(problems), line)


_wl_check_exports()
'''

_GLUE_AUTO_CLASS = '''

class WitWorld:
    """World-level exports: each calls the snippet's function of the same name."""
'''

_GLUE_AUTO_METHOD = '''
    def {method}(self{params}):
        return _WL_MODULE.{py_name}({args})
'''

_GLUE_COMMAND = '''
_wl_preload(_WL_SOURCE)

try:
    from componentize_py_types import Err as _WL_Err
except ImportError:  # componentize-py before 0.17
    from wit_world.types import Err as _WL_Err

# Warm up what formatting a traceback imports lazily: at run time nothing new can be imported.
for _wl_probe in ("_wl_undefined_name", "().no_such_attribute"):
    try:
        eval(_wl_probe)
    except Exception as _wl_exc:
        _wl_traceback.format_exception(type(_wl_exc), _wl_exc, _wl_exc.__traceback__)
del _wl_probe


def _wl_exit_status(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=_wl_sys.stderr)
    return 1


class Run:
    """wasi:cli/run: runs the snippet as __main__, like `python snippet.py`."""

    def run(self):
        module = _wl_types.ModuleType("__main__")
        module.__file__ = _WL_FILENAME
        module.__builtins__ = _wl_builtins
        saved = _wl_sys.modules.get("__main__")
        _wl_sys.modules["__main__"] = module
        status = 0
        try:
            exec(_WL_CODE, module.__dict__)
        except SystemExit as exc:
            status = _wl_exit_status(exc)
        except BaseException as exc:
            _wl_traceback.print_exception(type(exc), exc, _wl_user_tb(exc) or exc.__traceback__)
            status = 1
        finally:
            for stream in (_wl_sys.stdout, _wl_sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            if saved is None:
                _wl_sys.modules.pop("__main__", None)
            else:
                _wl_sys.modules["__main__"] = saved
        if status:
            raise _WL_Err(None)
'''


def _glue(mode: str, *, source: str, filename: str, modname: str, exports: list[Export]) -> str:
    """The app module: compiles the snippet under its own file name (so errors and tracebacks show its lines)."""
    text = _GLUE_HEAD.format(
        filename=filename, modname=modname, source=source, mark_begin=MARK_BEGIN, mark_end=MARK_END
    )
    if mode == "check":
        return text + _GLUE_CHECK.format(newer=NEWER_SYNTAX)
    if mode == "command":
        return text + _GLUE_COMMAND
    text += _GLUE_LIBRARY
    if mode == "explicit":
        return text + _GLUE_EXPLICIT.format()
    text += _GLUE_AUTO_CLASS
    for exp in exports:
        names = [f"p{i}" for i in range(len(exp.params))]
        text += _GLUE_AUTO_METHOD.format(
            method=exp.method, py_name=exp.py_name,
            params="".join(f", {n}" for n in names), args=", ".join(names),
        )
    return text


# --- turning componentize-py's failure into the user's error ------------------------------------------------

_MARKED = re.compile(re.escape(MARK_BEGIN) + r" line=(\d+)@@\n(.*?)\n" + re.escape(MARK_END), re.DOTALL)
_WIT_LOCATION = re.compile(r"-->\s*(\S+?:\d+:\d+)")


def explain_failure(output: str, filename: str, mode: str) -> CompileError:
    """A CompileError in the user's terms from componentize-py's output (already tidied by run_tool)."""
    marked = _MARKED.search(output)
    if marked:
        line, text = int(marked.group(1)), marked.group(2).strip("\n")
        if mode == "check" and NEWER_SYNTAX in text:
            return CompileError(
                f"python compile error: {filename} uses syntax newer than this Python "
                f"({sys.version_info.major}.{sys.version_info.minor}), so its exports cannot be derived: "
                "pass a WIT world (wit=...)",
                diagnostics=text, lang=LANG,
            )
        last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "error")
        where = f"{filename}:{line}: " if line else f"{filename}: "
        if not text.startswith(("Traceback", "  File")):  # a plain message: say where
            text = where + text
        return CompileError(f"python compile error: {where}{last}"[:500], diagnostics=text, lang=LANG)
    text = _strip_noise(output)
    location = _WIT_LOCATION.search(text)
    caused = [ln.strip() for ln in text.splitlines() if re.match(r"\s*\d+:\s", ln)]
    first = caused[-1] if caused else next((ln.strip() for ln in text.splitlines() if ln.strip()), "failed")
    first = re.sub(r"^\d+:\s*", "", first)
    where = f" ({location.group(1)})" if location else ""
    return CompileError(f"python compile error: {first}{where}"[:500], diagnostics=text, lang=LANG)


def _strip_noise(output: str) -> str:
    """componentize-py's error without the host traceback of its launcher and the Rust backtrace."""
    text = output
    start = text.find("AssertionError: ")
    if start >= 0 and text.lstrip().startswith("Traceback"):
        text = text[start + len("AssertionError: "):]
    cut = text.find("\nStack backtrace:")
    if cut >= 0:
        text = text[:cut]
    return text.strip("\n") + "\n"


def _user_error(filename: str, line: int, lines: list[str], problem: str) -> CompileError:
    code = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    diagnostics = f'  File "{filename}", line {line}\n    {code}\n{problem}\n'
    return CompileError(f"python compile error: {filename}:{line}: {problem}", diagnostics=diagnostics, lang=LANG)
