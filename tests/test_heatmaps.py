"""Chapter 00/01: heatmaps, the explorer machinery, Nadaraya-Watson attention pooling."""

import random

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

import attention_utils as au


def _images(fig: Figure) -> list:
    return [image for ax in fig.axes for image in ax.get_images()]


# ---------------------------------------------------------------------------
# show_heatmaps / HeatmapGrid
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "panels"), [((4, 5), 1), ((3, 4, 5), 3), ((2, 3, 4, 5), 6)])
@pytest.mark.parametrize("kind", ["tensor", "array"])
def test_show_heatmaps_draws_one_panel_per_matrix(shape, panels, kind):
    matrices = torch.rand(shape) if kind == "tensor" else np.random.default_rng(0).random(shape)
    fig = au.show_heatmaps(matrices, "Keys", "Queries")
    assert isinstance(fig, Figure)
    images = _images(fig)
    assert len(images) == panels
    assert all(image.get_array().shape == (4, 5) for image in images)


def test_show_heatmaps_accepts_tensors_with_grad_and_leaves_them_alone():
    weights = torch.rand(1, 2, 3, 3, requires_grad=True)
    before = weights.detach().clone()
    fig = au.show_heatmaps(weights, "Keys", "Queries", titles=["a", "b"])
    assert isinstance(fig, Figure)
    assert torch.equal(weights.detach(), before) and weights.requires_grad
    np.testing.assert_allclose(_images(fig)[1].get_array(), before[0, 1].numpy())


def test_show_heatmaps_labels_axes_titles_and_tokens():
    tokens = ["the", "cat", "sat"]
    fig = au.show_heatmaps(torch.eye(3).expand(1, 2, 3, 3), "Keys", "Queries",
                           titles=["left", "right"], xticklabels=tokens, yticklabels=tokens)
    left, right = fig.axes[:2]
    assert left.get_ylabel() == "Queries" and left.get_xlabel() == "Keys"
    assert [left.get_title(), right.get_title()] == ["left", "right"]
    assert [t.get_text() for t in left.get_xticklabels()] == tokens
    assert [t.get_text() for t in left.get_yticklabels()] == tokens


def test_show_heatmaps_shares_one_colour_bar():
    fig = au.show_heatmaps(torch.rand(2, 2, 3, 3), "Keys", "Queries")
    assert len(fig.axes) == 4 + 1  # four panels and one colour bar


@pytest.mark.parametrize("shape", [(5,), (1, 1, 1, 3, 3)])
def test_show_heatmaps_rejects_other_dimensions(shape):
    with pytest.raises(ValueError, match=r"matrices must be 2-D .*got shape"):
        au.show_heatmaps(torch.rand(shape), "Keys", "Queries")


def test_show_heatmaps_rejects_titles_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"titles must have one entry per column \(3\), got 2"):
        au.show_heatmaps(torch.rand(1, 3, 2, 2), "Keys", "Queries", titles=["a", "b"])


def test_heatmap_grid_set_matrices_changes_the_image_data_in_place():
    grid = au.HeatmapGrid(torch.zeros(2, 2, 3, 3), "Keys", "Queries")
    fig, images = grid.fig, list(grid.images)
    new = torch.rand(2, 2, 3, 3)
    assert grid.set_matrices(new) is fig
    assert grid.images == images
    np.testing.assert_allclose(grid.images[3].get_array(), new[1, 1].numpy())


def test_heatmap_grid_set_matrices_rejects_a_different_grid_shape():
    grid = au.HeatmapGrid(torch.zeros(1, 2, 3, 3), "Keys", "Queries")
    with pytest.raises(ValueError, match=r"keep the grid's \(1, 2\) panels, got \(1, 3\)"):
        grid.set_matrices(torch.zeros(1, 3, 3, 3))


# ---------------------------------------------------------------------------
# Set-up helpers and the widget machinery
# ---------------------------------------------------------------------------


def test_set_seed_reproduces_torch_numpy_and_random():
    def draw():
        return torch.rand(3), np.random.rand(3), random.random()  # noqa: NPY002

    au.set_seed(7)
    first = draw()
    au.set_seed(7)
    second = draw()
    assert torch.equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]
    au.set_seed(8)
    assert not torch.equal(draw()[0], first[0])


def test_get_device_without_gpu_is_cpu():
    assert au.get_device(False) == torch.device("cpu")


def test_figure_png_returns_png_bytes():
    png = au.figure_png(au.show_heatmaps(torch.eye(3), "Keys", "Queries"))
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG\r\n\x1a\n")


def test_gpu_toggle_is_disabled_with_a_visible_reason_without_cuda():
    toggle, reason = au.gpu_toggle(cuda_available=False)
    assert toggle.disabled and not toggle.value
    assert "GPU unavailable" in reason.value and "GPU unavailable" in toggle.tooltip


def test_gpu_toggle_is_enabled_with_cuda():
    toggle, reason = au.gpu_toggle(cuda_available=True)
    assert not toggle.disabled
    assert "CUDA" in reason.value


class LineExplorer(au.Explorer):
    """The smallest explorer: one line whose slope ``update(slope=...)`` sets."""

    def __init__(self):
        self.fig = Figure(figsize=(2, 2))
        self.x = np.linspace(0, 1, 5)
        (self.line,) = self.fig.add_subplot().plot(self.x, self.x)
        self.calls = []

    def update(self, slope=1.0):
        self.calls.append(slope)
        self.line.set_ydata(slope * self.x)
        return self.fig


def _image_widget(panel: widgets.VBox) -> widgets.Image:
    (image,) = [child for child in panel.children if isinstance(child, widgets.Image)]
    return image


def test_explorer_panel_calls_update_and_changes_the_image():
    explorer = LineExplorer()
    slider = widgets.FloatSlider(value=1.0, min=-2, max=2)
    panel = au.explorer_panel(explorer, {"slope": slider}, gpu=False)
    image = _image_widget(panel)
    before = image.value
    assert explorer.calls == [1.0]  # the panel draws once at the slider's value
    slider.value = -2.0
    assert explorer.calls[-1] == -2.0
    assert image.value != before and bytes(image.value).startswith(b"\x89PNG")


def test_explorer_panel_shows_a_rejected_value_and_keeps_the_figure():
    class PickyExplorer(LineExplorer):
        def update(self, slope):
            if slope < 0:
                raise ValueError(f"slope must be >= 0, got {slope}")
            return super().update(slope)

    slider = widgets.FloatSlider(value=1.0, min=-2, max=2)
    panel = au.explorer_panel(PickyExplorer(), {"slope": slider}, gpu=False)
    image = _image_widget(panel)
    before = image.value
    slider.value = -1.0
    status = panel.children[-1]
    assert "not updated: slope must be &gt;= 0, got -1.0" in status.value
    assert image.value == before


def test_explorer_panel_reuses_the_frame_of_a_frame_key_seen_before():
    class KeyedExplorer(LineExplorer):
        def frame_key(self):
            return self.calls[-1]

    slider = widgets.FloatSlider(value=1.0, min=-2, max=2)
    panel = au.explorer_panel(KeyedExplorer(), {"slope": slider}, gpu=False)
    image, status = _image_widget(panel), panel.children[-1]
    first = image.value
    slider.value = 2.0
    assert image.value != first and "draw 0 ms" not in status.value
    slider.value = 1.0
    assert image.value == first and "draw 0 ms (this frame was drawn before)" in status.value


def test_explorer_panel_with_gpu_adds_the_toggle():
    panel = au.explorer_panel(LineExplorer(), {"slope": widgets.FloatSlider()}, gpu=True)
    toggles = [w for box in panel.children if isinstance(box, widgets.HBox)
               for w in box.children if isinstance(w, widgets.ToggleButton)]
    assert len(toggles) == 1
    assert toggles[0].disabled == (not torch.cuda.is_available())


# ---------------------------------------------------------------------------
# Nadaraya-Watson attention pooling
# ---------------------------------------------------------------------------


def _data(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, _ = torch.sort(torch.rand(n, generator=g) * 5)
    y = 2 * torch.sin(x) + x**0.8 + 0.5 * torch.randn(n, generator=g)
    return x, y


def test_nadaraya_watson_shapes_and_rows_sum_to_one():
    x, y = _data()
    queries = torch.arange(0, 5, 0.5)
    y_hat, weights = au.nadaraya_watson(queries, x, y, sigma=0.4)
    assert y_hat.shape == (10,) and weights.shape == (10, 20)
    torch.testing.assert_close(weights.sum(-1), torch.ones(10))
    assert (weights >= 0).all()


def test_nadaraya_watson_is_the_normalised_gaussian_kernel():
    x, y = _data()
    queries = torch.linspace(0, 5, 7)
    sigma = 0.3
    kernel = torch.exp(-((queries[:, None] - x[None, :]) ** 2) / (2 * sigma**2))
    expected = kernel / kernel.sum(-1, keepdim=True)
    y_hat, weights = au.nadaraya_watson(queries, x, y, sigma)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(y_hat, expected @ y)


def test_nadaraya_watson_limits_nearest_neighbour_and_mean():
    x, y = _data()
    queries = x[[3, 11]] + 1e-3
    y_hat, _ = au.nadaraya_watson(queries, x, y, sigma=1e-3)
    torch.testing.assert_close(y_hat, y[[3, 11]], atol=1e-3, rtol=0)
    y_flat, _ = au.nadaraya_watson(queries, x, y, sigma=1e4)
    torch.testing.assert_close(y_flat, y.mean().expand(2), atol=1e-4, rtol=0)


def test_nadaraya_watson_does_not_mutate_and_passes_gradients():
    x, y = _data()
    y = y.clone().requires_grad_(True)
    queries = torch.tensor([1.0, 2.0])
    copies = [t.detach().clone() for t in (queries, x, y)]
    y_hat, _ = au.nadaraya_watson(queries, x, y, 0.5)
    y_hat.sum().backward()
    assert all(torch.equal(a, b.detach()) for a, b in zip(copies, (queries, x, y), strict=True))
    torch.testing.assert_close(y.grad.sum(), torch.tensor(2.0))  # two rows of weights


@given(n=st.integers(1, 30), m=st.integers(1, 10), sigma=st.floats(0.05, 20.0),
       seed=st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_nadaraya_watson_predicts_weighted_averages(n, m, sigma, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(n, generator=g) * 5, torch.randn(n, generator=g)
    queries = torch.rand(m, generator=g) * 5
    y_hat, weights = au.nadaraya_watson(queries, x, y, sigma)
    torch.testing.assert_close(weights.sum(-1), torch.ones(m))
    assert (y_hat >= y.min() - 1e-5).all() and (y_hat <= y.max() + 1e-5).all()


@pytest.mark.parametrize(("args", "error", "match"), [
    (([1.0, 2.0], torch.ones(3), torch.ones(3), 1.0), TypeError,
     r"x_query must be a torch\.Tensor"),
    ((torch.ones(2, 1), torch.ones(3), torch.ones(3), 1.0), ValueError,
     r"x_query must be 1-D \(num_queries,\), got shape \(2, 1\)"),
    ((torch.ones(2), torch.ones(3), torch.ones(4), 1.0), ValueError,
     r"x_key and y_key .* got x_key \(3,\) and y_key \(4,\)"),
    ((torch.ones(2), torch.ones(0), torch.ones(0), 1.0), ValueError, r"num_kv >= 1"),
    ((torch.ones(2), torch.ones(3, dtype=torch.long), torch.ones(3), 1.0), TypeError,
     r"x_key must be a floating-point tensor"),
    ((torch.ones(2), torch.ones(3), torch.ones(3), 0.0), ValueError,
     r"sigma \(the kernel width\) must be a positive finite number, got 0\.0"),
    ((torch.ones(2), torch.ones(3), torch.ones(3), -1), ValueError, r"sigma .* got -1"),
    ((torch.ones(2), torch.ones(3), torch.ones(3), float("nan")), ValueError, r"sigma"),
    ((torch.ones(2), torch.ones(3), torch.ones(3), "1"), TypeError, r"sigma .* got str"),
    ((torch.ones(2), torch.ones(3), torch.ones(3), True), TypeError, r"sigma .* got bool"),
])
def test_nadaraya_watson_rejects_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        au.nadaraya_watson(*args)


@pytest.fixture
def nw_explorer():
    x, y = _data(30)
    queries = torch.arange(0, 5, 0.25)
    truth = 2 * torch.sin(queries) + queries**0.8
    return au.NadarayaWatsonExplorer(x, y, queries, truth, sigma=1.0)


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
    ({"query": 20}, r"query must be a row index in 0 \.\. 19, got 20"),
    ({"query": -1}, r"query must be a row index"),
])
def test_nw_explorer_rejects_bad_updates(nw_explorer, params, match):
    with pytest.raises(ValueError, match=match):
        nw_explorer.update(**params)


def test_nw_explorer_rejects_y_true_of_the_wrong_shape():
    x, y = _data()
    with pytest.raises(ValueError, match=r"y_true must be \(num_queries,\)"):
        au.NadarayaWatsonExplorer(x, y, torch.arange(0, 5, 1.0), torch.zeros(3))


def test_nw_explorer_works_without_y_true_and_does_not_mutate():
    x, y = _data()
    queries = torch.arange(0, 5, 1.0)
    copies = [t.clone() for t in (x, y, queries)]
    explorer = au.NadarayaWatsonExplorer(x, y, queries, sigma=0.5, query=1)
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
    panel = au.explorer_panel(nw_explorer, {"sigma": sigma, "query": query}, gpu=True)
    image = _image_widget(panel)
    before = image.value
    query.value = 2
    assert nw_explorer.query == 2 and image.value != before


# ---------------------------------------------------------------------------
# Notebook 00's warm-up explorer
# ---------------------------------------------------------------------------


def test_softmax_temperature_explorer_sharpens_and_keeps_rows_normalised():
    scores = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    explorer = au.SoftmaxTemperatureExplorer(scores, ["a", "b", "c"], ["q1", "q2"])
    before = np.array(explorer.grid.images[0].get_array())
    texts = [t.get_text() for t in explorer.grid.texts]
    assert explorer.update(temperature=0.1) is explorer.fig
    after = explorer.grid.images[0].get_array()
    assert not np.allclose(after, before)
    assert [t.get_text() for t in explorer.grid.texts] != texts
    torch.testing.assert_close(explorer.weights.sum(-1), torch.ones(2))
    assert explorer.weights[0, 0] > 0.99
    torch.testing.assert_close(explorer.weights[1], torch.full((3,), 1 / 3))
    assert explorer.title.get_text() == "softmax(scores / 0.1)"
    assert torch.equal(scores, torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]]))
    assert explorer.to("cpu").scores.device.type == "cpu"


def test_softmax_temperature_explorer_rejects_bad_input():
    with pytest.raises(ValueError, match=r"scores must be 2-D \(num_queries, num_kv\)"):
        au.SoftmaxTemperatureExplorer(torch.zeros(3))
    explorer = au.SoftmaxTemperatureExplorer(torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"temperature .* positive finite number, got -1"):
        explorer.update(temperature=-1)


@pytest.mark.parametrize(("value", "expected"), [(0.0873, 0.1), (0.1, 0.1), (0.34, 0.5),
                                                 (1.15, 2.0), (0.6, 1.0), (3e-4, 5e-4)])
def test_nice_ceiling_rounds_up_to_one_two_five(value, expected):
    assert au._nice_ceiling(value) == pytest.approx(expected)


@pytest.mark.parametrize(("low", "high"), [(-1.05, 1.45), (0.0, 0.003), (3.2, 3.3), (-50, -7)])
def test_fixed_yticks_cover_the_data_with_five_round_ticks(low, high):
    ax = Figure().add_subplot()
    au._fixed_yticks(ax, low, high)
    ticks = ax.get_yticks()
    bottom, top = ax.get_ylim()
    assert len(ticks) == 5 and (bottom, top) == (ticks[0], ticks[-1])
    assert bottom < low and top > high
    step = ticks[1] - ticks[0]
    assert step == pytest.approx(au._nice_ceiling(step))  # 1, 2 or 5 times a power of ten
    labels = [float(label.get_text()) for label in ax.get_yticklabels()]
    assert labels == pytest.approx(list(ticks), abs=1e-9)
