"""The GPU path (`make gpu-check`): every explorer moved to CUDA with its toggle draws what
the CPU draws.

For each case of tests/explorer_cases.py, one explorer stays on the CPU and a
twin is put in an ``explorer_panel`` whose GPU toggle is switched on, as a
learner would; both replay the case's moves (which between them move every
control) and their full draws are compared pixel by pixel.  CUDA kernels round
differently from CPU ones, so a colour may move by a few levels and a printed
last digit may flip; a figure that differs anywhere more (a wrong mask, a stale
panel, a missing update) fails.

Without CUDA every test here skips, except the one that runs the same harness
with the toggle disabled, so the check cannot rot on CPU-only machines.
"""

import ipywidgets as widgets
import numpy as np
import pytest
import torch

from attention_lab.panel import explorer_panel
from attention_lab.render import figure_png
from tests.explorer_cases import CASES
from tests.helpers import pixels

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs CUDA (make gpu-check on a GPU machine)")
# A pixel may differ by this many levels (of 255) anywhere: rounding of colours.
MAX_LEVELS = 16
# Larger differences are allowed in this fraction of the pixels: a flipped last digit of
# a printed number.  A heatmap cell of the smallest case is several times larger.
MAX_FRACTION = 2e-3


def _toggle(panel: widgets.VBox) -> widgets.ToggleButton:
    """The panel's GPU toggle."""
    (toggle,) = [child for row in panel.children if isinstance(row, widgets.HBox)
                 for child in row.children if isinstance(child, widgets.ToggleButton)]
    return toggle


def _difference(a: bytes, b: bytes) -> tuple[int, float]:
    """Largest level difference and fraction of pixels beyond MAX_LEVELS."""
    first, second = pixels(a), pixels(b)
    assert first.shape == second.shape, f"sizes differ: {first.shape} vs {second.shape}"
    levels = np.abs(first - second).max(axis=-1)
    return int(levels.max()), float((levels > MAX_LEVELS).mean())


def replay_on_toggled_device(case: str) -> tuple[str, list[tuple[dict, int, float]]]:
    """Switch a twin's GPU toggle on, replay ``case``'s moves on both; (device, diffs)."""
    reference, moves = CASES[case]()
    twin, _ = CASES[case]()
    toggle = _toggle(explorer_panel(twin, {}, gpu=True))
    toggle.value = True  # the panel moves the twin with Explorer.to, as a click would
    diffs = []
    for params in moves:
        reference.update(**params)
        twin.update(**params)
        diffs.append((params, *_difference(figure_png(reference.fig), figure_png(twin.fig))))
    device = twin.device.type
    toggle.value = False
    assert twin.device.type == "cpu", "switching the toggle off must bring the explorer back"
    return device, diffs


def _check(diffs: list[tuple[dict, int, float]]) -> None:
    for params, _, fraction in diffs:
        assert fraction <= MAX_FRACTION, (
            f"after {params}: {fraction:.2%} of the pixels differ by more than {MAX_LEVELS} levels")


@needs_cuda
@pytest.mark.parametrize("case", CASES)
def test_explorer_on_cuda_draws_the_cpu_figure(case):
    device, diffs = replay_on_toggled_device(case)
    assert device == "cuda", "the GPU toggle did not move the explorer to CUDA"
    _check(diffs)


@pytest.mark.skipif(CUDA, reason="the CUDA run above covers it")
def test_the_harness_runs_without_cuda_and_keeps_the_cpu():
    """Without CUDA the toggle is disabled; switched on anyway, the explorer stays on the
    CPU and draws exactly the reference figure."""
    device, diffs = replay_on_toggled_device("temperature")
    assert device == "cpu"
    assert all(levels == 0 for _, levels, _ in diffs)


@needs_cuda
def test_gpu_benchmark_runs_one_small_case_on_cuda():
    from attention_lab.benchmark import benchmark_attention

    rows = benchmark_attention([64], repeats=1, device=torch.device("cuda"), max_seconds=6.0,
                               log=lambda *_: None)
    assert rows and all("skipped" in r or r["median_ms"] > 0 for r in rows)
