"""`wasmlab.load` and `Module`: inspection, validation, size reports, components."""

from __future__ import annotations

from pathlib import Path

import pytest

import wasmlab
from wasmlab.errors import InvalidModule, UsageError

from .conftest import need_toolchain

WAT = """(module
  (import "env" "log" (func $log (param i32 i32)))
  (import "env" "mem" (memory 1 2))
  (global $g (export "counter") (mut i32) (i32.const 0))
  (table (export "tbl") 2 funcref)
  (func $small (export "small") (result i32) i32.const 1)
  (func $big (export "big") (param f64) (result f64 f64)
    local.get 0 local.get 0 f64.mul local.get 0)
  (elem (i32.const 0) $small $big)
  (data (i32.const 16) "hello")
  (start $small2)
  (func $small2))
"""


@pytest.fixture(scope="module")
def module() -> wasmlab.Module:
    return wasmlab.compile(WAT, "wat", name="sample")


def test_imports_and_exports_with_types(module: wasmlab.Module) -> None:
    imports = {(i.module, i.name): (i.kind, str(i.type)) for i in module.imports}
    assert imports[("env", "log")] == ("func", "(i32, i32) -> ()")
    assert imports[("env", "mem")][0] == "memory"
    exports = {e.name: (e.kind, str(e.type)) for e in module.exports}
    assert exports["big"] == ("func", "(f64) -> (f64, f64)")
    assert exports["counter"][0] == "global" and module.globals[0].mutable
    assert exports["tbl"][0] == "table" and module.tables[0].limits.min == 2


def test_segments_start_and_names(module: wasmlab.Module) -> None:
    assert module.parsed.data_segments == 1
    assert module.parsed.element_segments == 1
    assert module.start is not None
    assert module.parsed.function_names[module.start] == "small2"
    assert {f.name or module.parsed.function_names.get(f.index) for f in module.functions} >= {"small", "big"}


def test_summary_is_json_ready(module: wasmlab.Module) -> None:
    import json

    data = json.loads(json.dumps(module.summary()))
    assert data["kind"] == "module"
    assert data["size"] == module.size
    assert {s["name"] for s in data["sections"]} >= {"type", "import", "function", "export", "code", "data"}
    assert data["provenance"]["lang"] == "wat"


def test_top_functions_sorted_by_size(module: wasmlab.Module) -> None:
    sizes = [f.size for f in module.top_functions(3)]
    assert sizes == sorted(sizes, reverse=True)
    assert len(module.top_functions(1)) == 1


def test_load_from_path_and_bytes(tmp_path: Path, module: wasmlab.Module) -> None:
    path = module.save(tmp_path / "m.wasm")
    loaded = wasmlab.load(path)
    assert loaded.sha256 == module.sha256
    assert loaded.name == "m.wasm" and loaded.provenance.origin == "file"
    assert wasmlab.load(module.bytes).sha256 == module.sha256
    wat_path = tmp_path / "text.wat"
    wat_path.write_text(WAT)
    assert wasmlab.load(wat_path).sha256 == module.sha256


def test_load_rejects_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        wasmlab.load(tmp_path / "absent.wasm")
    with pytest.raises(InvalidModule, match="magic"):
        wasmlab.load(b"\x7fELF\x02\x01\x01\x00")
    with pytest.raises(InvalidModule) as info:
        wasmlab.load(b"\0asm\x01\0\0\0\x01\x05\x01\x60")  # type section cut short
    assert info.value.offset is not None


def test_validation_catches_type_errors_the_parser_cannot() -> None:
    # structurally fine, but i32.add has only one operand
    body = bytes([0x00, 0x41, 0x01, 0x6A, 0x0B])
    data = (b"\0asm\x01\0\0\0" + bytes([0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7F]) + bytes([0x03, 0x02, 0x01, 0x00])
            + bytes([0x0A, len(body) + 2, 0x01, len(body)]) + body)
    assert wasmlab.load(data, validate=False).functions[0].size == len(body)
    with pytest.raises(InvalidModule, match="validation failed"):
        wasmlab.load(data)


def test_size_report() -> None:
    need_toolchain("c")
    module = wasmlab.compile('#include <stdio.h>\nint main(void) { puts("sizes"); return 0; }\n', "c", kind="command")
    report = module.size_report()
    assert report["raw"] == module.size
    assert report["stripped"] <= report["raw"]
    assert report["gzip"] < report["raw"] and report["brotli"] < report["raw"]
    if report["wasm_opt_oz"] is not None:
        assert report["wasm_opt_oz"] < report["raw"]
    assert module.size_report(brotli_quality=1)["brotli"] > report["brotli"]  # quality 11 below 4 MiB
    with pytest.raises(UsageError, match="brotli_quality=12 is out of range"):
        module.size_report(brotli_quality=12)


def test_size_report_of_a_big_module_uses_a_faster_brotli(monkeypatch: pytest.MonkeyPatch) -> None:
    need_toolchain("c")
    module = wasmlab.compile("int f(int x) { return x * 3; }", "c")
    monkeypatch.setattr(wasmlab.module, "BROTLI_MAX_SIZE", module.size - 1)  # this module counts as big
    assert module.size_report()["brotli"] == module.size_report(brotli_quality=9)["brotli"]


def test_component_is_recognised_with_its_wit() -> None:
    component = wasmlab.compile(
        '(component (core module $m (func (export "f") (result i32) i32.const 7)) '
        '(core instance $i (instantiate $m)) '
        '(func (export "seven") (result u32) (canon lift (core func $i "f"))))', "wat")
    assert component.is_component
    summary = component.summary()
    assert summary["kind"] == "component"
    assert summary["exports"] == [{"name": "seven", "kind": "func", "type": "func() -> u32"}]
    assert "export seven: func() -> u32" in component.wit()
    with pytest.raises(UsageError, match="not a component"):
        wasmlab.compile('(module)', "wat").wit()


def test_func_type_of_a_missing_export_names_the_exports(module: wasmlab.Module) -> None:
    with pytest.raises(UsageError, match=r"exports no function 'nope'.*small"):
        module.func_type("nope")
