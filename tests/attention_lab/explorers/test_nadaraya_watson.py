"""Chapter 01's explorer: Nadaraya-Watson weights and fit."""

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from attention_lab.explorers.nadaraya_watson import NadarayaWatsonExplorer
from attention_lab.panel import explorer_panel
from tests.helpers import image_widget


def _data(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, _ = torch.sort(torch.rand(n, generator=g) * 5)
    y = 2 * torch.sin(x) + x**0.8 + 0.5 * torch.randn(n, generator=g)
    return x, y


@pytest.fixture
def nw_explorer():
    x, y = _data(30)
    queries = torch.arange(0, 5, 0.25)
    truth = 2 * torch.sin(queries) + queries**0.8
    return NadarayaWatsonExplorer(x, y, queries, truth, sigma=1.0)


def test_nw_explorer_builds_one_figure_at_its_defaults(nw_explorer):
    assert isinstance(nw_explorer.fig, Figure)
    assert nw_explorer.query == 10 and nw_explorer.sigma == 1.0
    assert nw_explorer.weights.shape == (20, 30)
    np.testing.assert_allclose(nw_explorer.image.get_array(), nw_explorer.weights)
    assert "σ = 1" in nw_explorer.weights_title.get_text()


def test_nw_explorer_update_changes_image_curve_bars_and_titles(nw_explorer):
    fig, axes = nw_explorer.fig, list(nw_explorer.fig.axes)
    image_before = np.array(nw_explorer.image.get_array())
    curve_before = np.array(nw_explorer.curve.get_ydata())
    mse_before = nw_explorer.mse
    assert nw_explorer.update(sigma=0.05, query=3) is fig
    assert fig.axes == axes  # same figure, same artists: nothing rebuilt
    assert not np.allclose(nw_explorer.image.get_array(), image_before)
    assert not np.allclose(nw_explorer.curve.get_ydata(), curve_before)
    np.testing.assert_allclose(nw_explorer.curve.get_ydata(), nw_explorer.y_hat)
    heights = [path.vertices[1, 1] for path in nw_explorer.bars.get_paths()]  # top-left corners
    np.testing.assert_allclose(heights, nw_explorer.weights[3], rtol=1e-6)
    low, high = nw_explorer.image.get_clim()  # 1, 2 or 5 times a power of ten, >= the max
    assert low == 0 and nw_explorer.weights.max() <= high < 2.5 * nw_explorer.weights.max()
    labels = [label.get_text() for label in nw_explorer.colorbar.ax.get_yticklabels()]
    assert labels[0] == "0" and float(labels[-1]) == pytest.approx(high)
    assert nw_explorer.mse != mse_before
    assert "row 3" in nw_explorer.row_title.get_text()
    assert nw_explorer.row_box.get_ydata()[0] == 2.5


def test_nw_explorer_update_keeps_unset_values(nw_explorer):
    nw_explorer.update(sigma=0.2)
    nw_explorer.update(query=0)
    assert nw_explorer.sigma == 0.2 and nw_explorer.query == 0


@pytest.mark.parametrize(("params", "match"), [
    ({"sigma": 0}, r"sigma \(the kernel width\)"),
    ({"query": 20}, r"query \(a row index into x_query\) must be an integer 0 \.\. 19, got 20"),
    ({"query": -1}, r"query \(a row index into x_query\) must be an integer"),
])
def test_nw_explorer_rejects_bad_updates(nw_explorer, params, match):
    with pytest.raises(ValueError, match=match):
        nw_explorer.update(**params)


def test_nw_explorer_rejects_y_true_of_the_wrong_shape():
    x, y = _data()
    with pytest.raises(ValueError, match=r"y_true must be \(num_queries,\)"):
        NadarayaWatsonExplorer(x, y, torch.arange(0, 5, 1.0), torch.zeros(3))


def test_nw_explorer_works_without_y_true_and_does_not_mutate():
    x, y = _data()
    queries = torch.arange(0, 5, 1.0)
    copies = [t.clone() for t in (x, y, queries)]
    explorer = NadarayaWatsonExplorer(x, y, queries, sigma=0.5, query=1)
    explorer.update(sigma=2.0)
    assert "mean squared error" not in explorer.fit_title.get_text()
    assert all(torch.equal(a, b) for a, b in zip(copies, (x, y, queries), strict=True))


def test_nw_explorer_to_moves_and_still_updates(nw_explorer):
    assert nw_explorer.to("cpu") is nw_explorer
    assert nw_explorer.device == torch.device("cpu")
    assert nw_explorer.x_train.device.type == "cpu"
    nw_explorer.update(sigma=0.3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_nw_explorer_on_cuda_matches_cpu(nw_explorer):
    nw_explorer.update(sigma=0.3)
    cpu = nw_explorer.y_hat.copy()
    nw_explorer.to("cuda").update(sigma=0.3)
    assert nw_explorer.x_train.device.type == "cuda"
    np.testing.assert_allclose(nw_explorer.y_hat, cpu, rtol=1e-5, atol=1e-5)


def test_nw_explorer_in_a_panel_redraws_on_slider_moves(nw_explorer):
    sigma = widgets.FloatLogSlider(value=1.0, min=-1.7, max=0.7)
    query = widgets.IntSlider(value=10, min=0, max=19)
    panel = explorer_panel(nw_explorer, {"sigma": sigma, "query": query}, gpu=True)
    image = image_widget(panel)
    before = image.value
    query.value = 2
    assert nw_explorer.query == 2 and image.value != before
