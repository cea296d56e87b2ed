"""Builds do not depend on where the checkout, the venv, the caches or TMPDIR live: a debug build names no path of
this machine, and the same debug snippet built from a toolchain at another place gives the same bytes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import wasmlab
from wasmlab.cache import cache_dir
from wasmlab.toolchains import zigenv

from .conftest import need_toolchain

SNIPPETS = Path(__file__).parent / "snippets"
DEBUG_BUILDS = {  # lang: (snippet, debug flags)
    "c": ("hello.c", ("-g",)),
    "cpp": ("hello.cpp", ("-g",)),
    "zig": ("hello.zig", ()),
    "rust": ("hello.rs", ("-g",)),
    "go": ("hello.go", ("-gcflags=all=-N -l",)),  # Go's linker writes no DWARF for wasm: names only
    "assemblyscript": ("hello.ts", ("--debug", "--sourceMap")),  # names and a source map URL, no DWARF
}
NO_DWARF = {"go", "assemblyscript"}
CHECKOUT = Path(wasmlab.__file__).resolve().parents[1]


def machine_paths() -> list[str]:
    """Paths that differ from one machine or checkout to the next."""
    paths = {str(CHECKOUT), sys.prefix, os.path.realpath(sys.prefix), str(Path.home()), str(cache_dir()),
             str(zigenv.global_cache_dir()), str(zigenv.shared_lib_dir()), "wasmlab-build-"}
    if zigenv.zig_binary():
        paths.add(str(zigenv.zig_lib_dir()))
    if tempfile.gettempdir() != "/tmp":  # BUILD_ROOT lives under /tmp on purpose, on every machine
        paths.add(tempfile.gettempdir())
    return sorted(paths)


def debug_build(lang: str) -> wasmlab.Module:
    snippet, flags = DEBUG_BUILDS[lang]
    return wasmlab.compile(SNIPPETS / snippet, lang, kind="command", strip=False, flags=flags, use_cache=False)


@pytest.mark.parametrize("lang", DEBUG_BUILDS)
def test_a_debug_build_names_no_path_of_this_machine(lang: str) -> None:
    need_toolchain(lang)
    module = debug_build(lang)
    assert module.parsed.has_dwarf or lang in NO_DWARF
    assert module.parsed.function_names
    found = [path for path in machine_paths() if path.encode() in module.bytes]
    assert found == [], f"{lang} debug build embeds {found}"


def relocated_ziglang(base: Path) -> Path:
    """A second `ziglang` package at a longer path (hard links where the file system allows: no 400 MB copy)."""
    import ziglang

    site = base / "another" / "much" / "longer" / "place" / "site-packages"
    site.mkdir(parents=True)
    source = Path(ziglang.__file__).parent
    try:
        subprocess.run(["cp", "-al", str(source), str(site)], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        shutil.copytree(source, site / "ziglang", symlinks=True)
    return site


BUILD_IN_ANOTHER_PLACE = """
import sys
from tests.test_reproducible import debug_build
from wasmlab.toolchains import zigenv
assert zigenv.zig_lib_dir().is_relative_to(sys.argv[1]), zigenv.zig_lib_dir()
for lang in ("c", "zig"):
    module = debug_build(lang)
    print(lang, module.sha256, module.provenance.cache_key)
"""


def test_debug_builds_are_the_same_bytes_from_another_toolchain_place_tmpdir_and_caches(tmp_path: Path) -> None:
    """Another ziglang location, TMPDIR, module cache and zig cache path (a link to the warm one, so zig's own
    libc build is not redone here: it is keyed by the inodes of the shared lib copy), in a fresh process: the same
    bytes as this process builds, under the same cache key (so a moved checkout still hits its cache)."""
    need_toolchain("c")
    need_toolchain("zig")
    site = relocated_ziglang(tmp_path)
    (tmp_path / "t" / "a" / "different" / "tmpdir").mkdir(parents=True)
    zig_base = zigenv.shared_lib_dir().parents[1]
    zigenv.global_cache_dir().mkdir(parents=True, exist_ok=True)
    (tmp_path / "zig-cache-elsewhere").symlink_to(zig_base)
    env = {**os.environ, "PYTHONPATH": str(site), "TMPDIR": str(tmp_path / "t" / "a" / "different" / "tmpdir"),
           "WASMLAB_CACHE": str(tmp_path / "module-cache"), "WASMLAB_ZIG_CACHE": str(tmp_path / "zig-cache-elsewhere")}
    env["PYTHONPATH"] += os.pathsep + str(CHECKOUT)
    out = subprocess.run([sys.executable, "-c", BUILD_IN_ANOTHER_PLACE, str(site)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    elsewhere = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()}
    here = {lang: [debug_build(lang).sha256, debug_build(lang).provenance.cache_key] for lang in ("c", "zig")}
    assert elsewhere == here
