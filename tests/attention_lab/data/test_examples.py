"""attention_lab.data.examples: the seeded example inputs of chapters 03 and 05."""


import pytest
import torch

from attention_lab.data.examples import additive_example_inputs, token_embeddings


def test_token_embeddings_are_seeded_per_token_and_leave_global_rng_alone():
    state = torch.get_rng_state()
    X = token_embeddings([["a", "b", "a"], ["b", "c", "c"]], 5, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert X.shape == (2, 3, 5)
    assert torch.equal(X[0, 0], X[0, 2]) and torch.equal(X[0, 1], X[1, 0])
    assert torch.equal(X, token_embeddings([["a", "b", "a"], ["b", "c", "c"]], 5, seed=1))
    with pytest.raises(ValueError, match=r"same number of tokens.*\[2, 1\]"):
        token_embeddings([["a", "b"], ["c"]], 5)


def test_additive_example_inputs():
    queries, keys, values = additive_example_inputs(distinct_keys=False)
    assert queries.shape == (2, 1, 20) and torch.all(keys == 1) and values.shape == (2, 10, 4)
    _, distinct, _ = additive_example_inputs()
    assert distinct.shape == (2, 10, 2) and len(torch.unique(distinct)) == 40
