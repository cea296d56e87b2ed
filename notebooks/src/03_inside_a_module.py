# %% [markdown]
# # 3. Inside a module: imports, exports, sections and linear memory
#
# **What you will get:** you take a WebAssembly module apart. First a small C library (a sensor ring buffer, as
# an IoT gateway keeps the last readings): its imports and exports with their types, its sections byte by byte,
# its linear memory, and which functions take the space. Then you run it and **watch its memory change call by
# call**: which bytes each call writes, how a C string comes back to the host, how the host passes one in, and
# what `malloc` does behind your back. Last, you open a big real-world module (Go's hello world, 2.5 MB) and
# find out where its bytes go.
#
# A Wasm module is not a black box: it is a small, well-specified binary format, and everything an engine
# needs to know about it (what it imports, what it offers, how much memory it starts with) is written down in
# it before a single instruction runs. That is what makes sandboxing it cheap.

# %%
import collections

import pandas as pd

import wasmlab

%load_ext wasmlab

# %% [markdown]
# ## The module: a ring buffer of sensor readings
# Every non-static C function becomes an export. `describe()` formats a report with `snprintf` into a static
# buffer and returns a *pointer*: that is how C hands a string to its host. `alloc` / `release` let the host
# put strings into the module's memory.

# %% tags=["nbval-ignore-output"]
%%wasm c --name ring
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The last 8 readings of a sensor, as an IoT gateway keeps them: a ring buffer. */
#define CAPACITY 8

typedef struct {
    uint32_t head;              /* next slot to write */
    uint32_t count;             /* slots holding data (at most CAPACITY) */
    int32_t samples[CAPACITY];  /* tenths of a degree */
    char label[24];
} Ring;

static Ring ring = {.label = "temperature"};
static char text[128];

Ring *ring_address(void) { return &ring; }

void push(int32_t tenths) {
    ring.samples[ring.head] = tenths;
    ring.head = (ring.head + 1) % CAPACITY;
    if (ring.count < CAPACITY) ring.count++;
}

int32_t average(void) {
    if (ring.count == 0) return 0;
    int64_t sum = 0;
    for (uint32_t i = 0; i < ring.count; i++) sum += ring.samples[i];
    return (int32_t)(sum / (int64_t)ring.count);
}

/* A report for humans, formatted in the module's memory: returns a pointer to a C string. */
const char *describe(void) {
    int32_t avg = average();
    snprintf(text, sizeof text, "%s: %u samples, average %d.%d", ring.label, ring.count, avg / 10, abs(avg % 10));
    return text;
}

/* The host passes strings in through memory it asks the module for. */
char *alloc(uint32_t size) { return malloc(size); }
void release(char *p) { free(p); }

void rename_ring(const char *label) {
    strncpy(ring.label, label, sizeof ring.label - 1);
}

# %% [markdown]
# `%%wasm` bound the module to `ring`. Its interface, exactly as the binary declares it:

# %%
print(ring)
print("imports:", ring.imports or "none")
for export in ring.exports:
    print(f"  export {export.kind:<7} {export.name:<14} {export.type}")

# %% [markdown]
# No imports at all: this module cannot touch files, clocks or the network, because nothing was handed to it.
# Capabilities in Wasm are *imports*, and the import list is the complete list of what a module could ask its
# host for. Besides functions it exports its `memory` and the C stack pointer (`__stack_pointer`, a mutable
# global); `_initialize` is the WASI reactor entry point that runs C constructors (engines call it first).
#
# ## Sections: the binary, byte by byte
# A module is a header and a list of sections, each with an id, an offset and a size. `%wasm_inspect` shows
# the whole picture; the numbers are plain data on the `Module`.

# %% tags=["nbval-ignore-output"]
%wasm_inspect ring

# %%
pd.DataFrame(
    {"section": s.name, "offset": s.offset, "bytes": s.size, "share": f"{s.size / ring.size:.1%}"}
    for s in ring.sections
)

# %% [markdown]
# `code` holds the function bodies, `data` the initial bytes of memory (the `"temperature"` label, the
# format string, libc's tables), `custom:name` the function names that make backtraces readable (wasmlab keeps
# it and strips DWARF by default). Memory, globals, table and segments:

# %%
memory = ring.memories[0]
print(f"memory: {memory.limits.min} pages of 64 KiB = {memory.limits.min * 65536:,} bytes at start, "
      f"max {memory.limits.max or 'unbounded'}")
print("globals:", [(g.valtype, "mutable" if g.mutable else "const") for g in ring.globals])
print("tables:", [(t.element, t.limits.min) for t in ring.tables], "| data segments:", ring.parsed.data_segments)

# %% [markdown]
# 17 pages: wasmlab links C with a 1 MiB stack (16 pages) and the static data (our `Ring`, the text buffer,
# libc's state) takes the 17th.
#
# ## Where the bytes go: functions by size
# We wrote six small functions, yet the module is 21 KB. The largest bodies tell why:

# %%
pd.DataFrame({"function": f.name, "bytes": f.size} for f in ring.top_functions(8))

# %% [markdown]
# `printf_core` (musl's formatter behind `snprintf`) is almost half the module, and it drags in 128-bit
# soft-float arithmetic (`__multf3`, `add_f128`) because `%Lf` *could* be used, even though we only print
# integers. One `snprintf` call costs more than 13 KB: in Wasm, where every byte is shipped to every edge node,
# this is the kind of thing you find by looking, and fix by formatting numbers yourself.

# %%
ours = {"ring_address", "push", "average", "describe", "alloc", "release", "rename_ring", "_initialize"}
mine = sum(f.size for f in ring.functions if f.name in ours)
print(f"{len(ring.functions)} functions, {sum(f.size for f in ring.functions):,} bytes of code; "
      f"ours: {mine:,} bytes; the C library's: {sum(f.size for f in ring.functions) - mine:,} bytes")

# %% [markdown]
# ## Linear memory, call by call
# An instance owns one linear memory: a flat, bounds-checked array of bytes, the only memory the guest can
# touch. From the host we can read and write it. Where does our `Ring` live?

# %%
inst = ring.instantiate("wasmtime")
base = inst.exports.ring_address()
print(f"Ring at address {base:,} (memory is {inst.memory_size():,} bytes)")
print("head, count, samples:", inst.read_array(base, 10, "i32"))
print("label:", repr(inst.read_cstring(base + 40)))

# %% [markdown]
# The struct layout gives every field an offset from `base`: `head` at 0, `count` at 4, `samples[i]` at
# 8 + 4i, `label` at 40. Take a snapshot of the whole memory, push a reading, and diff: exactly the bytes the
# call wrote show up.

# %%
def field(offset: int) -> str:
    if offset < 4:
        return "head"
    if offset < 8:
        return "count"
    if offset < 40:
        return f"samples[{(offset - 8) // 4}]"
    if offset < 64:
        return "label"
    return f"outside Ring (+{offset})"


def show_diff(before: bytes, after: bytes) -> None:
    for start, old, new in inst.diff_memory(before, after):
        where = field(start - base) if 0 <= start - base < 64 else "elsewhere"
        print(f"    {start:>9,}  {where:<12} {old.hex(' '):<24} -> {new.hex(' ')}")


for reading in [215, 220, 218]:
    before = inst.snapshot()
    inst.exports.push(reading)
    print(f"push({reading}):")
    show_diff(before, inst.snapshot())

# %% [markdown]
# Three calls, three bytes of `head`, `count` and one sample each (little-endian: 215 is `d7`). Fill the ring
# past its capacity and watch it wrap: the ninth push overwrites `samples[0]` and `count` stops at 8.

# %%
for reading in [221, 224, 226, 225, 223]:
    inst.exports.push(reading)
before = inst.snapshot()
inst.exports.push(230)
print("push(230), the ninth reading:")
show_diff(before, inst.snapshot())
print("head, count, samples:", inst.read_array(base, 10, "i32"))
print("average (tenths):", inst.exports.average())

# %% [markdown]
# ## Strings out: a pointer and a NUL
# `describe()` returns an address; the string is in the module's memory until something overwrites it.

# %%
address = inst.exports.describe()
print(f"describe() returned {address:,}")
print(inst.read_cstring(address))

# %% [markdown]
# ## Strings in: ask the module for memory, write, call
# The host cannot put a string in the guest's memory wherever it likes (it would overwrite something). The
# usual protocol: ask the guest's allocator for space, write the bytes there, pass the pointer, free it.

# %%
label = b"server room\0"
before = inst.snapshot()
pointer = inst.exports.alloc(len(label))
inst.write_memory(pointer, label)
inst.exports.rename_ring(pointer)
inst.exports.release(pointer)
print(f"alloc({len(label)}) returned {pointer:,}; memory is now {inst.memory_size():,} bytes")
show_diff(before, inst.snapshot())
print(inst.read_cstring(inst.exports.describe()))

# %% [markdown]
# More changed than the label. The first `malloc` grew memory by one page (`memory.grow`: 1,114,112 ->
# 1,179,648 bytes) and put its heap there, so our string sits 16 bytes into the new page, after a block header
# (1,114,120); the allocator also updated its own state in the static data (the other bytes marked
# "elsewhere"). A snapshot diff is the quickest way to see every side effect of a call, including the ones you
# did not write.
#
# ## The MemoryViewer widget
# The same view, interactive: hex and ASCII of one page, values as a typed array, the bytes the last call
# changed highlighted, and buttons to call exports. It wraps the live instance.

# %% tags=["nbval-ignore-output"]
from wasmlab.notebook import MemoryViewer

viewer = MemoryViewer(inst, row_size=16, page_size=64, dtype="i32")
viewer.goto(base)
viewer.call("push", 199)
viewer

# %% [markdown]
# What the widget highlighted, as data (`changed` holds `[start, end)` ranges of the last call):

# %%
print("changed ranges:", [(start - base, end - base) for start, end in viewer.changed], "(offsets from base)")
print("as i32 on this page:", viewer.values()[:10])

# %% [markdown]
# ## A big real-world module: Go's hello world
# Four lines of Go, compiled as a WASI command. The Go runtime (garbage collector, goroutine scheduler,
# reflection for `fmt`) comes along.

# %%
HELLO_GO = """package main

import "fmt"

func main() {
	fmt.Println("hello from Go on WASI")
}
"""
hello = wasmlab.compile(HELLO_GO, "go", kind="command", name="hello-go")
print(hello)
print(hello.run("wasmtime").output, end="")
print(f"{len(hello.functions):,} functions; imports from:", sorted({i.module for i in hello.imports}))

# %% [markdown]
# Its imports are the WASI calls the Go runtime may make (it needs clocks, random numbers and `poll_oneoff` for
# its scheduler even for hello world):

# %%
print(", ".join(i.name for i in hello.imports))

# %% [markdown]
# Where the 2.5 MB go, by section:

# %%
pd.DataFrame(
    {"section": s.name, "bytes": s.size, "share": f"{s.size / hello.size:.1%}"}
    for s in sorted(hello.sections, key=lambda s: -s.size)[:5]
)

# %% [markdown]
# Code is 62%, and the data section (type descriptors, strings, tables the runtime needs at start-up) 36%.
# Grouping function bodies by Go package shows whose code it is:

# %%
by_package = collections.Counter()
for f in hello.functions:
    by_package[(f.name or "?").split(".")[0]] += f.size
code = sum(by_package.values())
pd.DataFrame(
    {"package": package, "bytes": size, "share of code": f"{size / code:.1%}"}
    for package, size in by_package.most_common(8)
)

# %% [markdown]
# Almost three quarters of the code is `runtime`: the price of Go's garbage collector and scheduler inside every
# module, paid once per module rather than per line of your code. The largest single functions:

# %%
pd.DataFrame({"function": f.name, "bytes": f.size} for f in hello.top_functions(6))

# %% [markdown]
# `fmt`'s reflection-driven printer (`printValue`) is the largest: `fmt.Println` of one string pulls in the
# machinery that can print any Go value. The ModuleExplorer widget lets you browse all 1,600 functions (type in
# its filter box, e.g. `fmt.` or `gc`):

# %% tags=["nbval-ignore-output"]
from wasmlab.notebook import ModuleExplorer

explorer = ModuleExplorer(hello)
explorer.top = 15
explorer

# %%
inst.close()

# %% [markdown]
# ## Exercises
# 1. Replace the `snprintf` in `describe()` with hand-written integer formatting. How many bytes does the module
#    lose, and which functions disappear from `top_functions`?
# 2. Make `CAPACITY` 1000 and push 2,000 readings from Python. Does the module's memory grow? (Look at where
#    `ring` lives and at `memory_size()`.)
# 3. Call `rename_ring` with a 40-character label. `strncpy` stops at 23 bytes: use `show_diff` to prove
#    `samples` was not overwritten. What would plain `strcpy` have done?
# 4. Compile `HELLO_GO` with `flags=("-ldflags=-s -w",)`: which section shrinks, and by how much?
