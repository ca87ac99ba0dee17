"""attention_utils.PositionalEncoding: d2l parity, shape, buffer, errors."""

import pytest
import torch
from d2l import torch as d2l

import attention_utils as au


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
