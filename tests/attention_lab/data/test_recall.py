"""attention_lab.data.recall: associative-recall batches."""

import pytest
import torch

from attention_lab.data.recall import associative_recall_batch


def test_associative_recall_batch():
    g = torch.Generator().manual_seed(0)
    keys, values, targets = associative_recall_batch(50, 5, 8, 6, g)
    assert keys.shape == values.shape == (50, 6) and targets.shape == (50,)
    assert (values[:, -1] == 6).all() and (values[:, :-1] < 6).all()
    for row in range(50):
        stored = keys[row, :-1].tolist()
        assert len(set(stored)) == 5
        assert values[row, stored.index(keys[row, -1].item())] == targets[row]
    with pytest.raises(ValueError, match="num_pairs"):
        associative_recall_batch(2, 9, 8, 6)
