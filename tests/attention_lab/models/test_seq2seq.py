"""attention_lab.models.seq2seq: the concat-rule Attn and the toy GRU encoder-decoder."""

import pytest
import torch
from torch.nn import functional as F

from attention_lab.data.reversal import BOS, reversal_data
from attention_lab.models.seq2seq import Attn, ToySeq2Seq


def source_attn() -> Attn:
    torch.manual_seed(0)
    return Attn(query_size=32, key_size=32, value_size1=32, value_size2=64, output_size=64)


def test_attn_shapes_from_the_source():
    attn = source_attn()
    Q, K, V = torch.randn(1, 1, 32), torch.randn(1, 1, 32), torch.randn(1, 32, 64)
    output, weights = attn(Q, K, V)
    assert output.shape == (1, 1, 64)
    assert weights.shape == (1, 32)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1))


def test_attn_matches_the_source_formula_and_keeps_inputs():
    attn = source_attn()
    Q, K, V = torch.randn(1, 3, 32), torch.randn(1, 3, 32), torch.randn(1, 32, 64)
    copies = [t.clone() for t in (Q, K, V)]
    output, weights = attn(Q, K, V)
    expected_w = F.softmax(attn.attn(torch.cat((Q[0], K[0]), 1)), dim=1)  # (n, vs1)
    applied = expected_w @ V[0]  # (n, vs2)
    expected = attn.attn_combine(torch.cat((Q[0], applied), 1)).unsqueeze(0)
    torch.testing.assert_close(weights, expected_w)
    torch.testing.assert_close(output, expected)
    for original, copy in zip((Q, K, V), copies, strict=True):
        assert torch.equal(original, copy)


def test_attn_weights_ignore_the_values():
    attn = source_attn()
    Q, K = torch.randn(1, 1, 32), torch.randn(1, 1, 32)
    _, w1 = attn(Q, K, torch.randn(1, 32, 64))
    _, w2 = attn(Q, K, torch.randn(1, 32, 64))
    assert torch.equal(w1, w2)


def test_attn_step_equals_forward_for_one_row():
    attn = source_attn()
    q, k, values = torch.randn(1, 32), torch.randn(1, 32), torch.randn(1, 32, 64)
    out_step, w_step = attn.step(q, k, values)
    out_fwd, w_fwd = attn(q[None], k[None], values)
    torch.testing.assert_close(out_step, out_fwd[0])
    torch.testing.assert_close(w_step, w_fwd)
    out, w = attn.step(torch.randn(5, 32), torch.randn(5, 32), torch.randn(5, 32, 64))
    assert out.shape == (5, 64) and w.shape == (5, 32)


@pytest.mark.parametrize(("Q", "K", "V", "match"), [
    (torch.randn(1, 1, 16), torch.randn(1, 1, 32), torch.randn(1, 32, 64), r"Q must have shape"),
    (torch.randn(1, 1, 32), torch.randn(1, 2, 32), torch.randn(1, 32, 64), r"K must have shape"),
    (torch.randn(1, 1, 32), torch.randn(1, 1, 32), torch.randn(1, 40, 64),
     r"V must have shape \(1, 32, 64\).*V \(1, 40, 64\)"),
    (torch.randn(2, 1, 32), torch.randn(2, 1, 32), torch.randn(1, 32, 64), r"Q must have shape"),
    (torch.randn(1, 32), torch.randn(1, 1, 32), torch.randn(1, 32, 64), r"Q must be 3-D"),
])
def test_attn_input_errors(Q, K, V, match):
    with pytest.raises(ValueError, match=match):
        source_attn()(Q, K, V)


def test_attn_type_error_and_step_errors():
    attn = source_attn()
    with pytest.raises(TypeError, match="V must be a torch.Tensor"):
        attn(torch.randn(1, 1, 32), torch.randn(1, 1, 32), [[0.0]])
    with pytest.raises(ValueError, match=r"values must have shape \(4, 32, 64\)"):
        attn.step(torch.randn(4, 32), torch.randn(4, 32), torch.randn(3, 32, 64))
    with pytest.raises(ValueError, match="k must be 2-D"):
        attn.step(torch.randn(4, 32), torch.randn(1, 4, 32), torch.randn(4, 32, 64))


@pytest.mark.parametrize("scoring", ["concat", "additive"])
def test_toy_model_shapes(scoring):
    model = ToySeq2Seq(scoring, num_hiddens=16, num_steps=5)
    src = torch.randint(0, 10, (3, 5))
    assert model(src).shape == (3, 5, 11)
    assert model.attention_weights.shape == (3, 5, 5)
    torch.testing.assert_close(model.attention_weights.sum(-1), torch.ones(3, 5))
    assert model(src, torch.full((3, 5), BOS)).shape == (3, 5, 11)


def test_toy_model_errors():
    with pytest.raises(ValueError, match="scoring must be 'concat' or 'additive'"):
        ToySeq2Seq("dot")


@pytest.mark.parametrize(("src", "tgt_in", "error", "match"), [
    (torch.zeros(2, 6, dtype=torch.long), None, ValueError,
     r"src must be \(batch, num_steps=8\) with batch, num_steps >= 1, got \(2, 6\)"),
    (torch.zeros(2, 8), None, TypeError,
     r"src must be an integer tensor \(batch, num_steps=8\), got torch.float32 tensor"),
    ([[1] * 8], None, TypeError, r"src must be an integer tensor .*, got list"),
    (torch.zeros(0, 8, dtype=torch.long), None, ValueError, r"src must be .*got \(0, 8\)"),
    (torch.full((2, 8), 11), None, ValueError,
     r"src must lie in 0 .. vocab_size-1=10, got values from 11 to 11"),
    (torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 7, dtype=torch.long), ValueError,
     r"tgt_in must be \(batch, num_steps=8\)"),
    (torch.zeros(2, 8, dtype=torch.long), torch.zeros(3, 8, dtype=torch.long), ValueError,
     r"tgt_in must have the batch size of src, got src \(2, 8\) and tgt_in \(3, 8\)"),
    (torch.zeros(2, 8, dtype=torch.long), torch.full((2, 8), -1), ValueError,
     r"tgt_in must lie in 0 .. vocab_size-1=10, got values from -1 to -1"),
])
def test_toy_model_refuses_bad_tokens(src, tgt_in, error, match):
    model = ToySeq2Seq("concat")
    with pytest.raises(error, match=match):
        model(src, tgt_in)


def train_reversal(scoring: str, num_steps: int = 5, steps: int = 150) -> ToySeq2Seq:
    torch.manual_seed(0)
    model = ToySeq2Seq(scoring, num_hiddens=32, num_steps=num_steps)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(steps):
        src, tgt = reversal_data(64, num_steps, seed=100 + step)
        bos = torch.full_like(tgt[:, :1], BOS)
        logits = model(src, torch.cat((bos, tgt[:, :-1]), 1))
        loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return model


def test_additive_model_learns_reversal(one_thread):
    model = train_reversal("additive")
    src, tgt = reversal_data(300, 5, seed=1)
    with torch.no_grad():
        accuracy = (model(src).argmax(-1) == tgt).float().mean().item()
    assert accuracy >= 0.9
