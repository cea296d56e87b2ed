"""The runtime registry open to third-party engines: a package that registers a `wasmlab.runtimes` entry point is
listed, loaded on first use and run like a built-in; one that fails to load is listed with the reason; an unknown
name says what is installed and how to get the rest. The engines here are real: a JS worker engine built from the
kit (`JsShellRuntime`, node as its shell) in one file, and the defaults of the protocol on a backend that
implements only `run`."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest

import wasmlab
import wasmlab.runtimes as runtimes
from wasmlab.errors import RuntimeUnavailable, UsageError
from wasmlab.runtimes import ENTRY_POINT_GROUP, RunOptions, get_runtime, list_runtimes

FIB_WAT = """
(module
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_s (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "count") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (global.get $calls)))
"""

# One file: a JS shell engine from the kit. Its "shell" is node, with node's worker script (a real JS engine:
# the shape a JavaScriptCore or SpiderMonkey backend takes, with its own shell and script).
KIT_ENGINE = '''
import shutil

from wasmlab.runtimes.worker.jsshell import JsShellRuntime


class PluginNodeRuntime(JsShellRuntime):
    name = "plugin-node"
    install = "apt-get install nodejs"

    def unavailable_reason(self):
        return None if shutil.which("node") else "node is not installed"

    def version(self):
        return "node, from a plugin"

    def worker_argv(self):
        return [shutil.which("node"), "--no-warnings", str(self.worker_script)]
'''

# A backend that implements `run` only, on top of the lab's wasmtime: the protocol's defaults do the rest.
RUN_ONLY_ENGINE = '''
from wasmlab.runtimes.base import Runtime
from wasmlab.runtimes.wasmtime import WasmtimeRuntime


class RunOnlyRuntime(Runtime):
    name = "run-only"
    capabilities = frozenset({"exports"})

    def __init__(self, variant=None):
        super().__init__(variant)
        self._engine = WasmtimeRuntime()

    def run(self, module, options):
        result = self._engine.run(module, options)
        result.runtime = self.label
        return result
'''


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install engine packages into `tmp_path` (a module and a dist-info with entry points, as pip would) and
    point the registry at them for one test."""

    def install(**engines: tuple[str, str]) -> None:
        lines = [f"[{ENTRY_POINT_GROUP}]"]
        for name, (module, source) in engines.items():
            (tmp_path / f"{module.partition(':')[0]}.py").write_text(textwrap.dedent(source))
            lines.append(f"{name} = {module}")
        dist = tmp_path / "wasmlab_test_engines-1.0.dist-info"
        dist.mkdir(exist_ok=True)
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wasmlab-test-engines\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
        runtimes.plugins.cache_clear()

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(runtimes, "_instances", {})
    runtimes.plugins.cache_clear()
    yield install
    for runtime in runtimes._instances.values():
        runtime.close()
    runtimes.plugins.cache_clear()
    for name in ("kit_engine", "run_only_engine", "broken_engine"):
        sys.modules.pop(name, None)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_a_js_shell_engine_is_one_file_and_an_entry_point(plugins) -> None:
    plugins(**{"plugin-node": ("kit_engine:PluginNodeRuntime", KIT_ENGINE)})
    [row] = [r for r in list_runtimes() if r.name == "plugin-node"]
    assert row.available and row.version == "node, from a plugin"
    assert {"exports", "wasi", "instances", "memory", "builtin_host"} <= set(row.capabilities)
    module = wasmlab.compile(FIB_WAT, "wat", name="fib")
    result = module.run("plugin-node", "fib", (20,))
    assert (result.runtime, result.result) == ("plugin-node", 6765) and result.timings["call"] >= 0
    with module.instantiate("plugin-node") as instance:
        assert [instance.call("count") for _ in range(3)] == [1, 2, 3]  # a kept instance, state persists
    trap = wasmlab.compile('(module (func (export "boom") unreachable))', "wat", name="boom")
    failed = trap.run("plugin-node", "boom", check=False)
    assert failed.trap == "unreachable" and failed.trap_frames and failed.trap_frames[0].startswith("boom")
    assert get_runtime("plugin-node").kv_items() == {}


def test_the_protocol_defaults_cover_what_a_backend_leaves_out(plugins) -> None:
    plugins(**{"run-only": ("run_only_engine:RunOnlyRuntime", RUN_ONLY_ENGINE)})
    module = wasmlab.compile(FIB_WAT, "wat", name="fib")
    assert module.run("run-only", "fib", (10,)).result == 55
    engine = get_runtime("run-only")
    assert engine.compile(module) == 0.0 and engine.compiled_ms == {} and engine.version() == ""
    with pytest.raises(RuntimeUnavailable, match="instances kept across calls is not supported here"):
        engine.instantiate(module, RunOptions())
    with pytest.raises(RuntimeUnavailable, match="precompiled artefact"):
        engine.serialize(module)
    with pytest.raises(RuntimeUnavailable, match="key-value store"):
        engine.kv_items()


def test_a_broken_plugin_is_listed_with_the_reason(plugins) -> None:
    plugins(broken=("broken_engine:Nothing", "raise ImportError('needs libfoo')\n"))
    [row] = [r for r in list_runtimes() if r.name == "broken"]
    assert not row.available and "backend failed to load: ImportError: needs libfoo" in row.reason
    with pytest.raises(RuntimeUnavailable, match="needs libfoo"):
        get_runtime("broken")
    assert any(r.name == "wasmtime" and r.available for r in list_runtimes())  # the others are unharmed


def test_a_plugin_cannot_take_a_builtin_name(plugins) -> None:
    plugins(wasmtime=("run_only_engine:RunOnlyRuntime", RUN_ONLY_ENGINE))
    with pytest.warns(UserWarning, match="'wasmtime' is taken"):
        names = runtimes.engine_names()
    assert names.count("wasmtime") == 1
    assert type(get_runtime("wasmtime")).__name__ == "WasmtimeRuntime"


def test_an_unknown_engine_names_what_is_installed_and_how_to_get_more() -> None:
    with pytest.raises(UsageError) as info:
        get_runtime("nosuchengine")
    message = str(info.value)
    assert message.startswith("unknown runtime 'nosuchengine': use one of wasmtime, ")
    assert "available here: wasmtime" in message and "`wasmlab runtimes`" in message
    assert f"'{ENTRY_POINT_GROUP}' entry point" in message
