"""Where JupyterLab finds wasmlab's prebuilt extension (`wasmlab-jupyterlab`, built from `js/` into
`wasmlab/labextension/` by `scripts/build_labextension.sh`).

A wheel installs it through shared-data into `share/jupyter/labextensions/wasmlab-jupyterlab`; this hook is
the Jupyter convention for tools that look it up from the package (`jupyter labextension develop`).
"""

from __future__ import annotations

from pathlib import Path

EXTENSION_NAME = "wasmlab-jupyterlab"
LABEXTENSION_DIR = Path(__file__).resolve().parent / "labextension"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": EXTENSION_NAME}]
