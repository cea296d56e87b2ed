"""`Module`: the bytes of a Wasm module or component, what is inside them, and where they came from.

A Module knows its bytes and inspects them (`wasmlab.binary`, `wasm-tools`); it does not compile source (that is
`wasmlab.build`, which also turns "a path, bytes or source" into a Module) and it does not run (that is
`wasmlab.runtimes`). `run`, `instantiate` and `validate` are conveniences that hand the module to the runtime
registry: `m.run("node", "fib", (20,))` is `wasmlab.runtimes.run(m, "node", RunOptions(...))`. They are the one
place this layer names the runtimes (the import-layer contract in pyproject.toml allows exactly that).
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import binary
from .errors import UsageError

if TYPE_CHECKING:
    from .runtimes import Instance, RunResult


_WIT_ITEM = re.compile(r"^  (import|export) (.+)$", re.MULTILINE)
_WIT_LOCAL = re.compile(r"^([\w-]+): (.+)$")
BROTLI_MAX_SIZE = 4 << 20  # size_report: brotli quality 11 up to this size, 9 above
WAT_SUFFIXES = (".wat", ".wast")  # files of WAT text (`wasmlab.build` compiles them)


@dataclass(frozen=True)
class Provenance:
    """How a module was made: by a compile (language, options, toolchain) or loaded from a file or bytes."""

    origin: str  # "compile", "file" or "bytes"
    source_name: str = ""
    lang: str = ""
    kind: str = ""
    opt: str = ""
    strip: bool = False
    lto: bool = False
    toolchain: str = ""
    compile_ms: float = 0.0
    cached: bool = False
    cache_key: str = ""


class Module:
    """A Wasm module or component. Inspection is lazy and exact (see `wasmlab.binary`)."""

    def __init__(
        self, data: bytes, provenance: Provenance | None = None, name: str = "", source: str | None = None
    ) -> None:
        self.bytes = bytes(data)
        self.provenance = provenance or Provenance("bytes")
        self.name = name or self.provenance.source_name or "module"
        self.source = source  # the text `compile()` built it from (a native build of the same code needs it)

    # identity -------------------------------------------------------------------------------------------
    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.bytes).hexdigest()

    @property
    def size(self) -> int:
        return len(self.bytes)

    def __repr__(self) -> str:
        origin = f"{self.provenance.lang} {self.provenance.kind}" if self.provenance.lang else self.provenance.origin
        return f"<wasmlab.Module {self.name!r} {self.kind} {self.size:,} bytes ({origin}) sha256={self.sha256[:12]}>"

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.bytes)
        return path

    # inspection -----------------------------------------------------------------------------------------
    @cached_property
    def parsed(self) -> binary.ParsedModule:
        """The decoded structure; raises InvalidModule for malformed bytes."""
        return binary.parse(self.bytes)

    @property
    def kind(self) -> str:
        """ "module" or "component"."""
        return self.parsed.kind

    @property
    def is_component(self) -> bool:
        return self.kind == "component"

    @property
    def imports(self) -> tuple[binary.Import, ...]:
        return self.parsed.imports

    @property
    def exports(self) -> tuple[binary.Export, ...]:
        return self.parsed.exports

    @property
    def memories(self) -> tuple[binary.MemoryType, ...]:
        """Memories defined by the module (imported ones are in `imports`)."""
        return self.parsed.memories

    @property
    def tables(self) -> tuple[binary.TableType, ...]:
        return self.parsed.tables

    @property
    def globals(self) -> tuple[binary.GlobalType, ...]:
        return self.parsed.globals

    @property
    def sections(self) -> tuple[binary.Section, ...]:
        return self.parsed.sections

    @property
    def custom_sections(self) -> tuple[binary.Section, ...]:
        return self.parsed.custom_sections

    @property
    def functions(self) -> tuple[binary.Function, ...]:
        return self.parsed.functions

    @property
    def start(self) -> int | None:
        return self.parsed.start

    def export_names(self, kind: str | None = "func") -> list[str]:
        return [e.name for e in self.exports if kind is None or e.kind == kind]

    def func_type(self, name: str) -> binary.FuncType:
        """The signature of exported function `name`."""
        for export in self.exports:
            if export.name == name and isinstance(export.type, binary.FuncType):
                return export.type
        exported = ", ".join(self.export_names()) or "none"
        raise UsageError(f"{self.name} exports no function {name!r}: it exports {exported}")

    @property
    def is_command(self) -> bool:
        """A WASI command: exports `_start`."""
        return "_start" in self.export_names()

    @property
    def wasi_imports(self) -> list[binary.Import]:
        return [i for i in self.imports if i.module.startswith("wasi")]

    def top_functions(self, n: int = 10) -> list[binary.Function]:
        """The `n` largest function bodies (where the bytes go)."""
        return sorted(self.functions, key=lambda f: f.size, reverse=True)[:n]

    # running, through the runtime registry ---------------------------------------------------------------
    def run(
        self,
        runtime: str = "wasmtime",
        invoke: str | None = None,
        args: tuple[Any, ...] | list[Any] = (),
        *,
        check: bool = True,
        **options: Any,
    ) -> RunResult:
        """Run once on `runtime`: call export `invoke` with `args`, or run a WASI command (`invoke=None`) with
        `argv`, `env`, `stdin`, `dirs`. Limits: `fuel`, `timeout` (s), `max_memory` (bytes). Returns a RunResult
        (value, stdout, exit code, timings per phase); a trap or exceeded limit raises unless `check=False`.
        A convenience for `wasmlab.runtimes.run`."""
        from .runtimes import RunOptions, run

        return run(self, runtime, RunOptions(invoke=invoke, args=tuple(args), **_run_options(options)), check)

    def instantiate(self, runtime: str = "wasmtime", **options: Any) -> Instance:
        """A live instance on `runtime` to call many times (state persists) and whose memory you can read.
        A convenience for `get_runtime(runtime).instantiate`."""
        from .runtimes import RunOptions, get_runtime

        return get_runtime(runtime).instantiate(self, RunOptions(**_run_options(options)))

    def validate(self, runtime: str = "wasmtime") -> None:
        """Full validation (types of every instruction), not just structure, by `runtime`'s validator; raises
        InvalidModule. A convenience for `wasmlab.runtimes.validate`."""
        from .runtimes import validate

        validate(self, runtime)

    def wit(self) -> str:
        """The WIT of a component's imports and exports (via `wasm-tools component wit`)."""
        if not self.is_component:
            raise UsageError(f"{self.name} is a core module, not a component: it has no WIT")
        from .tools import wasm_tools

        return wasm_tools("component", "wit", data=self.bytes).decode()

    def component_items(self) -> dict[str, list[dict[str, str]]]:
        """A component's world-level imports and exports, read from its WIT: `{"imports": [...], "exports": [...]}`
        with `name`, `kind` ("interface" or "func") and `type`."""
        items: dict[str, list[dict[str, str]]] = {"imports": [], "exports": []}
        for match in _WIT_ITEM.finditer(self.wit()):
            direction, rest = match.group(1), match.group(2).rstrip(";").strip()
            local = _WIT_LOCAL.match(rest)  # `name: func(...)` or `name: interface {` (a world-local item)
            if local:
                name, declared = local.group(1), local.group(2).strip()
                kind = "func" if declared.startswith("func") else "interface"
                declared = "interface" if declared.startswith("interface") else declared
            else:  # a package interface such as `wasi:cli/environment@0.2.0`
                name, kind, declared = rest, "interface", rest
            items[f"{direction}s"].append({"name": name, "kind": kind, "type": declared})
        return items

    def size_report(self, brotli_quality: int | None = None) -> dict[str, int | None]:
        """Sizes in bytes: raw, stripped of custom sections, after `wasm-opt -Oz` (None without binaryen),
        gzip -9 and brotli of the raw bytes. Brotli quality: `brotli_quality`, else 11 (what CDNs precompress
        static assets with) up to 4 MiB and 9 above (11 takes over a minute on a 19 MB component, 9 a few
        seconds for a result ~10% larger)."""
        import brotli

        from .tools import strip_all, wasm_opt

        quality = brotli_quality if brotli_quality is not None else (11 if self.size <= BROTLI_MAX_SIZE else 9)
        if not 0 <= quality <= 11:
            raise UsageError(f"brotli_quality={quality} is out of range: use 0 to 11")
        optimised = None if self.is_component else wasm_opt(self.bytes, "-Oz", "--strip-debug")
        return {
            "raw": self.size,
            "stripped": len(strip_all(self.bytes)),
            "wasm_opt_oz": len(optimised) if optimised is not None else None,
            "gzip": len(gzip.compress(self.bytes, 9, mtime=0)),
            "brotli": len(brotli.compress(self.bytes, quality=quality)),
        }

    def summary(self) -> dict[str, Any]:
        """Everything `wasmlab inspect --json` prints: plain JSON-ready data."""
        p = self.parsed
        names = p.function_names
        if p.kind == "component":
            items = self.component_items()
            imports = [{"module": "", **item} for item in items["imports"]]
            exports = items["exports"]
        else:
            imports = [{"module": i.module, "name": i.name, "kind": i.kind, "type": str(i.type)} for i in p.imports]
            exports = [{"name": e.name, "kind": e.kind, "type": str(e.type)} for e in p.exports]
        return {
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "kind": p.kind,
            "imports": imports,
            "exports": exports,
            "memories": [{"min": m.limits.min, "max": m.limits.max, "shared": m.limits.shared} for m in p.memories],
            "tables": [{"element": t.element, "min": t.limits.min, "max": t.limits.max} for t in p.tables],
            "globals": [{"type": g.valtype, "mutable": g.mutable} for g in p.globals],
            "start": p.start,
            "data_segments": p.data_segments,
            "element_segments": p.element_segments,
            "sections": [{"name": s.name, "offset": s.offset, "size": s.size} for s in p.sections],
            "custom_sections": [{"name": s.name.removeprefix("custom:"), "size": s.size} for s in p.custom_sections],
            "functions": [
                {"index": f.index, "name": f.name or names.get(f.index), "size": f.size} for f in p.functions
            ],
            "producers": {k: [list(x) for x in v] for k, v in p.producers.items()},
            "has_dwarf": p.has_dwarf,
            "provenance": asdict(self.provenance),
        }


def _run_options(options: dict[str, Any]) -> dict[str, Any]:
    for key in ("argv", "args"):
        if key in options and isinstance(options[key], (list, str)):
            options[key] = (options[key],) if isinstance(options[key], str) else tuple(options[key])
    if isinstance(options.get("stdin"), str):
        options["stdin"] = options["stdin"].encode()
    return options


def load(source: str | Path | bytes | bytearray | memoryview, *, name: str = "", validate: bool = True) -> Module:
    """A `Module` from bytes or a binary .wasm file. Parses at once, so malformed input raises InvalidModule here;
    `validate=True` also type-checks every function body. (`wasmlab.load` also compiles WAT files.)"""
    if isinstance(source, (bytes, bytearray, memoryview)):
        module = Module(bytes(source), Provenance("bytes"), name)
    else:
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
        if path.suffix in WAT_SUFFIXES:
            raise UsageError(f"{path} is WAT text: wasmlab.load or wasmlab.compile compiles it")
        module = Module(path.read_bytes(), Provenance("file", source_name=str(path)), name or path.name)
    module.parsed  # noqa: B018 (parse now: malformed input fails here, not later)
    if validate:
        module.validate()
    return module
