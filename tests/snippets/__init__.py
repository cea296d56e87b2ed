"""Guest sources the tests share: the files in this directory (`SNIPPETS / "fib.c"`, `source("fib.c")`) and the
small modules several test files use, as constants."""

from __future__ import annotations

from pathlib import Path

SNIPPETS = Path(__file__).parent


def source(name: str) -> str:
    """The text of snippet file `name` (e.g. "hello.rs")."""
    return (SNIPPETS / name).read_text()


FIB_WAT = source("fib.wat")  # fib(n), recursive: exports "fib"
FIB_C = source("fib.c")  # the same in C: int fib(int)
ADD_WAT = '(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))\n'
SPIN_WAT = '(module (func (export "spin") (loop $l (br $l))))\n'  # never returns: time limits, Ctrl-C
