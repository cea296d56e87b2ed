"""Every tutorial notebook, as saved (outputs from its last build), rendered in JupyterLab: its title shows, its
saved outputs render, and a full-page screenshot is written to ui-tests/screenshots/tutorial-NN_*.png for review."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("notebook", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_renders(notebook: Path, lab_server, browser, screenshots: Path) -> None:
    from test_lab_ui import open_notebook

    saved = json.loads(notebook.read_text())
    title = next(c for c in saved["cells"] if c["cell_type"] == "markdown")["source"]
    title = (title if isinstance(title, str) else "".join(title)).splitlines()[0].lstrip("# ").strip()
    outputs = sum(1 for c in saved["cells"] if c["cell_type"] == "code" and c.get("outputs"))
    shutil.copy(notebook, lab_server.root / notebook.name)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        open_notebook(page, lab_server, notebook.name)
        panel = page.locator(".jp-NotebookPanel:visible")
        panel.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
        rendered = panel.locator(".jp-Cell .jp-OutputArea-output")
        rendered.first.wait_for(timeout=60_000)
        assert rendered.count() >= outputs  # every saved output is on the page (some cells have several)
        page.screenshot(path=str(screenshots / f"tutorial-{notebook.stem}.png"), full_page=True)
    finally:
        context.close()
