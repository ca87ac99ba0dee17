"""attention_lab.models.cummax: MaxStateSuper as the article writes it, causal attention,
RecallNet."""

import pytest
import torch

from attention_lab.data.recall import associative_recall_batch
from attention_lab.models.cummax import (
    CausalSelfAttention,
    MaxStateSuper,
    RecallNet,
    max_state_sources,
)


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
        MaxStateSuper(10, 4)
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
    max_state_sources(block, x)
    assert torch.equal(x, copy)


def test_max_state_sources(block):
    x = torch.randn(2, 9, 16)
    positions, heads = max_state_sources(block, x)
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
    teach = CausalSelfAttention(16, 4)
    fused = CausalSelfAttention(16, 4, fused=True)
    fused.load_state_dict(teach.state_dict())
    x = torch.randn(2, 6, 16)
    torch.testing.assert_close(teach(x), fused(x), atol=1e-5, rtol=1e-5)
    assert teach.attention_weights.shape == (2, 4, 6, 6)
    assert teach.attention_weights[0, 0].triu(1).eq(0).all()
    assert fused.attention_weights is None
    with pytest.raises(ValueError, match="dim_size=16"):
        teach(torch.randn(2, 6, 8))


def test_recall_net_shape():
    net = RecallNet(MaxStateSuper(16, 4), 16, 8, 6, 6)
    keys, values, _ = associative_recall_batch(3, 5, 8, 6)
    assert net(keys, values).shape == (3, 6)
