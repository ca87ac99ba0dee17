"""Chapter 07's explorer: a seq2seq model's alignment for a typed string."""

import pytest
import torch

from attention_lab.render import figure_png
from tests.explorer_cases import alignment


def test_explorer_update_changes_image_title_and_ticks():
    explorer = alignment()[0]
    before = explorer.grid.images[0].get_array().copy()
    fig = explorer.update(digits="9870", model="additive")
    assert fig is explorer.fig
    assert not torch.allclose(torch.as_tensor(before),
                              torch.as_tensor(explorer.grid.images[0].get_array()))
    assert explorer.title.get_text().startswith("additive: 9870 -> ")
    assert [t.get_text() for t in explorer.ax.get_xticklabels()] == list("9870")


def test_explorer_errors_and_to_cpu():
    explorer = alignment()[0]
    with pytest.raises(ValueError, match="digits must be a string of 4 digits"):
        explorer.update(digits="12a4", model="concat")
    with pytest.raises(ValueError, match="model must be one of"):
        explorer.update(digits="1234", model="dot")
    assert explorer.to("cpu") is explorer
    assert explorer.device == torch.device("cpu")
    explorer.update(digits="4321", model="concat")


def test_explorer_title_stays_inside_the_rendered_figure():
    """The panel renders the exact canvas (no tight bbox): the title must be inside it."""
    explorer = alignment()[0]
    explorer.update("4321", "additive")
    figure_png(explorer.fig)  # one Agg draw, as the panel does
    box = explorer.title.get_window_extent(explorer.fig.canvas.get_renderer())
    assert explorer.title.get_text().startswith("additive")
    assert 0 <= box.y0 and box.y1 <= explorer.fig.bbox.height, (box, explorer.fig.bbox)
