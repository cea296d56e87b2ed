"""The prebuilt JupyterLab extension (wasmlab-jupyterlab): built into wasmlab/labextension, installed where this
venv's JupyterLab finds it, and listed `enabled OK`. Build it with `bash scripts/build_labextension.sh`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wasmlab.labextension_paths import EXTENSION_NAME, LABEXTENSION_DIR, _jupyter_labextension_paths

ROOT = Path(__file__).resolve().parent.parent
BUILD_HINT = "build it with `bash scripts/build_labextension.sh`"


@pytest.fixture(scope="module")
def built() -> dict:
    package = LABEXTENSION_DIR / "package.json"
    if not package.is_file():
        pytest.fail(f"no prebuilt extension at {LABEXTENSION_DIR}: {BUILD_HINT}")
    return json.loads(package.read_text())


def test_prebuilt_extension_has_package_json_and_remote_entry(built: dict) -> None:
    assert built["name"] == EXTENSION_NAME
    entries = list((LABEXTENSION_DIR / "static").glob("remoteEntry.*.js"))
    assert len(entries) == 1, f"expected one remoteEntry.*.js in {LABEXTENSION_DIR / 'static'}: {BUILD_HINT}"
    build = built["jupyterlab"]["_build"]
    assert (LABEXTENSION_DIR / build["load"]).is_file()
    assert build["extension"] == "./extension"
    assert build["mimeExtension"] == "./mimeExtension"  # the module inspector and run view renderers
    assert (LABEXTENSION_DIR / "static" / "style.js").is_file()


def test_prebuilt_extension_matches_the_source(built: dict) -> None:
    source = json.loads((ROOT / "js" / "package.json").read_text())
    assert built["version"] == source["version"]
    assert source["jupyterlab"]["outputDir"] == "../wasmlab/labextension"


def test_labextension_paths_hook() -> None:
    [entry] = _jupyter_labextension_paths()
    assert entry == {"src": "labextension", "dest": EXTENSION_NAME}
    assert (LABEXTENSION_DIR.parent / entry["src"]) == LABEXTENSION_DIR


def test_jupyter_lists_it_enabled_ok(built: dict) -> None:
    installed = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / EXTENSION_NAME
    if not (installed / "package.json").is_file():
        pytest.fail(f"{EXTENSION_NAME} is not installed in {installed.parent}: {BUILD_HINT} (it links it there)")
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True, timeout=120
    )
    lines = [line for line in (out.stdout + out.stderr).splitlines() if EXTENSION_NAME in line]
    assert lines, out.stdout + out.stderr
    assert "enabled" in lines[0] and "OK" in lines[0], lines[0]
    assert built["version"] in lines[0]
