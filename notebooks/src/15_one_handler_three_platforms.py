# %% [markdown]
# # 15. One handler, three edge platforms
#
# **What you will get:** one HTTP handler written in C and one written in Python, each built once into a
# standard `wasi:http/proxy` component, and the *same bytes* served by three hosts on this machine: the lab's
# own server, **Cloudflare's workerd** (the runtime Workers run on) and **jco serve** (the Bytecode Alliance's
# host on node). You check that all three give the same answers to the same requests, measure cold start,
# requests/s, latency percentiles and memory side by side, and see what the platforms that cannot be installed
# here (wasmtime serve, Spin, Fastly's Viceroy) would need. The seed article's promise:
#
# > "write your edge logic once, compile to Wasm, and deploy to Cloudflare Workers, AWS Lambda@Edge, Fastly
# > Compute, or your own edge infrastructure"
#
# Each platform runs as its own process on 127.0.0.1, started and stopped (by its PID) by the lab. Timings vary
# from run to run (their cells are tagged so the tests ignore them); the answers do not.

# %%
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from wasmlab import edge
from wasmlab.edge import platforms
from wasmlab.errors import UsageError, WasmlabError

# %% [markdown]
# ## The platforms
# `wasmlab.edge.platforms` is a registry like the runtimes': one small file per platform, each says whether it
# can run here and, if not, why and how to get it. wasmtime serve, Spin and Viceroy have no package on PyPI,
# npm or apt, so they are listed with the exact command you would run elsewhere on the component built here.

# %%
table = platforms.list_platforms("hello.wasm")
table[["platform", "title", "available", "reason"]]

# %% tags=["nbval-ignore-output"]
table[table["available"]][["platform", "version"]]

# %% [markdown]
# ## A handler in C
# The standard interface is `wasi:http/incoming-handler`: the host calls `handle(request, response-outparam)`,
# the handler reads the method, path, headers and body through `wasi:http/types` and sets a response. The lab's
# helper (`wasmlab/edge/sdk/edge.h`, added when the code defines `on_request`) turns that into one callback;
# it is a convenience over the standard imports, not a dialect (tests/snippets/wasi_http_raw.c is the same kind
# of handler with no helper, and every platform serves it too).

# %% tags=["nbval-ignore-output"]
HELLO_C = r"""
void on_request(const edge_request *req, edge_response *res) {
    if (edge_eq(req->path, "/missing")) {
        edge_status(res, 404);
        edge_write_str(res, "no such page\n");
        return;
    }
    edge_str name = edge_query(req, "name");
    edge_set_header(res, "content-type", "text/plain");
    edge_set_header(res, "x-handler", "c");
    edge_write_str(res, "hello ");
    if (name.len) edge_write_s(res, name); else edge_write_str(res, "edge");
    edge_write_str(res, " from ");
    edge_write_s(res, req->method);
    edge_write_str(res, " ");
    edge_write_s(res, req->path);
    edge_write_str(res, ", body ");
    edge_write_int(res, (long long)req->body.len);
    edge_write_str(res, " bytes\n");
}
"""
hello_c = edge.build(HELLO_C, "c", name="hello_c")
print(hello_c)

# %% [markdown]
# What the component says about itself: it imports only `wasi:http/types` and `wasi:io`, and exports the
# incoming handler. That is the whole contract between the handler and any host.

# %%
wit = hello_c.wit()
print("\n".join(line for line in wit.splitlines() if line.strip().startswith(("import", "export"))))

# %% [markdown]
# ## The same bytes on each platform
# `platform.start(handler)` prepares what the host loads, starts it on a free port and returns once it has
# answered: workerd gets a Worker (the component transpiled by `jco transpile`, jco's WASI shim for the web,
# and a ten-line `fetch` handler), jco serve gets the component file, the lab's server gets it too. `stop()`
# (or leaving the `with`) ends the process.

# %%
here = platforms.available(["wasmlab", "workerd", "jco"])
for name in ("wasmlab", "workerd", "jco"):
    if name not in here:
        print(f"{name}: skipped ({platforms.get(name).unavailable_reason()})")
for name in here:
    try:
        server = platforms.get(name).start(hello_c)
    except WasmlabError as error:  # one line, with the last line the platform wrote on stderr
        print(f"{name:8} could not serve it: {error}")
        continue
    with server, urllib.request.urlopen(server.url + "/greet?name=Ada") as answer:
        print(f"{name:8} {answer.status} {answer.headers['x-handler']} {answer.read().decode().strip()}")

# %% [markdown]
# ## Side by side
# `edge.compare_platforms` starts each platform in turn, sends every one the same probe requests (methods, a
# query, a request header, a 64 KiB body, a 404 path) and compares status, the headers the handler set and the
# body with the first platform's answers: a disagreement is listed, never hidden. Then it loads each with the
# same tool (`wrk` when installed, else the lab's generator, in its own process) at the same offered load.

# %%
c_result = edge.compare_platforms(hello_c, here, requests=2000, duration=3, concurrency=8)
served = [row["platform"] for row in c_result.rows]
print("served by:", ", ".join(served), "| skipped:", c_result.skipped or "none")
print("every platform agrees on every probe:", c_result.agree, "| disagreements:", c_result.disagreements)
first = served[0] if served else ""  # the reference platform (none when nothing could serve here)
c_result.responses[c_result.responses["platform"] == first][["probe", "status", "body"]]

# %% tags=["nbval-ignore-output"]
c_result.table[["platform", "sha256", "cold_start_s", "requests", "rps", "p50_ms", "p90_ms", "p99_ms", "rss_mib"]]

# %% [markdown]
# The `sha256` column is the same on every row: each platform served the bytes the lab built.

# %% tags=["nbval-ignore-output"]
c_result.figure()

# %% [markdown]
# ## A handler in Python
# componentize-py builds a Python handler against the same world (`wasmlab/edge/wit/`). No helper here: the
# class implements the generated `IncomingHandler` protocol, the same `handle(request, response_out)` the C
# helper implements for you. The component carries a whole CPython (about 18 MB), so the build takes about
# half a minute the first time (then the module cache has it).

# %%
HELLO_PY = '''
from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import types


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: types.IncomingRequest, response_out: types.ResponseOutparam) -> None:
        target = request.path_with_query() or "/"
        path, _, query = target.partition("?")
        method = request.method()
        verb = method.value if isinstance(method, types.Method_Other) else type(method).__name__[7:].upper()
        size = 0
        body = request.consume()
        with body.stream() as stream:
            while True:
                try:
                    size += len(stream.blocking_read(65536))
                except Err:
                    break
        if path == "/missing":
            status, headers, text = 404, [], "no such page\\n"
        else:
            name = dict(p.partition("=")[::2] for p in query.split("&") if p).get("name") or "edge"
            status, headers = 200, [("content-type", b"text/plain"), ("x-handler", b"python")]
            text = f"hello {name} from {verb} {path}, body {size} bytes\\n"
        response = types.OutgoingResponse(types.Fields.from_list(headers))
        response.set_status_code(status)
        out = response.body()
        with out.write() as stream:
            stream.blocking_write_and_flush(text.encode())
        types.ResponseOutparam.set(response_out, Ok(response))
        types.OutgoingBody.finish(out, None)
'''
def build_python(source: str, name: str) -> edge.EdgeHandler:
    """edge.build, or (where it does not make Python yet) componentize-py by hand against the lab's world."""
    try:
        return edge.build(source, "python", name=name)
    except UsageError:
        from wasmlab.edge.standard import WIT_DIR, WORLD

        app = Path(tempfile.mkdtemp(prefix="hello-py-"))
        (app / "app.py").write_text(source)
        exe = Path(sys.executable).with_name("componentize-py")
        cmd = [str(exe), "-d", str(WIT_DIR), "-w", WORLD, "componentize", "-p", str(app), "app", "-o", f"{name}.wasm"]
        subprocess.run(cmd, cwd=app, check=True, capture_output=True, timeout=600)
        return edge.build(app / f"{name}.wasm", name=name)


hello_py = build_python(HELLO_PY, "hello_py")
print(f"{hello_py.name}: component {len(hello_py.component) / 1e6:.1f} MB")

# %% [markdown]
# The same comparison, the same probes. The C and the Python handler also say the same thing (only the
# `x-handler` header differs), so you can put their answers next to each other too.

# %%
py_result = edge.compare_platforms(hello_py, here, requests=2000, duration=3, concurrency=8)
print("every platform agrees on every probe:", py_result.agree, "| disagreements:", py_result.disagreements)
both = c_result.responses.merge(py_result.responses, on=["probe", "platform"], suffixes=("_c", "_py"))
print("C and Python bodies identical on every probe and platform:", bool((both["body_c"] == both["body_py"]).all()))

# %% tags=["nbval-ignore-output"]
py_result.table[["platform", "cold_start_s", "prepare_s", "rps", "p50_ms", "p99_ms", "rss_mib"]]

# %% tags=["nbval-ignore-output"]
py_result.figure()

# %% [markdown]
# What to read in the figures: cold start is process start to first answer (jco serve transpiles the component
# on every start, which is why its cold start grows with the component; workerd's transpile is a build step the
# lab caches, shown as `prepare_s`), requests/s and p99 come from the same load tool at the same offered load,
# and memory is the resident set of each platform's processes after the run. A CPython in every instance is
# what makes the Python rows heavier than the C ones on every host.
#
# ## The platforms that are not here
# Each accepts the same standard component; here is the command for the file you would copy there
# (`hello_c.save("hello.wasm")`). Nothing in the handler changes.

# %%
for row in table[~table["available"] & (table["command"] != "")].itertuples():
    print(f"{row.title}: {row.command}\n    get it: {row.install}")

# %% [markdown]
# ## Exercises
# 1. Add a header that depends on a request header (`edge_get_header(req, "accept-language")`) and check with
#    `compare_platforms` that all three hosts still agree. Which headers does a platform add on its own
#    (`wasmlab.edge.compare.PLATFORM_HEADERS`)?
# 2. Run `wasmlab edge compare hello.wasm --rate 200 --requests 1000` from a terminal: at a fixed offered load
#    (open loop), how far apart are the p99s compared with the closed-loop run above?
# 3. Serve the Python handler with `wasmlab edge serve hello_py.wasm --platform workerd --port 8787` and open it
#    in the browser. How much of workerd's cold start is the Python interpreter starting inside the component?
