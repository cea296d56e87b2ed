# %% [markdown]
# # 11. Microservices and the Component Model
#
# **What you will get:** two small edge services built as WebAssembly **components** that talk through a typed
# interface instead of raw pointers: a quota service written by hand in the WebAssembly text format, and an API
# gateway written in Python that *imports* the quota interface. You will read their interfaces as WIT, see
# why the gateway cannot run alone, **compose** the two into one component offline with `wasm-tools compose`,
# run the result on wasmtime, and then swap in a different quota policy without rebuilding the Python side.
#
# The seed article: *"Wasm Components ... expose well-defined interfaces and can compose with other
# components. This enables build-once-run-anywhere microservices architectures."* Here is what that looks like
# in practice, with its rough edges.

# %%
import re
import subprocess
import tempfile
from pathlib import Path

import wasmlab
from wasmlab.runtimes import get_runtime
from wasmlab.tools import wasm_tools_binary

# %% [markdown]
# ## WIT: the contract
# A core module speaks in `i32`s and pointers into its own memory (notebook 3). A component speaks WIT: strings,
# lists, records, options, results, resources. Interfaces are grouped in packages and versioned. Our contract is
# one interface with one function, how many requests per minute a customer tier may make:
#
# ```wit
# package wasmlab:edge@0.1.0;
#
# interface quota {
#   limit: func(tier: u32) -> u32;
# }
# ```
#
# ## Service 1: a quota component, written by hand in WAT
# A component *wraps* core modules. Inside it, a core module does the arithmetic on `i32`s; `canon lift`
# turns its function into a component function with WIT types; an instance groups the functions into the
# `quota` interface, which the component exports under its full name `wasmlab:edge/quota@0.1.0`.
#
# wasmlab calls a function inside an exported interface as `INTERFACE#FUNC`: the full name
# (`wasmlab:edge/quota@0.1.0#limit`) or the short one (`quota#limit`); world-level functions by their name.

# %%
QUOTA_STANDARD = """(component
  (core module $impl
    ;; requests per minute for a customer tier: 60 * 4^tier, tiers above 3 count as 3
    (func (export "limit") (param $tier i32) (result i32)
      (if (i32.gt_u (local.get $tier) (i32.const 3)) (then (local.set $tier (i32.const 3))))
      (i32.shl (i32.const 60) (i32.shl (local.get $tier) (i32.const 1)))))
  (core instance $i (instantiate $impl))
  (func $limit (param "tier" u32) (result u32) (canon lift (core func $i "limit")))
  (instance $quota (export "limit" (func $limit)))
  (export "wasmlab:edge/quota@0.1.0" (instance $quota)))
"""
quota = wasmlab.compile(QUOTA_STANDARD, "wat", name="quota-standard")
print(quota)
print("limits per tier:", [quota.run("wasmtime", "quota#limit", (tier,)).result for tier in range(5)])
with quota.instantiate("wasmtime") as service:  # a kept instance lists what it can call
    print(service.export_names(), service.call("wasmlab:edge/quota@0.1.0#limit", 2))

# %% [markdown]
# A 200-byte component. Its interface, recovered from the binary (`Module.wit()` runs
# `wasm-tools component wit`):

# %%
print(quota.wit())

# %% [markdown]
# The component's type information travels inside it: any host or tool can read exactly what it offers, with
# parameter names and types, without the source. `component_items()` gives the same as data:

# %%
for item in quota.component_items()["exports"]:
    print(item)

# %% [markdown]
# ## Service 2: an API gateway in Python that imports the quota interface
# The gateway's world says what it needs (`import quota`) and what it offers (`export handle`). Its `handle`
# takes a user, a tier and the request counts of the last minute, asks the quota service for the limit, and
# answers. In Python, componentize-py generates the bindings: the import is a module
# (`wit_world.imports.quota`), the world's exports are methods of `class WitWorld`.

# %%
GATEWAY_WIT = """package wasmlab:edge@0.1.0;

interface quota {
  limit: func(tier: u32) -> u32;
}

world gateway {
  import quota;
  export handle: func(user: string, tier: u32, requests: list<u32>) -> string;
}
"""
GATEWAY_PY = '''from wit_world.imports import quota


class WitWorld:
    def handle(self, user: str, tier: int, requests: list[int]) -> str:
        allowed = quota.limit(tier)
        used = sum(requests)
        verdict = "ok" if used <= allowed else f"throttled, {used - allowed} over"
        return f"{user} (tier {tier}): {used}/{allowed} requests this minute, {verdict}"
'''
gateway = wasmlab.compile(GATEWAY_PY, "python", wit=GATEWAY_WIT, world="gateway", name="gateway")
print(gateway.kind, "| exports:", [(e["name"], e["type"]) for e in gateway.component_items()["exports"]
                                   if e["kind"] == "func"])

# %% [markdown]
# The Python component carries a CPython interpreter, so it weighs ~19 MB (componentize-py builds are not
# byte-for-byte reproducible, so the exact size moves between builds):

# %% tags=["nbval-ignore-output"]
print(f"{gateway.size / 1e6:.1f} MB")

# %% [markdown]
# What does it import? The interpreter needs WASI preview 2 (clocks, random, streams, filesystem, sockets:
# the standard library can use them), plus the one interface *we* asked for:

# %%
imports = [item["name"] for item in gateway.component_items()["imports"]]
print(len(imports), "imported interfaces")
print("ours:", [name for name in imports if not name.startswith("wasi:")])
print("WASI packages:", sorted({re.match(r"wasi:(\w+)/", n).group(1) for n in imports if n.startswith("wasi:")}))

# %% [markdown]
# The world section of its WIT (the full text continues with the definitions of every WASI interface). Besides
# `handle` it exports `exports`, an interface componentize-py uses internally to start the interpreter:

# %%
wit = gateway.wit()
world = wit[wit.index("world root {"):]
world = world[: world.index("\n}\n") + 3]
shown = []
for line in world.splitlines():
    if not line.strip() or line.startswith("    ") or "import wasi:" in line:
        continue  # WASI imports and the body of `exports` (records and variants) are left out
    if line == "  }":
        shown[-1] += " ... }"
        continue
    shown.append(line)
print("\n".join(shown))

# %% [markdown]
# ## The gateway alone cannot start
# wasmtime provides WASI, but nobody provides `wasmlab:edge/quota`. A component with an unsatisfied import
# cannot be instantiated: the engine refuses before any code runs. (We try on `wasmtime:winch`, the baseline
# compiler, which compiles this 19 MB component about three times faster than Cranelift; see notebook 2.)

# %%
try:
    gateway.run("wasmtime:winch", "handle", ("alice", 1, [100, 80]))
except wasmlab.WasmlabError as error:
    print(f"{type(error).__name__}: {error}")

# %% [markdown]
# The message says an implementation is missing but not which one: the import list above is how you find out.
#
# ## Composition: plug the quota service into the gateway
# `wasm-tools compose` takes the root component (the gateway) and *definition* components (the quota service),
# matches exports to imports by interface name and type, and writes one component that contains both, wired
# together. It works offline. (wasm-tools says the command is deprecated in favour of `wac`, the Bytecode
# Alliance's composition tool, which is not installed here; the result is the same kind of component.)

# %%
def compose(root: wasmlab.Module, *definitions: wasmlab.Module, name: str) -> wasmlab.Module:
    with tempfile.TemporaryDirectory() as tmp:
        paths = [root.save(Path(tmp) / "root.wasm")]
        paths += [d.save(Path(tmp) / f"dep{i}.wasm") for i, d in enumerate(definitions)]
        out = Path(tmp) / "composed.wasm"
        cmd = [wasm_tools_binary(), "compose", "-q", str(paths[0]), "-o", str(out)]
        for path in paths[1:]:
            cmd += ["-d", str(path)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip())
        return wasmlab.load(out, name=name)


app = compose(gateway, quota, name="gateway+quota")
app_imports = [item["name"] for item in app.component_items()["imports"]]
print(app.kind, "|", len(app_imports), "imported interfaces; ours still imported:",
      [n for n in app_imports if not n.startswith("wasi:")])

# %% [markdown]
# The quota import is gone: it is satisfied inside. What is left is WASI, which any WASI preview 2 host
# (wasmtime here) provides. The composed component adds only a few kilobytes to the gateway:

# %% tags=["nbval-ignore-output"]
print(f"gateway {gateway.size:,} + quota {quota.size:,} bytes -> composed {app.size:,} bytes")

# %% [markdown]
# ## Run the composed service
# Strings and lists cross the component boundary as typed values: no pointers, no shared memory. The Python
# gateway calls into the WAT quota service through the canonical ABI, inside one component.

# %%
REQUESTS = [
    ("alice", 0, [20, 25]),
    ("bob", 1, [100, 80, 90]),
    ("carol", 2, [300, 200]),
    ("dave", 9, [5000]),
]
for request in REQUESTS:
    print(app.run("wasmtime", "handle", request).result)

# %% [markdown]
# Each `run` makes a fresh instance. A kept instance serves many requests; the first call compiled the 19 MB
# component (seconds), later instances and calls cost milliseconds:

# %% tags=["nbval-ignore-output"]
first = app.run("wasmtime", "handle", REQUESTS[0])
print({phase: round(ms, 2) for phase, ms in first.timings.items()},
      f"(the compile was {get_runtime('wasmtime').compiled_ms[app.sha256]:,.0f} ms)")

# %%
with app.instantiate("wasmtime") as service:
    print(service.call("handle", "erin", 1, [50] * 6))
    print(service.exports.handle("erin", 1, [50] * 4))

# %% [markdown]
# ## Swap the implementation, keep the contract
# Product wants a flat policy for a promotion: 1,000 requests per minute for everyone. A new quota component
# with the *same* interface, composed into the *same* gateway bytes: the Python component is not rebuilt, or
# even touched.

# %%
QUOTA_PROMO = """(component
  (core module $impl
    ;; promotion: 1000 requests per minute, whatever the tier
    (func (export "limit") (param $tier i32) (result i32) (i32.const 1000)))
  (core instance $i (instantiate $impl))
  (func $limit (param "tier" u32) (result u32) (canon lift (core func $i "limit")))
  (instance $quota (export "limit" (func $limit)))
  (export "wasmlab:edge/quota@0.1.0" (instance $quota)))
"""
promo = wasmlab.compile(QUOTA_PROMO, "wat", name="quota-promo")
app_promo = compose(gateway, promo, name="gateway+promo")
for request in REQUESTS:
    print(app_promo.run("wasmtime:winch", "handle", request).result)

# %% [markdown]
# ## When the interfaces do not line up
# Composition checks types. A quota service that answers in `u64` instead of `u32` exports an interface with the
# same name and a different type: `wasm-tools compose` refuses to wire it.

# %%
QUOTA_WRONG = QUOTA_STANDARD.replace('(result u32) (canon lift', '(result u64) (canon lift').replace(
    '(param $tier i32) (result i32)', '(param $tier i32) (result i64)').replace(
    '(i32.shl (i32.const 60) (i32.shl (local.get $tier) (i32.const 1)))',
    '(i64.shl (i64.const 60) (i64.extend_i32_u (i32.shl (local.get $tier) (i32.const 1))))')
wrong = wasmlab.compile(QUOTA_WRONG, "wat", name="quota-u64")
print([line.strip() for line in wrong.wit().splitlines() if "limit:" in line])
try:
    compose(gateway, wrong, name="gateway+wrong")
except RuntimeError as error:
    print("compose refused:", str(error).splitlines()[-1].split(": ", 1)[-1])

# %% [markdown]
# That check is the point of the Component Model for microservices: the contract is verified when services are
# put together, not discovered in production when a number is read back with the wrong width.
#
# %% [markdown]
# ## The same components on node, through jco
# A component is not tied to wasmtime. `jco transpile` (the Bytecode Alliance's JavaScript toolchain) turns one into
# core modules plus the JavaScript that lifts and lowers values across the canonical ABI, and jco's WASI preview 2
# shim supplies the imports: wasmlab's `node` runtime runs components that way, one node process per run. So
# `compare` of a component covers both engines:

# %%
comparison = wasmlab.compare(quota, "quota#limit", (2,), runtimes=["wasmtime", "node"], repeat=1)
print({r.runtime: r.result for r in comparison.results}, "| skipped:", comparison.skipped or "none")

# %% [markdown]
# ## A quota service in JavaScript
# JavaScript snippets build components too. `lang="javascript"` uses StarlingMonkey by default (SpiderMonkey,
# embedded by componentize-js: the engine Fastly runs JavaScript on). Each `export function` becomes a WIT function;
# JavaScript numbers are doubles, so its parameters and result are `f64`. The build takes ~40 s (then the module
# cache answers) and the component carries a whole JavaScript engine:

# %%
JS_QUOTA = "export function limit(tier) { return 60 * 4 ** Math.min(tier, 3) }\n"
js_quota = wasmlab.compile(JS_QUOTA, "javascript", name="js-quota")
print(js_quota.kind, "|", [line.strip() for line in js_quota.wit().splitlines() if "limit" in line])
for engine in wasmlab.runtimes.available_runtimes(("wasmtime:winch", "node")):
    print(f"{engine:>15}:", [js_quota.run(engine, "limit", (tier,)).result for tier in range(5)])

# %% tags=["nbval-ignore-output"]
print(f"{js_quota.size / 1e6:.1f} MB")

# %% [markdown]
# The other JavaScript toolchain, `toolchain="quickjs"`, makes a plain core module instead: QuickJS-NG's WASI
# build with the snippet's text in a data segment and one Wasm export per JavaScript function. No component model
# needed, so every engine with WASI runs the very same bytes, the interpreter wasm3 included:

# %%
qjs_quota = wasmlab.compile(JS_QUOTA, "javascript", toolchain="quickjs", name="qjs-quota")
print(qjs_quota.kind, "|", [(e.name, e.type) for e in qjs_quota.exports if e.name == "limit"])
everywhere = wasmlab.compare(qjs_quota, "limit", (2,), repeat=1)
print("distinct results:", sorted({r.result for r in everywhere.results}))

# %% tags=["nbval-ignore-output"]
print("engines:", ", ".join(r.runtime for r in everywhere.results), "| skipped:", ", ".join(everywhere.skipped))

# %% [markdown]
# ## What worked offline, and what did not
# * Building a component from Python (componentize-py), from WAT (wasmtime's `wat2wasm`), reading their WIT,
#   composing them (`wasm-tools compose`) and running them (wasmtime) all work offline.
# * `wac`, the composition tool the Bytecode Alliance now recommends, is not installable here; `wasm-tools
#   compose` still works and prints a deprecation notice (silenced with `-q` above).
# * wasmlab runs components on wasmtime and, through `jco transpile`, on node (wasm3 and wasmer-python run core
#   modules only); it calls world-level functions by name and interface functions as `INTERFACE#FUNC`
#   (`instance.export_names()` lists both).
#
# ## Exercises
# 1. Add a `premium: func(user: string) -> bool` function to the quota interface (in the WIT and in a WAT
#    component: hint, strings need a memory and `cabi_realloc`, so start with a `u32` user id instead) and let
#    the gateway double the limit for premium users. What must be rebuilt?
# 2. Change the gateway's WIT so that `handle` returns `result<string, string>`, and return an error for
#    unknown tiers. How does the result look from Python (`.result`)?
# 3. Write the quota service in JavaScript for the gateway: pass `wit=` a world that exports the `quota`
#    interface and `export const quota = { limit(tier) { ... } }`, then `compose(gateway, ...)` it.
# 4. Compose the gateway with a quota component whose interface is `wasmlab:edge/quota@0.2.0`. What does
#    `wasm-tools compose` say, and what does that tell you about versioning interfaces?
