"""attention_lab.data.reversal: seeded digit strings and their reversals."""

import pytest
import torch

from attention_lab.data.reversal import check_tokens, reversal_data


def test_reversal_data_is_seeded_and_reversed():
    src, tgt = reversal_data(10, 6, seed=3)
    assert src.shape == tgt.shape == (10, 6)
    assert torch.equal(tgt, src.flip(1))
    assert torch.equal(src, reversal_data(10, 6, seed=3)[0])
    assert 0 <= int(src.min()) and int(src.max()) <= 9
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        reversal_data(10, 0)


@pytest.mark.parametrize(("args", "error", "match"), [
    ((2.5, 6), TypeError, "num_examples must be an int, got float"),
    ((3, True), TypeError, "num_steps must be an int, got bool"),
    ((3, 6, "0"), TypeError, "seed must be an int, got str"),
    ((0, 6), ValueError, "num_examples and num_steps must be >= 1, got 0 and 6"),
])
def test_reversal_data_names_a_bad_argument(args, error, match):
    with pytest.raises(error, match=match):
        reversal_data(*args)


def test_check_tokens_accepts_digits_and_refuses_the_rest():
    check_tokens("src", torch.tensor([[0, 9]]), vocab_size=10)
    check_tokens("src", torch.tensor([[0, 9]], dtype=torch.int32), vocab_size=10, num_steps=2)
    with pytest.raises(TypeError, match=r"src must be an integer tensor \(batch, num_steps\), "
                                        r"got torch.bool tensor of shape \(1, 2\)"):
        check_tokens("src", torch.tensor([[True, False]]), vocab_size=10)
    with pytest.raises(ValueError, match=r"src must be \(batch, num_steps=3\)"):
        check_tokens("src", torch.tensor([[0, 9]]), vocab_size=10, num_steps=3)
    with pytest.raises(ValueError, match=r"0 .. vocab_size-1=9, got values from 0 to 10"):
        check_tokens("src", torch.tensor([[0, 10]]), vocab_size=10)
