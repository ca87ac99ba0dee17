"""attention_lab.models.transformer: encoder block, TinyTransformer, and a short training run."""

import pytest
import torch
from torch.nn import functional as F

from attention_lab.analysis import attention_distance
from attention_lab.data.reversal import reversal_data
from attention_lab.models.transformer import TinyTransformer, TransformerEncoderBlock
from tests.helpers import tiny_transformer


def test_encoder_block_shapes_and_eager_layers():
    block = TransformerEncoderBlock(16, 32, 4, 0.0)
    assert not any(isinstance(p, torch.nn.parameter.UninitializedParameter)
                   for p in block.parameters())
    X = torch.randn(2, 5, 16)
    assert block(X).shape == (2, 5, 16)
    assert block.attention.attention_weights.shape == (2, 4, 5, 5)
    block(X, torch.tensor([3, 5]))
    weights = block.attention.attention_weights  # (B, h, Tq, Tk)
    assert torch.all(weights[0, :, :, 3:] == 0)  # masked keys get no weight


def test_tiny_transformer_shapes_and_recorded_weights():
    model = tiny_transformer(num_steps=6, num_heads=2)
    tokens = torch.randint(0, 10, (3, 6))
    assert model(tokens).shape == (3, 6, 10)
    assert len(model.attention_weights) == 2
    for weights in model.attention_weights:
        assert weights.shape == (3, 2, 6, 6)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2, 6))


def test_tiny_transformer_scale_embedding_is_d2ls_sqrt_d():
    torch.manual_seed(0)
    plain = TinyTransformer(10, 16, 32, 2, 1)
    scaled = TinyTransformer(10, 16, 32, 2, 1, scale_embedding=True)
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
        tiny_transformer()(tokens)


def _train_reversal(num_steps: int, steps: int, seed: int = 0) -> TinyTransformer:
    model = tiny_transformer(num_steps=num_steps, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(steps):
        src, tgt = reversal_data(128, num_steps, seed=seed * 1000 + step)
        loss = F.cross_entropy(model(src).reshape(-1, 10), tgt.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize("seed", [0, 1])
def test_trained_model_reverses_and_a_layer_2_head_is_anti_diagonal(seed, one_thread):
    """~100 Adam steps (a second or two on a laptop CPU) reach >= 0.9 token accuracy."""
    model = _train_reversal(num_steps=6, steps=100, seed=seed)
    src, tgt = reversal_data(500, 6, seed=99)
    with torch.no_grad():
        accuracy = (model(src).argmax(-1) == tgt).float().mean().item()
    assert accuracy >= 0.9
    d_anti = attention_distance(model.attention_weights[1].mean(0), anti_diagonal=True)
    assert d_anti.min() < 0.5
