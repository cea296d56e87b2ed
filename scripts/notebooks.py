"""Build the tutorial notebooks from their sources and run them, so saved outputs are real.

Sources are `notebooks/src/NN_name.py` in the percent format: `# %%` starts a code cell, `# %% [markdown]` a
markdown cell (its lines written as `# text`), and `# %% tags=["nbval-ignore-output"]` tags a cell whose output
varies (timings, figures). `build` writes `notebooks/NN_name.ipynb` and executes it in place with nbclient, in the
notebooks folder, with this venv's Python kernel — exactly what nbval re-runs in CI.

    .venv/bin/python scripts/notebooks.py build [NAME ...]   # all, or the sources whose names contain NAME
    .venv/bin/python scripts/notebooks.py check              # sources and notebooks agree (cells, tags)
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "notebooks" / "src"
OUT = ROOT / "notebooks"
HEADER = re.compile(r"^# %%(?: \[(markdown)\])?(?: tags=(\[.*\]))?\s*$")
METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def parse(source: Path) -> nbformat.NotebookNode:
    cells: list[nbformat.NotebookNode] = []
    kind, tags, lines = None, [], []

    def flush() -> None:
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell(text)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in source.read_text().splitlines():
        match = HEADER.match(line)
        if match:
            flush()
            kind = "markdown" if match.group(1) else "code"
            tags = json.loads(match.group(2)) if match.group(2) else []
            lines = []
        else:
            lines.append(line)
    flush()
    notebook = nbformat.v4.new_notebook(cells=cells, metadata=METADATA)
    for i, cell in enumerate(notebook.cells):
        cell["id"] = f"{source.stem}-{i:02d}"  # stable ids: rebuilding gives a minimal diff
    return notebook


def build(source: Path) -> None:
    notebook = parse(source)
    started = time.perf_counter()
    os.environ.setdefault("PLOTLY_RENDERER", "plotly_mimetype")
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(OUT)}}).execute()
    target = OUT / f"{source.stem}.ipynb"
    nbformat.write(notebook, target)
    print(f"{target.relative_to(ROOT)}: {len(notebook.cells)} cells, ran in {time.perf_counter() - started:.1f} s")


def check() -> int:
    problems = 0
    for source in sorted(SOURCES.glob("*.py")):
        target = OUT / f"{source.stem}.ipynb"
        if not target.exists():
            print(f"missing {target.name}: run scripts/notebooks.py build {source.stem}")
            problems += 1
            continue
        want = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in parse(source).cells]
        have = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nbformat.read(target, 4).cells]
        if want != have:
            print(f"{target.name} is out of date with {source.name}: run scripts/notebooks.py build {source.stem}")
            problems += 1
    return problems


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("build", "check"):
        print(__doc__)
        return 2
    if argv[0] == "check":
        return 1 if check() else 0
    names = argv[1:]
    for source in sorted(SOURCES.glob("*.py")):
        if not names or any(name in source.stem for name in names):
            build(source)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
