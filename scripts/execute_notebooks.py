"""Execute the notebooks in place with the full data and draws, keeping their figures.

    .venv/bin/python scripts/execute_notebooks.py                 # all notebooks
    .venv/bin/python scripts/execute_notebooks.py 03_segments     # one

The test suite runs them with ``CLVBAYES_QUICK=1`` (few draws) and the Agg backend and
throws the outputs away; this script runs them as a reader would (no quick mode, the
kernel's inline backend, so every figure is stored as a PNG output) and writes them back.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(path: Path) -> None:
    env_backup = {k: os.environ.pop(k) for k in ("CLVBAYES_QUICK", "MPLBACKEND") if k in os.environ}
    try:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(
            nb,
            timeout=3600,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        ).execute()
        figures = sum(
            "image/png" in out.get("data", {})
            for cell in nb.cells
            if cell.cell_type == "code"
            for out in cell.get("outputs", [])
        )
        nbformat.write(nb, path)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s, {figures} figures")
    finally:
        os.environ.update(env_backup)


if __name__ == "__main__":
    names = sys.argv[1:] or [p.stem for p in sorted(NOTEBOOKS.glob("*.ipynb"))]
    for name in names:
        execute(NOTEBOOKS / f"{name}.ipynb")
