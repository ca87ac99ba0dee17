"""attention_utils heatmaps: show_heatmaps and HeatmapGrid."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import attention_utils as au


def _images(fig: Figure) -> list:
    return [image for ax in fig.axes for image in ax.get_images()]


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
    with pytest.raises(ValueError, match=r"keep the grid's shape .* = \(1, 2, 3, 3\), got "
                                         r"\(1, 3, 3, 3\)"):
        grid.set_matrices(torch.zeros(1, 3, 3, 3))


@pytest.mark.parametrize("annotate", [False, True])
def test_heatmap_grid_refuses_new_matrix_sizes_and_keeps_its_data(annotate):
    """A new (num_queries, num_kv) would be squeezed into the old image and, annotated, leave
    cells without their value: refused, the old data stays."""
    grid = au.HeatmapGrid(torch.full((2, 2), 0.5), "Keys", "Queries", annotate=annotate)
    with pytest.raises(ValueError, match=r"\(1, 1, 2, 2\), got \(1, 1, 3, 3\); for a new shape"):
        grid.set_matrices(torch.rand(3, 3))
    np.testing.assert_array_equal(grid.images[0].get_array(), np.full((2, 2), 0.5))
    assert [t.get_text() for t in grid.texts] == (["0.50"] * 4 if annotate else [])


@pytest.mark.parametrize(("labels", "match"), [
    ({"xticklabels": ["a", "b"]}, r"xticklabels must have one label per key \(num_kv\): 4, got 2"),
    ({"yticklabels": list("abcd")},
     r"yticklabels must have one label per query \(num_queries\): 3, got 4")])
def test_show_heatmaps_names_tick_labels_of_the_wrong_length(labels, match):
    with pytest.raises(ValueError, match=match):
        au.show_heatmaps(torch.rand(3, 4), "Keys", "Queries", **labels)
