"""Every notebook as a learner uses it, in JupyterLab and Notebook 7: Run All, every control moved.

Per front end (``jupyter lab`` and ``jupyter notebook``, both in Chromium) and
notebook: all cells run without a traceback or "Error displaying widget";
every explorer (``explorer_panel``) shows a figure; moving each of its
sliders (arrow keys; dragged in Notebook 7, whose shortcuts take the keys),
dropdowns, checkboxes and toggle/radio buttons changes the figure's PNG; the
GPU toggle is disabled with its reason shown where CUDA is absent (and moves
the computation to CUDA where it is present).
Run with ``make e2e``; ``pytest -m e2e tests/e2e --notebooks DIR`` for another folder,
``--front-ends notebook7`` for one front end.
"""

from __future__ import annotations

import re
import shutil
import warnings

import browser
import pytest

pytestmark = pytest.mark.e2e


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "control"


def test_chromium_found():
    """Fails where a browser is required (CI) but missing; skips for learners without one."""
    assert browser.require_chromium()


def check_gpu_toggle(page, index: int, problems: list[str]) -> None:
    toggle, row_text = browser.gpu_toggle(page, index)
    if toggle is None:
        return
    if not _cuda_available():
        if toggle.is_enabled():
            problems.append(f"explorer {index}: GPU toggle is enabled on a machine without CUDA")
        reason = toggle.evaluate_handle(
            "b => b.closest('.widget-hbox').querySelector('.widget-html')").as_element()
        if reason is None or not reason.is_visible() or "unavailable" not in row_text:
            problems.append(f"explorer {index}: GPU toggle's reason is not shown: {row_text!r}")
        return
    for device in ("cuda", "cpu"):
        browser.gpu_toggle(page, index)[0].click()
        try:
            page.wait_for_function(
                "([sel, i, dev]) => document.querySelectorAll(sel)[i].innerText"
                ".includes('last update on ' + dev)", arg=[browser.EXPLORERS, index, device],
                timeout=30_000)
        except Exception:  # noqa: BLE001  (reported with the explorer's status line)
            problems.append(f"explorer {index}: GPU toggle did not move the update to {device}: "
                            f"{browser.status_text(page, index)!r}")


def check_explorer(page, index: int, folder, problems: list[str],
                   front_end: browser.FrontEnd) -> int:
    """Move every control of explorer ``index``; returns how many controls were moved."""
    browser.explorer(page, index).scroll_into_view_if_needed()
    browser.explorer(page, index).screenshot(path=folder / f"explorer{index}-0-before.png")
    check_gpu_toggle(page, index, problems)
    found = browser.controls(page, index)
    if not found:
        problems.append(f"explorer {index} has no slider, dropdown or button to move")
    for number, control in enumerate(found, start=1):
        name = f"{control['kind']} {control['label']!r}"
        before = browser.figure_hash(page, index)
        action = browser.move_control(page, index, control, slider_keys=front_end.slider_keys)
        after = browser.wait_figure_change(page, index, before)
        if after is None:
            problems.append(f"explorer {index}: {name} ({action}) did not change the figure "
                            f"within 15 s; status: {browser.status_text(page, index)!r}")
            continue
        slug = _slug(f"{control['kind']}-{control['label']}")
        shot = folder / f"explorer{index}-{number}-{slug}.png"
        browser.explorer(page, index).screenshot(path=shot)
    return len(found)


def test_notebook_in_the_browser(notebook, page, server, screenshots):
    folder = screenshots / server.front_end.name / notebook.removesuffix(".ipynb")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        browser.open_and_run(page, server, notebook)
        count = browser.explorer_count(page)
        if not count:  # the template asks for one; a benchmarks-only notebook may have none
            warnings.warn(f"{notebook} shows no explorer (explorer_panel)", stacklevel=1)
        problems: list[str] = []
        for index in range(count):
            check_explorer(page, index, folder, problems, server.front_end)
        errors = browser.error_texts(page)
        problems += [f"error output after moving controls: {text}" for text in errors]
        assert not problems, f"{notebook} in {server.front_end.name}:\n" + "\n".join(problems)
    except BaseException:
        page.screenshot(path=folder / "page-at-failure.png", full_page=True)
        raise
