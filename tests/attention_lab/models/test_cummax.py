"""attention_lab.models.cummax: MaxStateSuper as the article writes it, causal attention,
RecallNet."""

import pytest
import torch

from attention_lab.data.recall import associative_recall_batch
from attention_lab.models.cummax import (
    MIXERS,
    CausalSelfAttention,
    MaxStateSuper,
    MixerLM,
    RecallNet,
    make_mixer,
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


def assert_causal(block) -> torch.Tensor:
    """Changing positions after ``t`` never changes outputs ``0 .. t``; returns the input."""
    x = torch.randn(2, 10, 16)
    for t in range(9):
        future = x.clone()
        future[:, t + 1:] = torch.randn(2, 9 - t, 16) * 10
        torch.testing.assert_close(block(future)[:, :t + 1], block(x)[:, :t + 1])
    return x


def test_causal(block):
    assert_causal(block)


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


@pytest.fixture
def softmax_block() -> MaxStateSuper:
    """The article's in-block softmax variant, seeded: width 16, 4 heads."""
    torch.manual_seed(0)
    return MaxStateSuper(16, 4, score="softmax")


def test_softmax_variant_matches_the_article_line(softmax_block):
    """``out_score = torch.softmax(out, dim=1)`` in place of the cummax over heads."""
    x = torch.randn(2, 5, 16)
    out, out1, out2 = (p.reshape(2, 5, 4, 4).permute(0, 2, 1, 3)
                       for p in softmax_block.combined(x).chunk(3, dim=-1))
    score = torch.softmax(torch.cummax(out, dim=2)[0], dim=1)  # over heads
    expected = ((score + out1) * out2 + out1).permute(0, 2, 1, 3).reshape(2, 5, 16)
    torch.testing.assert_close(softmax_block(x), expected)


def test_softmax_variant_weights_sum_to_one_over_heads(softmax_block):
    """With out1 = 0 and out2 = 1 the block returns out_score itself: it sums to 1 over heads."""
    with torch.no_grad():
        softmax_block.combined.weight[16:] = 0.0
        softmax_block.combined.bias[16:32] = 0.0
        softmax_block.combined.bias[32:] = 1.0
    y = softmax_block(torch.randn(2, 7, 16)).reshape(2, 7, 4, 4)  # (B, T, h, d_h)
    torch.testing.assert_close(y.sum(dim=2), torch.ones(2, 7, 4))
    assert (y > 0).all()


def test_softmax_variant_is_causal_and_mixes_all_heads(softmax_block):
    x = assert_causal(softmax_block)
    with torch.no_grad():  # unlike the cummax over heads, head 0 now hears the last head
        before = softmax_block(x[:, :6]).reshape(2, 6, 4, 4)
        softmax_block.combined.bias[12:16] += 5.0  # ``out`` of the last head
        after = softmax_block(x[:, :6]).reshape(2, 6, 4, 4)
    assert not torch.allclose(after[:, :, 0], before[:, :, 0])


def test_score_errors(softmax_block):
    with pytest.raises(ValueError, match=r"score must be one of \('cummax', 'softmax'\), "
                                         r"got 'max'"):
        MaxStateSuper(16, 4, score="max")
    with pytest.raises(ValueError, match="score='cummax'"):
        max_state_sources(softmax_block, torch.randn(1, 3, 16))


@pytest.mark.parametrize("kind", MIXERS)
def test_mixer_lm_is_causal(kind):
    torch.manual_seed(0)
    model = MixerLM(kind, vocab_size=11, dim_size=16, heads=4, layers=2, max_len=8)
    tokens = torch.randint(11, (2, 8))
    logits = model(tokens)
    assert logits.shape == (2, 8, 11)
    changed = tokens.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 11
    torch.testing.assert_close(model(changed)[:, :5], logits[:, :5])


def test_mixer_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        make_mixer("linear", 16, 4)
    model = MixerLM("cummax", 11, 16, 4, 1, max_len=8)
    with pytest.raises(ValueError, match="max_len=8, got 9"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"tokens must be a 2-D tensor \(batch, seq\)"):
        model(torch.zeros(9, dtype=torch.long))
