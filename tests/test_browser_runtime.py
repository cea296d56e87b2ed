"""The browser runtime, kernel side: availability outside a notebook, and a real ipykernel talking to a scripted
page over jupyter_client (kernel subshells, the comm protocol, cancel on interrupt).

The scripted page stands in for JupyterLab only to exercise the kernel side's threading and protocol; the
real page (Chromium + the extension) is tested in `ui-tests/` (`pytest ui-tests`).
"""

from __future__ import annotations

import base64
import contextlib
import queue
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wasmlab.errors import RuntimeUnavailable
from wasmlab.runtimes.browser import BrowserRuntime
from wasmlab.runtimes.worker.browser_comm import COMM_TARGET, NO_FRONTEND

ROOT_DIR = Path(__file__).resolve().parent.parent
FIB_WAT = """
(module
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_s (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "twice64") (param i64) (result i64) (i64.mul (local.get 0) (i64.const 2)))
  (func (export "boom") unreachable))
"""

SETUP = f"""
from wasmlab.runtimes import BUILTIN, get_runtime
BUILTIN.setdefault("browser", ("browser", "BrowserRuntime"))
import wasmlab
m = wasmlab.compile('''{FIB_WAT}''', lang="wat")
browser = wasmlab.runtimes._create("browser")
"""


@pytest.fixture
def with_browser_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry entry the lead adds to wasmlab/runtimes/__init__.py (BUILTIN), for this test only."""
    import wasmlab.runtimes as runtimes

    monkeypatch.setitem(runtimes.BUILTIN, "browser", ("browser", "BrowserRuntime"))
    monkeypatch.setattr(runtimes, "_instances", {})


# ------------------------------------------------------------------------------------------ no frontend
def test_unavailable_outside_a_kernel() -> None:
    start = time.monotonic()
    assert BrowserRuntime().unavailable_reason() == NO_FRONTEND
    assert time.monotonic() - start < 1.0
    assert "no JupyterLab frontend connected" in NO_FRONTEND


def test_registry_reports_why(with_browser_registered: None) -> None:
    from wasmlab.runtimes import get_runtime, list_runtimes

    [row] = [r for r in list_runtimes() if r.name == "browser"]
    assert not row.available
    assert row.reason == NO_FRONTEND
    assert "wasmlab-jupyterlab" in row.install
    with pytest.raises(RuntimeUnavailable, match="no JupyterLab frontend connected"):
        get_runtime("browser")


def test_capabilities_and_refusals() -> None:
    import wasmlab
    from wasmlab.errors import UsageError
    from wasmlab.runtimes import RunOptions

    runtime = BrowserRuntime()
    assert {"exports", "wasi", "timeout"} <= runtime.capabilities
    assert "fuel" not in runtime.capabilities
    module = wasmlab.compile(FIB_WAT, lang="wat")
    with pytest.raises(RuntimeUnavailable, match="fuel"):
        runtime.run(module, RunOptions(invoke="fib", args=(1,), fuel=100))
    with pytest.raises(RuntimeUnavailable, match="host functions"):
        runtime.run(module, RunOptions(invoke="fib", args=(1,), imports={"env": {"f": print}}))
    with pytest.raises(UsageError, match="preopened"):
        runtime.run(module, RunOptions(dirs={"/data": "."}))
    assert {"instances", "memory"} <= runtime.capabilities  # kept instances live in the page's worker
    with pytest.raises(RuntimeUnavailable, match="host functions"):
        runtime.instantiate(module, RunOptions(imports={"env": {"f": print}}))
    with pytest.raises(RuntimeUnavailable, match="no JupyterLab frontend connected"):
        runtime.instantiate(module, RunOptions())


# ------------------------------------------------------------------------------------------ a scripted page
Answer = Callable[[dict[str, Any]], "dict[str, Any] | None"]


class ScriptedPage:
    """A kernel client playing the JupyterLab page: answers the comm like js/src/browser.ts, running modules
    with wasmtime. `subshell=False` sends replies on the main shell (a page that cannot use subshells)."""

    def __init__(self, kc: Any, subshell: bool = True, close_comm: bool = False, answer: Answer | None = None):
        self.kc = kc
        self.close_comm = close_comm
        self.answer = answer or self.run_with_wasmtime
        self.received: list[dict[str, Any]] = []
        self.modules: dict[str, bytes] = {}  # sha256 -> bytes this page was sent (its compiled-module cache)
        self.subshell = self._create_subshell() if subshell else None

    def _create_subshell(self) -> str:
        self.kc.control_channel.send(self.kc.session.msg("create_subshell_request", {}))
        reply = self.kc.control_channel.get_msg(timeout=30)
        return reply["content"]["subshell_id"]

    def _send(self, msg_type: str, content: dict[str, Any]) -> None:
        msg = self.kc.session.msg(msg_type, content)
        if self.subshell:
            msg["header"]["subshell_id"] = self.subshell
        self.kc.shell_channel.send(msg)

    def reply(self, comm_id: str, data: dict[str, Any]) -> None:
        self._send("comm_msg", {"comm_id": comm_id, "data": data})

    def execute(self, code: str, timeout: float = 60.0, on_busy: Callable[[], None] | None = None) -> tuple[str, str]:
        """Run `code` in the kernel while playing the page; (stdout, error name) of the cell."""
        msg_id = self.kc.execute(code)
        out, error, deadline = [], "", time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                msg = self.kc.get_iopub_msg(timeout=0.02)
                self._on_iopub(msg)
                if msg["parent_header"].get("msg_id") == msg_id:
                    if msg["msg_type"] == "stream":
                        out.append(msg["content"]["text"])
                    elif msg["msg_type"] == "error":
                        error = msg["content"]["ename"]
                    elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                        return "".join(out), error
            if on_busy is not None:
                on_busy()
        raise AssertionError(f"the cell did not finish in {timeout} s (deadlock?): {''.join(out)}")

    def _on_iopub(self, msg: dict[str, Any]) -> None:
        content = msg["content"]
        if msg["msg_type"] == "comm_open" and content.get("target_name") == COMM_TARGET:
            if self.close_comm:  # what a page without the comm target does
                self._send("comm_close", {"comm_id": content["comm_id"], "data": {}})
                return
            self.reply(content["comm_id"], {"op": "hello", "client": "page-1", "subshell": self.subshell})
        elif msg["msg_type"] == "comm_msg":
            data = content["data"]
            self.received.append(data)
            if data.get("op") == "ping":
                self.reply(content["comm_id"], {"id": data["id"], "ok": True, "client": "page-1"})
            elif data.get("op") == "run":
                answer = self.answer(data)
                if answer is not None:
                    self.reply(content["comm_id"], {"id": data["id"], "client": "page-1", **answer})

    def run_with_wasmtime(self, data: dict[str, Any]) -> dict[str, Any]:
        import wasmtime

        if "wasm" in data:
            self.modules[data["sha"]] = base64.b64decode(data["wasm"])
        if data["sha"] not in self.modules:
            return {"error": "module not loaded in this page", "kind": "need_module"}
        store = wasmtime.Store()
        module = wasmtime.Module(store.engine, self.modules[data["sha"]])
        func = wasmtime.Instance(store, module, []).exports(store)[data["invoke"]]
        args = [int(a) if isinstance(a, str) else a for a in data["args"]]  # i64 travel as strings
        timings = {"compile": 0.5, "instantiate": 0.25, "call": 0.125}
        try:
            value = func(store, *args)
        except wasmtime.Trap:
            frames = [{"name": None, "index": 2, "offset": 0x5A}]
            return {"trap": "RuntimeError: unreachable", "frames": frames, "timings": timings}
        if str(func.type(store).results[0]) == "i64":
            value = str(value)
        return {"result": value, "timings": timings, "stdout": "", "stderr": ""}


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    from jupyter_client.manager import start_new_kernel

    monkeypatch.setenv("WASMLAB_BROWSER_HELLO_TIMEOUT", "1.0")
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_run_through_a_page_on_a_subshell(kernel: tuple[Any, Any]) -> None:
    """The cell waits for the page's answer while it runs: replies arrive on a subshell thread."""
    _km, kc = kernel
    page = ScriptedPage(kc)
    out, error = page.execute(
        SETUP
        + textwrap.dedent("""
        print("reason:", browser.unavailable_reason())
        r = m.run("browser", "fib", (20,))
        print("fib:", r.result, r.runtime, sorted(r.timings.items()))
        print("twice64:", m.run("browser", "twice64", (2**60,)).result == 2**61)
        t = m.run("browser", "boom", check=False)
        print("trap:", t.trap, t.trap_frames)
        """)
    )
    assert not error, out
    assert "reason: None" in out
    assert "fib: 6765 browser [('call', 0.125), ('compile', 0.5), ('instantiate', 0.25)]" in out
    assert "twice64: True" in out
    assert "trap: unreachable ['boom (0x5a)']" in out
    runs = [d for d in page.received if d.get("op") == "run"]
    assert len(runs) == 3
    assert "wasm" in runs[0] and all("wasm" not in d for d in runs[1:])  # bytes sent once per page
    assert runs[1]["args"] == [str(2**60)]  # i64 travels as a decimal string
    assert all(d["client"] == "page-1" for d in runs)
    assert runs[0]["timeout_ms"] == pytest.approx(10_000)


def test_page_that_lost_the_module_gets_it_again(kernel: tuple[Any, Any]) -> None:
    _km, kc = kernel
    page = ScriptedPage(kc)
    out, error = page.execute(SETUP + 'print(m.run("browser", "fib", (10,)).result)')
    assert "55" in out, out
    page.modules.clear()  # the page's worker restarted
    out, error = page.execute('print(m.run("browser", "fib", (11,)).result)')
    assert not error and "89" in out, out
    runs = [d for d in page.received if d.get("op") == "run"]
    assert ["wasm" in d for d in runs] == [True, False, True]


def test_time_limit_answer_is_a_result(kernel: tuple[Any, Any]) -> None:
    _km, kc = kernel
    page = ScriptedPage(kc, answer=lambda d: {"error": "the guest ran past the 1 s time limit", "kind": "limit:time"})
    out, error = page.execute(SETUP + 'r = m.run("browser", "fib", (1,), timeout=1, check=False)\nprint(r.error_kind)')
    assert not error and "limit:time" in out, out


def test_interrupt_cancels_the_run_in_the_page(kernel: tuple[Any, Any]) -> None:
    km, kc = kernel
    page = ScriptedPage(kc, answer=lambda d: None)  # the guest never finishes
    page.execute(SETUP + "print(browser.unavailable_reason())")
    started = time.monotonic()

    def interrupt_once() -> None:
        if time.monotonic() - started > 1.5 and not getattr(interrupt_once, "done", False):
            interrupt_once.done = True  # type: ignore[attr-defined]
            km.interrupt_kernel()

    _out, error = page.execute('m.run("browser", "fib", (30,), timeout=None)', timeout=30, on_busy=interrupt_once)
    assert error == "KeyboardInterrupt"
    run = next(d for d in page.received if d.get("op") == "run")
    assert {"op": "cancel", "id": run["id"], "client": "page-1"} in page.received


def test_page_without_subshells_is_reported_not_hung(kernel: tuple[Any, Any]) -> None:
    _km, kc = kernel
    page = ScriptedPage(kc, subshell=False)
    start = time.monotonic()
    out, error = page.execute(SETUP + "print('reason:', browser.unavailable_reason())")
    assert not error and NO_FRONTEND in out, out
    assert time.monotonic() - start < 20
    out, error = page.execute("print('reason:', browser.unavailable_reason())")  # the hello came after the cell
    assert "subshell" in out, out


def test_page_without_the_extension(kernel: tuple[Any, Any]) -> None:
    _km, kc = kernel
    page = ScriptedPage(kc, close_comm=True)
    out, error = page.execute(SETUP + "print('reason:', browser.unavailable_reason())")
    assert not error, out
    assert "wasmlab-jupyterlab extension" in out, out


# ------------------------------------------------------------------------------------------ the page's worker
WORKER_JS = ROOT_DIR / "js" / "lib" / "worker.js"
HELLO_WAT = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wat\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 15))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (drop (call $args_sizes_get (i32.const 32) (i32.const 36)))
    (call $proc_exit (i32.load (i32.const 32)))))
"""
# Runs the page's worker code (js/lib/worker.js, built by tsc) in node, from its source text as the page does.
NODE_HARNESS = r"""
import fs from 'node:fs';
const [workerFile] = process.argv.slice(2);
const requests = JSON.parse(fs.readFileSync(0, 'utf8'));
const waiters = new Map();
globalThis.self = globalThis;
globalThis.postMessage = (a) => { if (!a.ready) { waiters.get(a.id)(a); waiters.delete(a.id); } };
const { workerMain } = await import(workerFile);
new Function(`(${workerMain.toString()})();`)();
const answers = [];
for (const req of requests) {
  answers.push(await new Promise((resolve) => { waiters.set(req.id, resolve); self.onmessage({ data: req }); }));
}
process.stdout.write(JSON.stringify(answers));
"""


@pytest.mark.parametrize(
    "lang", ["wat", pytest.param("c", marks=pytest.mark.slow), pytest.param("rust", marks=pytest.mark.slow)]
)
def test_page_worker_wasi_matches_wasmtime(lang: str, tmp_path, compile_or_skip) -> None:
    """The page's minimal WASI (args, environ, fd_write, proc_exit...) runs real toolchain output the way
    wasmtime does. Same worker code as in the browser, run by node's V8."""
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None or not WORKER_JS.is_file():
        pytest.skip("needs node and js/lib/worker.js (bash scripts/build_labextension.sh)")
    if lang == "wat":
        import wasmlab

        module = wasmlab.compile(HELLO_WAT, lang="wat")
    else:
        source = (ROOT_DIR / "tests" / "snippets" / f"hello.{'rs' if lang == 'rust' else lang}").read_text()
        module = compile_or_skip(source, lang, kind="command")
    argv = ("alpha", "beta")
    expected = module.run("wasmtime", argv=argv, env={"K": "V"}, check=False)
    worker = tmp_path / "worker.mjs"
    shutil.copy(WORKER_JS, worker)
    harness = tmp_path / "harness.mjs"
    harness.write_text(NODE_HARNESS)
    base = {"op": "run", "sha": module.sha256, "invoke": None, "args": [], "env": {"K": "V"}, "stdin": ""}
    requests = [
        {**base, "id": "1", "wasm": base64.b64encode(module.bytes).decode(), "argv": [module.name, *argv]},
        {**base, "id": "2", "argv": [module.name, *argv]},  # compiled module cached by sha256
        {**base, "id": "3", "sha": "0" * 64, "argv": []},  # unknown module: the kernel must send it
    ]
    out = subprocess.run(
        [node, str(harness), str(worker)], input=json.dumps(requests), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    first, second, missing = json.loads(out.stdout)
    assert base64.b64decode(first["stdout"]) == expected.stdout
    assert base64.b64decode(first["stderr"]) == expected.stderr
    assert first["exit_code"] == expected.exit_code
    assert set(first["timings"]) == {"compile", "instantiate", "run"}
    assert second["timings"]["compile"] == 0 and second["exit_code"] == expected.exit_code
    assert missing["kind"] == "need_module"
