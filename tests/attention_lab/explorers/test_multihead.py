"""Chapter 05's explorer: per-head weights as the head count changes."""

import numpy as np
import pytest
import torch

import attention_utils as au
from attention_lab.explorers.multihead import MultiHeadExplorer


def _arrays(explorer):
    return [np.array(image.get_array()) for row in explorer.images for image in row]


def test_explorer_defaults():
    explorer = MultiHeadExplorer()
    assert explorer.head_choices == [1, 2, 4, 8]
    assert explorer.valid_lens == [6, 3]
    assert explorer.axes.shape == (2, 8) and explorer.num_heads == 8
    assert all(image.get_visible() for row in explorer.images for image in row)
    explorer.update(num_heads=2)
    for row in explorer.images:  # the columns beyond num_heads show an empty frame
        assert [image.get_visible() for image in row] == [True] * 2 + [False] * 6
    assert all(ax.get_visible() for ax in explorer.axes.flat)  # the layout never changes
    assert np.allclose(_arrays(explorer)[explorer.max_heads][:, 3:], 0)  # sentence 2's padding


def test_explorer_update_changes_image_data_in_place():
    explorer = MultiHeadExplorer()
    fig, images, before = explorer.fig, explorer.images, _arrays(explorer)
    assert explorer.update(valid_len_0=2) is fig
    after = _arrays(explorer)
    assert not np.allclose(before[0], after[0])
    assert np.allclose(after[0][:, 2:], 0) and np.allclose(after[0].sum(1), 1)
    assert np.allclose(before[8], after[8])  # sentence 2 untouched
    explorer.update(num_heads=8, valid_len_1=0)
    assert explorer.images is images
    assert all(image.get_visible() for row in explorer.images for image in row)
    assert np.allclose(_arrays(explorer)[8:], 0)  # valid length 0: all-zero weights
    assert explorer.title.get_text().startswith("num_heads = 8 (d_h = 2)")


def test_explorer_heads_rebuild_weights_deterministically():
    explorer = MultiHeadExplorer(num_heads=2)
    first, weight = _arrays(explorer), explorer.layer.W_q.weight.clone()
    explorer.update(num_heads=4)
    assert torch.equal(explorer.layer.W_q.weight, weight)  # same matrices, split differently
    assert not np.allclose(first[0], _arrays(explorer)[0])
    explorer.update(num_heads=2)
    for a, b in zip(first[:2] + first[8:10], _arrays(explorer)[:2] + _arrays(explorer)[8:10],
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.array_equal(_arrays(MultiHeadExplorer(num_heads=2))[0], first[0])


def test_explorer_weights_match_a_fresh_layer():
    explorer = MultiHeadExplorer(num_heads=4)
    torch.manual_seed(explorer.seed)
    layer = au.MultiHeadAttention(16, 4, query_size=16, key_size=16, value_size=16)
    layer(explorer.X, explorer.X, explorer.X, torch.tensor(explorer.valid_lens))
    torch.testing.assert_close(explorer.weights(), layer.attention_weights.detach())


def test_explorer_rejects_bad_settings():
    explorer = MultiHeadExplorer()
    with pytest.raises(ValueError, match=r"num_heads must be one of \[1, 2, 4, 8\].*got 3"):
        explorer.update(num_heads=3)
    with pytest.raises(ValueError, match=r"valid_len_1 must be an integer 0 \.\. 6, got 7"):
        explorer.update(valid_len_1=7)
    assert explorer.valid_lens == [6, 3]  # a rejected update changes nothing
    with pytest.raises(TypeError, match=r"unknown keyword\(s\) \['valid_len_2'\]"):
        explorer.update(valid_len_2=1)
    with pytest.raises(ValueError, match="max_heads must divide num_hiddens"):
        MultiHeadExplorer(num_hiddens=12, max_heads=8)


def test_explorer_to_cpu():
    explorer = MultiHeadExplorer()
    before = _arrays(explorer)
    assert explorer.to("cpu") is explorer and explorer.device == torch.device("cpu")
    explorer.update()
    assert all(np.array_equal(a, b) for a, b in zip(before, _arrays(explorer), strict=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_explorer_on_cuda_matches_cpu():
    explorer = MultiHeadExplorer(num_heads=8)
    before = _arrays(explorer)
    explorer.to("cuda")
    assert explorer.layer.W_q.weight.is_cuda and explorer.X.is_cuda
    explorer.update(num_heads=4)
    explorer.update(num_heads=8)
    assert explorer.layer.W_q.weight.is_cuda
    for a, b in zip(before, _arrays(explorer), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
