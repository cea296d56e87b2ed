"""The content-addressed module cache: hits, misses, corruption, concurrency, read-only directories."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import wasmlab
from wasmlab.cache import ModuleCache, cache_key

from .conftest import need_toolchain

SOURCE = "int square(int x) { return x * x; }\n"


def test_second_compile_is_a_cache_hit_with_identical_bytes() -> None:
    need_toolchain("c")
    first = wasmlab.compile(SOURCE + "// first\n", "c")
    second = wasmlab.compile(SOURCE + "// first\n", "c")
    assert not first.provenance.cached
    assert second.provenance.cached
    assert second.bytes == first.bytes
    assert second.provenance.cache_key == first.provenance.cache_key


def test_key_depends_on_source_options_and_toolchain() -> None:
    base = {"lang": "c", "source": SOURCE, "options": {"opt": "O2"}, "toolchain": "zig 1"}
    key = cache_key(**base)
    assert key == cache_key(**base)
    assert key != cache_key(**{**base, "source": SOURCE + " "})
    assert key != cache_key(**{**base, "options": {"opt": "Oz"}})
    assert key != cache_key(**{**base, "toolchain": "zig 2"})


def test_no_cache_option_compiles_again() -> None:
    wasmlab.compile('(module (func (export "a")))', "wat")
    again = wasmlab.compile('(module (func (export "a")))', "wat", use_cache=False)
    assert not again.provenance.cached


def test_truncated_entry_is_detected_and_recompiled() -> None:
    source = '(module (func (export "t") (result i32) i32.const 7))'
    module = wasmlab.compile(source, "wat")
    wasm_path = ModuleCache().root / f"{module.provenance.cache_key}.wasm"
    wasm_path.write_bytes(module.bytes[:10])
    again = wasmlab.compile(source, "wat")
    assert not again.provenance.cached
    assert again.bytes == module.bytes
    assert wasmlab.compile(source, "wat").provenance.cached


def test_garbage_metadata_is_a_miss(tmp_path: Path) -> None:
    cache = ModuleCache(tmp_path)
    assert cache.put("k", b"\0asm\1\0\0\0", {})
    (tmp_path / "k.json").write_text("{not json")
    assert cache.get("k") is None


def test_read_only_cache_directory_still_compiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0:
        # root ignores permission bits: point the cache at a path under a regular file instead
        blocker = tmp_path / "file"
        blocker.write_text("")
        monkeypatch.setenv("WASMLAB_CACHE", str(blocker / "cache"))
    else:
        tmp_path.chmod(0o500)
        monkeypatch.setenv("WASMLAB_CACHE", str(tmp_path))
    module = wasmlab.compile('(module (func (export "ro") (result i32) i32.const 1))', "wat")
    assert module.run("wasmtime", "ro").result == 1
    assert not module.provenance.cached


def test_two_processes_compiling_at_once_agree(tmp_path: Path) -> None:
    need_toolchain("c")
    script = textwrap.dedent("""
        import sys, wasmlab
        sources = ["int f%d(int x) { return x + %d; }" % (i, i) for i in range(4)]
        shared = "int shared(int x) { return x * 3; }"
        for s in sources + [shared] * 3:
            m = wasmlab.compile(s, "c")
            sys.stdout.write(m.sha256 + "\\n")
    """)
    env = {**os.environ, "WASMLAB_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0].decode().split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outputs[0] == outputs[1]
    leftovers = [p for p in (tmp_path / "cache" / "modules").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    for line in outputs[0]:
        assert len(line) == 64


def test_cache_hit_is_fast() -> None:
    """Not a timing assertion on the machine: the hit must skip the compiler entirely."""
    need_toolchain("go")
    source = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("cache") }\n'
    wasmlab.compile(source, "go", kind="command")
    hit = wasmlab.compile(source, "go", kind="command")
    assert hit.provenance.cached
    assert hit.provenance.compile_ms < 1000  # a file read, never a Go build (which takes seconds)
