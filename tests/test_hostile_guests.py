"""Hostile guests on every backend that can run them: each gets the right error (LimitExceeded, Trap, a WASI
permission error the guest itself sees) within its time limit, the kernel stays alive and small, and the next
call on the same runtime works. The promises are written down in SECURITY.md.

test_conformance.py tests the engines' limits in depth (and test_runtime_*.py what only one engine does);
this file is the matrix: one threat, every runtime, one promise.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import pytest

import wasmlab
from wasmlab.errors import InvalidModule, LimitExceeded, RuntimeUnavailable, Trap
from wasmlab.module import Module
from wasmlab.procfs import rss_bytes
from wasmlab.runtimes import get_runtime, list_runtimes, preopens
from wasmlab.runtimes.preopens import MAX_PREOPEN_ENTRIES, check_confined

from .conftest import need_toolchain

AVAILABLE = {row.name: row for row in list_runtimes() if row.available}
EXPORTS = [name for name, row in AVAILABLE.items() if "exports" in row.capabilities]
COMMANDS = [name for name, row in AVAILABLE.items() if "wasi" in row.capabilities]
LIMIT = 64 << 20  # max_memory for these tests
SLACK = 3.0  # seconds on top of a time limit: killing and restarting a worker, loaded CI machines


def kernel_rss() -> int:
    return rss_bytes(os.getpid())


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


OK_WAT = '(module (memory (export "memory") 1) (func (export "ok") (result i32) (i32.const 42)))'
OK_COMMAND_WAT = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ok\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 3))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""


def still_works(runtime: str) -> None:
    """The runtime answers the next call correctly (a killed worker is started again)."""
    if "exports" in AVAILABLE[runtime].capabilities:
        assert wasmlab.compile(OK_WAT, "wat").run(runtime, "ok").result == 42
    else:
        assert wasmlab.compile(OK_COMMAND_WAT, "wat").run(runtime).stdout == b"ok\n"


def elapsed_since(started: float) -> float:
    return time.monotonic() - started


HOSTILE_WAT = """
(module
  (import "wasmlab" "now_ms" (func $now (result f64)))
  (import "wasmlab" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "storm")
  (func $spin (export "spin") (loop $l (br $l)))
  (func $rec (export "rec") (param i32) (result i32)
    (i32.add (call $rec (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "grow") (result i32)
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    (memory.size))
  (func (export "bomb") (local $old i32)
    (loop $l
      (local.set $old (memory.grow (i32.const 16)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then (unreachable)))
      (memory.fill (i32.mul (local.get $old) (i32.const 65536)) (i32.const 7) (i32.const 1048576))
      (br $l)))
  (func (export "clock_storm") (loop $l (drop (call $now)) (br $l)))
  (func (export "log_storm") (loop $l (call $log (i32.const 0) (i32.const 5)) (br $l)))
)
"""


@pytest.fixture(scope="module")
def hostile() -> Module:
    return wasmlab.compile(HOSTILE_WAT, "wat", name="hostile")


def command(body: str, memory: str = '(memory (export "memory") 1)') -> Module:
    return wasmlab.compile(f'(module {memory} (func (export "_start") {body}))', "wat", name="guest")


# ------------------------------------------------------------------------------------------ CPU and stack


@pytest.mark.parametrize("runtime", COMMANDS)
def test_infinite_loop_is_stopped_by_the_time_limit(runtime: str, hostile: Module) -> None:
    started = time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        if "exports" in AVAILABLE[runtime].capabilities:
            hostile.run(runtime, "spin", timeout=0.5)
        else:
            command("(loop $l (br $l))").run(runtime, timeout=0.5)
    assert info.value.limit == "time" and "time limit" in str(info.value)
    assert elapsed_since(started) < 0.5 + SLACK
    still_works(runtime)


@pytest.mark.parametrize("runtime", COMMANDS)
def test_deep_recursion_is_a_stack_overflow_trap(runtime: str, hostile: Module) -> None:
    started = time.monotonic()
    if "exports" in AVAILABLE[runtime].capabilities:
        result = hostile.run(runtime, "rec", (0,), timeout=10, check=False)
    else:
        rec = wasmlab.compile(
            '(module (memory (export "memory") 1) (func $r (export "_start") (call $r)))', "wat", name="rec"
        )
        result = rec.run(runtime, timeout=10, check=False)
    assert result.trap == "stack overflow", result
    assert elapsed_since(started) < 10
    with pytest.raises(Trap, match="stack overflow"):
        result.raise_for_error()
    still_works(runtime)


def test_wasmer_sdk_guest_stops_burning_cpu_after_its_time_limit() -> None:
    """wasmer-sdk returns at the deadline but leaves a guest that makes no WASI calls spinning on one of its
    threads (measured): wasmlab runs it in a worker and kills the worker, so nothing keeps running."""
    if "wasmer-sdk" not in AVAILABLE:
        pytest.skip("wasmer-sdk is not available")
    runtime = get_runtime("wasmer-sdk")
    with pytest.raises(LimitExceeded):
        command("(loop $l (br $l))").run("wasmer-sdk", timeout=0.3)
    worker = runtime._worker
    assert worker is not None and not worker.alive  # killed with its spinning guest
    before = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(0.5)
    after = resource.getrusage(resource.RUSAGE_SELF)
    assert (after.ru_utime - before.ru_utime) < 0.3  # this process is not spinning a guest either
    still_works("wasmer-sdk")


# ------------------------------------------------------------------------------------------ memory and tables


@pytest.mark.parametrize("runtime", EXPORTS)
def test_memory_growth_stops_at_max_memory(runtime: str, hostile: Module) -> None:
    pages = hostile.run(runtime, "grow", max_memory=LIMIT).result
    assert 1 < pages <= LIMIT // 65536  # memory.grow returned -1 at the cap, inside the engine
    started, before = time.monotonic(), peak_rss()
    with pytest.raises(LimitExceeded) as info:
        hostile.run(runtime, "bomb", max_memory=LIMIT, timeout=10)
    assert info.value.limit == "memory" and "max_memory" in str(info.value)
    assert elapsed_since(started) < 10
    if runtime == "wasmtime":  # in this process: its peak memory grew by about the guest's memory at most
        assert peak_rss() - before < 2 * LIMIT + (64 << 20)
    still_works(runtime)


@pytest.mark.skipif("wasmer-sdk" not in AVAILABLE, reason="wasmer-sdk is not available")
def test_wasmer_sdk_memory_bomb_is_stopped_outside_the_kernel() -> None:
    """The SDK has no memory limit of its own: the worker is killed when its memory passes max_memory."""
    bomb = command(
        """(local $old i32) (loop $l
          (local.set $old (memory.grow (i32.const 16)))
          (if (i32.eq (local.get $old) (i32.const -1)) (then (unreachable)))
          (memory.fill (i32.mul (local.get $old) (i32.const 65536)) (i32.const 7) (i32.const 1048576))
          (br $l))"""
    )
    before, started = kernel_rss(), time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        bomb.run("wasmer-sdk", max_memory=LIMIT, timeout=20)
    assert info.value.limit == "memory" and elapsed_since(started) < 10
    assert kernel_rss() - before < 64 << 20
    still_works("wasmer-sdk")


@pytest.mark.skipif("wasmer-sdk" not in AVAILABLE, reason="wasmer-sdk is not available")
def test_wasmer_sdk_in_memory_file_flood_is_stopped() -> None:
    """wasmer-sdk's /tmp lives in memory: a guest writing a file forever grew the kernel by ~300 MB/s."""
    need_toolchain("c")
    writer = wasmlab.compile(
        r"""#include <stdio.h>
        #include <string.h>
        static char buf[65536];
        int main(void) {
            FILE *f = fopen("/tmp/big", "w");
            memset(buf, 'x', sizeof buf);
            for (;;) if (fwrite(buf, 1, sizeof buf, f) != sizeof buf) return 2;
        }""",
        "c",
        kind="command",
    )
    before, started = kernel_rss(), time.monotonic()
    with pytest.raises(LimitExceeded) as info:
        writer.run("wasmer-sdk", max_memory=LIMIT, timeout=20)
    assert info.value.limit == "memory" and elapsed_since(started) < 10
    assert kernel_rss() - before < 64 << 20
    still_works("wasmer-sdk")


def test_several_memories_share_one_max_memory() -> None:
    """wasmtime's store limit is per memory: a module with 16 memories must not get 16 x max_memory."""
    count = 16
    memories = "".join(f"(memory $m{i} 0)" for i in range(count))
    grows = "".join(
        f"(block $b{i} (loop $l{i} (br_if $b{i} (i32.eq (memory.grow $m{i} (i32.const 16)) (i32.const -1)))"
        f"(local.set $pages (i32.add (local.get $pages) (i32.const 16))) (br $l{i})))"
        for i in range(count)
    )
    module = wasmlab.compile(
        f'(module {memories} (func (export "grow_all") (result i32) (local $pages i32) {grows} (local.get $pages)))',
        "wat",
    )
    pages = module.run("wasmtime", "grow_all", max_memory=LIMIT).result
    assert pages * 65536 <= LIMIT


TABLES_WAT = """
(module
  (table $t 1 funcref)
  (func $f)
  (elem declare func $f)
  (func (export "grow_once") (param i32) (result i32) (table.grow $t (ref.func $f) (local.get 0)))
  (func (export "grow_all") (result i32)
    (loop $l (br_if $l (i32.ne (table.grow $t (ref.null func) (i32.const 1000000)) (i32.const -1))))
    (table.size $t))
)
"""


@pytest.mark.parametrize("runtime", EXPORTS)
def test_huge_tables_are_refused(runtime: str) -> None:
    """A table grown by hundreds of millions of elements (8 bytes each) must fail inside the engine, not
    allocate gigabytes: table.grow returns -1, or the limit stops the guest."""
    module = wasmlab.compile(TABLES_WAT, "wat", name="tables")
    before, started = peak_rss(), time.monotonic()
    try:
        assert module.run(runtime, "grow_once", (200_000_000,), max_memory=LIMIT, timeout=10).result == -1
        size = module.run(runtime, "grow_all", max_memory=LIMIT, timeout=10).result
        assert size * 8 <= 2 * LIMIT
    except LimitExceeded as exc:
        assert exc.limit in ("memory", "time")
    except RuntimeUnavailable as exc:  # wasm3 0.5 cannot compile table.grow
        assert runtime == "wasm3", exc
    assert elapsed_since(started) < 10 + SLACK
    if runtime == "wasmtime":
        assert peak_rss() - before < 2 * LIMIT + (64 << 20)
    declared = wasmlab.compile('(module (table 100000000 funcref) (func (export "ok") (result i32) (i32.const 1)))')
    try:
        declared.run(runtime, "ok", max_memory=LIMIT)
        assert runtime == "wasm3"  # wasm3 does not allocate table slots it never uses
    except LimitExceeded as exc:
        assert exc.limit == "memory" and "table" in str(exc)
    except InvalidModule as exc:  # wasmer's validator and JSC's and SpiderMonkey's JS API limits refuse it
        assert runtime in ("wasmer", "jsc", "spidermonkey") and "table" in str(exc).lower(), exc
    except Trap as exc:  # SpiderMonkey refuses it while instantiating ("too many table elements")
        assert runtime == "spidermonkey", exc
    still_works(runtime)


# ------------------------------------------------------------------------------------------ host calls and output


@pytest.mark.parametrize("runtime", EXPORTS)
@pytest.mark.parametrize("storm", ["clock_storm", "log_storm"])
def test_host_import_call_storm_is_stopped(runtime: str, storm: str, hostile: Module) -> None:
    started = time.monotonic()
    result = hostile.run(runtime, storm, timeout=0.5, max_memory=LIMIT, check=False)
    # time on every engine; wasm3 leaks memory in its host-call path, so its worker may hit the memory cap first
    assert result.error_kind in ("limit:time", "limit:memory"), result
    assert elapsed_since(started) < 0.5 + SLACK
    assert len(result.stderr) <= 1 << 20  # log lines are capped at max_output
    still_works(runtime)


FLOOD = """
  (i32.store (i32.const 0) (i32.const 1024)) (i32.store (i32.const 4) (i32.const 65536))
  (memory.fill (i32.const 1024) (i32.const 65) (i32.const 65536))
  (loop $l (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))) (br $l))"""


@pytest.mark.parametrize("runtime", COMMANDS)
def test_printing_gigabytes_is_capped_and_stopped(runtime: str) -> None:
    flood = wasmlab.compile(
        '(module (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))'
        f'(memory (export "memory") 2) (func (export "_start") {FLOOD}))',
        "wat",
        name="flood",
    )
    before, started = kernel_rss(), time.monotonic()
    result = flood.run(runtime, timeout=1, max_output=4096, check=False)
    assert result.error_kind in ("limit:output", "limit:time"), result
    assert len(result.stdout) <= 4096
    assert elapsed_since(started) < 1 + SLACK
    assert kernel_rss() - before < 64 << 20  # the output went to capped files or was dropped, not into memory
    still_works(runtime)


@pytest.mark.parametrize("runtime", COMMANDS)
@pytest.mark.parametrize("iovs", [0xFFFFFFF0, 1])  # outside memory; misaligned
def test_wasi_calls_with_bad_pointers_are_the_guests_problem(runtime: str, iovs: int) -> None:
    """A WASI call handed a pointer outside memory or misaligned: a trap, or an errno the guest sees, on every
    engine (wasmtime returned a generic error, not a trap)."""
    bad = wasmlab.compile(
        '(module (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))'
        f'(memory (export "memory") 1) (func (export "_start") (drop (call $w (i32.const 1) (i32.const {iovs}) '
        "(i32.const 1) (i32.const 16)))))",
        "wat",
    )
    result = bad.run(runtime, check=False)
    assert result.trap is not None or result.exit_code == 0, result
    if runtime == "wasmtime":
        assert result.trap == ("out of bounds memory access" if iovs > 1 else "trap")
    still_works(runtime)


# ------------------------------------------------------------------------------------------ WASI files and env

FILES_C = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* argv: "r:PATH" reads PATH, "w:PATH" writes it, "e:NAME" prints an environment variable */
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i] + 2;
        if (argv[i][0] == 'e') {
            const char *value = getenv(arg);
            printf("%s %s\n", argv[i], value ? value : "(unset)");
            continue;
        }
        FILE *f = fopen(arg, argv[i][0] == 'w' ? "w" : "r");
        if (!f) { printf("%s errno %d %s\n", argv[i], errno, strerror(errno)); continue; }
        char buf[32] = {0};
        if (argv[i][0] == 'w') fputs("written by the guest\n", f); else fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        printf("%s OK %.8s\n", argv[i], buf);
    }
    return 0;
}
"""
DIRS = [name for name in COMMANDS if name not in ("wasm3", "wasmer-sdk", "jsc", "spidermonkey")]  # no dirs= there


@pytest.fixture(scope="module")
def files() -> Module:
    need_toolchain("c")
    return wasmlab.compile(FILES_C, "c", kind="command", name="files")


def outcome(result, op: str) -> str:
    line = next(line for line in result.output.splitlines() if line.startswith(op + " "))
    return line[len(op) + 1 :]


@pytest.mark.parametrize("runtime", COMMANDS)
def test_no_files_and_no_environment_unless_granted(runtime: str, files: Module, monkeypatch) -> None:
    monkeypatch.setenv("WASMLAB_TEST_SECRET", "s3cret")
    ops = ["e:WASMLAB_TEST_SECRET", "e:HOME", "e:GIVEN", "r:/etc/passwd", "r:../etc/passwd", "w:/tmp/escape"]
    result = files.run(runtime, argv=ops, env={"GIVEN": "yes"})
    assert outcome(result, "e:WASMLAB_TEST_SECRET") == "(unset)" and outcome(result, "e:HOME") == "(unset)"
    assert outcome(result, "e:GIVEN") == "yes"
    for op in ops[3:5]:
        assert outcome(result, op).startswith("errno "), result.output
    # wasmer-sdk gives every guest a private in-memory file system with a /tmp: writes stay in there
    assert outcome(result, "w:/tmp/escape").startswith("OK" if runtime == "wasmer-sdk" else "errno ")
    assert not Path("/tmp/escape").exists()


@pytest.mark.parametrize("runtime", DIRS)
def test_preopened_directory_is_the_only_reachable_one(runtime: str, files: Module, tmp_path: Path) -> None:
    granted, outside = tmp_path / "granted", tmp_path / "outside"
    granted.mkdir()
    outside.mkdir()
    (granted / "in.txt").write_text("inside!")
    (outside / "secret.txt").write_text("secret")
    ops = [
        "r:/data/in.txt",
        "w:/data/new.txt",
        "r:/data/../outside/secret.txt",
        "r:/data/../../etc/passwd",
        "w:/data/../escaped.txt",
        "w:/escaped.txt",
        "r:/etc/passwd",
    ]
    result = files.run(runtime, argv=ops, dirs={"/data": str(granted)})
    assert outcome(result, "r:/data/in.txt") == "OK inside!"
    assert outcome(result, "w:/data/new.txt").startswith("OK")
    assert (granted / "new.txt").read_text() == "written by the guest\n"
    for op in ops[2:]:
        assert outcome(result, op).startswith("errno "), (op, result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["granted", "outside"]
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


@pytest.mark.parametrize("runtime", DIRS)
def test_symlinks_out_of_a_preopened_directory(runtime: str, files: Module, tmp_path: Path) -> None:
    """node's and wasmer-python's WASI follow a symlink out of the granted directory (measured: the guest read
    /etc/passwd and wrote outside): wasmlab refuses such a directory there. wasmtime never follows one."""
    granted, outside = tmp_path / "granted", tmp_path / "outside"
    granted.mkdir()
    outside.mkdir()
    (granted / "etc").symlink_to("/etc")
    (granted / "sub").mkdir()
    (granted / "sub" / "out").symlink_to(outside)
    ops = ["r:/data/etc/passwd", "w:/data/sub/out/escaped.txt"]
    if runtime == "wasmtime":
        result = files.run(runtime, argv=ops, dirs={"/data": str(granted)})
        for op in ops:
            assert outcome(result, op).startswith("errno "), result.output
    else:
        with pytest.raises(RuntimeUnavailable, match="symlink to /etc, outside the granted directory"):
            files.run(runtime, argv=ops, dirs={"/data": str(granted)})
    assert list(outside.iterdir()) == []
    (granted / "etc").unlink()
    (granted / "sub" / "out").unlink()
    (granted / "sub" / "inner").symlink_to(".")  # a relative link that stays inside is fine
    result = files.run(runtime, argv=["w:/data/sub/inner/ok.txt"], dirs={"/data": str(granted)})
    assert outcome(result, "w:/data/sub/inner/ok.txt").startswith("OK")
    still_works(runtime)


def test_a_guest_cannot_plant_an_escape_for_another_engine(files: Module, tmp_path: Path) -> None:
    """wasmtime lets a guest create a symlink pointing anywhere (it will not follow it itself); that directory
    given to an engine that follows symlinks is then refused."""
    link = wasmlab.compile(
        r"""#include <stdio.h>
        #include <unistd.h>
        int main(void) { printf("symlink %d\n", symlink("../../../../../../etc", "/data/planted")); return 0; }""",
        "c",
        kind="command",
    )
    assert link.run("wasmtime", dirs={"/data": str(tmp_path)}).output == "symlink 0\n"
    assert (tmp_path / "planted").is_symlink()
    for runtime in [name for name in DIRS if name != "wasmtime"]:
        with pytest.raises(RuntimeUnavailable, match="planted is a symlink"):
            files.run(runtime, argv=["r:/data/planted/passwd"], dirs={"/data": str(tmp_path)})


PEEK_C = r"""
#include <errno.h>
#include <stdio.h>
static char path[256];
__attribute__((export_name("path"))) char *path_buffer(void) { return path; }
__attribute__((export_name("peek"))) int peek(void) {  /* the first byte of the file at `path`, or -errno */
    FILE *f = fopen(path, "r");
    if (!f) return -errno;
    int c = fgetc(f);
    fclose(f);
    return c;
}
"""


@pytest.mark.parametrize("runtime", [name for name in DIRS if name != "wasmtime"])
def test_a_kept_instance_is_refused_a_symlink_planted_after_it_started(runtime: str, tmp_path: Path) -> None:
    """An instance kept on an engine that follows symlinks re-checks its directories before every call: a
    wasmtime guest sharing the directory plants a link to /etc after the instance started; calls are refused
    while the link is there and work again once it is gone."""
    need_toolchain("c")
    (tmp_path / "hello.txt").write_text("Hi")
    plant = wasmlab.compile(
        r"""#include <stdio.h>
        #include <unistd.h>
        int main(void) { printf("symlink %d\n", symlink("../../../../../../etc", "/data/planted")); return 0; }""",
        "c",
        kind="command",
    )
    with wasmlab.compile(PEEK_C, "c", name="peek").instantiate(runtime, dirs={"/data": str(tmp_path)}) as instance:

        def peek(path: str) -> int:
            instance.write_memory(instance.call("path"), path.encode() + b"\0")
            return instance.call("peek")

        assert peek("/data/hello.txt") == ord("H")
        assert plant.run("wasmtime", dirs={"/data": str(tmp_path)}).output == "symlink 0\n"
        with pytest.raises(RuntimeUnavailable, match="planted is a symlink to /etc, outside the granted directory"):
            peek("/data/planted/passwd")
        with pytest.raises(RuntimeUnavailable, match="planted is a symlink"):
            peek("/data/hello.txt")
        (tmp_path / "planted").unlink()
        assert peek("/data/planted/passwd") == -44  # ENOENT: the link is gone
        assert peek("/data/hello.txt") == ord("H")


def test_confinement_check_gives_up_on_huge_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_PREOPEN_ENTRIES >= 10_000  # a project directory passes
    monkeypatch.setattr(preopens, "MAX_PREOPEN_ENTRIES", 50)
    for i in range(3):
        sub = tmp_path / f"d{i}"
        sub.mkdir()
        for j in range(20):
            (sub / str(j)).touch()
    with pytest.raises(RuntimeUnavailable, match="too many to check"):
        check_confined("node", "/data", str(tmp_path))
    check_confined("node", "/data", str(tmp_path / "d0"))
