"""AssemblyScript -> Wasm with the npm `assemblyscript` compiler (asc) and `@assemblyscript/wasi-shim`.

A library exports its `export function`s and imports nothing (`abort` becomes a trap); a command routes
`console.log`, `process` and `Date` to WASI through the shim and runs its top-level code from `_start`.
"""

from __future__ import annotations

import os
import shutil
from functools import cache
from pathlib import Path

from .base import CompileOptions, Toolchain, command_output, run_tool

SHIM_GLOBALS = ("abort", "trace", "seed", "console", "crypto", "performance", "process", "Date")


@cache
def node_modules() -> Path | None:
    """Where `assemblyscript` is installed: $WASMLAB_NODE_MODULES, the project's tools/npm, or npm's global."""
    candidates = [os.environ.get("WASMLAB_NODE_MODULES", "")]
    candidates.append(str(Path(__file__).resolve().parents[2] / "tools" / "npm" / "node_modules"))
    npm = shutil.which("npm")
    if npm:
        candidates.append(command_output([npm, "root", "-g"], timeout=30))
    for cand in candidates:
        if cand and (Path(cand) / "assemblyscript" / "bin" / "asc.js").is_file():
            return Path(cand)
    return None


class AssemblyScriptToolchain(Toolchain):
    lang = "assemblyscript"
    extensions = (".ts",)
    install = "npm install --prefix tools/npm (assemblyscript @assemblyscript/wasi-shim)"

    def unavailable_reason(self) -> str | None:
        if not shutil.which("node"):
            return "node is not installed (apt-get install nodejs)"
        if not node_modules():
            return "the npm package assemblyscript is not installed"
        return None

    @cache  # noqa: B019 (one toolchain object per process)
    def version(self) -> str:
        asc = self.found(node_modules()) / "assemblyscript" / "bin" / "asc.js"
        return "asc " + command_output(["node", str(asc), "--version"]).removeprefix("Version ")

    def build(self, source: str, options: CompileOptions, workdir: Path, filename: str) -> bytes:
        (workdir / filename).write_text(source)
        modules = self.found(node_modules())
        level = {"O0": "-O0", "O1": "-O1", "O2": "-O2", "O3": "-O3", "Os": "-Os", "Oz": "-Oz"}[options.opt]
        cmd = ["node", str(modules / "assemblyscript" / "bin" / "asc.js"), filename, "-o", "out.wasm", level]
        if options.kind == "library":
            cmd.append("--use=abort=")
        else:
            # asc resolves --lib only as a relative path
            shim = os.path.relpath(modules / "@assemblyscript" / "wasi-shim" / "assembly", workdir)
            cmd += ["--lib", shim, "--use", "ASC_WASI=1", "--exportStart", "_start"]
            cmd += [arg for name in SHIM_GLOBALS for arg in ("--use", f"{name}=wasi_{name}")]
        run_tool([*cmd, *options.flags], lang=self.lang, workdir=workdir, timeout=options.timeout)
        return (workdir / "out.wasm").read_bytes()
