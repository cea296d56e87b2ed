"""The module cache under stress: many processes compiling the same and different snippets at once, processes
and compilers killed with SIGKILL mid-write, damaged and planted entries, a cache nobody may write to. Every
compile returns the right bytes, no entry is ever read back corrupt, and nothing hangs.

tests/test_cache.py has the basics (a hit, a truncated .wasm, two processes); this file goes further.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

import wasmlab
from wasmlab.cache import ModuleCache
from wasmlab.errors import CompileError
from wasmlab.toolchains import zigenv

from .conftest import need_toolchain

# A module of about `size` bytes: a data segment makes writes long enough to be interrupted.
BIG_WAT = '(module (memory 64) (data (i32.const 0) "{fill}") (func (export "tag") (result i32) (i32.const {tag})))'


def big_source(tag: int, size: int = 1 << 20) -> str:
    return BIG_WAT.format(fill="x" * size, tag=tag)


WORKER = textwrap.dedent("""
    import hashlib, random, sys, wasmlab
    seed, rounds, size, unique = map(int, sys.argv[1:5])
    rng = random.Random(seed)
    for i in range(rounds):
        tag = rng.randrange(8) if not unique else seed * 100000 + i
        src = '(module (memory 64) (data (i32.const 0) "' + "x" * size + '") '
        src += '(func (export "tag") (result i32) (i32.const %d)))' % tag
        m = wasmlab.compile(src, "wat")
        assert m.run("wasmtime", "tag").result == tag, tag
        sys.stdout.write("%d %s %d\\n" % (tag, m.sha256, m.provenance.cached))
        sys.stdout.flush()
""")


def spawn(cache: Path, seed: int, rounds: int, size: int, unique: bool = False) -> subprocess.Popen:
    env = {**os.environ, "WASMLAB_CACHE": str(cache)}
    argv = [sys.executable, "-c", WORKER, str(seed), str(rounds), str(size), str(int(unique))]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def check_entries(root: Path) -> tuple[int, int]:
    """Every committed entry (KEY.json) reads back whole or is dropped as a miss: (good entries, dropped)."""
    cache, good, dropped = ModuleCache(root), 0, 0
    for meta in root.glob("*.json"):
        hit = cache.get(meta.stem)
        if hit is None:
            dropped += 1
            continue
        data, info = hit
        assert data.startswith(b"\0asm") and info["lang"] == "wat"
        good += 1
    return good, dropped


def test_many_processes_compiling_the_same_and_different_snippets(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    procs = [spawn(cache, seed, rounds=12, size=256 << 10) for seed in range(6)]
    shas: dict[str, set[str]] = {}
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        for line in out.splitlines():
            tag, sha, _cached = line.split()
            shas.setdefault(tag, set()).add(sha)
    assert shas and all(len(s) == 1 for s in shas.values()), shas  # one module per snippet, whoever built it
    modules = cache / "modules"
    good, dropped = check_entries(modules)
    assert good == len(shas) and dropped == 0
    assert [p.name for p in modules.iterdir() if p.name.endswith(".tmp")] == []


def wait_for_entries(modules: Path, count: int, procs: list[subprocess.Popen], timeout: float = 120) -> None:
    """Until `count` entries are committed in `modules` (bounded in time; a writer that died says why)."""
    deadline = time.monotonic() + timeout
    while len(list(modules.glob("*.json"))) < count:
        dead = [p for p in procs if p.poll() is not None]
        assert not dead, dead[0].communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"fewer than {count} entries after {timeout:g} s"
        time.sleep(0.05)


def test_processes_killed_mid_write_never_leave_a_corrupt_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL at random moments while 4 processes write 2 MiB entries: afterwards every entry reads back
    whole or is a miss (and compiles again to the right bytes). Half-written temporary files may remain: they
    are never read (see SECURITY.md)."""
    cache = tmp_path / "cache"
    rng = random.Random(99)
    killed = 0
    for wave in range(3):
        procs = [spawn(cache, 1000 + wave * 10 + i, rounds=1000, size=2 << 20, unique=True) for i in range(4)]
        wait_for_entries(cache / "modules", wave + 1, procs)  # a loaded machine can take seconds to start them
        time.sleep(rng.random())
        for proc in procs:
            time.sleep(rng.random() * 0.2)
            proc.kill()
            killed += 1
        for proc in procs:
            proc.communicate(timeout=30)
    modules = cache / "modules"
    good, dropped = check_entries(modules)
    assert good > 0, "no entry was written before the kills: the test did not exercise anything"
    # a .wasm without its .json (killed between the two renames) is never a hit; compiling again repairs it
    for wasm in modules.glob("*.wasm"):
        meta = wasm.with_suffix(".json")
        if not meta.exists():
            assert ModuleCache(modules).get(wasm.stem) is None
    # entries that survived are the right modules: recompile a few and compare with a cold build
    monkeypatch.setenv("WASMLAB_CACHE", str(cache))
    for seed in (1000, 1010, 1020):
        source = big_source(seed * 100000, size=2 << 20)
        assert wasmlab.compile(source, "wat").bytes == wasmlab.compile(source, "wat", use_cache=False).bytes
    orphans = [p for p in modules.iterdir() if p.name.endswith(".tmp")]
    print(f"\nkilled {killed} writers: {good} whole entries, {dropped} dropped, {len(orphans)} orphaned .tmp files")


def test_compiler_killed_mid_compile_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL the compiler (zig and the clang it runs) while it builds: a CompileError, nothing cached, no
    build directory left, and the same snippet compiles and caches on the next try."""
    need_toolchain("cpp")
    monkeypatch.setenv("WASMLAB_CACHE", str(tmp_path / "cache"))
    wasmlab.compile("int warm() { return 0; }", "cpp")  # zig's libc++ is built once: not what we kill
    build_dir = zigenv.build_root() / "build"  # where zig builds (its directory is fixed: see zigenv)
    source = (
        "#include <map>\n#include <string>\n"
        'extern "C" int killed() { std::map<int, std::string> m; m[1] = "x"; return (int)m.size(); }\n'
    )
    kills: list[int] = []
    compiled = threading.Event()

    def killer() -> None:  # until the compile ends: it may first wait its turn for zig's build directory
        while not compiled.is_set() and not kills:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:  # only our own compiler: other processes may compile too, and take turns in that directory
                    if os.readlink(f"/proc/{pid}/cwd").startswith(str(build_dir)) and descends_from_us(int(pid)):
                        os.kill(int(pid), signal.SIGKILL)
                        kills.append(int(pid))
                except OSError:
                    continue
            time.sleep(0.005)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        with pytest.raises(CompileError) as info:
            wasmlab.compile(source, "cpp")
    finally:
        compiled.set()
        thread.join()
    assert kills, "the compiler finished before it could be killed"
    assert "cpp" in str(info.value)
    with zigenv.locked():
        assert not build_dir.exists()
    entries = len(list((tmp_path / "cache" / "modules").glob("*.json")))
    assert entries == 1  # the warm-up only
    module = wasmlab.compile(source, "cpp")
    assert not module.provenance.cached and module.run("wasmtime", "killed").result == 1
    assert wasmlab.compile(source, "cpp").provenance.cached


def descends_from_us(pid: int) -> bool:
    while pid > 1:
        if pid == os.getpid():
            return True
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid, after the (command name)
    return False


# ------------------------------------------------------------------------------------------ damaged entries

SOURCE = '(module (func (export "seven") (result i32) (i32.const 7)))'


def damage_json_truncated(wasm: Path, meta: Path) -> None:
    meta.write_text(meta.read_text()[:10])


def damage_json_wrong_sha(wasm: Path, meta: Path) -> None:
    info = json.loads(meta.read_text())
    meta.write_text(json.dumps({**info, "sha256": "0" * 64}))


def damage_json_a_list(wasm: Path, meta: Path) -> None:
    meta.write_text("[1, 2, 3]")


def damage_wasm_missing(wasm: Path, meta: Path) -> None:
    wasm.unlink()


def damage_wasm_swapped(wasm: Path, meta: Path) -> None:
    wasm.write_bytes(wasmlab.compile('(module (func (export "seven") (result i32) (i32.const 8)))', "wat").bytes)


def damage_wasm_a_directory(wasm: Path, meta: Path) -> None:
    wasm.unlink()
    wasm.mkdir()


def damage_wasm_a_fifo(wasm: Path, meta: Path) -> None:
    wasm.unlink()
    os.mkfifo(wasm)  # reading it would block forever


def damage_wasm_dev_zero(wasm: Path, meta: Path) -> None:
    wasm.unlink()
    wasm.symlink_to("/dev/zero")  # reading it would never end


def damage_json_a_fifo(wasm: Path, meta: Path) -> None:
    meta.unlink()
    os.mkfifo(meta)


def damage_wasm_huge_sparse(wasm: Path, meta: Path) -> None:
    with open(wasm, "wb") as f:
        f.truncate(4 << 30)  # 4 GiB of holes: never read into memory


DAMAGE = {name.removeprefix("damage_"): f for name, f in list(globals().items()) if name.startswith("damage_")}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_entry_is_a_miss_and_is_rebuilt(damage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMLAB_CACHE", str(tmp_path))
    first = wasmlab.compile(SOURCE, "wat")
    key = first.provenance.cache_key
    root = ModuleCache().root
    DAMAGE[damage](root / f"{key}.wasm", root / f"{key}.json")
    started = time.monotonic()
    again = wasmlab.compile(SOURCE, "wat")
    assert time.monotonic() - started < 5
    assert again.bytes == first.bytes and again.run("wasmtime", "seven").result == 7
    assert not again.provenance.cached
    if damage not in ("wasm_a_directory",):  # a directory in the way cannot be replaced: the cache is bypassed
        assert wasmlab.compile(SOURCE, "wat").provenance.cached  # repaired


def test_garbage_planted_in_the_cache_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMLAB_CACHE", str(tmp_path))
    module = wasmlab.compile(SOURCE, "wat")
    root = ModuleCache().root
    (root / "garbage.wasm").write_bytes(os.urandom(1000))
    (root / "garbage.json").write_text('{"sha256": "nope"}')
    (root / f".{module.provenance.cache_key}.wasm.abc.tmp").write_bytes(b"\0asm half")
    (root / "subdir").mkdir()
    (root / "subdir" / f"{module.provenance.cache_key}.wasm").write_bytes(b"elsewhere")
    assert wasmlab.compile(SOURCE, "wat").provenance.cached
    assert wasmlab.compile(SOURCE + " ", "wat").run("wasmtime", "seven").result == 7
    assert ModuleCache(root).get("garbage") is None


# ------------------------------------------------------------------------------------------ read-only caches

# nobody keeps CAP_DAC_READ_SEARCH: it may read and traverse everything (the checkout may sit in a directory only
# root may enter, as in a mktemp dir) but still writes only where nobody may write
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


def run_as_nobody(script: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WASMLAB_CACHE": str(cache), "HOME": "/nonexistent", "TMPDIR": "/tmp"}
    return subprocess.run(
        [*AS_NOBODY, sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to become nobody")
def test_read_only_cache_for_a_user_who_cannot_write_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shared cache owned by someone else: hits are served, misses compile and store nothing, no error."""
    shared = Path(tempfile.mkdtemp(prefix="wasmlab-shared-", dir="/tmp"))  # pytest's tmp_path is root-only
    try:
        read_only_cache(shared / "cache", monkeypatch)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def read_only_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASMLAB_CACHE", str(cache))
    wasmlab.compile(SOURCE, "wat")  # an entry made by its owner (root)
    for path in [cache.parent, cache, *cache.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    script = textwrap.dedent(f"""
        import wasmlab
        hit = wasmlab.compile({SOURCE!r}, "wat")
        miss = wasmlab.compile({SOURCE + " "!r}, "wat")
        again = wasmlab.compile({SOURCE + " "!r}, "wat")
        print(hit.provenance.cached, miss.provenance.cached, again.provenance.cached)
        print(miss.run("wasmtime", "seven").result)
    """)
    result = run_as_nobody(script, cache)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "False", "7"]
    assert len(list((cache / "modules").glob("*.json"))) == 1  # nothing was written


def test_cache_path_under_a_file_is_bypassed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("WASMLAB_CACHE", str(blocker / "cache"))
    for _ in range(2):
        module = wasmlab.compile(SOURCE, "wat")
        assert not module.provenance.cached and module.run("wasmtime", "seven").result == 7
