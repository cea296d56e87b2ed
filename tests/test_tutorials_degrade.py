"""The tutorials on a machine without the optional engines: every notebook still runs top to bottom, and where it
would have used a missing engine it says so (which one, why, how to fix it) instead of failing.

nbval (in `make test`) checks the saved outputs with every engine present; here node and wasmer are hidden (their
binaries pointed at nothing) and each notebook runs in a real kernel through nbclient."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
HIDDEN = {"WASMLAB_NODE": "/nonexistent/node", "WASMLAB_WASMER_PYTHON": "/nonexistent/python3.10"}


def test_available_runtimes_keeps_what_runs_and_says_why_not() -> None:
    code = "from wasmlab.runtimes import available_runtimes as a; print(a(['wasmtime', 'node', 'wasmer']))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=HIDDEN | _path_env(),
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout == "['wasmtime']\n", proc.stderr
    notes = proc.stderr.splitlines()
    assert len(notes) == 2 and notes[0].startswith("note: skipping node: runtime node unavailable: /nonexistent/node")
    assert notes[1].startswith("note: skipping wasmer: runtime wasmer unavailable") and "fix:" in notes[1]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_runs_without_node_and_wasmer(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in HIDDEN.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PLOTLY_RENDERER", "plotly_mimetype")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [
        f"cell {index}: {output['ename']}: {output['evalue'][:300]}"
        for index, cell in enumerate(notebook.cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, errors
    if any("= available_runtimes(" in cell.source for cell in notebook.cells):  # its engine list says what it skips
        streams = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
        assert "note: skipping node: runtime node unavailable" in streams


def _path_env() -> dict[str, str]:
    import os

    return {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
