"""Chapter 00's explorer: softmax temperature."""

import numpy as np
import pytest
import torch

from attention_lab.explorers.temperature import SoftmaxTemperatureExplorer


def test_softmax_temperature_explorer_sharpens_and_keeps_rows_normalised():
    scores = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    explorer = SoftmaxTemperatureExplorer(scores, ["a", "b", "c"], ["q1", "q2"])
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
        SoftmaxTemperatureExplorer(torch.zeros(3))
    explorer = SoftmaxTemperatureExplorer(torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"temperature \(divides the scores\) must be a number in "
                                         r"0.001 \.\. 1000, got -1"):
        explorer.update(temperature=-1)
