"""The JavaScript shells: JavaScriptCore (`jsc`, WebKitGTK) and SpiderMonkey (`js102`), real shells. What they
share with every engine is in test_conformance.py (every tier), their traps in test_js_traps.py; here: their
registry entries, versions, tiers and what their shells cannot do."""

from __future__ import annotations

import re

import pytest

import wasmlab
from wasmlab.errors import RuntimeUnavailable
from wasmlab.runtimes import get_runtime, list_runtimes

FIB_WAT = """(module (func $fib (export "fib") (param i32) (result i32)
  (if (result i32) (i32.lt_s (local.get 0) (i32.const 2)) (then (local.get 0))
    (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                   (call $fib (i32.sub (local.get 0) (i32.const 2))))))))"""

ROWS = {row.name: row for row in list_runtimes()}


def needs(name: str) -> pytest.MarkDecorator:
    row = ROWS[name]
    return pytest.mark.skipif(not row.available, reason=f"{name} unavailable: {row.reason}")


@needs("jsc")
def test_jsc_entry_version_and_tiers() -> None:
    jsc = get_runtime("jsc")
    assert jsc.variants == ("default", "bbq", "ipint")
    assert re.fullmatch(r"JavaScriptCore \(WebKitGTK \d+\.\d+\.\d+\)", jsc.version())
    assert {"exports", "wasi", "memory", "instances", "timeout", "max_memory", "builtin_host"} <= jsc.capabilities
    assert "--useOMGJIT=0" in get_runtime("jsc:bbq").worker_argv()
    assert {"--useBBQJIT=0", "--useOMGJIT=0"} <= set(get_runtime("jsc:ipint").worker_argv())
    assert wasmlab.compile('(module (func (export "f")))', lang="wat").run("jsc", "f").ok
    assert get_runtime("jsc").worker_info["engine"] == "JavaScriptCore"


@needs("spidermonkey")
@pytest.mark.parametrize(
    ("spec", "compilers"),
    [("spidermonkey", "baseline+ion"), ("spidermonkey:baseline", "baseline"), ("spidermonkey:ion", "ion")],
)
def test_spidermonkey_tiers_are_the_shells_compilers(spec: str, compilers: str) -> None:
    """Each variant's shell says which Wasm compilers it runs (`wasmCompileMode()`)."""
    runtime = get_runtime(spec)
    assert wasmlab.compile('(module (func (export "f")))', lang="wat").run(spec, "f").ok
    assert runtime.worker_info["compilers"] == compilers
    assert re.fullmatch(r"SpiderMonkey \d+\.\d+\.\d+", runtime.version())


@pytest.mark.parametrize("name", ["jsc", "spidermonkey"])
def test_shells_refuse_preopened_directories_and_run_every_tier(name: str, tmp_path) -> None:
    if not ROWS[name].available:
        pytest.skip(f"{name} unavailable: {ROWS[name].reason}")
    with pytest.raises(RuntimeUnavailable, match=r"dirs=.*run on wasmtime or node"):
        wasmlab.compile('(module (func (export "_start")))', lang="wat").run(name, dirs={"/d": str(tmp_path)})
    fib = wasmlab.compile(FIB_WAT, lang="wat")
    assert [fib.run(f"{name}:{v}", "fib", (20,)).result for v in get_runtime(name).variants] == [6765] * 3
