# %% [markdown]
# # 12. State management: what survives, and where it lives
#
# **What you will get:** a small edge service in C that counts visits in three places (in its own linear
# memory, in the host's key-value store, and in an external store reached through a host function) and runs on
# four engines (wasmtime, node, wasm3, Wasmer). You will see exactly which state survives a call, an instance,
# and a runtime restart; why each engine's store is its own island; how reusing instances (the seed's fix for
# start-up latency) leaks one user's data into the next request; and two ways to get reuse without the leak.
#
# The seed article: *"Wasm modules are stateless by default. Distributed state management (caching, shared
# memory) requires careful architectural design."* and *"Solutions include module pooling and instance reuse
# patterns."* Both statements are true, and they pull in opposite directions.

# %%
import collections
import time

import pandas as pd

import wasmlab
from wasmlab.runtimes import available_runtimes, get_runtime
from wasmlab.runtimes.base import BUILTIN_HOST_FUNCTIONS

RUNTIMES = available_runtimes(["wasmtime", "node", "wasm3", "wasmer"])  # a missing one gets a note

# %% [markdown]
# ## The host's key-value store
# Every wasmlab runtime links a built-in host module called `wasmlab`. Among its functions, a tiny key-value
# store, the same shape as the KV services edge platforms offer (keys and values are bytes, passed as pointer
# and length in the guest's memory):

# %%
for name in ("kv_get", "kv_set"):
    signature, description = BUILTIN_HOST_FUNCTIONS[name]
    print(f"wasmlab.{name} {signature}\n    {description}")

# %% [markdown]
# ## The service
# `hits_in_memory` counts in a C global, which lives in the instance's linear memory. `hits_in_kv(user)`
# counts per user in the host's store, under the key `hits:<user>`, with the value as decimal text.
# `stored_hits(user)` only reads it. A C declaration with `import_module` / `import_name` attributes is all it
# takes to call a host function.

# %%
SERVICE_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((import_module("wasmlab"), import_name("kv_get")))
int kv_get(const char *key, int key_len, char *out, int out_cap);
__attribute__((import_module("wasmlab"), import_name("kv_set")))
void kv_set(const char *key, int key_len, const char *value, int value_len);

/* 1. State in the instance: a global in linear memory. */
static int hits = 0;

int hits_in_memory(void) { return ++hits; }

/* 2. State in the host: the key-value store, one key per user. */
static int key_for(int user, char *key) { return snprintf(key, 32, "hits:%d", user); }

int stored_hits(int user) {
    char key[32], value[16];
    int n = kv_get(key, key_for(user, key), value, sizeof value - 1);
    if (n < 0) return 0;  /* no such key yet */
    value[n] = 0;
    return atoi(value);
}

int hits_in_kv(int user) {
    int count = stored_hits(user) + 1;
    char key[32], value[16];
    int key_len = key_for(user, key);
    kv_set(key, key_len, value, snprintf(value, sizeof value, "%d", count));
    return count;
}

/* 3. Per-request data that should not outlive the request. */
static char last_visitor[32];
static char reply[96];
static char name[32];

char *name_buffer(void) { return name; }

const char *greet(const char *who) {
    if (last_visitor[0])
        snprintf(reply, sizeof reply, "Hello %s! (the previous visitor was %s)", who, last_visitor);
    else
        snprintf(reply, sizeof reply, "Hello %s!", who);
    strncpy(last_visitor, who, sizeof last_visitor - 1);
    return reply;
}
"""
service = wasmlab.compile(SERVICE_C, "c", name="service")
print(service)
print("imports:", [f"{i.module}.{i.name} {i.type}" for i in service.imports])

# %% [markdown]
# It imports only the two store functions: no WASI, no files, no clock. Start every engine's store empty:

# %%
for runtime in RUNTIMES:
    get_runtime(runtime).kv_clear()

# %% [markdown]
# ## 1. Stateless by default
# `module.run()` is what a serverless edge platform does per request: a fresh instance, one call, thrown away.
# A global in linear memory starts from its initial value every time.

# %%
pd.DataFrame(
    {"runtime": rt, "calls with run()": [service.run(rt, "hits_in_memory").result for _ in range(3)]}
    for rt in RUNTIMES
)

# %% [markdown]
# ## 2. Instance reuse: state lives as long as the instance
# Keep one instance and call it repeatedly: the global keeps counting. A new instance starts over: the memory of
# the old one is gone with it.

# %%
rows = []
for rt in RUNTIMES:
    with service.instantiate(rt) as first:
        kept = [first.exports.hits_in_memory() for _ in range(3)]
    with service.instantiate(rt) as second:
        fresh = [second.exports.hits_in_memory() for _ in range(2)]
    rows.append({"runtime": rt, "same instance": kept, "new instance": fresh})
pd.DataFrame(rows)

# %% [markdown]
# ## 3. The host's store: state that outlives instances
# Now count in the key-value store, with a fresh instance for every request, for two users:

# %%
rows = []
for rt in RUNTIMES:
    alice = [service.run(rt, "hits_in_kv", (1,)).result for _ in range(3)]
    bob = [service.run(rt, "hits_in_kv", (2,)).result for _ in range(2)]
    rows.append({"runtime": rt, "user 1 (alice)": alice, "user 2 (bob)": bob})
pd.DataFrame(rows)

# %% [markdown]
# The count survives every instance, on every engine. The host can look into each engine's store too, with
# `kv_items()` (node's, wasm3's and Wasmer's live in their worker processes and come over the worker protocol):

# %%
for rt in RUNTIMES:
    print(f"{rt:<9} store: {get_runtime(rt).kv_items()}")

# %% [markdown]
# ## Each engine's store is an island
# Send alice's next requests round-robin to the four engines, as a load balancer spreading traffic over edge
# nodes would. Every node has its own store, so every node has its own idea of her count:

# %%
for request, rt in enumerate(RUNTIMES * 2, 1):
    print(f"request {request} -> {rt:<9} alice's visit count: {service.run(rt, 'hits_in_kv', (1,)).result}")

# %% [markdown]
# Alice has now made 20 requests (3 per engine above, then these 8); every node believes 5. This is the seed's
# "distributed state requires careful design" in eight lines of output: local state is fast and simple, and
# wrong as soon as requests for one user reach more than one node.
#
# ## Durability: a store is as durable as what holds it
# wasmtime's store lives in this kernel's process; node's, wasm3's and Wasmer's live in their worker processes.
# Stopping node's worker (a crash, a time limit, a redeploy) takes its store with it:

# %%
worker_engine = next((rt for rt in RUNTIMES if rt != "wasmtime"), None)  # node, when this machine has it
if worker_engine:
    engine = get_runtime(worker_engine)
    print(f"{worker_engine} before the restart:", engine.kv_items().get(b"hits:1"))
    engine.close()  # stops the worker; the next request starts a fresh one
    print(f"{worker_engine} after the restart: ", engine.kv_items().get(b"hits:1"),
          "| next visit counts", service.run(worker_engine, "hits_in_kv", (1,)).result)

# %% [markdown]
# ## Shared state: keep it outside the engines
# The way out is the one edge platforms take: state lives in a service outside the module, reached through an
# import. Here that service is a Python dictionary (in production: Cloudflare KV, a Durable Object, Redis), and
# the import is a host function, `edge.counter_add(key, delta) -> new value`. On wasmtime, wasmlab links Python
# callables as imports; three differently configured engines (Cranelift, Winch, Pulley) now share one count.

# %%
SHARED_C = r"""
__attribute__((import_module("edge"), import_name("counter_add")))
int counter_add(int key, int delta);

int visit(int user) { return counter_add(user, 1); }
"""
shared = wasmlab.compile(SHARED_C, "c", name="shared-counter")
state_service = collections.Counter()


def counter_add(key: int, delta: int) -> int:
    state_service[key] += delta
    return state_service[key]


EDGE = {"edge": {"counter_add": counter_add}}
for request, rt in enumerate(["wasmtime", "wasmtime:winch", "wasmtime:pulley"] * 2, 1):
    print(f"request {request} -> {rt:<16} user 1's visit count: {shared.run(rt, 'visit', (1,), imports=EDGE).result}")
print("the state service holds:", dict(state_service))

# %% [markdown]
# The other engines run their guests in separate processes and cannot call into this kernel's Python; wasmlab
# says so instead of failing halfway:

# %%
try:
    shared.run("node", "visit", (1,), imports=EDGE)
except wasmlab.RuntimeUnavailable as error:
    print(error)

# %% [markdown]
# ## Instance reuse leaks data between requests
# Creating an instance per request costs time; reusing one is the seed's suggested fix for start-up latency.
# But whatever one request leaves in linear memory, the next request sees. `greet` remembers the last visitor
# in a static buffer, a stand-in for any cache, session or buffer a real service keeps:

# %%
def greet(instance, who: str) -> str:
    buffer = instance.exports.name_buffer()
    instance.write_memory(buffer, who.encode() + b"\0")
    return instance.read_cstring(instance.exports.greet(buffer))


pooled = service.instantiate("wasmtime")
for who in ["alice", "bob", "carol"]:
    print(greet(pooled, who))

# %% [markdown]
# Bob learns that Alice was here; on a multi-tenant edge node, these could be two different customers. Two
# fixes:
#
# 1. **A fresh instance per request** (what `run()` does): nothing can leak, at the price of instantiation.
# 2. **Reuse, but reset the memory**: snapshot the memory of a clean instance once, and after each request
#    write back the bytes that changed (`diff_memory` finds them, so a reset copies bytes, not the whole
#    1 MiB). It is what instance pools with copy-on-write memory do inside engines.

# %%
def fresh_greet(who: str) -> str:
    with service.instantiate("wasmtime") as instance:
        return greet(instance, who)


reset_instance = service.instantiate("wasmtime")
clean = reset_instance.snapshot()


def reset(instance, clean: bytes) -> int:
    """Write back every byte that changed since `clean`; returns how many."""
    restored = 0
    for start, old, _new in instance.diff_memory(clean, instance.snapshot()):
        instance.write_memory(start, old)
        restored += len(old)
    return restored


for who in ["alice", "bob", "carol"]:
    print(f"{fresh_greet(who):<30} | ", end="")
    print(greet(reset_instance, who), f"(reset {reset(reset_instance, clean)} bytes)")

# %% [markdown]
# Both are clean. What each costs per request, on wasmtime (timings vary):

# %% tags=["nbval-ignore-output"]
def per_request_us(fn, n: int = 200) -> float:
    started = time.perf_counter()
    for i in range(n):
        fn(f"user{i}")
    return (time.perf_counter() - started) / n * 1e6


costs = {
    "reuse (leaks!)": per_request_us(lambda who: greet(pooled, who)),
    "fresh instance": per_request_us(fresh_greet),
    "reuse + reset": per_request_us(lambda who: (greet(reset_instance, who), reset(reset_instance, clean))),
}
pd.DataFrame({"strategy": k, "µs per request": round(v, 1)} for k, v in costs.items())

# %% [markdown]
# On wasmtime a fresh instance costs about a millisecond or less per request, Python included (wasmlab keeps
# the module compiled and pre-linked), so isolation per request is affordable. The snapshot-and-diff reset is
# the slowest here: it reads and compares the whole 1 MiB memory in Python on every request. The idea is right,
# the place is wrong: engines that reset memory themselves (wasmtime's pooling allocator with copy-on-write
# memory) make reuse both safe and fast, and on engines where instantiation is expensive that is the pattern
# to reach for.

# %%
pooled.close()
reset_instance.close()

# %% [markdown]
# ## Summary
# | state in | survives a call | survives the instance | shared between engines / nodes | durable |
# |---|---|---|---|---|
# | locals, the C stack | no | no | no | no |
# | linear memory (globals, heap) | yes | no | no | no |
# | the runtime's host store (`wasmlab.kv_*`) | yes | yes | no: one store per engine | as long as its process |
# | an external service behind an import | yes | yes | yes | as durable as the service |
#
# ## Exercises
# 1. Make `hits_in_kv` store the count as 4 raw bytes instead of decimal text. What changes in
#    `kv_items()`, and what would a second service written in another language need to know to read it?
# 2. Add a `rate_limited(user)` export that returns 1 after 5 hits within the same instance, using only linear
#    memory. Why does it never trigger when every request gets a fresh instance?
# 3. Write `reset` differently: record `instance.memory_size()` with the snapshot, and refuse to reset (create
#    a new instance instead) if memory has grown. When can a request grow memory here?
# 4. The round-robin experiment gave four different counts for alice. Make `counter_add` the only store
#    (shared.run on wasmtime variants): which consistency problems would appear if two kernels shared a file
#    instead of a Python dict?
