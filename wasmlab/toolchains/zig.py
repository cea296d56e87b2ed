"""Zig -> Wasm with the zig compiler from the `ziglang` wheel.

A library targets wasm32-freestanding and exports every `export fn`; a command targets wasm32-wasi.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from . import zigenv
from .base import CompileOptions, Toolchain, run_tool
from .zigenv import zig_binary, zig_version

MODES = {
    "O0": "Debug",
    "O1": "ReleaseSafe",
    "O2": "ReleaseFast",
    "O3": "ReleaseFast",
    "Os": "ReleaseSmall",
    "Oz": "ReleaseSmall",
}


class ZigToolchain(Toolchain):
    lang = "zig"
    recipe = 3  # 3: built in zig's fixed build directory (no path of this machine in DWARF)
    extensions = (".zig",)
    install = "pip install ziglang"

    def unavailable_reason(self) -> str | None:
        return None if zig_binary() else "zig is not installed"

    def version(self) -> str:
        return zig_version()

    def workdir(self, options: CompileOptions) -> contextlib.AbstractContextManager[Path]:
        return zigenv.build_dir(self.lang, options.timeout)

    def build(self, source: str, options: CompileOptions, workdir: Path, filename: str) -> bytes:
        (workdir / filename).write_text(source)
        cmd = [self.found(zig_binary()), "build-exe", filename, "-O", MODES[options.opt], "-femit-bin=out.wasm"]
        if options.kind == "library":
            cmd += ["-target", "wasm32-freestanding", "-fno-entry", "-rdynamic"]
        else:
            cmd += ["-target", "wasm32-wasi"]
        if options.lto:
            cmd.append("-flto")
        if options.strip and MODES[options.opt] == "ReleaseSmall":
            cmd.append("-fno-strip")  # ReleaseSmall drops the name section; strip=True removes the DWARF, keeps names
        run_tool(
            [*cmd, *options.flags],
            lang=self.lang,
            workdir=workdir,
            timeout=options.timeout,
            env=zigenv.ENV,
        )
        return (workdir / "out.wasm").read_bytes()
