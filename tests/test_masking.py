"""Chapter 02: masked_softmax / sequence_mask contract, properties, d2l parity, explorer."""

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


# ----------------------------------------------------------------------------
# sequence_mask
# ----------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------
# masked_softmax: unit tests, one per contract point
# ----------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------
# masked_softmax: properties (hypothesis)
# ----------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------
# MaskedSoftmaxExplorer
# ----------------------------------------------------------------------------


@pytest.fixture
def explorer(X):
    return au.MaskedSoftmaxExplorer(X, valid_lens=(2, 3))


def test_explorer_draws_the_masked_weights(explorer, X):
    assert explorer.names == ("valid_len_0", "valid_len_1")
    assert explorer.valid_lens == (2, 3)
    assert len(explorer.grid.images) == 2 and len(explorer.masks) == 2
    expected = au.masked_softmax(X, torch.tensor([2, 3])).numpy()
    for image, weights in zip(explorer.grid.images, expected, strict=True):
        assert np.allclose(image.get_array(), weights)
    assert [mask.get_x() for mask in explorer.masks] == [1.5, 2.5]
    assert [mask.get_width() for mask in explorer.masks] == [2, 1]
    assert explorer.grid.texts[2].get_text() == "0.00"


def test_explorer_update_changes_images_masks_and_labels_in_place(explorer, X):
    fig, image, mask = explorer.fig, explorer.grid.images[0], explorer.masks[0]
    before = np.array(explorer.grid.images[0].get_array())
    assert explorer.update(valid_len_0=4, valid_len_1=0) is fig
    assert explorer.grid.images[0] is image and explorer.masks[0] is mask
    assert not np.allclose(image.get_array(), before)
    assert np.allclose(image.get_array(), F.softmax(X[0], dim=-1).numpy())
    assert not explorer.masks[0].get_visible()
    assert explorer.masks[1].get_visible() and explorer.masks[1].get_x() == -0.5
    assert np.all(explorer.grid.images[1].get_array() == 0)
    assert explorer.grid.axes[0, 1].get_title() == "batch row 1: valid_len=0"


def test_explorer_update_keeps_rows_not_named(explorer):
    explorer.update(valid_len_1=1)
    assert explorer.valid_lens == (2, 1)
    assert explorer.masks[0].get_x() == 1.5


def test_explorer_defaults_to_every_key_valid(X):
    explorer = au.MaskedSoftmaxExplorer(X)
    assert explorer.valid_lens == (4, 4)
    assert not any(mask.get_visible() for mask in explorer.masks)


@pytest.mark.parametrize("lengths", [{"valid_len_0": 5}, {"valid_len_1": -1}])
def test_explorer_rejects_out_of_range_lengths(explorer, lengths):
    name = next(iter(lengths))
    with pytest.raises(ValueError, match=f"{name} must lie in 0 .. num_kv=4"):
        explorer.update(**lengths)
    assert explorer.valid_lens == (2, 3)


def test_explorer_rejects_unknown_keywords_and_non_integers(explorer):
    with pytest.raises(TypeError, match="valid_len_0, valid_len_1"):
        explorer.update(valid_len_2=1)
    with pytest.raises(TypeError, match="valid_len_0 must be an int"):
        explorer.update(valid_len_0=1.5)


def test_explorer_rejects_bad_construction(X):
    with pytest.raises(ValueError, match="scores must be 3-D"):
        au.MaskedSoftmaxExplorer(X[0])
    with pytest.raises(ValueError, match=r"valid_lens must have one length per batch row \(2\)"):
        au.MaskedSoftmaxExplorer(X, valid_lens=(1, 2, 3))


def test_explorer_does_not_alias_or_mutate_scores(X):
    before = X.clone()
    explorer = au.MaskedSoftmaxExplorer(X, (0, 1))
    X.add_(1.0)
    explorer.update(valid_len_0=4)
    assert torch.equal(explorer.scores, before)


def test_explorer_moves_to_a_device(explorer):
    assert explorer.to("cpu") is explorer
    assert explorer.device == torch.device("cpu") and explorer.scores.device.type == "cpu"
    explorer.update(valid_len_0=1)


def test_explorer_plugs_into_explorer_panel(explorer):
    import ipywidgets as widgets

    sliders = {name: widgets.IntSlider(value=n, min=0, max=4)
               for name, n in zip(explorer.names, explorer.valid_lens, strict=True)}
    panel = au.explorer_panel(explorer, sliders)
    png = panel.children[-2].value
    sliders["valid_len_0"].value = 0
    assert explorer.valid_lens == (0, 3)
    assert panel.children[-2].value != png
