"""`wasmlab features`: Wasm proposals per engine and tier, measured with npm wasm-feature-detect's detection
modules on the real engines. The facts checked are ones these engine versions are known for (V8 11.3 in node 20
has no GC and no memory64; SpiderMonkey 102 has SIMD but no tail calls; wasmtime runs GC and components)."""

from __future__ import annotations

import json

import pytest

from wasmlab.cli import main
from wasmlab.errors import UsageError
from wasmlab.features import FEATURES, detect, detection_modules, every_spec, probe, source
from wasmlab.runtimes import list_runtimes

AVAILABLE = {row.name for row in list_runtimes() if row.available}


def needs(*names: str) -> pytest.MarkDecorator:
    missing = [n for n in names if n not in AVAILABLE]
    return pytest.mark.skipif(bool(missing), reason=f"not installed here: {', '.join(missing)}")


def test_detection_modules_are_the_packages() -> None:
    assert source().startswith("npm wasm-feature-detect ")
    named = {name for name in FEATURES.values() if name}
    assert named <= set(detection_modules())
    assert all(data.startswith(b"\0asm") for data in detection_modules().values())


@needs("wasmtime", "node", "jsc", "spidermonkey")
def test_known_facts_of_these_engines() -> None:
    table = detect(["wasmtime", "node", "jsc", "spidermonkey"])
    assert table["wasmtime"]["GC"] and table["wasmtime"]["SIMD"] and table["wasmtime"]["components"]
    assert table["node"]["SIMD"] and not table["node"]["GC"] and not table["node"]["memory64"]
    assert table["spidermonkey"]["SIMD"] and not table["spidermonkey"]["tail calls"]
    assert table["jsc"]["tail calls"] and table["jsc"]["GC"]
    for spec in ("jsc", "spidermonkey"):  # the shells run no components, but WASI p1 through the worker's shim
        assert table[spec]["components"] is False and table[spec]["WASI p1"] is True
        assert table[spec]["WASI p2"] is False
    assert all(table[spec]["multi-value"] and table[spec]["bulk memory"] for spec in table)


@needs("wasmtime")
def test_wasi_p2_is_a_component_that_prints() -> None:
    if probe("wasmtime", "WASI p2") is None:
        pytest.skip("jco (tools/npm) is not installed: no WASI p2 component to run")
    assert probe("wasmtime", "WASI p2") is True


@needs("wasm3", "wasmer-sdk")
def test_engines_that_cannot_be_asked_say_none() -> None:
    assert probe("wasm3", "SIMD") is None  # compiles lazily: loading proves nothing
    assert probe("wasm3", "WASI p1") is True and probe("wasm3", "components") is False
    assert probe("wasmer-sdk", "GC") is None and probe("wasmer-sdk", "WASI p1") is True


def test_every_spec_lists_tiers_and_bad_names_say_so() -> None:
    specs = every_spec()
    if "jsc" in AVAILABLE:
        assert {"jsc", "jsc:bbq", "jsc:ipint"} <= set(specs)
    with pytest.raises(UsageError, match="unknown runtime"):
        detect(["nope"])
    with pytest.raises(UsageError, match="unknown feature"):
        probe("wasmtime", "teleportation")


@needs("spidermonkey")
def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features", "--runtimes", "spidermonkey:baseline", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"spidermonkey:baseline"} and data["spidermonkey:baseline"]["SIMD"] is True
    assert main(["features", "--runtimes", "spidermonkey"]) == 0
    assert "SIMD" in capsys.readouterr().out
