"""Chapter 02's explorer: masked-softmax weights per batch row."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import attention_utils as au
from attention_lab.explorers.masked_softmax import MaskedSoftmaxExplorer
from attention_lab.panel import explorer_panel


@pytest.fixture
def X():
    torch.manual_seed(0)
    return torch.rand(2, 2, 4)  # (B, Tq, Tk)


@pytest.fixture
def explorer(X):
    return MaskedSoftmaxExplorer(X, valid_lens=(2, 3))


def test_explorer_draws_the_masked_weights(explorer, X):
    assert explorer.names == ("valid_len_0", "valid_len_1")
    assert explorer.valid_lens == (2, 3)
    assert len(explorer.grid.images) == 2 and len(explorer.masks) == 2
    expected = au.masked_softmax(X, torch.tensor([2, 3])).numpy()
    for image, weights in zip(explorer.grid.images, expected, strict=True):
        assert np.allclose(image.get_array(), weights)
    assert [mask.get_x() for mask in explorer.masks] == [1.5, 2.5]
    assert [mask.get_width() for mask in explorer.masks] == [2, 1]
    assert explorer.grid.texts[2].get_text() == "0.00"


def test_explorer_update_changes_images_masks_and_labels_in_place(explorer, X):
    fig, image, mask = explorer.fig, explorer.grid.images[0], explorer.masks[0]
    before = np.array(explorer.grid.images[0].get_array())
    assert explorer.update(valid_len_0=4, valid_len_1=0) is fig
    assert explorer.grid.images[0] is image and explorer.masks[0] is mask
    assert not np.allclose(image.get_array(), before)
    assert np.allclose(image.get_array(), F.softmax(X[0], dim=-1).numpy())
    assert not explorer.masks[0].get_visible()
    assert explorer.masks[1].get_visible() and explorer.masks[1].get_x() == -0.5
    assert np.all(explorer.grid.images[1].get_array() == 0)
    assert explorer.grid.axes[0, 1].get_title() == "batch row 1: valid_len=0"


def test_explorer_update_keeps_rows_not_named(explorer):
    explorer.update(valid_len_1=1)
    assert explorer.valid_lens == (2, 1)
    assert explorer.masks[0].get_x() == 1.5


def test_explorer_defaults_to_every_key_valid(X):
    explorer = MaskedSoftmaxExplorer(X)
    assert explorer.valid_lens == (4, 4)
    assert not any(mask.get_visible() for mask in explorer.masks)


@pytest.mark.parametrize("lengths", [{"valid_len_0": 5}, {"valid_len_1": -1}])
def test_explorer_rejects_out_of_range_lengths(explorer, lengths):
    name = next(iter(lengths))
    with pytest.raises(ValueError, match=rf"{name} must be an integer 0 \.\. 4, got"):
        explorer.update(**lengths)
    assert explorer.valid_lens == (2, 3)


def test_explorer_rejects_unknown_keywords_and_non_integers(explorer):
    with pytest.raises(TypeError, match="valid_len_0, valid_len_1"):
        explorer.update(valid_len_2=1)
    with pytest.raises(TypeError, match="valid_len_0 must be an integer 0 .. 4, got float 1.5"):
        explorer.update(valid_len_0=1.5)


def test_explorer_rejects_bad_construction(X):
    with pytest.raises(ValueError, match="scores must be 3-D"):
        MaskedSoftmaxExplorer(X[0])
    with pytest.raises(ValueError, match=r"valid_lens must have one length per batch row \(2\)"):
        MaskedSoftmaxExplorer(X, valid_lens=(1, 2, 3))


def test_explorer_does_not_alias_or_mutate_scores(X):
    before = X.clone()
    explorer = MaskedSoftmaxExplorer(X, (0, 1))
    X.add_(1.0)
    explorer.update(valid_len_0=4)
    assert torch.equal(explorer.scores, before)


def test_explorer_moves_to_a_device(explorer):
    assert explorer.to("cpu") is explorer
    assert explorer.device == torch.device("cpu") and explorer.scores.device.type == "cpu"
    explorer.update(valid_len_0=1)


def test_explorer_plugs_into_explorer_panel(explorer):
    import ipywidgets as widgets

    sliders = {name: widgets.IntSlider(value=n, min=0, max=4)
               for name, n in zip(explorer.names, explorer.valid_lens, strict=True)}
    panel = explorer_panel(explorer, sliders)
    png = panel.children[-2].value
    sliders["valid_len_0"].value = 0
    assert explorer.valid_lens == (0, 3)
    assert panel.children[-2].value != png
