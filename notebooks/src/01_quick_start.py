# %% [markdown]
# # 1. Quick start: one function, eight languages, every engine
#
# **What you will get:** in five minutes you compile the same function from eight languages to WebAssembly,
# run every build on every engine installed here, and see which engine is fastest for a call, all without
# leaving the notebook. Everything runs offline on this machine: real compilers, real engines.
#
# The seed article promises *portability* ("a single compiled Wasm binary runs on any platform with a Wasm
# runtime") and *language independence* ("write in Rust, C, C++, Go, AssemblyScript..."). This notebook checks
# both claims on one small function.

# %%
import wasmlab

%load_ext wasmlab

# %% [markdown]
# ## Which compilers and engines does this machine have?
# `%wasm_toolchains` and `%wasm_runtimes` list them, with the install step for anything missing.

# %% tags=["nbval-ignore-output"]
%wasm_toolchains

# %% tags=["nbval-ignore-output"]
%wasm_runtimes

# %% [markdown]
# ## One cell, one module
# `%%wasm LANG` compiles the cell and binds the module to a name. `--run` runs it right away; `--invoke` calls an
# export with arguments. A C *library* exports every non-static function.

# %% tags=["nbval-ignore-output"]
%%wasm c --name fib_c --run wasmtime --invoke fib 20 -q
int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

# %% [markdown]
# The timings change from run to run; the answer does not. The module is a plain Python object: look inside it,
# or run it again from Python.

# %%
print(fib_c.run("wasmtime", "fib", (20,)).result)
print(fib_c)
for export in fib_c.exports:
    print(f"{export.kind:<7} {export.name:<16} {export.type}")

# %% [markdown]
# ## The same function in every language
# Each snippet below is what a developer in that language would write. `wasmlab.compile` picks the right
# toolchain and options (a *library*: exported functions, WASI only where the language needs it).

# %%
fib_sources = {
    "wat": """(module
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_s (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2))))))))""",
    "c": "int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }",
    "cpp": 'extern "C" int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }',
    "zig": "export fn fib(n: i32) i32 {\n    return if (n < 2) n else fib(n - 1) + fib(n - 2);\n}",
    "rust": '#[no_mangle]\npub extern "C" fn fib(n: i32) -> i32 {\n    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }\n}',
    "go": "package main\n\n//go:wasmexport fib\nfunc fib(n int32) int32 {\n\tif n < 2 {\n\t\treturn n\n\t}\n"
          "\treturn fib(n-1) + fib(n-2)\n}\n\nfunc main() {}",
    "assemblyscript": "export function fib(n: i32): i32 {\n  return n < 2 ? n : fib(n - 1) + fib(n - 2);\n}",
}
modules = {lang: wasmlab.compile(source, lang, name=f"fib-{lang}") for lang, source in fib_sources.items()}
for lang, module in modules.items():
    print(f"{lang:<15} fib(20) = {module.run('wasmtime', 'fib', (20,)).result}")

# %% [markdown]
# Same answer from seven languages. The modules are very different inside, though: the size and the imports
# show what each language's runtime brings along (Go ships a garbage collector and a scheduler; WAT ships
# exactly what you wrote).

# %%
import pandas as pd

pd.DataFrame(
    {
        "lang": lang,
        "bytes": module.size,
        "functions": len(module.functions),
        "imports": ", ".join(sorted({i.module for i in module.imports})) or "-",
    }
    for lang, module in modules.items()
)

# %% [markdown]
# Python compiles too, through `componentize-py`: the result is a WebAssembly *component* that carries a whole
# CPython interpreter (about 19 MB), with `fib` exported through a typed WIT interface. It takes ~10 s to build.

# %%
fib_py = wasmlab.compile("def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n", "python")
print(fib_py.kind, [(e["name"], e["type"]) for e in fib_py.summary()["exports"] if e["kind"] == "func"])
print("fib(20) =", fib_py.run("wasmtime", "fib", (20,)).result)

# %% [markdown]
# JavaScript compiles both ways. `toolchain="quickjs"` puts the QuickJS-NG interpreter (about 1 MB) and the snippet
# into one core module that every engine with WASI runs; JavaScript numbers are doubles, so `fib` takes and returns
# an `f64`. The default toolchain, StarlingMonkey, makes a component instead (notebook 11).

# %%
fib_js = wasmlab.compile("export function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }\n",
                         "javascript", toolchain="quickjs")
print(fib_js.kind, [(e.name, e.type) for e in fib_js.exports if e.name == "fib"])
print("fib(20) =", fib_js.run("wasmtime", "fib", (20,)).result)

# %% [markdown]
# ## Every engine, side by side
# `wasmlab.compare` runs the same call on every available engine (several times, interleaved) and checks that
# they agree. Engines are out-of-process where they must be (wasmer needs Python 3.10, wasm3 and wasmer hold the
# GIL), and each engine's time is measured next to it, so the pipe never pollutes a timing.

# %%
comparison = wasmlab.compare(modules["c"], "fib", (25,), repeat=5)
comparison.table[["runtime", "result", "agrees"]]

# %% tags=["nbval-ignore-output"]
comparison.table[["runtime", "compile_ms", "instantiate_ms", "call_ms"]].round(3)

# %% tags=["nbval-ignore-output"]
comparison.plot()

# %% [markdown]
# `wasmer-sdk` runs WASI *commands* only, so it sits out a call comparison:

# %%
comparison.skipped

# %% [markdown]
# ## Exercises
# 1. Change `fib` to take an `i64` (`long long` in C, `i64` in Rust). What changes in `fib_c.exports`?
# 2. Compile the C version with `opt="O0"` and `opt="Oz"`: compare sizes and `call_ms`.
# 3. Which engine is slowest here, and by how much? Notebook 2 explains why (hint: it is an interpreter).
