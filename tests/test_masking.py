"""attention_utils masking: sequence_mask, valid_lens_to_mask, masked_softmax (chapter 02)."""

import numpy as np
import pytest
import torch
from d2l import torch as d2l
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

import attention_utils as au

FAST = settings(max_examples=50, deadline=None)

LOW_PRECISION = (torch.float16, torch.bfloat16)


@st.composite
def scores_and_lengths(draw, min_len=0, two_d=None):
    """Random (X (batch, num_queries, num_kv), valid_lens (batch,) or (batch, num_queries))."""
    batch = draw(st.integers(1, 3))
    num_queries = draw(st.integers(1, 4))
    num_kv = draw(st.integers(max(1, min_len), 6))
    seed = draw(st.integers(0, 2**16))
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(batch, num_queries, num_kv, generator=generator) * 4  # (B, Tq, Tk)
    two_d = draw(st.booleans()) if two_d is None else two_d
    shape = (batch, num_queries) if two_d else (batch,)
    lengths = torch.randint(min_len, num_kv + 1, shape, generator=generator)
    return X, lengths


def keep_mask(X, lengths):
    """Reference keep-mask (B, Tq, Tk) built independently of attention_utils."""
    if lengths.dim() == 1:
        lengths = lengths[:, None].expand(X.shape[0], X.shape[1])  # (B, Tq)
    return torch.arange(X.shape[-1]) < lengths[..., None]  # (B, Tq, Tk)


@pytest.fixture
def X():
    torch.manual_seed(0)
    return torch.rand(2, 2, 4)  # (B, Tq, Tk)


def test_sequence_mask_returns_a_new_tensor_and_keeps_its_input():
    X = torch.ones(2, 3)
    out = au.sequence_mask(X, torch.tensor([1, 2]))
    assert torch.equal(out, torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]))
    assert torch.equal(X, torch.ones(2, 3))
    assert out.data_ptr() != X.data_ptr()


def test_sequence_mask_value_and_d2l_parity():
    X = torch.arange(12.0).reshape(3, 4)
    lengths = torch.tensor([0, 2, 4])
    ours = au.sequence_mask(X, lengths, value=-1.0)
    assert torch.equal(ours, d2l.sequence_mask(X.clone(), lengths, value=-1.0))
    assert torch.equal(ours[0], torch.full((4,), -1.0))


@pytest.mark.parametrize(("X", "valid_len", "error"), [
    (torch.ones(2, 3, 1), [1, 2], ValueError),
    (torch.ones(2, 3), [1, 2, 3], ValueError),
    (torch.ones(2, 3), [1, 4], ValueError),
    (torch.ones(2, 3), [1.0, 2.0], TypeError),
])
def test_sequence_mask_rejects_bad_input(X, valid_len, error):
    with pytest.raises(error, match="valid_len|X must"):
        au.sequence_mask(X, valid_len)


@pytest.mark.parametrize(("dtype", "value", "match"), [
    (torch.float16, -1e6, r"value must fit X's dtype torch.float16, whose range is -65504 \.\. "
                          r"65504, got -1e\+06"),
    (torch.int8, 1000, r"value must fit X's dtype torch.int8, whose range is -128 \.\. 127")])
def test_sequence_mask_names_a_value_its_dtype_cannot_hold(dtype, value, match):
    with pytest.raises(ValueError, match=match):
        au.sequence_mask(torch.zeros(2, 4, dtype=dtype), torch.tensor([1, 2]), value=value)
    with pytest.raises(TypeError, match="value must be a number, got str"):
        au.sequence_mask(torch.zeros(2, 4), torch.tensor([1, 2]), value="-inf")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sequence_mask_takes_the_dtype_minimum_and_infinity(dtype):
    X = torch.zeros(1, 3, dtype=dtype)
    low = au.sequence_mask(X, [1], value=torch.finfo(dtype).min)
    assert low.dtype == dtype and low[0, 1] == torch.finfo(dtype).min
    assert au.sequence_mask(X, [1], value=float("-inf"))[0, 2] == float("-inf")


def test_source_example_1d_lengths(X):
    weights = au.masked_softmax(X, torch.tensor([2, 3]))
    assert weights.shape == (2, 2, 4)
    assert torch.all(weights[0, :, 2:] == 0) and torch.all(weights[1, :, 3:] == 0)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 2))
    assert torch.allclose(weights[0, :, :2], F.softmax(X[0, :, :2], dim=-1))


def test_source_example_2d_lengths(X):
    weights = au.masked_softmax(X, torch.tensor([[1, 3], [2, 4]]))
    assert torch.equal(weights[0, 0], torch.tensor([1.0, 0.0, 0.0, 0.0]))
    assert torch.allclose(weights[1, 1], F.softmax(X[1, 1], dim=-1))
    assert torch.all(weights[0, 1, 3:] == 0) and torch.all(weights[1, 0, 2:] == 0)


def test_no_lengths_is_plain_softmax(X):
    assert torch.allclose(au.masked_softmax(X), F.softmax(X, dim=-1))
    assert torch.allclose(au.masked_softmax(X, None), F.softmax(X, dim=-1))


def test_full_lengths_are_plain_softmax(X):
    assert torch.allclose(au.masked_softmax(X, torch.tensor([4, 4])), F.softmax(X, dim=-1))


def test_input_is_never_mutated(X):
    before = X.clone()
    lengths = torch.tensor([1, 0])
    au.masked_softmax(X, lengths)
    assert torch.equal(X, before)
    assert torch.equal(lengths, torch.tensor([1, 0]))


def test_d2l_mutates_its_input_but_we_do_not(X):
    """The pitfall notebook 02 shows: d2l 1.0.3 overwrites the caller's scores."""
    theirs = X.clone()
    d2l.masked_softmax(theirs, torch.tensor([2, 3]))
    assert torch.all(theirs[0, :, 2:] == -1e6)
    ours = X.clone()
    au.masked_softmax(ours, torch.tensor([2, 3]))
    assert torch.equal(ours, X)


def test_length_zero_gives_zero_weights_not_nan_not_uniform(X):
    weights = au.masked_softmax(X, torch.tensor([0, 3]))
    assert torch.equal(weights[0], torch.zeros(2, 4))
    assert not torch.isnan(weights).any()
    d2l_weights = d2l.masked_softmax(X.clone(), torch.tensor([0, 3]))
    assert torch.allclose(d2l_weights[0], torch.full((2, 4), 0.25))  # d2l: uniform


def test_length_zero_matches_sdpa_all_false_mask_row(X):
    """SDPA with values = identity returns its attention weights."""
    lengths = torch.tensor([[0, 2], [3, 0]])
    keep = au.valid_lens_to_mask(lengths, 2, 4)  # (B, Tq, Tk)
    queries, keys = torch.randn(2, 2, 3), torch.randn(2, 4, 3)
    values = torch.eye(4).expand(2, 4, 4)  # (B, Tk, Tk)
    sdpa = F.scaled_dot_product_attention(queries, keys, values, attn_mask=keep)  # (B, Tq, Tk)
    scores = queries @ keys.transpose(1, 2) / 3**0.5  # (B, Tq, Tk)
    assert torch.allclose(au.masked_softmax(scores, lengths), sdpa, atol=1e-6)


@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_low_precision_keeps_dtype_and_stays_finite(X, dtype):
    weights = au.masked_softmax(X.to(dtype), torch.tensor([0, 3]))
    assert weights.dtype == dtype
    assert torch.isfinite(weights).all()
    assert torch.equal(weights[0], torch.zeros(2, 4, dtype=dtype))
    expected = au.masked_softmax(X, torch.tensor([0, 3]))
    assert torch.allclose(weights.float(), expected, atol=1e-2)


def test_magic_fill_values_overflow_in_float16():
    """Why the module has no -1e6: it is -inf in float16, and an all--inf row is NaN."""
    for fill in (-1e6, -1e9, -9e15):
        assert torch.tensor(fill, dtype=torch.float16).isinf()
    d2l_weights = d2l.masked_softmax(torch.rand(1, 2, 4, dtype=torch.float16), torch.tensor([0]))
    assert torch.isnan(d2l_weights).all()


def test_gradients_do_not_reach_masked_keys(X):
    scores = X.clone().requires_grad_()
    weights = au.masked_softmax(scores, torch.tensor([[2, 4], [0, 1]]))
    (weights * torch.randn_like(weights)).sum().backward()
    keep = keep_mask(X, torch.tensor([[2, 4], [0, 1]]))
    assert torch.all(scores.grad[~keep] == 0)
    assert torch.all(scores.grad[0, 1] != 0)


@pytest.mark.parametrize("valid_lens", [[2, 3], (2, 3), np.array([2, 3]),
                                        np.array([2, 3], dtype=np.int32),
                                        torch.tensor([2, 3], dtype=torch.int32),
                                        [[1, 3], [2, 4]], np.array([[1, 3], [2, 4]])])
def test_lengths_as_list_numpy_or_any_integer_tensor(X, valid_lens):
    expected = au.masked_softmax(X, torch.as_tensor(np.asarray(valid_lens), dtype=torch.long))
    assert torch.equal(au.masked_softmax(X, valid_lens), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_lengths_on_cpu_with_scores_on_cuda(X):
    weights = au.masked_softmax(X.cuda(), torch.tensor([2, 3]))
    assert weights.device.type == "cuda"
    assert torch.allclose(weights.cpu(), au.masked_softmax(X, torch.tensor([2, 3])))


@pytest.mark.parametrize(("valid_lens", "match"), [
    (torch.tensor([1, 2, 3]), r"valid_lens of shape \(batch,\) must have batch=2 entries, "
                              r"got shape \(3,\)"),
    (torch.tensor([[1, 2, 3], [1, 2, 3]]), r"valid_lens of shape \(batch, num_queries\) "
                                           r"must be \(2, 2\), got \(2, 3\)"),
    (torch.tensor([[1], [2]]), r"valid_lens .* must be \(2, 2\), got \(2, 1\)"),
    (torch.tensor([-1, 2]), r"valid_lens must lie in 0 \.\. num_kv=4, got values from -1"),
    (torch.tensor([2, 5]), r"valid_lens must lie in 0 \.\. num_kv=4, got values from 2 to 5"),
    (torch.ones(2, 2, 1, dtype=torch.long), r"valid_lens must be None, \(batch,\) or "
                                            r"\(batch, num_queries\), got shape \(2, 2, 1\)"),
])
def test_bad_lengths_raise_value_error(X, valid_lens, match):
    with pytest.raises(ValueError, match=match):
        au.masked_softmax(X, valid_lens)


@pytest.mark.parametrize("valid_lens", [torch.tensor([1.0, 2.0]), [1.5, 2.0], np.array([1.0, 2.0]),
                                        torch.tensor([True, False]), "ab", 3])
def test_non_integer_lengths_raise_type_error(X, valid_lens):
    with pytest.raises(TypeError, match="valid_lens"):
        au.masked_softmax(X, valid_lens)


@pytest.mark.parametrize("shape", [(2, 4), (4,), (1, 2, 2, 4)])
def test_scores_must_be_3d_when_lengths_are_given(shape):
    with pytest.raises(ValueError, match=r"X must be 3-D .* when valid_lens is given, got shape"):
        au.masked_softmax(torch.rand(shape), torch.tensor([1, 2]))


@FAST
@given(scores_and_lengths(min_len=1))
def test_rows_sum_to_one_over_valid_keys(case):
    X, lengths = case
    weights = au.masked_softmax(X, lengths)
    assert torch.allclose(weights.sum(-1), torch.ones(X.shape[:2]), atol=1e-5)


@FAST
@given(scores_and_lengths())
def test_masked_weights_are_exactly_zero_and_valid_ones_positive(case):
    X, lengths = case
    weights = au.masked_softmax(X, lengths)
    keep = keep_mask(X, lengths)
    assert torch.all(weights[~keep] == 0)
    assert torch.all(weights[keep] > 0)
    assert torch.all(weights[keep.sum(-1) == 0] == 0)  # length 0: an all-zero row


@FAST
@given(scores_and_lengths(), st.floats(-50, 50))
def test_invariant_to_a_constant_added_per_row(case, scale):
    X, lengths = case
    shift = scale * torch.linspace(-1, 1, X.shape[0] * X.shape[1]).reshape(*X.shape[:2], 1)
    assert torch.allclose(au.masked_softmax(X + shift, lengths), au.masked_softmax(X, lengths),
                          atol=1e-5)


@FAST
@given(scores_and_lengths(min_len=1))
def test_agrees_with_d2l_when_every_length_is_at_least_one(case):
    X, lengths = case
    expected = d2l.masked_softmax(X.clone(), lengths.clone())  # d2l writes into its input
    assert torch.allclose(au.masked_softmax(X, lengths), expected, atol=1e-6)


@FAST
@given(scores_and_lengths(), st.sampled_from(LOW_PRECISION))
def test_low_precision_is_finite_and_close_to_float32(case, dtype):
    X, lengths = case
    weights = au.masked_softmax(X.to(dtype), lengths)
    assert weights.dtype == dtype
    assert torch.isfinite(weights).all()
    assert torch.allclose(weights.float(), au.masked_softmax(X, lengths), atol=2e-2)


@FAST
@given(scores_and_lengths())
def test_no_gradient_reaches_masked_scores(case):
    X, lengths = case
    scores = X.clone().requires_grad_()
    weights = au.masked_softmax(scores, lengths)
    (weights * torch.randn_like(weights)).sum().backward()
    assert torch.all(scores.grad[~keep_mask(X, lengths)] == 0)


@FAST
@given(scores_and_lengths(two_d=False))
def test_1d_lengths_equal_their_2d_broadcast(case):
    X, lengths = case
    lengths_2d = lengths[:, None].expand(X.shape[0], X.shape[1])  # (B, Tq)
    assert torch.equal(au.masked_softmax(X, lengths), au.masked_softmax(X, lengths_2d))
