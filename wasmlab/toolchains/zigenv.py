"""Where zig lives, and the one directory every zig-driven build (C, C++, Zig) runs in.

zig writes absolute paths into DWARF: the directory it runs in, its lib directory (inside the `ziglang` wheel, so
inside some venv) and its global cache. It also builds wasi-libc, libc++ and compiler-rt once into that cache with
those paths inside, and `-ffile-prefix-map` reaches only the user's own file. So a debug build's bytes would depend
on where the checkout, the venv, the caches and TMPDIR live. Instead, zig runs in `BUILD_ROOT/build`, with its lib
directory (one hard-linked copy per zig version, shared by every venv) and global cache reached through the
relative symlinks `BUILD_ROOT/lib` and `BUILD_ROOT/cache`: the one absolute path left in a module is BUILD_ROOT,
the same on every machine. Builds take turns on a lock (a warm C build holds it ~0.1 s). On a machine shared by
several users, a user who does not own BUILD_ROOT gets `BUILD_ROOT-UID`, and their debug builds name that path
instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from ..errors import CompileError
from .base import command_output

BUILD_ROOT = Path("/tmp/wasmlab-zig")  # fixed on purpose: it is written into DWARF (not TMPDIR, not a home dir)
# zig resolves these against its working directory, BUILD_ROOT/build
ENV = {"ZIG_LIB_DIR": "../lib", "ZIG_GLOBAL_CACHE_DIR": "../cache", "ZIG_LOCAL_CACHE_DIR": ".zig-cache"}


@cache
def zig_binary() -> str | None:
    """The zig executable shipped by the `ziglang` wheel, or one on PATH."""
    try:
        import ziglang
    except ImportError:
        return shutil.which("zig")
    exe = Path(ziglang.__file__).parent / "zig"
    return str(exe) if exe.is_file() else shutil.which("zig")


@cache
def zig_version() -> str:
    exe = zig_binary()
    if not exe:
        return ""
    return "zig " + command_output([exe, "version"])


def zig_lib_dir() -> Path:
    """zig's own lib directory (its libc and standard library sources), found next to the executable."""
    exe = Path(os.path.realpath(zig_binary() or "zig"))
    for candidate in (exe.parent / "lib", exe.parent.parent / "lib" / "zig"):
        if (candidate / "std").is_dir():
            return candidate
    raise FileNotFoundError(f"no lib directory next to {exe}")


def _cache_base() -> Path:
    return Path(os.environ.get("WASMLAB_ZIG_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "wasmlab-zig").absolute()


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def shared_lib_dir() -> Path:
    """zig's lib directory as the lab's builds see it: `<base>/<zig version>/lib`, hard links to the first install's
    files, under `WASMLAB_ZIG_CACHE` (else `~/.cache/wasmlab-zig`). zig tells cached sources apart by inode, so
    builds reading each venv's own copy would build wasi-libc once per venv (30-100 s, under the build lock every
    checkout shares); through one linked copy they build it once per machine and zig version."""
    target = _cache_base() / zig_version().removeprefix("zig ") / "lib"
    if not (target / "std" / "std.zig").is_file():
        spare = target.with_name(f"lib.{os.getpid()}")
        shutil.rmtree(spare, ignore_errors=True)
        shutil.copytree(zig_lib_dir(), spare, copy_function=_link_or_copy)
        try:
            spare.rename(target)
        except OSError:  # another process made it meanwhile
            shutil.rmtree(spare, ignore_errors=True)
    return target


def global_cache_dir() -> Path:
    """zig's global cache for the lab's builds, beside `shared_lib_dir()`. Not zig's shared default: objects a zig
    built there under other paths would carry those paths into the lab's modules."""
    return shared_lib_dir().with_name("cache")


def build_root() -> Path:
    """BUILD_ROOT when it is (or can be made) a real directory of this user's, else BUILD_ROOT-UID."""
    for root in (BUILD_ROOT, BUILD_ROOT.with_name(f"{BUILD_ROOT.name}-{os.getuid()}")):
        with contextlib.suppress(FileExistsError):
            root.mkdir(mode=0o700, parents=True)
        info = os.lstat(root)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            return root
    raise PermissionError(f"{BUILD_ROOT} and its per-user fallback belong to someone else: remove them")


class Busy(TimeoutError):
    """Another build held the build directory for the whole wait."""


@contextlib.contextmanager
def locked(root: Path | None = None, timeout: float | None = None) -> Iterator[Path]:
    """Hold the build lock of `root` (default: this user's build root); raise Busy after `timeout` seconds."""
    root = root or build_root()
    with open(root / ".lock", "a") as lock:
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.002
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (fcntl.LOCK_NB if deadline else 0))
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:  # only LOCK_NB raises
                    raise Busy(f"zig's build directory {root} was busy with another build for {timeout:g} s") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
        try:
            yield root
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _point(link: Path, target: Path) -> None:
    """Make `link` a symlink to `target`, replacing whatever is there."""
    if link.is_symlink() and os.readlink(link) == str(target):
        return
    spare = link.with_name(link.name + ".new")
    spare.unlink(missing_ok=True)
    spare.symlink_to(target)
    spare.replace(link)


@contextlib.contextmanager
def build_dir(lang: str, timeout: float | None = None) -> Iterator[Path]:
    """An empty `BUILD_ROOT/build` for one zig build, held alone and emptied afterwards. Run zig in it with ENV.
    Waits at most `timeout` seconds for its turn, then raises CompileError."""
    with contextlib.ExitStack() as stack:
        try:
            root = stack.enter_context(locked(timeout=timeout))
        except Busy as exc:
            raise CompileError(f"{lang}: {exc}: try again, or raise the timeout", lang=lang) from None
        except PermissionError as exc:
            raise CompileError(f"{lang}: {exc}", lang=lang) from None
        cache_dir = global_cache_dir()
        cache_dir.mkdir(parents=True, exist_ok=True)
        _point(root / "lib", shared_lib_dir())
        _point(root / "cache", cache_dir)
        workdir = root / "build"
        shutil.rmtree(workdir, ignore_errors=True)  # a build killed with its process leaves files behind
        workdir.mkdir()
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        yield workdir
