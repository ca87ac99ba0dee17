"""Chapter 10's explorers: running-max sources and cost against length."""

import math

import numpy as np
import pytest
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


def test_source_explorer_refuses_bad_input_by_name(block):
    with pytest.raises(TypeError, match="block must be a MaxStateSuper, got Linear"):
        MaxSourceExplorer(torch.nn.Linear(16, 16), torch.randn(1, 12, 16))
    with pytest.raises(ValueError, match=r"x must be \(batch, seq, dim_size=16\), got shape "
                                         r"\(1, 12, 8\)"):
        MaxSourceExplorer(block, torch.randn(1, 12, 8))
    with pytest.raises(ValueError, match="x must be .* with no empty dimension"):
        MaxSourceExplorer(block, torch.randn(1, 0, 16))


def test_source_explorer_keeps_what_an_update_leaves_out(block):
    explorer = MaxSourceExplorer(block, torch.randn(1, 12, 16))
    explorer.update(head=1, channel=2, length=5)
    explorer.update(channel=3)
    assert (explorer.head, explorer.channel, explorer.length) == (1, 3, 5)
    assert explorer.ax_line.get_title() == "head 1, channel 3"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"batch": 0}, ValueError, r"batch must be an integer 1 \.\. 64, got 0"),
    ({"batch": 2.5}, TypeError, "batch must be an integer .* got float 2.5"),
    ({"lengths": (4, 8)}, TypeError, "lengths must be a list of at least 3"),
    ({"lengths": (4, 0, 8)}, ValueError, r"lengths\[1\] must be an integer 1 \.\. 65536, got 0"),
    ({"repeats": 0}, ValueError, "repeats must be an integer 1 .. 100, got 0"),
    ({"blocks": {}}, TypeError, "blocks must map labels to nn.Modules")])
def test_cost_explorer_refuses_bad_input_by_name(kwargs, error, match):
    arguments = {"blocks": {"cummax": MaxStateSuper(8, 2)}, "lengths": (4, 8, 16), "batch": 1,
                 "dim_size": 8, "repeats": 1, **kwargs}
    with pytest.raises(error, match=match):
        CostExplorer(**arguments)


def test_cost_explorer_refuses_a_batch_before_measuring():
    explorer = CostExplorer({"cummax": MaxStateSuper(8, 2)}, lengths=(4, 8, 16), batch=1,
                            dim_size=8, repeats=1)
    for batch in (0, -1, 65):
        with pytest.raises(ValueError, match=rf"batch must be an integer 1 \.\. 64, got {batch}"):
            explorer.update(batch=batch)
    assert set(explorer.results) == {("cpu", 1)} and explorer.frame_key() == ("cpu", 1)
    explorer.update()  # None keeps the batch
    assert explorer.frame_key() == ("cpu", 1)
