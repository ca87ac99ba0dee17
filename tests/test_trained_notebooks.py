"""Every notebook that loads a trained model can still train it to the quality it states.

``make checkpoints`` runs these notebooks with ``ATTENTION_LAB_RETRAIN=1``;
here they run the same way, writing into a temporary folder, and every
``assert`` in them (the accuracy they claim, the alignments they name) must
hold for the freshly trained model too.
"""

import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

from attention_lab import checkpoints

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRAINED = sorted(path for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
                 if "train_or_load" in path.read_text())


@pytest.mark.parametrize("path", TRAINED, ids=lambda path: path.name)
def test_retraining_reaches_the_stated_quality(path, tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoints.RETRAIN_ENV, "1")
    monkeypatch.setenv(checkpoints.DIRECTORY_ENV, str(tmp_path))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=1800, kernel_name="attention-lab",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    assert sorted(os.listdir(tmp_path)), "the notebook saved no checkpoint"
