"""Warm the compilers' own caches once (zig's wasi-libc and libc++, Go's standard library for wasip1), so the
first compile in a workshop or a test takes a second, not a minute. Bypasses wasmlab's module cache."""

from __future__ import annotations

import sys
import time

import wasmlab
from wasmlab.errors import WasmlabError

SNIPPETS = {
    "c": '#include <stdio.h>\nint main(void) { puts("warm"); return 0; }\n',
    "cpp": '#include <cstdio>\nint main() { std::puts("warm"); return 0; }\n',
    "zig": 'const std = @import("std");\npub fn main() void { std.debug.print("warm\\n", .{}); }\n',
    "go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("warm") }\n',
    "rust": 'fn main() { println!("warm"); }\n',
    "assemblyscript": 'console.log("warm");\n',
}
BUILDS = [("c", "command", {}), ("c", "library", {}), ("cpp", "command", {}), ("cpp", "library", {}),
          ("zig", "command", {}), ("go", "command", {}), ("go", "library", {}), ("rust", "command", {}),
          ("assemblyscript", "command", {}),
          # the size tutorial builds C at -Oz and with LTO: zig builds wasi-libc once per such combination
          ("c", "library", {"opt": "Oz"}), ("c", "library", {"lto": True})]


def main() -> int:
    available = {t.lang for t in wasmlab.list_toolchains() if t.available}
    for lang, kind, options in BUILDS:
        if lang not in available:
            print(f"  skip {lang}: toolchain unavailable")
            continue
        source = SNIPPETS[lang]
        if kind == "library" and lang == "go":
            source = 'package main\n\n//go:wasmexport answer\nfunc answer() int32 { return 42 }\n\nfunc main() {}\n'
        started = time.perf_counter()
        try:
            wasmlab.compile(source, lang, kind=kind, use_cache=False, **options)
        except WasmlabError as exc:
            print(f"  {lang} {kind}: FAILED: {exc}", file=sys.stderr)
            continue
        extra = " ".join(f"{k}={v}" for k, v in options.items())
        print(f"  {lang:<15} {kind:<8} {extra:<8} {time.perf_counter() - started:6.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
