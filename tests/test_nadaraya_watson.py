"""attention_utils.nadaraya_watson: kernel regression as attention pooling (chapter 01)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import attention_utils as au


def _data(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, _ = torch.sort(torch.rand(n, generator=g) * 5)
    y = 2 * torch.sin(x) + x**0.8 + 0.5 * torch.randn(n, generator=g)
    return x, y


def test_nadaraya_watson_shapes_and_rows_sum_to_one():
    x, y = _data()
    queries = torch.arange(0, 5, 0.5)
    y_hat, weights = au.nadaraya_watson(queries, x, y, sigma=0.4)
    assert y_hat.shape == (10,) and weights.shape == (10, 20)
    torch.testing.assert_close(weights.sum(-1), torch.ones(10))
    assert (weights >= 0).all()


def test_nadaraya_watson_is_the_normalised_gaussian_kernel():
    x, y = _data()
    queries = torch.linspace(0, 5, 7)
    sigma = 0.3
    kernel = torch.exp(-((queries[:, None] - x[None, :]) ** 2) / (2 * sigma**2))
    expected = kernel / kernel.sum(-1, keepdim=True)
    y_hat, weights = au.nadaraya_watson(queries, x, y, sigma)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(y_hat, expected @ y)


def test_nadaraya_watson_limits_nearest_neighbour_and_mean():
    x, y = _data()
    queries = x[[3, 11]] + 1e-3
    y_hat, _ = au.nadaraya_watson(queries, x, y, sigma=1e-3)
    torch.testing.assert_close(y_hat, y[[3, 11]], atol=1e-3, rtol=0)
    y_flat, _ = au.nadaraya_watson(queries, x, y, sigma=1e4)
    torch.testing.assert_close(y_flat, y.mean().expand(2), atol=1e-4, rtol=0)


def test_nadaraya_watson_does_not_mutate_and_passes_gradients():
    x, y = _data()
    y = y.clone().requires_grad_(True)
    queries = torch.tensor([1.0, 2.0])
    copies = [t.detach().clone() for t in (queries, x, y)]
    y_hat, _ = au.nadaraya_watson(queries, x, y, 0.5)
    y_hat.sum().backward()
    assert all(torch.equal(a, b.detach()) for a, b in zip(copies, (queries, x, y), strict=True))
    torch.testing.assert_close(y.grad.sum(), torch.tensor(2.0))  # two rows of weights


@given(n=st.integers(1, 30), m=st.integers(1, 10), sigma=st.floats(0.05, 20.0),
       seed=st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_nadaraya_watson_predicts_weighted_averages(n, m, sigma, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(n, generator=g) * 5, torch.randn(n, generator=g)
    queries = torch.rand(m, generator=g) * 5
    y_hat, weights = au.nadaraya_watson(queries, x, y, sigma)
    torch.testing.assert_close(weights.sum(-1), torch.ones(m))
    assert (y_hat >= y.min() - 1e-5).all() and (y_hat <= y.max() + 1e-5).all()


@pytest.mark.parametrize(("args", "error", "match"), [
    (([1.0, 2.0], torch.ones(3), torch.ones(3), 1.0), TypeError,
     r"x_query must be a torch\.Tensor"),
    ((torch.ones(2, 1), torch.ones(3), torch.ones(3), 1.0), ValueError,
     r"x_query must be 1-D \(num_queries,\), got shape \(2, 1\)"),
    ((torch.ones(2), torch.ones(3), torch.ones(4), 1.0), ValueError,
     r"x_key and y_key .* got x_key \(3,\) and y_key \(4,\)"),
    ((torch.ones(2), torch.ones(0), torch.ones(0), 1.0), ValueError, r"num_kv >= 1"),
    ((torch.ones(2), torch.ones(3, dtype=torch.long), torch.ones(3), 1.0), TypeError,
     r"x_key must be a floating-point tensor"),
    ((torch.ones(2), torch.ones(3), torch.ones(3), 0.0), ValueError,
     r"sigma \(the kernel width\) must be a positive finite number, got 0\.0"),
    ((torch.ones(2), torch.ones(3), torch.ones(3), -1), ValueError, r"sigma .* got -1"),
    ((torch.ones(2), torch.ones(3), torch.ones(3), float("nan")), ValueError, r"sigma"),
    ((torch.ones(2), torch.ones(3), torch.ones(3), "1"), TypeError, r"sigma .* got str"),
    ((torch.ones(2), torch.ones(3), torch.ones(3), True), TypeError, r"sigma .* got bool"),
])
def test_nadaraya_watson_rejects_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        au.nadaraya_watson(*args)
