"""The "Wasm Lab" kernelspec on a real kernel: installed into a temporary prefix, started by name through
nbclient / jupyter_client, with the wasmlab extension preloaded (no `%load_ext`)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from wasmlab.notebook import KERNEL_DIR, install_kernelspec, kernelspec, logo_png

from .snippets import ADD_WAT, SPIN_WAT


@pytest.fixture
def jupyter_prefix(tmp_path, monkeypatch):
    """A private Jupyter data path with the wasmlab kernelspec installed in it."""
    prefix = tmp_path / "prefix"
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    installed = install_kernelspec(prefix=prefix)
    return Path(installed)


def test_repository_kernelspec_matches_the_generated_one():
    spec = json.loads((KERNEL_DIR / "kernel.json").read_text())
    assert spec == kernelspec()
    assert spec["display_name"] == "Wasm Lab" and spec["language"] == "python"
    assert "--IPKernelApp.extensions=wasmlab" in spec["argv"] and "{connection_file}" in spec["argv"]
    for size in (32, 64):
        png = (KERNEL_DIR / f"logo-{size}x{size}.png").read_bytes()
        assert png == logo_png(size)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and png[16:24] == size.to_bytes(4, "big") * 2


def test_install_kernelspec(jupyter_prefix, tmp_path):
    assert jupyter_prefix == tmp_path / "prefix" / "share" / "jupyter" / "kernels" / "wasmlab"
    spec = json.loads((jupyter_prefix / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable  # this interpreter, whatever "python" is on PATH
    assert spec["argv"][1:] == kernelspec()["argv"][1:]
    assert (jupyter_prefix / "logo-32x32.png").is_file() and (jupyter_prefix / "logo-64x64.png").is_file()
    found = KernelSpecManager().get_kernel_spec("wasmlab")
    assert found.display_name == "Wasm Lab" and Path(found.resource_dir) == jupyter_prefix


def outputs_text(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("display_data", "execute_result"):
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
    return "\n".join(parts)


def test_wasmlab_kernel_runs_magics_and_survives_a_runaway_guest(jupyter_prefix):
    cells = [
        f"%%wasm wat --name adder --run wasmtime --invoke add 40 2\n{ADD_WAT}",
        f"%%wasm wat --name spin -q --run wasmtime --invoke spin --timeout 1\n{SPIN_WAT}",
        "print(type(adder).__name__, type(spin).__name__, 6 * 7)",
        '%%wasm wat --name adder\n(module (func (export "f") (result i32) i64.const 1))',
        "print(adder.export_names())",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    nb.cells[3].metadata["tags"] = ["raises-exception"]  # the compile error is expected
    started = time.perf_counter()
    NotebookClient(nb, kernel_name="wasmlab", timeout=300, startup_timeout=120).execute()
    elapsed = time.perf_counter() - started

    compiled = nb.cells[0]
    bundles = [out.data for out in compiled.outputs if out.output_type == "display_data"]
    assert any("application/vnd.wasmlab.module.v1+json" in data for data in bundles)  # preloaded formatters
    (run,) = [
        data["application/vnd.wasmlab.run.v1+json"]
        for data in bundles
        if "text/html" in data and "application/vnd.wasmlab.run.v1+json" in data
    ]
    assert run["result"] == 42 and run["ok"]
    assert "-> 42" in outputs_text(compiled)

    assert "LimitExceeded (time)" in outputs_text(nb.cells[1])
    assert outputs_text(nb.cells[2]).strip() == "Module Module 42"  # the kernel lived on, with its state

    # IPython shows a UsageError as its message on stderr, no traceback; the cell still counts as failed
    (stderr,) = [out for out in nb.cells[3].outputs if out.output_type == "stream"]
    assert stderr.name == "stderr" and len(nb.cells[3].outputs) == 1
    first, *diagnostics = stderr.text.splitlines()
    assert first.startswith("UsageError: wat compile error: type mismatch") and diagnostics
    assert outputs_text(nb.cells[4]).strip() == "['add']"  # the failed compile did not rebind adder
    assert elapsed < 120


def test_a_failing_magic_fails_the_cell(jupyter_prefix):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%%wasm cobol\nDISPLAY 'HI'.")])
    with pytest.raises(CellExecutionError) as caught:
        NotebookClient(nb, kernel_name="wasmlab", timeout=120, startup_timeout=120).execute()
    assert "UsageError" in str(caught.value)
    (line,) = nb.cells[0].outputs[0].text.splitlines()  # one line
    assert line.startswith("UsageError: unknown language 'cobol': use one of wat, c,")
