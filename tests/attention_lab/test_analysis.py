"""attention_lab.analysis: entropy and distance from the (anti-)diagonal."""

import math

import numpy as np
import pytest
import torch

from attention_lab.analysis import attention_distance, attention_entropy


def test_stats_of_the_identity():
    eye = torch.eye(5)
    assert attention_entropy(eye) == pytest.approx(0.0)
    assert attention_distance(eye) == pytest.approx(0.0)
    assert attention_distance(eye, anti_diagonal=True) == pytest.approx(
        np.mean([abs(4 - 2 * i) for i in range(5)]))


def test_stats_of_the_anti_identity():
    flip = torch.eye(4).flip(1)
    assert attention_distance(flip, anti_diagonal=True) == pytest.approx(0.0)
    assert attention_distance(flip) == pytest.approx((3 + 1 + 1 + 3) / 4)
    assert attention_entropy(flip) == pytest.approx(0.0)


@pytest.mark.parametrize("n", [1, 2, 7])
def test_stats_of_uniform_weights(n):
    uniform = np.full((n, n), 1.0 / n)
    assert attention_entropy(uniform) == pytest.approx(math.log(n))
    expected = np.mean([np.mean(np.abs(i - np.arange(n))) for i in range(n)])
    assert attention_distance(uniform) == pytest.approx(expected)
    assert attention_distance(uniform, anti_diagonal=True) == pytest.approx(expected)


def test_stats_keep_leading_axes_and_do_not_mutate():
    weights = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)
    before = weights.clone()
    assert attention_entropy(weights).shape == (2, 3)
    assert attention_distance(weights).shape == (2, 3)
    assert torch.equal(weights, before)
    entropy = attention_entropy(weights)
    assert np.all((entropy >= 0) & (entropy <= math.log(4) + 1e-9))


def test_entropy_of_non_square_weights():
    weights = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])  # (Tq=2, Tk=3)
    assert attention_entropy(weights) == pytest.approx(math.log(2) / 2)


@pytest.mark.parametrize(("weights", "error", "match"), [
    ([[1.0]], TypeError, "weights must be a torch.Tensor or array"),
    (torch.ones(3), ValueError, r"\(\.\.\., num_queries, num_kv\)"),
    (torch.ones(2, 2), ValueError, "rows summing to 1"),
    (torch.tensor([[1.5, -0.5], [0.5, 0.5]]), ValueError, "non-negative"),
])
def test_stats_reject_bad_weights(weights, error, match):
    with pytest.raises(error, match=match):
        attention_entropy(weights)


def test_distance_needs_square_weights():
    with pytest.raises(ValueError, match=r"square .* got shape \(2, 3\)"):
        attention_distance(torch.full((2, 3), 1 / 3))
