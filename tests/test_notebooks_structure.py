"""Every notebook follows the series' template and is stored as a fresh run."""

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

SETUP_CELL = """\
# NBVAL_IGNORE_OUTPUT
# (the device line differs between machines)
# Setup: the same cell opens every notebook of the series.
%matplotlib inline
import torch

import attention_utils as au

au.set_seed(0)
device = au.get_device()
au.print_environment(device)"""


def _cells(path: pathlib.Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _markdown(path: pathlib.Path) -> str:
    return "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "markdown")


def _code(path: pathlib.Path) -> list[dict]:
    return [c for c in _cells(path) if c["cell_type"] == "code" and _source(c).strip()]


def test_the_series_has_its_chapters():
    numbers = [path.name[:2] for path in NOTEBOOKS]
    assert numbers == sorted(set(numbers))
    assert {"00", "01", "02", "03", "04", "05"} <= set(numbers)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_shared_setup_cell(path):
    assert _source(_code(path)[0]) == SETUP_CELL


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_the_template_sections(path):
    text = _markdown(path)
    for heading in ("## Summary", "## Exercises", "## Glossary"):
        assert heading in text, f"{path.name} lacks {heading!r}"
    assert "Objectives" in text and "Time" in text
    assert "redict" in text, f"{path.name} has no 'Predict, then check' step"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_as_one_fresh_top_to_bottom_run(path):
    counts = [cell.get("execution_count") for cell in _code(path)]
    assert counts == list(range(1, len(counts) + 1))
    errors = [o for c in _code(path) for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_is_skipped_by_nbval(path):
    assert not any("NBVAL_SKIP" in _source(c) for c in _code(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_markers_stand_alone_on_their_line(path):
    """nbval honours a marker only when it is the whole comment: a reason goes on the next line."""
    for cell in _code(path):
        for line in _source(cell).splitlines():
            if "NBVAL_" in line:
                assert line.strip() == "# NBVAL_IGNORE_OUTPUT", line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_the_series_kernel(path):
    kernelspec = json.loads(path.read_text())["metadata"]["kernelspec"]
    assert kernelspec["name"] == "attention-lab"


def _local_links(text: str) -> list[str]:
    return [link.split("#")[0] for link in re.findall(r"\]\(([^)\s]+)\)", text)
            if not link.startswith(("http", "#", "mailto:"))]


@pytest.mark.parametrize("path", [*NOTEBOOKS, ROOT / "README.md"], ids=lambda p: p.name)
def test_local_links_resolve(path):
    text = _markdown(path) if path.suffix == ".ipynb" else path.read_text()
    missing = [link for link in _local_links(text) if not (path.parent / link).exists()]
    assert not missing, f"{path.name} links to missing files: {missing}"
