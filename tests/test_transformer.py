"""Chapter 08: positional encoding, the tiny Transformer, attention statistics, the explorer."""

import math

import numpy as np
import pytest
import torch
from d2l import torch as d2l
from torch.nn import functional as F

import attention_utils as au


def _model(num_steps: int = 6, num_heads: int = 2, seed: int = 0) -> au.TinyTransformer:
    torch.manual_seed(seed)
    return au.TinyTransformer(vocab_size=10, num_hiddens=32, ffn_num_hiddens=64,
                              num_heads=num_heads, num_blks=2, max_len=num_steps)


# --- PositionalEncoding -----------------------------------------------------------------------


def test_positional_encoding_matches_d2l_in_eval_mode():
    ours, theirs = au.PositionalEncoding(32, 0.5, max_len=50).eval(), d2l.PositionalEncoding(
        32, 0.5, max_len=50).eval()
    X = torch.randn(3, 20, 32)
    torch.testing.assert_close(ours.P, theirs.P)
    torch.testing.assert_close(ours(X), theirs(X))


def test_positional_encoding_shape_values_and_no_mutation():
    pe = au.PositionalEncoding(8, 0.0, max_len=10)
    X = torch.zeros(2, 5, 8)
    out = pe(X)
    assert out.shape == (2, 5, 8)
    assert torch.equal(X, torch.zeros(2, 5, 8))
    torch.testing.assert_close(out[0, :, 0], torch.sin(torch.arange(5.0)))  # lowest frequency 1
    torch.testing.assert_close(out[0, :, 1], torch.cos(torch.arange(5.0)))


def test_positional_encoding_dot_products_depend_only_on_the_offset():
    P = au.PositionalEncoding(16, 0.0, max_len=40).P[0]  # (max_len, 16)
    offsets = torch.stack([P[i] @ P[i + 3] for i in range(30)])
    torch.testing.assert_close(offsets, offsets[:1].expand(30), atol=1e-4, rtol=0)


def test_positional_encoding_is_a_buffer_that_moves_with_the_module():
    pe = au.PositionalEncoding(8, 0.0, max_len=10)
    assert "P" in dict(pe.named_buffers())
    assert "P" not in pe.state_dict()  # derived, not saved
    assert pe.to("cpu").P.device.type == "cpu"


@pytest.mark.parametrize("num_hiddens", [0, 7])
def test_positional_encoding_needs_an_even_size(num_hiddens):
    with pytest.raises(ValueError, match="num_hiddens must be a positive even number"):
        au.PositionalEncoding(num_hiddens, 0.0)


def test_positional_encoding_rejects_wrong_shapes():
    pe = au.PositionalEncoding(8, 0.0, max_len=10)
    with pytest.raises(ValueError, match=r"num_hiddens=8\), got \(1, 5, 6\)"):
        pe(torch.zeros(1, 5, 6))
    with pytest.raises(ValueError, match=r"num_steps <= max_len=10"):
        pe(torch.zeros(1, 11, 8))
    with pytest.raises(ValueError, match="3-D"):
        pe(torch.zeros(5, 8))


# --- TransformerEncoderBlock and TinyTransformer -----------------------------------------------


def test_encoder_block_shapes_and_eager_layers():
    block = au.TransformerEncoderBlock(16, 32, 4, 0.0)
    assert not any(isinstance(p, torch.nn.parameter.UninitializedParameter)
                   for p in block.parameters())
    X = torch.randn(2, 5, 16)
    assert block(X).shape == (2, 5, 16)
    assert block.attention.attention_weights.shape == (2, 4, 5, 5)
    block(X, torch.tensor([3, 5]))
    weights = block.attention.attention_weights  # (B, h, Tq, Tk)
    assert torch.all(weights[0, :, :, 3:] == 0)  # masked keys get no weight


def test_tiny_transformer_shapes_and_recorded_weights():
    model = _model(num_steps=6, num_heads=2)
    tokens = torch.randint(0, 10, (3, 6))
    assert model(tokens).shape == (3, 6, 10)
    assert len(model.attention_weights) == 2
    for weights in model.attention_weights:
        assert weights.shape == (3, 2, 6, 6)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2, 6))


def test_tiny_transformer_scale_embedding_is_d2ls_sqrt_d():
    torch.manual_seed(0)
    plain = au.TinyTransformer(10, 16, 32, 2, 1)
    scaled = au.TinyTransformer(10, 16, 32, 2, 1, scale_embedding=True)
    scaled.load_state_dict(plain.state_dict())
    tokens = torch.tensor([[1, 2, 3]])
    assert not torch.allclose(plain(tokens), scaled(tokens))


@pytest.mark.parametrize(("tokens", "error", "match"), [
    (torch.zeros(2, 3), TypeError, "integer tensor \\(batch, num_steps\\)"),
    (torch.zeros(3, dtype=torch.long), TypeError, "integer tensor \\(batch, num_steps\\)"),
    (torch.tensor([[0, 10]]), ValueError, "0 .. vocab_size-1=9, got values from 0 to 10"),
])
def test_tiny_transformer_rejects_bad_tokens(tokens, error, match):
    with pytest.raises(error, match=match):
        _model()(tokens)



def _train_reversal(num_steps: int, steps: int, seed: int = 0) -> au.TinyTransformer:
    model = _model(num_steps=num_steps, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        src, tgt = au.reversal_data(128, num_steps, seed=seed * 1000 + step)
        loss = F.cross_entropy(model(src).reshape(-1, 10), tgt.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize("seed", [0, 1])
def test_trained_model_reverses_and_a_layer_2_head_is_anti_diagonal(seed, one_thread):
    """~100 Adam steps (a second or two on a laptop CPU) reach >= 0.9 token accuracy."""
    model = _train_reversal(num_steps=6, steps=100, seed=seed)
    src, tgt = au.reversal_data(500, 6, seed=99)
    with torch.no_grad():
        accuracy = (model(src).argmax(-1) == tgt).float().mean().item()
    assert accuracy >= 0.9
    d_anti = au.attention_distance(model.attention_weights[1].mean(0), anti_diagonal=True)
    assert d_anti.min() < 0.5


# --- attention statistics ------------------------------------------------------------------


def test_stats_of_the_identity():
    eye = torch.eye(5)
    assert au.attention_entropy(eye) == pytest.approx(0.0)
    assert au.attention_distance(eye) == pytest.approx(0.0)
    assert au.attention_distance(eye, anti_diagonal=True) == pytest.approx(
        np.mean([abs(4 - 2 * i) for i in range(5)]))


def test_stats_of_the_anti_identity():
    flip = torch.eye(4).flip(1)
    assert au.attention_distance(flip, anti_diagonal=True) == pytest.approx(0.0)
    assert au.attention_distance(flip) == pytest.approx((3 + 1 + 1 + 3) / 4)
    assert au.attention_entropy(flip) == pytest.approx(0.0)


@pytest.mark.parametrize("n", [1, 2, 7])
def test_stats_of_uniform_weights(n):
    uniform = np.full((n, n), 1.0 / n)
    assert au.attention_entropy(uniform) == pytest.approx(math.log(n))
    expected = np.mean([np.mean(np.abs(i - np.arange(n))) for i in range(n)])
    assert au.attention_distance(uniform) == pytest.approx(expected)
    assert au.attention_distance(uniform, anti_diagonal=True) == pytest.approx(expected)


def test_stats_keep_leading_axes_and_do_not_mutate():
    weights = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)
    before = weights.clone()
    assert au.attention_entropy(weights).shape == (2, 3)
    assert au.attention_distance(weights).shape == (2, 3)
    assert torch.equal(weights, before)
    entropy = au.attention_entropy(weights)
    assert np.all((entropy >= 0) & (entropy <= math.log(4) + 1e-9))


def test_entropy_of_non_square_weights():
    weights = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])  # (Tq=2, Tk=3)
    assert au.attention_entropy(weights) == pytest.approx(math.log(2) / 2)


@pytest.mark.parametrize(("weights", "error", "match"), [
    ([[1.0]], TypeError, "weights must be a torch.Tensor or array"),
    (torch.ones(3), ValueError, r"\(\.\.\., num_queries, num_kv\)"),
    (torch.ones(2, 2), ValueError, "rows summing to 1"),
    (torch.tensor([[1.5, -0.5], [0.5, 0.5]]), ValueError, "non-negative"),
])
def test_stats_reject_bad_weights(weights, error, match):
    with pytest.raises(error, match=match):
        au.attention_entropy(weights)


def test_distance_needs_square_weights():
    with pytest.raises(ValueError, match=r"square .* got shape \(2, 3\)"):
        au.attention_distance(torch.full((2, 3), 1 / 3))


# --- TransformerAttentionExplorer ----------------------------------------------------------


def test_explorer_builds_one_panel_per_layer_and_head():
    explorer = au.TransformerAttentionExplorer(_model(num_heads=2), "314159")
    assert explorer.grid.axes.shape == (2, 2)
    assert len(explorer.titles) == 4
    assert explorer.grid.images[0].get_array().shape == (6, 6)
    assert "input 314159" in explorer.suptitle.get_text()


def test_explorer_update_changes_images_titles_and_ticks_in_place():
    explorer = au.TransformerAttentionExplorer(_model(), "314159")
    fig, image = explorer.fig, explorer.grid.images[0]
    before = np.array(image.get_array())
    titles = [t.get_text() for t in explorer.titles]
    assert explorer.update(sequence=[9, 9, 0, 0, 1, 2]) is fig
    assert explorer.grid.images[0] is image
    assert not np.allclose(before, image.get_array())
    assert [t.get_text() for t in explorer.titles] != titles
    assert "input 990012" in explorer.suptitle.get_text()
    ticks = [t.get_text() for t in explorer.grid.axes[-1, 0].get_xticklabels()]
    assert ticks == ["0:9", "1:9", "2:0", "3:0", "4:1", "5:2"]


def test_explorer_titles_report_the_statistics():
    model = _model()
    explorer = au.TransformerAttentionExplorer(model, "012345")
    with torch.no_grad():
        model.eval()(torch.arange(6)[None])
    entropy = au.attention_entropy(model.attention_weights[0][0, 0])
    assert f"H = {entropy:.2f}" in explorer.titles[0].get_text()


def test_explorer_to_cpu_and_restores_training_mode():
    model = _model().train()
    explorer = au.TransformerAttentionExplorer(model, "012345")
    assert explorer.to("cpu") is explorer and explorer.device == torch.device("cpu")
    explorer.update(sequence="543210")
    assert model.training


def test_explorer_does_not_mutate_its_input():
    sequence = [1, 2, 3, 4, 5, 6]
    explorer = au.TransformerAttentionExplorer(_model(), sequence)
    explorer.update(sequence=sequence)
    assert sequence == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(("sequence", "error", "match"), [
    ("12345", ValueError, "must have 6 tokens .* got 5"),
    ("12a456", ValueError, "string of digits"),
    ([0, 1, 2, 3, 4, 10], ValueError, r"token ids in 0 \.\. 9"),
    (3.5, TypeError, "string of digits or a list of token ids, got float"),
])
def test_explorer_rejects_bad_sequences(sequence, error, match):
    explorer = au.TransformerAttentionExplorer(_model(), "012345")
    with pytest.raises(error, match=match):
        explorer.update(sequence=sequence)


def test_explorer_needs_a_tiny_transformer():
    with pytest.raises(TypeError, match="model must be a TinyTransformer, got Linear"):
        au.TransformerAttentionExplorer(torch.nn.Linear(2, 2), "01")
