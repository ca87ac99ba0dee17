"""Chapter 03's explorer: additive-attention weights."""

import numpy as np
import pytest
import torch

from attention_lab.explorers.additive import AdditiveAttentionExplorer


def test_additive_explorer_updates_image_in_place():
    explorer = AdditiveAttentionExplorer()
    image = explorer.grid.images[0]
    before = np.array(image.get_array())
    assert explorer.update(valid_len_0=5, valid_len_1=1, num_hiddens=16) is explorer.fig
    after = np.array(image.get_array())
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after.sum(-1), [1, 1], atol=1e-6)
    assert np.all(after[0, 5:] == 0) and after[1, 0] == pytest.approx(1)
    assert explorer.title.get_text() == "num_hiddens=16, valid_lens=[5, 1]"


def test_additive_explorer_is_reproducible_and_builds_layers_once():
    explorer = AdditiveAttentionExplorer()
    first = explorer.weights(3, 7, 8).clone()
    explorer.update(valid_len_0=3, valid_len_1=7, num_hiddens=32)
    state = torch.random.get_rng_state()
    torch.testing.assert_close(explorer.weights(3, 7, 8), first)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    assert set(explorer._layers) == {8, 32}
    fresh = AdditiveAttentionExplorer()
    torch.testing.assert_close(fresh.weights(3, 7, 8), first)


def test_additive_explorer_distinct_keys_are_not_uniform():
    weights = AdditiveAttentionExplorer().weights(10, 10, 8)
    assert weights.std() > 0.01
    equal_keys = AdditiveAttentionExplorer(distinct_keys=False).weights(10, 10, 8)
    torch.testing.assert_close(equal_keys, torch.full((2, 1, 10), 0.1))


def test_additive_explorer_to_cpu():
    explorer = AdditiveAttentionExplorer().to("cpu")
    assert explorer.device.type == "cpu"
    explorer.update(valid_len_0=0, valid_len_1=10, num_hiddens=4)
    assert np.all(np.array(explorer.grid.images[0].get_array())[0] == 0)
