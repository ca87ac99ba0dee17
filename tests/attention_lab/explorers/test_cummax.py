"""Chapter 10's explorers: running-max sources and cost against length."""

import math

import numpy as np
import torch

from attention_lab.explorers.cummax import CostExplorer, MaxSourceExplorer
from attention_lab.models.cummax import (
    CausalSelfAttention,
    MaxStateSuper,
)


def test_source_explorer_update_changes_image(block):
    explorer = MaxSourceExplorer(block, torch.randn(1, 12, 16))
    before = np.array(explorer.pos_image.get_array())
    explorer.update(head=1, channel=2, length=12)  # the default is the last head
    assert not np.array_equal(before, np.array(explorer.pos_image.get_array()))
    explorer.update(head=0, channel=1, length=5)
    shown = explorer.pos_image.get_array()  # the whole sequence's rows, later ones blank
    assert shown.shape == (12, 4) and shown.mask[5:].all() and not shown.mask[:5].any()
    assert len(explorer.run_line.get_xdata()) == 5
    assert explorer.to("cpu") is explorer and explorer.device == torch.device("cpu")


def test_cost_explorer_and_helpers():
    blocks = {"cummax": MaxStateSuper(8, 2), "softmax": CausalSelfAttention(8, 2)}
    explorer = CostExplorer(blocks, lengths=(4, 8, 16), batch=1, dim_size=8, repeats=1)
    line = explorer.lines["saved_mib", "softmax"]
    before = np.array(line.get_ydata(), float)
    explorer.update(batch=2)
    after = np.array(line.get_ydata(), float)
    assert (after > before).all()  # twice the batch saves more
    assert set(explorer.results) == {("cpu", 1), ("cpu", 2)}
    assert explorer.frame_key() == ("cpu", 2)  # the picture depends on nothing else
    assert explorer.to("cpu") is explorer
    cost = explorer.results["cpu", 1]["cummax"]
    assert all(v > 0 for v in cost["forward_ms"] + cost["train_ms"])
    assert all(math.isnan(v) for v in cost["peak_mib"])
