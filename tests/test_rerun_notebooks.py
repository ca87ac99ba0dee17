"""Every notebook survives a learner re-running its cells.

Each code cell is executed twice in a row, top to bottom, in one kernel: a cell
that draws from a generator it does not seed, changes something it reads, or
registers a hook it never removes fails its own asserts (or a later cell's) on
the second run.  Errors fail the test with the cell's traceback.
"""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_every_cell_can_run_twice(path):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="attention-lab",
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
                client.execute_cell(cell, index)  # the learner runs it again
