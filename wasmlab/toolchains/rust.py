"""Rust (one file, no crates) -> Wasm with Debian's rustc and its wasm32 standard library.

Debian's rustc is called by its full path: a rustup `rustc` earlier on PATH usually has no wasm32 target and
cannot get one offline. A library is a `cdylib` for wasm32-unknown-unknown (no WASI); a command targets
wasm32-wasi.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

from .base import CompileOptions, Toolchain, command_output, run_tool

TARGETS = {"library": "wasm32-unknown-unknown", "command": "wasm32-wasi"}


@cache
def rustc_with_wasm() -> str | None:
    """A rustc whose sysroot has the wasm32 targets: $WASMLAB_RUSTC, Debian's, then any on PATH."""
    candidates = [os.environ.get("WASMLAB_RUSTC", ""), "/usr/bin/rustc"]
    candidates += [str(Path(d) / "rustc") for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    for exe in dict.fromkeys(c for c in candidates if c and Path(c).is_file()):
        try:
            sysroot = subprocess.run([exe, "--print", "sysroot"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        lib = Path(sysroot.stdout.strip()) / "lib" / "rustlib"
        if all((lib / target).is_dir() for target in TARGETS.values()):
            return exe
    return None


class RustToolchain(Toolchain):
    lang = "rust"
    recipe = 2  # 2: the build directory remapped in debug info
    extensions = (".rs",)
    install = "apt-get install rustc libstd-rust-dev-wasm32"

    def unavailable_reason(self) -> str | None:
        if rustc_with_wasm():
            return None
        return "no rustc with the wasm32-wasi and wasm32-unknown-unknown targets"

    def version(self) -> str:
        return command_output([self.found(rustc_with_wasm()), "--version"])

    def build(self, source: str, options: CompileOptions, workdir: Path, filename: str) -> bytes:
        (workdir / filename).write_text(source)
        level = options.opt[1:].lower()
        cmd = [
            self.found(rustc_with_wasm()),
            "--target",
            TARGETS[options.kind],
            "-C",
            f"opt-level={level}",
            "--edition",
            "2021",
            "--crate-name",
            "snippet",
        ]
        if options.kind == "library":
            cmd += ["--crate-type", "cdylib"]
        if options.lto:
            cmd += ["-C", "lto"]
        # debug info names the snippet as ./snippet.rs, not the build directory: reproducible builds
        cmd += [f"--remap-path-prefix={path}=." for path in dict.fromkeys((str(workdir), str(workdir.resolve())))]
        cmd += [*options.flags, filename, "-o", "out.wasm"]
        run_tool(cmd, lang=self.lang, workdir=workdir, timeout=options.timeout)
        return (workdir / "out.wasm").read_bytes()
