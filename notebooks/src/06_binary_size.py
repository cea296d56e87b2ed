# %% [markdown]
# # 6. Binary size: what you ship to every edge node
#
# **What you will get:** the same small program (sieve the primes below 10,000 and print a summary line)
# written idiomatically in C, Rust, Go, Zig and AssemblyScript, built as WASI commands and **measured**: default
# builds, debug info, `-Oz`, LTO, `wasm-opt`, stripping, gzip and brotli. You will see where the bytes go inside
# each binary and test two claims of the seed article against real numbers:
#
# * *"Link-time optimization (LTO) and careful dependency selection reduce 5MB binaries to 500KB."*
# * *"Compiled binaries are remarkably compact, typically 10-50 MB for complete applications."*
#
# Every size below is in bytes, measured on modules built in this notebook; builds are deterministic, so the
# numbers are the same every time you run it, on any machine.

# %%
import pandas as pd
import plotly.express as px

import wasmlab

# %% [markdown]
# ## One program, five languages
# Each version is what a developer in that language would write: a boolean table, a loop, and the language's
# own way of formatting and printing a line.

# %%
PROGRAMS = {
    "c": r"""#include <stdio.h>
#include <stdlib.h>

int main(void) {
    int n = 10000;
    char *composite = calloc(n + 1, 1);
    int count = 0, last[5] = {0};
    for (int i = 2; i <= n; i++) {
        if (composite[i]) continue;
        last[count++ % 5] = i;
        for (int j = i * i; j <= n; j += i) composite[j] = 1;
    }
    printf("%d primes below %d; the last five:", count, n);
    for (int k = 0; k < 5; k++) printf(" %d", last[(count + k) % 5]);
    printf("\n");
    free(composite);
    return 0;
}
""",
    "rust": r"""fn main() {
    let n = 10000usize;
    let mut composite = vec![false; n + 1];
    let mut primes = Vec::new();
    for i in 2..=n {
        if composite[i] { continue; }
        primes.push(i);
        let mut j = i * i;
        while j <= n { composite[j] = true; j += i; }
    }
    let last: Vec<String> = primes[primes.len() - 5..].iter().map(|p| p.to_string()).collect();
    println!("{} primes below {}; the last five: {}", primes.len(), n, last.join(" "));
}
""",
    "go": """package main

import (
	"fmt"
	"strings"
)

func main() {
	n := 10000
	composite := make([]bool, n+1)
	var primes []string
	for i := 2; i <= n; i++ {
		if composite[i] {
			continue
		}
		primes = append(primes, fmt.Sprint(i))
		for j := i * i; j <= n; j += i {
			composite[j] = true
		}
	}
	fmt.Printf("%d primes below %d; the last five: %s\\n", len(primes), n, strings.Join(primes[len(primes)-5:], " "))
}
""",
    "zig": r"""const std = @import("std");

pub fn main(init: std.process.Init) !void {
    const n = 10000;
    var composite: [n + 1]bool = @splat(false);
    var last: [5]usize = @splat(0);
    var count: usize = 0;
    var i: usize = 2;
    while (i <= n) : (i += 1) {
        if (composite[i]) continue;
        last[count % 5] = i;
        count += 1;
        var j = i * i;
        while (j <= n) : (j += i) composite[j] = true;
    }
    var buffer: [256]u8 = undefined;
    var stdout: std.Io.File.Writer = .init(.stdout(), init.io, &buffer);
    const out = &stdout.interface;
    try out.print("{d} primes below {d}; the last five:", .{ count, n });
    for (0..5) |k| try out.print(" {d}", .{last[(count + k) % 5]});
    try out.print("\n", .{});
    try out.flush();
}
""",
    "assemblyscript": """const n = 10000;
const composite = new StaticArray<bool>(n + 1);
const primes = new Array<i32>();
for (let i = 2; i <= n; i++) {
  if (composite[i]) continue;
  primes.push(i);
  for (let j = i * i; j <= n; j += i) composite[j] = true;
}
console.log(`${primes.length} primes below ${n}; the last five: ${primes.slice(primes.length - 5).join(" ")}`);
""",
}


def build(lang: str, **options) -> wasmlab.Module:
    return wasmlab.compile(PROGRAMS[lang], lang, kind="command", name=f"primes-{lang}", **options)


default = {lang: build(lang) for lang in PROGRAMS}
for lang, module in default.items():
    print(f"{lang:<15} {module.run('wasmtime').output}", end="")

# %% [markdown]
# Same output everywhere. Now the default builds (wasmlab's defaults: `-O2`, DWARF stripped, function names
# kept):

# %%
def names_kept(module: wasmlab.Module) -> bool:
    return any(s.name == "custom:name" for s in module.custom_sections)


pd.DataFrame(
    {
        "lang": lang,
        "bytes": m.size,
        "functions": len(m.functions),
        "code": next(s.size for s in m.sections if s.name == "code"),
        "data": sum(s.size for s in m.sections if s.name == "data"),
        "names": names_kept(m),
    }
    for lang, m in default.items()
)

# %% [markdown]
# Two orders of magnitude between AssemblyScript (a language designed for Wasm, with a tiny runtime) and Go
# (a full runtime with garbage collector and scheduler, 180x larger). C, Zig and Rust sit in between with their
# standard libraries' start-up, allocation and formatting code.
#
# ## Where the bytes go
# The three largest functions of each build say who pays for what:

# %%
rows = []
for lang, m in default.items():
    for rank, f in enumerate(m.top_functions(3), 1):
        rows.append({"lang": lang, "rank": rank, "function": f.name or f"func[{f.index}]", "bytes": f.size,
                     "share of module": f"{f.size / m.size:.1%}"})
pd.DataFrame(rows)

# %% [markdown]
# None of the top functions is the sieve. C pays for `printf` (musl's `printf_core` plus 128-bit soft-float
# for `%Lf`), Rust for its heap allocator (`dlmalloc`: `Vec` and `String` need one), Go for `fmt`'s
# reflection-based printer (`fmt.(*pp).printValue`, which Go's linker spells `fmt.__pp_`) and the scheduler,
# Zig for its start-up code (`startWasi`) and logging. AssemblyScript writes no name section, so its functions
# are only numbers. Formatting the line by hand would shrink C a lot; for Go it would barely matter.
#
# ## The knobs
# For each language, the options that matter for size (the table is in kB, 1 kB = 1,000 bytes; debug builds
# name no path of this machine, so they are the same bytes on yours):
#
# * `strip=False` keeps DWARF debug info (what a plain debug-friendly build ships);
# * the default `strip=True` drops DWARF but keeps the `name` section;
# * `opt="Oz"` optimises for size; `lto=True` adds link-time optimisation across the program and its libraries;
# * Go ignores `-Oz` and LTO; its own knob is the linker flag `-s -w` (no symbol table, no DWARF).

# %%
VARIANTS = {
    "O2 + debug info": dict(strip=False),
    "O2 (default)": dict(),
    "Oz": dict(opt="Oz"),
    "Oz + LTO": dict(opt="Oz", lto=True),
}
GO_VARIANTS = {
    "O2 + debug info": dict(strip=False),
    "O2 (default)": dict(),
    "-ldflags=-s -w": dict(flags=("-ldflags=-s -w",)),
}
builds = {}
for lang in PROGRAMS:
    variants = GO_VARIANTS if lang == "go" else VARIANTS
    if lang == "assemblyscript":  # asc emits no custom sections and has no LTO switch
        variants = {"O2 (default)": dict(), "Oz": dict(opt="Oz")}
    for variant, options in variants.items():
        builds[lang, variant] = build(lang, **options)

sizes = pd.DataFrame(
    [{"lang": lang, "variant": variant, "bytes": m.size, "names": names_kept(m)}
     for (lang, variant), m in builds.items()]
)
COLUMNS = [*VARIANTS, "-ldflags=-s -w"]
(sizes.pivot(index="lang", columns="variant", values="bytes").reindex(columns=COLUMNS) / 1000).round(1)

# %% [markdown]
# What the table shows:
#
# * **Debug info dominates unstripped builds**: Rust ships 5.8 MB of DWARF for its standard library, Zig and C
#   about 1 MB. Stripping it is by far the biggest single saving.
# * **`-Oz` helps Zig a lot (-21%) and AssemblyScript some (-15%); C and Rust not at all** (C's few saved bytes
#   are outweighed by the names it keeps, and Rust grows 4% at `opt-level=z` without LTO).
# * **LTO pays off for Rust** (-22% on top of `-Oz`: the standard library is compiled with the program and
#   dead code goes), barely for Zig (-2%), and not for C (it grows 1%: wasi-libc is already split per function).
# * **Go does not move**: `-s -w` removes 45 KB of names out of 2.5 MB.
#
# Note the `names` column. Left to themselves, zig and `zig cc` drop the `name` section at `-Oz` (zig's `-Oz`
# means ReleaseSmall, which strips symbols); wasmlab asks them for debug info and strips only the DWARF, so
# `strip=True` builds keep their names at every level (they cost a few hundred bytes). Go's `-s` drops names by
# design, and asc never writes them: traps in those builds show `func[N]` instead of function names (notebook
# 13 is about why you want names).

# %%
sizes.pivot(index="lang", columns="variant", values="names").reindex(columns=COLUMNS)

# %% [markdown]
# ## After the compiler: wasm-opt, stripping, compression
# `Module.size_report()` takes a module further: `stripped` drops every custom section (names included),
# `wasm_opt_oz` runs binaryen's `wasm-opt -Oz` on it, and `gzip` / `brotli` are what a CDN actually sends over
# the wire. Applied to the smallest build of each language:

# %%
smallest = {}
for (lang, variant), m in builds.items():
    if lang not in smallest or m.size < smallest[lang][1].size:
        smallest[lang] = (variant, m)
reports = pd.DataFrame(
    [{"lang": lang, "build": variant, **m.size_report()} for lang, (variant, m) in smallest.items()]
).set_index("lang")
reports

# %% [markdown]
# Compared with `stripped`, `wasm-opt` still finds 10-15% in the C, Rust and Zig builds and almost nothing in
# AssemblyScript's (asc already runs binaryen) or Go's. Brotli then cuts every module by 60-80%.
#
# ## Claim 1: "5 MB to 500 KB" with LTO and careful dependency selection
# Take the two binaries here that really weigh megabytes and follow them from their largest to their smallest
# form:

# %%
def path(lang: str, big: str) -> pd.DataFrame:
    variant, best = smallest[lang]
    report = reports.loc[lang]
    steps = [
        (big, builds[lang, big].size),
        ("O2 (default: DWARF stripped)", builds[lang, "O2 (default)"].size),
        (variant, best.size),
        (variant + " + wasm-opt -Oz", report["wasm_opt_oz"]),
        (variant + ", brotli (over the wire)", report["brotli"]),
    ]
    start = steps[0][1]
    return pd.DataFrame(
        {"lang": lang, "step": step, "bytes": size, "factor vs first": f"{start / size:.1f}x"} for step, size in steps
    )


pd.concat([path("rust", "O2 + debug info"), path("go", "O2 + debug info")], ignore_index=True)

# %% [markdown]
# * **Rust: 5.8 MB -> 101 KB is real (58x), but it comes from dropping debug info**, not from LTO. LTO then takes
#   106 KB to 83 KB (the "dependency selection" part: unused standard library code goes), and wasm-opt to 58 KB.
#   From the 5.8 MB starting point the claim is conservative: 500 KB is reached long before LTO enters.
# * **Go: 2.5 MB stays 2.4 MB.** No flag removes the Go runtime; only compression gets it to ~540 KB, and that
#   is transfer size, not what the engine compiles. For Go, "careful dependency selection" means a different
#   compiler (TinyGo) or a different language.
#
# ## Claim 2: "typically 10-50 MB for complete applications"
# Nothing above comes close: these are small programs, but every language's runtime is in them, and the
# largest, Go's, is 2.5 MB. What *does* land in that range is a language that ships its interpreter: the same
# program in Python, compiled by componentize-py into a WebAssembly component with CPython inside.

# %%
PYTHON = """n = 10000
composite = [False] * (n + 1)
primes = []
for i in range(2, n + 1):
    if composite[i]:
        continue
    primes.append(i)
    for j in range(i * i, n + 1, i):
        composite[j] = True
print(f"{len(primes)} primes below {n}; the last five: {' '.join(map(str, primes[-5:]))}")
"""
python = wasmlab.compile(PYTHON, "python", kind="command", name="primes-python")
print(python.kind, "|", python.run("wasmtime:winch").output, end="")

# %% [markdown]
# (componentize-py does not produce byte-identical builds, so its size varies slightly between builds. Above
# 4 MiB `size_report()` compresses with brotli quality 9: quality 11 would take over a minute on 19 MB.)

# %% tags=["nbval-ignore-output"]
print(f"Python component: {python.size / 1e6:.1f} MB; {python.size / default['c'].size:,.0f}x the C build, "
      f"{python.size / default['go'].size:.1f}x the Go build")
over_the_wire = python.size_report()
print(f"over the wire: gzip {over_the_wire['gzip'] / 1e6:.1f} MB, brotli {over_the_wire['brotli'] / 1e6:.1f} MB")

# %% [markdown]
# So "10-50 MB" describes applications that carry an interpreter or a big framework (CPython, a JavaScript
# engine, a .NET runtime). Compiled languages give kilobytes to a few megabytes, and the seed's "remarkably
# compact" holds for them, not for the 10-50 MB figure.
#
# ## All of it on one chart

# %% tags=["nbval-ignore-output"]
chart = pd.concat(
    [
        sizes.rename(columns={"variant": "stage"})[["lang", "stage", "bytes"]],
        pd.DataFrame([{"lang": lang, "stage": "smallest + wasm-opt", "bytes": r["wasm_opt_oz"]}
                      for lang, r in reports.iterrows() if r["wasm_opt_oz"]]),
        pd.DataFrame([{"lang": lang, "stage": "smallest, brotli", "bytes": r["brotli"]}
                      for lang, r in reports.iterrows()]),
        pd.DataFrame([{"lang": "python", "stage": "O2 (default)", "bytes": python.size}]),
    ]
)
fig = px.bar(chart, x="lang", y="bytes", color="stage", barmode="group", log_y=True,
             title="primes: bytes per language and build stage (log scale)")
fig

# %% [markdown]
# ## Exercises
# 1. Replace `printf` in the C version with `puts` and a hand-written integer formatter. How small does the
#    `-Oz` build get, and which functions from the table above disappear?
# 2. Build the Rust version as a *library* instead (`kind="library"`, a `#[no_mangle] pub extern "C" fn` that
#    returns the count): how much of the size was `println!` and the WASI glue?
# 3. For Go, try `flags=("-ldflags=-s -w", "-trimpath")` and `opt="O0"`. Which options change the size at all?
# 4. Gzip and brotli ratios differ per language. Which builds compress best, and why might debug-heavy or
#    data-heavy modules compress better than code-heavy ones?
