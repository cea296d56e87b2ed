"""Cloudflare's workerd (the Workers runtime, npm `@cloudflare/workerd-linux-64`) serving a wasi:http component.

Workers run JavaScript and take Wasm only as compiled core modules (`wasm = embed` in the config; compiling
bytes at run time is refused), so the lab turns the component into a Worker with kept tools:

1. `jco transpile --instantiation async` splits the component into its core modules and the ES module that
   links them (the canonical ABI, lifting and lowering, resource tables), whatever language made it;
2. jco's own WASI shim for the web (`@bytecodealliance/preview2-shim`, its browser build) implements the
   imports, wasi:http/types included, and its `handleIncomingRequest` turns a Fetch `Request` into the
   `incoming-request` + `response-outparam` pair and the outgoing-response back into a `Response`;
3. `workerd_worker.js` (in this package) is the Worker: its `fetch` instantiates the component once and calls
   `wasi:http/incoming-handler.handle`.

The result (config.capnp, worker.js, handler/, shim/) is cached by the component's sha256 and the tools'
versions; `workerd serve config.capnp -s http=127.0.0.1:PORT` runs it. So a C handler and a componentize-py
handler take the same path, and the bytes workerd runs are the bytes the lab built (their sha256 is reported).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ...cache import cache_dir, cache_key
from .base import (
    NPM_INSTALL,
    Artefact,
    Platform,
    PlatformFailed,
    jco_script,
    node_modules,
    node_program,
    package_version,
)

HERE = Path(__file__).parent
WORKER_JS = HERE / "workerd_worker.js"
COMPATIBILITY_DATE = "2024-09-23"
TRANSPILE_TIMEOUT = 300
CONFIG = """using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .handler)],
  sockets = [(name = "http", address = "127.0.0.1:8080", http = (), service = "main")],
);

const handler :Workerd.Worker = (
  modules = [
{modules}
  ],
  compatibilityDate = "{date}",
);
"""


def workerd_binary() -> Path | None:
    """workerd from $WASMLAB_WORKERD, the npm package, or PATH."""
    env = os.environ.get("WASMLAB_WORKERD")
    if env and Path(env).is_file():
        return Path(env)
    package = node_modules("@cloudflare/workerd-linux-64")
    if package and (package / "bin" / "workerd").is_file():
        return package / "bin" / "workerd"
    found = shutil.which("workerd")
    return Path(found) if found else None


def shim_folder() -> Path | None:
    package = node_modules("@bytecodealliance/preview2-shim")
    return package / "dist" / "browser" if package and (package / "dist" / "browser" / "http.js").is_file() else None


class WorkerdPlatform(Platform):
    name = "workerd"
    title = "Cloudflare workerd"
    install = f"{NPM_INSTALL}: npm packages @cloudflare/workerd-linux-64, @bytecodealliance/jco and preview2-shim"

    def unavailable_reason(self) -> str | None:
        if workerd_binary() is None:
            return "workerd is not installed (npm @cloudflare/workerd-linux-64)"
        if node_program() is None:
            return "node is not installed (jco transpile runs on it: apt-get install nodejs)"
        if jco_script() is None or shim_folder() is None:
            return (
                "jco and its WASI shim are not installed (npm @bytecodealliance/jco, @bytecodealliance/preview2-shim)"
            )
        return None

    def version(self) -> str:
        binary = workerd_binary()
        if binary is None:
            return ""
        try:
            out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.strip()

    def command(self, path: Path, port: int) -> list[str]:
        return [str(workerd_binary()), "serve", str(path), "-s", f"http=127.0.0.1:{port}"]

    def prepare(self, art: Artefact, workdir: Path) -> Path:
        return worker_bundle(art) / "config.capnp"


def worker_bundle(art: Artefact) -> Path:
    """The folder workerd serves for `art` (built once per component and tool versions, then reused)."""
    jco, shim = jco_script(), shim_folder()
    assert jco is not None and shim is not None
    key = cache_key(
        kind="edge-workerd",
        sha256=art.sha256,
        jco=package_version(jco.parent.parent),
        shim=package_version(shim.parents[1]),
        worker=hashlib.sha256(WORKER_JS.read_bytes()).hexdigest(),
        date=COMPATIBILITY_DATE,
    )
    target = cache_dir() / "edge" / "workerd" / key[:32]
    if (target / "config.capnp").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        _transpile(art, build, jco)
        _assemble(build, shim)
        try:
            build.rename(target)
        except OSError:  # another process built it first: theirs is as good
            shutil.rmtree(build, ignore_errors=True)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return target


def _transpile(art: Artefact, build: Path, jco: Path) -> None:
    source = build / "component.wasm"
    source.write_bytes(art.component)
    cmd = [str(node_program()), str(jco), "transpile", str(source), "--instantiation", "async", "--name", "component"]
    cmd += ["--no-typescript", "--no-nodejs-compat", "--quiet", "-o", str(build / "handler")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TRANSPILE_TIMEOUT, cwd=build)
    source.unlink()
    if done.returncode != 0 or not (build / "handler" / "component.js").is_file():
        raise PlatformFailed("workerd", "could not transpile the component (jco transpile)", done.stderr or done.stdout)


def _assemble(build: Path, shim: Path) -> None:
    """worker.js, shim/*.js, handler/cores.js and config.capnp next to jco's output in `build`."""
    shutil.copy(WORKER_JS, build / "worker.js")
    (build / "shim").mkdir()
    for js in sorted(shim.glob("*.js")):
        shutil.copy(js, build / "shim" / js.name)
    cores = sorted(p.name for p in (build / "handler").glob("*.wasm"))
    lines = [f'import m{i} from "./{name}";' for i, name in enumerate(cores)]
    lines.append("export default { " + ", ".join(f'"{name}": m{i}' for i, name in enumerate(cores)) + " };")
    (build / "handler" / "cores.js").write_text("\n".join(lines) + "\n")
    modules = [("worker.js", "esModule"), ("handler/component.js", "esModule"), ("handler/cores.js", "esModule")]
    modules += [(f"handler/{name}", "wasm") for name in cores]
    modules += [(f"shim/{js.name}", "esModule") for js in sorted((build / "shim").glob("*.js"))]
    entries = ",\n".join(f'    (name = "{name}", {kind} = embed "{name}")' for name, kind in modules)
    (build / "config.capnp").write_text(CONFIG.replace("{modules}", entries).replace("{date}", COMPATIBILITY_DATE))
