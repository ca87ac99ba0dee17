"""Chapter 07: MaxStateSuper, its source indices, the explorers and the recall task."""

import math

import numpy as np
import pytest
import torch

import attention_utils as au


@pytest.fixture
def block() -> au.MaxStateSuper:
    torch.manual_seed(0)
    return au.MaxStateSuper(16, 4)


def test_forward_shape(block):
    x = torch.randn(3, 7, 16)
    assert block(x).shape == (3, 7, 16)


def test_matches_the_article_formula(block):
    x = torch.randn(2, 5, 16)
    out, out1, out2 = (p.reshape(2, 5, 4, 4).permute(0, 2, 1, 3)
                       for p in block.combined(x).chunk(3, dim=-1))
    score = torch.cummax(torch.cummax(out, dim=2)[0], dim=1)[0]
    expected = ((score + out1) * out2 + out1).permute(0, 2, 1, 3).reshape(2, 5, 16)
    torch.testing.assert_close(block(x), expected)


def test_causal(block):
    x = torch.randn(2, 10, 16)
    for t in range(9):
        future = x.clone()
        future[:, t + 1:] = torch.randn(2, 9 - t, 16) * 10
        torch.testing.assert_close(block(future)[:, :t + 1], block(x)[:, :t + 1])


def test_heads_are_ordered(block):
    """Head i depends on heads <= i only: perturbing head 3's ``out`` leaves heads 0-2."""
    x = torch.randn(1, 6, 16)
    with torch.no_grad():
        before = block(x).reshape(1, 6, 4, 4)
        block.combined.bias[12:16] += 100.0  # ``out`` of the last head
        after = block(x).reshape(1, 6, 4, 4)
    torch.testing.assert_close(after[:, :, :3], before[:, :, :3])
    assert not torch.allclose(after[:, :, 3], before[:, :, 3])


def test_input_errors(block):
    with pytest.raises(ValueError, match="heads must divide dim_size"):
        au.MaxStateSuper(10, 4)
    with pytest.raises(ValueError, match=r"x must be 3-D \(batch, seq, dim_size\)"):
        block(torch.randn(5, 16))
    with pytest.raises(ValueError, match=r"dim_size=16.*\(2, 5, 8\)"):
        block(torch.randn(2, 5, 8))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        block([[1.0]])


def test_no_input_mutation(block):
    x = torch.randn(2, 4, 16)
    copy = x.clone()
    block(x)
    au.max_state_sources(block, x)
    assert torch.equal(x, copy)


def test_max_state_sources(block):
    x = torch.randn(2, 9, 16)
    positions, heads = au.max_state_sources(block, x)
    assert positions.shape == heads.shape == (2, 4, 9, 4)
    assert positions.dtype == heads.dtype == torch.long
    t = torch.arange(9)[:, None]
    assert (positions <= t).all() and (heads <= torch.arange(4)[:, None, None]).all()
    out = block.project(x)[0].detach()  # (B, h, T, d_h)
    score = torch.cummax(torch.cummax(out, dim=2)[0], dim=1)[0]
    picked = out.gather(1, heads)  # value of the source head at every position ...
    picked = torch.stack([picked[:, i].gather(1, positions[:, i]) for i in range(4)], dim=1)
    torch.testing.assert_close(picked, score)


def test_causal_self_attention_paths_agree():
    torch.manual_seed(0)
    teach = au.CausalSelfAttention(16, 4)
    fused = au.CausalSelfAttention(16, 4, fused=True)
    fused.load_state_dict(teach.state_dict())
    x = torch.randn(2, 6, 16)
    torch.testing.assert_close(teach(x), fused(x), atol=1e-5, rtol=1e-5)
    assert teach.attention_weights.shape == (2, 4, 6, 6)
    assert teach.attention_weights[0, 0].triu(1).eq(0).all()
    assert fused.attention_weights is None
    with pytest.raises(ValueError, match="dim_size=16"):
        teach(torch.randn(2, 6, 8))


def test_source_explorer_update_changes_image(block):
    explorer = au.MaxSourceExplorer(block, torch.randn(1, 12, 16))
    before = np.array(explorer.pos_image.get_array())
    explorer.update(head=1, channel=2, length=12)  # the default is the last head
    assert not np.array_equal(before, np.array(explorer.pos_image.get_array()))
    explorer.update(head=0, channel=1, length=5)
    shown = explorer.pos_image.get_array()  # the whole sequence's rows, later ones blank
    assert shown.shape == (12, 4) and shown.mask[5:].all() and not shown.mask[:5].any()
    assert len(explorer.run_line.get_xdata()) == 5
    assert explorer.to("cpu") is explorer and explorer.device == torch.device("cpu")


def test_cost_explorer_and_helpers():
    blocks = {"cummax": au.MaxStateSuper(8, 2), "softmax": au.CausalSelfAttention(8, 2)}
    explorer = au.CostExplorer(blocks, lengths=(4, 8, 16), batch=1, dim_size=8, repeats=1)
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


def test_saved_tensor_mib_and_slope():
    x = torch.randn(256, 256, requires_grad=True)
    out, mib = au.saved_tensor_mib(lambda: (x * x).sum())
    assert out.ndim == 0 and mib == pytest.approx(256 * 256 * 4 / 2**20)
    assert au.loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="same length"):
        au.loglog_slope([1, 2], [1.0])


def test_associative_recall_batch():
    g = torch.Generator().manual_seed(0)
    keys, values, targets = au.associative_recall_batch(50, 5, 8, 6, g)
    assert keys.shape == values.shape == (50, 6) and targets.shape == (50,)
    assert (values[:, -1] == 6).all() and (values[:, :-1] < 6).all()
    for row in range(50):
        stored = keys[row, :-1].tolist()
        assert len(set(stored)) == 5
        assert values[row, stored.index(keys[row, -1].item())] == targets[row]
    with pytest.raises(ValueError, match="num_pairs"):
        au.associative_recall_batch(2, 9, 8, 6)


def test_recall_net_shape():
    net = au.RecallNet(au.MaxStateSuper(16, 4), 16, 8, 6, 6)
    keys, values, _ = au.associative_recall_batch(3, 5, 8, 6)
    assert net(keys, values).shape == (3, 6)
