"""attention_lab.data.reversal: seeded digit strings and their reversals."""

import pytest
import torch

from attention_lab.data.reversal import reversal_data


def test_reversal_data_is_seeded_and_reversed():
    src, tgt = reversal_data(10, 6, seed=3)
    assert src.shape == tgt.shape == (10, 6)
    assert torch.equal(tgt, src.flip(1))
    assert torch.equal(src, reversal_data(10, 6, seed=3)[0])
    assert 0 <= int(src.min()) and int(src.max()) <= 9
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        reversal_data(10, 0)
