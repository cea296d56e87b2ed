# %% [markdown]
# # 13. Debugging: traps, backtraces, names and DWARF
#
# **What you will get:** a C service with a bug three calls deep, and every tool to find it: the trap and its
# Wasm backtrace on four engines, what the `name` section buys you (and what a fully stripped binary looks
# like), DWARF debug info that turns a backtrace into `file:line` and the offending source line, how to map a
# production trap to source with a debug build you kept on the side, a sanitizer that explains the trap in
# words, and compile errors with their diagnostics, from Python and from a `%%wasm` cell.
#
# The seed article: *"Debugging: Wasm stack traces don't immediately map to source code. Tools are
# improving: source maps, enhanced error reporting..."* Here is how far the tools go today, offline.

# %%
import os
import re
import subprocess
import tempfile

import wasmlab
from wasmlab.runtimes import available_runtimes
from wasmlab.tools import strip_all, wasm_tools_binary

%load_ext wasmlab

RUNTIMES = available_runtimes(["wasmtime", "node", "wasm3", "wasmer"])  # a missing one gets a note

# %% [markdown]
# ## The service and its bug
# An analytics endpoint keeps order totals per customer. `report(customer)` calls `average_for`, which calls
# `average_cents`, which divides by the number of orders. A customer with no orders yet has zero of them.
# (`noinline` keeps the three functions apart: at `-O2` clang would fold such small functions into one, and
# the backtrace would show a single frame. Real code is usually big enough not to need the hint.)

# %%
ORDERS_C = r"""#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Order statistics for an edge analytics service: "customer:amount" records. */
typedef struct { int orders; int total_cents; } Stats;

static Stats customers[16];
static char input[64];

char *input_buffer(void) { return input; }

static __attribute__((noinline)) Stats *lookup(const char *customer) {
    unsigned h = 0;
    while (*customer && *customer != ':') h = h * 31 + (unsigned char)*customer++;
    return &customers[h % 16];
}

void record(const char *line) {
    Stats *s = lookup(line);
    const char *colon = strchr(line, ':');
    s->orders++;
    s->total_cents += colon ? (int)strtol(colon + 1, 0, 10) : 0;
}

static __attribute__((noinline)) int average_cents(const Stats *s) {
    return s->total_cents / s->orders;  /* the bug: no orders yet */
}

static __attribute__((noinline)) int average_for(const char *customer) {
    return average_cents(lookup(customer));
}

int report(const char *customer) {
    return average_for(customer) / 100;
}
"""
orders = wasmlab.compile(ORDERS_C, "c", name="orders")
print(orders, "| exports:", orders.export_names())

# %% [markdown]
# A session: record two orders for alice, ask for her average (in euros), then ask for bob's.

# %%
def session(module: wasmlab.Module, runtime: str, who: str = "bob"):
    """Record alice's orders, report alice, then report `who`: (alice's average, the Trap or None)."""
    with module.instantiate(runtime) as instance:
        buffer = instance.exports.input_buffer()

        def text(s: str) -> int:
            instance.write_memory(buffer, s.encode() + b"\0")
            return buffer

        for line in ["alice:12050", "alice:8020"]:
            instance.exports.record(text(line))
        alice = instance.exports.report(text("alice"))
        try:
            instance.exports.report(text(who))
            return alice, None
        except wasmlab.Trap as trap:
            return alice, trap


alice, trap = session(orders, "wasmtime")
print("alice's average:", alice, "euros")
print(type(trap).__name__, "|", trap)
print("code:", trap.code)
print(trap.details())

# %% [markdown]
# The trap is a value, not a crash: the engine stopped the guest at the faulting instruction, the host (this
# kernel) is fine, and wasmlab turned the engine's error into a `Trap` with a canonical `code` and the Wasm
# backtrace, innermost frame first: function name and the byte offset of the instruction in the module.
#
# ## Same bug, four engines
# Every engine reports the same trap at the same offsets (wasmlab maps each engine's own format to one):

# %%
for runtime in RUNTIMES:
    _, trap = session(orders, runtime)
    print(f"{runtime:<9} {trap.code:<24} {' <- '.join(trap.frames)}")

# %% [markdown]
# ## Names: what `strip` keeps and `strip_all` removes
# Function names live in an optional custom section, `name`. wasmlab's default `strip=True` removes DWARF but
# keeps it; fully stripping a binary (what size-obsessed release pipelines do, `wasm-tools strip --all`)
# removes it too:

# %%
stripped = wasmlab.load(strip_all(orders.bytes), name="orders-stripped-all")
print(f"{orders.size} bytes with names, {stripped.size} without:",
      [s.name for s in orders.custom_sections], "->", [s.name for s in stripped.custom_sections])
for runtime in available_runtimes(["wasmtime", "node"], note=False):
    _, trap = session(stripped, runtime)
    print(f"{runtime:<9} {' <- '.join(trap.frames)}")

# %% [markdown]
# Without names, internal functions are `func[9]` and `func[8]`; only `report` is still named, because its
# name is in the export section, which no strip removes. 175 bytes saved, and a backtrace nobody can read.
# Keep names in what you deploy. (zig and `zig cc` drop the `name` section by themselves at `-Os`/`-Oz`;
# wasmlab asks them for debug info there and strips only the DWARF, so `strip=True` keeps names at every level.)
#
# ## DWARF: file and line
# `strip=False` keeps the DWARF debug info the compiler emits with `-g`. wasmtime reads it and adds
# `at file:line:column` to each frame:

# %%
orders_debug = wasmlab.compile(ORDERS_C, "c", name="orders-debug", strip=False, flags=("-g",))
print(f"{orders_debug.size:,} bytes, DWARF: {orders_debug.parsed.has_dwarf}")
print("debug sections:", [s.name.removeprefix("custom:") for s in orders_debug.custom_sections if ".debug" in s.name])
_, trap = session(orders_debug, "wasmtime")
for frame in trap.frames:
    print(frame)  # paths are relative to the snippet and name nothing of this machine: reproducible anywhere

# %% [markdown]
# From there to the source line is a few lines of Python:

# %%
LOCATION = re.compile(r"^(?P<func>\S+) \((?P<offset>0x[0-9a-f]+)\) at (?P<file>.+):(?P<line>\d+):(?P<column>\d+)$")


def show_source(frames: list[str], source: str) -> None:
    lines = source.splitlines()
    for depth, frame in enumerate(frames):
        where = LOCATION.match(frame)
        if not where:
            print(f"#{depth} {frame} (no line information)")
            continue
        line, column = int(where["line"]), int(where["column"])
        print(f"#{depth} {where['func']} at {os.path.basename(where['file'])}:{line}")
        print(f"    {line:>3} | {lines[line - 1]}")
        print(f"        | {' ' * (column - 1)}^")


show_source(trap.frames, ORDERS_C)

# %% [markdown]
# Line 27, column 27: the division in `average_cents`, reached from line 31 and line 35. That is the whole
# bug report.
#
# The other engines do not read DWARF: their frames stay `name (offset)` even for the debug build.

# %%
for runtime in available_runtimes(["node", "wasm3", "wasmer"], note=False):
    _, trap = session(orders_debug, runtime)
    print(f"{runtime:<7} {trap.frames[0]}")

# %% [markdown]
# ## Mapping a production trap to source
# You ship the small build, without DWARF (1.6 KB here instead of 870 KB). When it traps in production, on any
# engine, the report has offsets. The debug build is the same code plus custom sections appended after it, so
# its offsets are the same, and `wasm-tools addr2line` maps them to lines:

# %%
def code_section(module: wasmlab.Module) -> bytes:
    section = next(s for s in module.sections if s.name == "code")
    return module.bytes[section.offset : section.offset + section.size]


print("same code, same offsets in both builds:", code_section(orders) == code_section(orders_debug))

production_engine = next((rt for rt in RUNTIMES if rt != "wasmtime"), "wasmtime")  # node, when it is here
_, production_trap = session(orders, production_engine)  # the deployed build, without DWARF
offsets = [re.search(r"\((0x[0-9a-f]+)\)", frame).group(1) for frame in production_trap.frames]
print("offsets from the production trap:", offsets)

with tempfile.TemporaryDirectory() as tmp:
    debug_file = orders_debug.save(os.path.join(tmp, "orders-debug.wasm"))
    mapped = subprocess.run([wasm_tools_binary(), "addr2line", str(debug_file), *offsets],
                            capture_output=True, text=True, check=True).stdout
print(mapped, end="")

# %% [markdown]
# Keep the debug build of every release (or its DWARF, split off) next to the deployed binary, keyed by the
# module's sha256, and every trap report from every engine becomes a source location. This is the Wasm
# equivalent of keeping symbol files for native crash dumps.
#
# ## Let the compiler explain: a sanitizer build
# At `-O0`, zig's clang builds C with UndefinedBehaviorSanitizer. The division is checked before it happens,
# and the runtime prints what went wrong on stderr before trapping. The price: 100 KB and WASI imports for the
# panic handler.

# %%
orders_checked = wasmlab.compile(ORDERS_C, "c", name="orders-ubsan", opt="O0")
print(f"{orders_checked.size:,} bytes, {len(orders_checked.imports)} WASI imports")
with orders_checked.instantiate("wasmtime") as instance:
    buffer = instance.exports.input_buffer()
    instance.write_memory(buffer, b"bob\0")
    try:
        instance.exports.report(buffer)
    except wasmlab.Trap as checked_trap:
        print("trap:", checked_trap.code)
        print(" <- ".join(checked_trap.frames))
    print("stderr:", instance.stderr.decode())

# %% [markdown]
# The trap is now `unreachable` inside the sanitizer's panic handler, and the message names the problem:
# `panic: division by zero`. A useful build to reproduce a bug with, not one to deploy.
#
# ## Compile errors and their diagnostics
# Forget one `#include` and the compiler refuses. From Python, `wasmlab.compile` raises `CompileError`: its
# message is one line (the first error, with file, line and column), and `diagnostics` holds the compiler's
# full output with the offending line and a caret.

# %%
BROKEN_C = ORDERS_C.replace("#include <stdlib.h>\n", "")
try:
    wasmlab.compile(BROKEN_C, "c", name="broken")
except wasmlab.CompileError as error:
    print("message:", error)
    print("--- diagnostics ---")
    print(error.diagnostics)

# %% [markdown]
# Every language reports through the same error type, in its own words. Rust's borrow checker, for example:

# %%
BROKEN_RUST = """#[no_mangle]
pub extern "C" fn total() -> i32 {
    let orders = vec![12050, 8020];
    let first = &orders[0];
    drop(orders);
    *first
}
"""
try:
    wasmlab.compile(BROKEN_RUST, "rust", name="broken-rust")
except wasmlab.CompileError as error:
    print("message:", error)
    print("--- diagnostics ---")
    print(error.diagnostics)

# %% [markdown]
# In a `%%wasm` cell the same error stops the cell with a short `UsageError` (no Python traceback) followed by
# the diagnostics. Line numbers count from the first line of the cell body, and the name (`broken_magic`) is
# not bound, so a failed compile never replaces a module you had. This cell fails on purpose:

# %% tags=["raises-exception"]
%%wasm c --name broken_magic
int average_cents(int total, int orders) {
    return total / orders
}

# %%
print("broken_magic defined:", "broken_magic" in globals())

# %% [markdown]
# ## Checklist
# * Traps are values: catch `wasmlab.Trap`, read `code` and `frames`; the engine and the host survive.
# * Keep the `name` section in what you deploy (`strip=True`, not `strip --all`); at `-Oz` add `-g` to keep it.
# * Keep a debug build (`strip=False, flags=("-g",)`) of each release: same code, same offsets, so
#   `wasm-tools addr2line` maps any engine's trap offsets to lines. wasmtime does it for you when DWARF is in
#   the module it runs.
# * To understand a trap rather than locate it, rebuild with a sanitizer (`opt="O0"` with zig's clang).
#
# ## Exercises
# 1. Fix `average_cents` so that a customer without orders averages 0, rebuild, and check that all four engines
#    agree on `report("bob")` with `wasmlab.compare` (hint: `compare` needs the string in memory first, so use
#    `session` with a small change instead).
# 2. Remove the `noinline` attributes and rebuild the default and the debug build. How many frames does the
#    trap have now, and which line does wasmtime blame?
# 3. `record("bob")` (no colon) works thanks to the `colon ? ... : 0` guard. Remove the guard: `strchr`
#    returns NULL, and `strtol(NULL + 1, ...)` reads address 1. Does any engine trap? Why not? (Linear memory
#    starts at address 0 and is all readable.)
# 4. Make the Rust snippet compile by cloning the value before `drop`, then make it trap with an index out of
#    bounds (`orders[5]`). What does a Rust panic look like as a Wasm trap?
