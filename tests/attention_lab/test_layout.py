"""attention_lab.layout: round tick steps that stay put."""

import pytest
from matplotlib.figure import Figure

from attention_lab.layout import fixed_yticks, nice_ceiling


@pytest.mark.parametrize(("value", "expected"), [(0.0873, 0.1), (0.1, 0.1), (0.34, 0.5),
                                                 (1.15, 2.0), (0.6, 1.0), (3e-4, 5e-4)])
def test_nice_ceiling_rounds_up_to_one_two_five(value, expected):
    assert nice_ceiling(value) == pytest.approx(expected)


@pytest.mark.parametrize(("low", "high"), [(-1.05, 1.45), (0.0, 0.003), (3.2, 3.3), (-50, -7)])
def test_fixed_yticks_cover_the_data_with_five_round_ticks(low, high):
    ax = Figure().add_subplot()
    fixed_yticks(ax, low, high)
    ticks = ax.get_yticks()
    bottom, top = ax.get_ylim()
    assert len(ticks) == 5 and (bottom, top) == (ticks[0], ticks[-1])
    assert bottom < low and top > high
    step = ticks[1] - ticks[0]
    assert step == pytest.approx(nice_ceiling(step))  # 1, 2 or 5 times a power of ten
    labels = [float(label.get_text()) for label in ax.get_yticklabels()]
    assert labels == pytest.approx(list(ticks), abs=1e-9)
