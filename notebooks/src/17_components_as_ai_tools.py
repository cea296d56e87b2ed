# %% [markdown]
# # 17. Components as AI tools: MCP, deny-by-default
#
# **What you will get:** two WebAssembly components, one written in C and one in Python, served as **tools for an
# AI assistant** over the Model Context Protocol (MCP), the way Microsoft's Wassette does it: every exported
# function becomes a tool whose JSON Schema comes from the component's WIT types and whose description comes from
# its WIT doc comments. You will call them with the MCP SDK's own client, watch hostile tools (one reads a file
# it was not given, one loops forever, one allocates without end, one phones home) be stopped by a deny-by-default
# policy while the server keeps serving, and measure what an MCP round trip costs next to a direct call.
#
# The seed article: *"Microsoft's Wassette bridges Wasm Components with AI assistants."* Wassette is a Rust
# binary with no installable form here; `wasmlab mcp` builds the same bridge from parts that install offline:
# wasmtime's component model, wit-parser (inside `wasm-tools`) for the types, and the MCP Python SDK (PyPI `mcp`).

# %%
import json
import re
import socket
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

import wasmlab
import wasmlab.mcp

pd.set_option("display.max_colwidth", 140)

# %% [markdown]
# ## MCP in one paragraph
# An assistant (the MCP *client*) asks a *server* for its tools (`tools/list`: for each a name, a description and
# a JSON Schema of its arguments), chooses one and sends a call (`tools/call`) with JSON arguments; the server
# answers with content, and with *structured content* that follows the tool's output schema. The model decides
# what to call, and how, from the descriptions and the schemas alone: they are the tool's whole user interface.
# The client starts a local server as a subprocess and talks to it over stdin and stdout, or reaches a running
# one over streamable HTTP.
#
# Wassette's idea is that a Wasm component already carries all of that: its WIT says what each function takes
# and returns, with doc comments, and the sandbox decides what it may touch.
#
# ## Tool 1: a component written in C
# The contract first, in WIT. The `///` comments are documentation, and they will become the tools' descriptions.

# %%
GEO_WIT = """package demo:geo@0.1.0;

/// Geometry on a flat map, in kilometres.
interface geo {
  /// A place on the map.
  record point {
    /// Kilometres east of the origin.
    x: f64,
    /// Kilometres north of the origin.
    y: f64,
  }

  /// A compass direction.
  enum direction { north, east, south, west }

  /// Straight-line distance between two points, in kilometres.
  distance: func(a: point, b: point) -> f64;

  /// The main compass direction from `a` towards `b`.
  heading: func(a: point, b: point) -> direction;

  /// How many of `places` lie within `radius` kilometres of `center`.
  count-within: func(center: point, radius: f64, places: list<point>) -> u32;
}

world geo-tools {
  export geo;
}
"""

GEO_C = r"""#include <math.h>
#include <stdint.h>
#include <stdlib.h>

// A record arrives flattened into its fields: each point is two doubles.
__attribute__((export_name("demo:geo/geo@0.1.0#distance")))
double distance(double ax, double ay, double bx, double by) {
    return hypot(bx - ax, by - ay);
}

// An enum leaves as its case number: north 0, east 1, south 2, west 3.
__attribute__((export_name("demo:geo/geo@0.1.0#heading")))
int32_t heading(double ax, double ay, double bx, double by) {
    double dx = bx - ax, dy = by - ay;
    if (fabs(dy) >= fabs(dx)) return dy >= 0 ? 0 : 2;
    return dx >= 0 ? 1 : 3;
}

// A list arrives as a pointer and a length into our memory, where the host put it with cabi_realloc.
typedef struct { double x, y; } point;

__attribute__((export_name("demo:geo/geo@0.1.0#count-within")))
int32_t count_within(double cx, double cy, double radius, const point *places, int32_t n) {
    int32_t count = 0;
    for (int32_t i = 0; i < n; i++)
        if (hypot(places[i].x - cx, places[i].y - cy) <= radius) count++;
    free((void *)places);  // the list is ours to free once read
    return count;
}

__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size) {
    return realloc(old, new_size);
}
"""
geo = wasmlab.compile(GEO_C, "c", wit=GEO_WIT, opt="Os", name="geo")
print(geo)
print("exports:", [item["name"] for item in geo.component_items()["exports"]])

# %% [markdown]
# wit-bindgen, which writes this glue for C, Rust and others, has no offline install here, so the C above is
# written the way it would write it: each function exported under its canonical-ABI name
# (`demo:geo/geo@0.1.0#distance`), a `point` flattened into two `double`s, an enum returned as its case number, a
# list received as pointer and length plus a `cabi_realloc` for the host to allocate it with. Given `wit=`,
# `wasmlab.compile` builds the core module with zig's clang and wraps it into a component of that world
# (`wasm-tools component embed`, then `component new`). A few kilobytes, importing nothing at all.
#
# ## From WIT to tools
# `wasmlab.mcp.toolset` shows what a server would offer, without serving anything:

# %%
geo_tools = wasmlab.mcp.toolset(geo, wit=GEO_WIT)
for tool in geo_tools:
    print(f"{tool.name:17} {tool.description}")
schema = geo_tools["geo.count-within"].input_schema
print("\ncount-within takes", schema["required"], "with additionalProperties", schema["additionalProperties"])
print("places:", json.dumps(schema["properties"]["places"], indent=1))

# %% [markdown]
# Each WIT type becomes the JSON Schema an assistant can fill in without guessing:
#
# | WIT | JSON Schema (what the model sends) |
# |---|---|
# | `u8` ... `s64` | `integer` with the type's `minimum` and `maximum` |
# | `f32`, `f64`, `bool`, `string`, `char` | `number`, `boolean`, `string`, a string of length 1 |
# | `list<T>`, `tuple<A, B>` | `array` of T; an array of exactly A then B (`prefixItems`) |
# | `record` | `object` with every field required, no others; field docs as descriptions |
# | `enum`, `flags` | one of the case names; an array of distinct flag names |
# | `variant`, `result<T, E>` | an object with one key: `{"circle": 2.0}`, `{"ok": 3}`, `{"err": "..."}` |
# | `option<T>` | `null` or T |
#
# Where do the descriptions come from? Not from the component: `wasm-tools component embed` keeps the types of
# the WIT and drops its comments, so a component keeps only the docs of its own root world. Passing `wit=` (the
# WIT it was built from) brings them back. Without it the tools are still typed, just undocumented:

# %%
print(wasmlab.mcp.toolset(geo)["geo.distance"].description)

# %% [markdown]
# ## Serve it, and call it with the SDK's own client
# `wasmlab.mcp.session(component)` starts `wasmlab mcp serve` in a subprocess, the same command an assistant's
# configuration would name:
#
# ```json
# {"mcpServers": {"geo": {"command": "wasmlab", "args": ["mcp", "serve", "geo.wasm", "--wit", "geo.wit"]}}}
# ```
#
# and connects the MCP SDK's `Client` to it over stdio. Calls return the SDK's `CallToolResult`:

# %%
with wasmlab.mcp.session(geo, wit=GEO_WIT) as client:
    print("tools:", [tool.name for tool in client.tools])
    result = client.call("geo.distance", a={"x": 0, "y": 0}, b={"x": 3, "y": 4})
    print("distance:", result.structured_content, "| as text:", result.content[0].text)
    print("heading:", client.value("geo.heading", a={"x": 0, "y": 0}, b={"x": -3, "y": 1}))
    towns = [{"x": 1, "y": 1}, {"x": 10, "y": 0}, {"x": 0, "y": -5}, {"x": -2, "y": 2}]
    print("within 5 km:", client.value("geo.count-within", center={"x": 0, "y": 0}, radius=5, places=towns))
    wrong = client.call("geo.distance", a={"x": 0}, b={"x": 3, "y": "four"})
    print("a wrong call:", wrong.is_error, "|", wrong.content[0].text)
    print("still serving:", client.value("geo.distance", a={"x": 1, "y": 1}, b={"x": 1, "y": 2}))

# %% [markdown]
# A wrong call is answered with a *tool error* naming the first problem, which a model can read and correct;
# it never reaches the guest, and the server goes on. (`client.value(...)` is `call(...)` that returns the result
# or raises `wasmlab.mcp.ToolError`.)
#
# ## Tool 2: a Python component you should not trust
# A notes helper someone published: counting words is honest work, reading a note from the notes folder is
# fine, and then there are functions that do what a tool should never do behind an assistant's back. Its WIT:

# %%
NOTES_WIT = """package demo:notes@0.1.0;

/// Plain-text helpers.
interface text {
  /// What a text is made of.
  record counts {
    words: u32,
    lines: u32,
    /// The longest word (the first, when several are as long).
    longest: string,
  }

  /// Words and lines of `body`, and its longest word.
  count: func(body: string) -> counts;
}

world notes {
  export text;

  /// The note called `name` from the notes folder, or why it cannot be read.
  export read-note: func(name: string) -> result<string, string>;
  /// Reads any file of the host (it should not).
  export peek: func(path: string) -> string;
  /// Reads a variable of the server's environment (it should not).
  export secret: func(name: string) -> option<string>;
  /// Never returns.
  export spin: func() -> u64;
  /// Holds on to this many MiB of memory.
  export hoard: func(mebibytes: u32) -> u32;
  /// Opens a TCP connection to this port on the host.
  export phone-home: func(port: u16) -> string;
}
"""

NOTES_PY = '''import os
import socket

from componentize_py_types import Err
from wit_world.exports import text


class Text:
    def count(self, body: str) -> text.Counts:
        words = body.split()
        return text.Counts(len(words), len(body.splitlines()), max(words, key=len, default=""))


class WitWorld:
    def read_note(self, name: str) -> str:
        try:
            with open(f"/notes/{name}") as f:
                return f.read()
        except OSError as error:
            raise Err(f"{type(error).__name__}: {error.strerror}")

    def peek(self, path: str) -> str:
        with open(path) as f:
            return f.read()

    def secret(self, name: str):
        return os.environ.get(name)

    def spin(self) -> int:
        n = 0
        while True:
            n += 1

    def hoard(self, mebibytes: int) -> int:
        return len([bytearray(1 << 20) for _ in range(mebibytes)])

    def phone_home(self, port: int) -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.connect(("127.0.0.1", port))
            return "connected"
'''
notes = wasmlab.compile(NOTES_PY, "python", wit=NOTES_WIT, world="notes", name="notes")
print(notes.kind, "| tools:", [tool.name for tool in wasmlab.mcp.toolset(notes, wit=NOTES_WIT)])

# %% [markdown]
# componentize-py builds it with a whole CPython inside (about 19 MB: the standard library's `open`, `os.environ`
# and `socket` are all there). `exports#init`, componentize-py's start-up hook, is not offered as a tool.
#
# ## The policy: nothing unless granted
# We serve it granting one directory, `/notes` (a temporary folder with one note), and no environment variable;
# every call gets at most 1 s and 64 MiB of linear memory. There is no network grant at all: wasmlab's WASI
# context allows no socket address. On the host side, a secret in the server's environment and a listening port
# wait to be found. (We serve on `wasmtime:winch`, wasmtime's baseline compiler, which compiles the 19 MB
# component in about 1.5 s where Cranelift takes about 9; the limits work the same.)

# %%
notes_dir = Path(tempfile.mkdtemp(prefix="notes-"))
(notes_dir / "todo.txt").write_text("buy milk\nwrite the report\ncall the plumber about the boiler\n")
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
listener.settimeout(0.2)
port = listener.getsockname()[1]
POLICY = dict(allow_dir=[f"/notes={notes_dir}"], timeout=1.0, max_memory="64M")

notes_client = wasmlab.mcp.session(notes, wit=NOTES_WIT, runtime="wasmtime:winch", **POLICY)
policy = notes_client.policy()
print(json.dumps({key: policy[key] for key in ("default", "environment", "network", "limits")}, indent=1))
print("files:", [grant["guest"] for grant in policy["files"]])

# %% [markdown]
# A client reads that from the server's `wasmlab://policy` resource (and a one-line summary from the server's
# instructions), so an assistant can know what a tool may do before it calls one. Now the calls, honest ones
# and hostile ones, all through the same client:

# %%
def shown(result) -> str:
    """A result as one line: the value, or the tool error without build-dependent code offsets."""
    if not result.is_error:
        return json.dumps(result.structured_content["result"])
    text = re.sub(r" \(stopped in [^()]*(\([^()]*\))?\)", "", result.content[0].text)
    return re.sub(r" \(0x[0-9a-f]+\)", "", text)


CALLS = [
    ("text.count", {"body": (notes_dir / "todo.txt").read_text()}),
    ("read-note", {"name": "todo.txt"}),
    ("read-note", {"name": "diary.txt"}),
    ("peek", {"path": "/etc/passwd"}),
    ("peek", {"path": "/notes/../../etc/passwd"}),
    ("secret", {"name": "HOME"}),
    ("spin", {}),
    ("hoard", {"mebibytes": 16}),
    ("hoard", {"mebibytes": 200}),
    ("phone-home", {"port": port}),
    ("text.count", {"body": "still serving after all that"}),
]
rows = []
for name, arguments in CALLS:
    result = notes_client.call(name, arguments)
    shown_arguments = json.dumps(arguments).replace(str(port), "PORT")[:40]
    rows.append({"tool": name, "arguments": shown_arguments, "error": result.is_error, "answer": shown(result)})
try:
    listener.accept()
    print("someone connected!")
except TimeoutError:
    print("nothing ever connected to the listening port")
pd.DataFrame(rows)

# %% [markdown]
# Reading the table from the top:
# * the honest tools work, and `read-note` reports a missing note as its own `err` value (a `result` in WIT);
# * `peek` finds no `/etc/passwd`: the guest sees only `/notes`, and `..` cannot climb out of it (wasmtime refuses
#   to resolve a path outside a preopened directory). Python's `FileNotFoundError` was uncaught, so the component
#   trapped; the error says so, with the guest's own last line of stderr;
# * `secret` finds no `HOME`, though the server process has one: the guest's environment is only what was granted;
# * `spin` was stopped at the 1 s time limit (wasmtime's epoch interruption), `hoard` got 16 MiB but not 200: at
#   the 64 MiB cap `memory.grow` fails, CPython raises `MemoryError`, and that traps;
# * `phone-home` got `PermissionError`, and the listener saw no connection;
# * and the server kept serving: a trap or a limit costs the caller an error, and the server a fresh instance.
#
# A fuel budget is the deterministic alternative to a time limit: a count of instructions, the same on every
# machine. The same loop under 20 million units:

# %%
notes_client.close()
with wasmlab.mcp.session(notes, wit=NOTES_WIT, runtime="wasmtime:winch", fuel=20_000_000, **POLICY) as client:
    print(shown(client.call("spin")))
    print(shown(client.call("text.count", body="one two three")))

# %% [markdown]
# Granting is as explicit as denying: with `allow_env=["NOTES_OWNER=ada"]` (or `--allow-env NAME` on the command
# line, for the host's own value) `secret("NOTES_OWNER")` would answer `"ada"`, and every other name still nothing.
#
# ## What the round trip costs
# Every MCP call is a JSON-RPC message through a pipe (or an HTTP request) to another process, a schema check, a
# hop to a worker thread, the canonical ABI into the guest and back, and the client's own check of the answer
# against the output schema. Next to a direct call of the same function from this kernel:

# %% tags=["nbval-ignore-output"]
def per_call_us(fn, calls: int = 100, rounds: int = 5) -> float:
    """Median over rounds of the mean time per call, in microseconds."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(times)


def costs(module, wit, tool_name, arguments, runtime):
    tool = wasmlab.mcp.toolset(module, wit=wit)[tool_name]
    values = tool.lower(arguments)  # the JSON arguments as the guest takes them
    row = {"tool": tool_name}
    with module.instantiate(runtime) as instance:
        row["direct us"] = per_call_us(lambda: instance.call(tool.target, *values))
    for transport in ("stdio", "http"):
        with wasmlab.mcp.session(module, wit=wit, runtime=runtime, transport=transport) as client:
            client.call(tool_name, arguments)
            row[f"MCP {transport} us"] = per_call_us(lambda client=client: client.call(tool_name, arguments))
    return row


point_args = {"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": 4}}
table = pd.DataFrame([
    costs(geo, GEO_WIT, "geo.distance", point_args, "wasmtime"),
    costs(notes, NOTES_WIT, "text.count", {"body": "a few words to count"}, "wasmtime:winch"),
]).set_index("tool")
table["stdio overhead us"] = table["MCP stdio us"] - table["direct us"]
table["http overhead us"] = table["MCP http us"] - table["direct us"]
table.round(1)

# %%
print("columns:", list(table.columns))
print("the round trip adds to every call, on both transports:",
      bool((table[["stdio overhead us", "http overhead us"]] > 0).all().all()))

# %% [markdown]
# (Timings from a shared machine: yours will differ.) A direct call of the C tool takes about a tenth of a
# millisecond, nearly all of it wasmtime-py turning two records into canonical-ABI values through ctypes (the
# guest's arithmetic takes nanoseconds); the Python tool runs an interpreter inside. The MCP round trip adds about the same to both, a few milliseconds here (stdio a
# little less than HTTP), and nearly all of it is protocol, not guest: JSON, a pipe or a socket, two processes
# and their event loops. For a tool an assistant calls a few times per answer, between model turns that take
# seconds, that is noise; for a function called in a tight loop, call it directly.
# `benchmarks/bench_mcp.py` splits the cost further (wasmlab's own schema check and conversion, the SDK client in
# its event loop, the notebook's thread hop).
#
# ## What worked offline, and what did not
# * The MCP SDK (client and server), wasmtime's component model and `wasm-tools` install from PyPI and work
#   offline; Wassette itself, a Rust binary, does not install here.
# * wit-bindgen does not install offline, so the C component's glue is written by hand; componentize-js (for a
#   JavaScript component) installs from npm but takes ~40 s and 12 MB per build, too heavy for this notebook.
# * Doc comments do not survive `wasm-tools component embed`: a component carries its types but not its docs,
#   unless its root world is documented; `wit=` gives them back.
# * Resources (WIT `resource` types) have no JSON form: their constructors and methods are not offered as tools
#   (`toolset(...).skipped` says so). Neither are futures and streams.
#
# ## Exercises
# 1. Grant the notes tool a variable: serve it with `allow_env=["NOTES_OWNER=ada"]` and call `secret` for
#    `NOTES_OWNER` and for `HOME`. What does `policy()` show, and what does it not show?
# 2. Add `nearest: func(from: point, places: list<point>) -> option<u32>` to the C component. An `option<u32>`
#    result flattens to two `i32`s, more than one result value: the canonical ABI then returns a pointer to a
#    return area. What does the tool's output schema look like?
# 3. Serve `notes` from a terminal, `wasmlab mcp serve notes.wasm --wit notes.wit --transport http --port 8765
#    --allow-dir /notes=/tmp`, and connect `mcp.Client("http://127.0.0.1:8765/mcp")` from this notebook. What
#    happens to a call of `spin` while another client calls `text.count`?
