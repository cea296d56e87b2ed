"""Components on node: `jco transpile` (npm `@bytecodealliance/jco`, in tools/npm) turns a component into core
modules and JavaScript glue, and `worker/scripts/node_component.mjs` runs it with jco's WASI preview 2 shim.

The transpiled output is made with `--instantiation async`, so it imports nothing itself (the script passes the
shim's imports in) and holds no path of this machine; it is cached under the module cache's directory by the
component's sha256 and the jco version (`jco/`), so a 12 MB StarlingMonkey component is transpiled once (~8 s).

Each run is one short node process (V8 compiles the core modules afresh: "compile" in the timings): `invoke`
calls a world-level export (kebab-case, camelCase or snake_case names) or `INTERFACE#FUNC`; without `invoke` the
`wasi:cli/run` command runs with argv, env and preopened dirs, its stdout and stderr captured and capped. Values
cross as JSON (records as dicts, lists as lists, s64/u64 as ints). Limits: wall-clock `timeout` (the process is
killed); no fuel, no memory cap, no kept instances, no Python host functions (use wasmtime for those).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache import cache_dir
from ..errors import LimitExceeded, RuntimeUnavailable, Trap, UsageError
from ..toolchains.base import npm_package
from .base import RunOptions, RunResult
from .worker.jscodec import trap_code
from .worker.process import SCRIPTS

if TYPE_CHECKING:
    from ..module import Module
    from .base import Runtime

SCRIPT = SCRIPTS / "node_component.mjs"
JCO = "@bytecodealliance/jco"
SHIM = "@bytecodealliance/preview2-shim"
TRANSPILE_TIMEOUT = 300.0
# componentize-py's output uses extended-const, which node 20's V8 still keeps behind a flag (FACTS: jco serve)
COMPONENT_FLAGS = ("--experimental-wasm-extended-const",)


def unavailable_reason() -> str | None:
    """Why components cannot run on node here (None: they can)."""
    if npm_package(JCO) is None or npm_package(SHIM) is None:
        return f"components on node need the npm packages {JCO} and {SHIM} (npm install --prefix tools/npm)"
    return None


def _package(name: str) -> Path:
    path = npm_package(name)
    if path is None:
        raise RuntimeUnavailable("node", f"components on node need the npm package {name}", "make setup")
    return path


@cache
def jco_version() -> str:
    return json.loads((_package(JCO) / "package.json").read_text()).get("version", "?")


def transpiled(node: str, module: Module) -> Path:
    """The directory holding `jco transpile`'s output for `module` (made once, then read from the cache)."""
    root = cache_dir() / "jco"
    target = root / f"{module.sha256}-{jco_version()}"
    if (target / "component.js").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".transpile-", dir=root))
    try:
        (work / "component.wasm").write_bytes(module.bytes)
        cmd = [node, str(_package(JCO) / "dist" / "jco.js"), "transpile", "component.wasm", "--instantiation",
               "async", "--no-typescript", "--name", "component", "-q", "-o", "out"]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=TRANSPILE_TIMEOUT)
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
            raise UsageError(f"jco transpile rejected {module.name}: {lines[0] if lines else proc.returncode}")
        with contextlib.suppress(OSError):  # another process may have won the race: theirs is as good
            os.replace(work / "out", target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_component(runtime: Runtime, module: Module, options: RunOptions, node: str, flags: list[str]) -> RunResult:
    """One run of a component on `node` with V8 `flags` (see the module docstring); node.py passes both, so this
    module does not import it back."""
    reason = unavailable_reason()
    if reason:
        raise RuntimeUnavailable(runtime.label, reason, "make setup")
    if options.fuel is not None:
        runtime.require("fuel", "fuel (a deterministic instruction budget)")
    if options.imports:
        raise RuntimeUnavailable(runtime.label, "Python host functions are unsupported: run the component on wasmtime")
    directory = transpiled(node, module)
    request = {
        "invoke": options.invoke,
        "args": list(options.args),
        "argv": [module.name, *options.argv],
        "env": dict(options.env),
        "dirs": {guest: str(Path(host).resolve()) for guest, host in options.dirs.items()},
    }
    read_end, write_end = os.pipe()
    argv = [node, "--no-warnings", *flags, str(SCRIPT),
            str(_package(SHIM).parent.parent), str(directory), str(write_end), json.dumps(request)]
    result = RunResult(runtime.label, options.invoke)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=(write_end,), start_new_session=True)
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        try:
            out, err = proc.communicate(options.stdin, timeout=options.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, 9)
            out, err = proc.communicate()
            result.record(LimitExceeded("time", f"{runtime.label}: {module.name} ran past {options.timeout:g} s"))
            out, err = b"", b""
        line = pipe.read().decode(errors="replace").strip()
    result.stdout, result.stderr = out[: options.max_output], err[: options.max_output]
    if result.error:
        return result
    if not line:  # the guest called exit: the process's status is the guest's
        result.exit_code = proc.returncode
        return result
    answer = json.loads(line.splitlines()[-1])
    result.timings = {k: float(v) for k, v in answer.get("timings", {}).items()}
    if "error" in answer:
        raise UsageError(f"{runtime.label}: {answer['error']}")
    if "trap" in answer:
        code = trap_code(answer["trap"])
        result.record(Trap(code, [], f"wasm trap on {runtime.label}: {code}"))
    elif "exit" in answer:
        result.exit_code = int(answer["exit"])
    else:
        result.result = _decode(answer.get("result"))
        if type(result.result) is int and options.invoke and _float_result(module, options.invoke):
            result.result = float(result.result)  # JSON has one number type: f64 results stay floats
    return result


def _float_result(module: Module, name: str) -> bool:
    """Whether world-level export `name` returns f32 or f64 (as wasmtime returns it: a float)."""
    wanted = {name, name.replace("_", "-")}
    for item in module.component_items()["exports"]:
        if item["kind"] == "func" and item["name"] in wanted:
            return item["type"].replace(" ", "").endswith(("->f64", "->f32"))
    return False


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bigint"}:
            return int(value["$bigint"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value
