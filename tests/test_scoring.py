"""attention_utils scoring: additive, dot-product, bilinear, scaled_dot_product (chapters 03-04)."""

import math

import pytest
import torch
from d2l import torch as d2l
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

import attention_utils as au

SHAPES = st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 6), st.integers(1, 5),
                   st.integers(1, 4), st.integers(0, 2**16))


def _random_batch(batch, num_queries, num_kv, d, d_v, seed, d_k=None):
    g = torch.Generator().manual_seed(seed)
    queries = torch.randn(batch, num_queries, d, generator=g)
    keys = torch.randn(batch, num_kv, d if d_k is None else d_k, generator=g)
    values = torch.randn(batch, num_kv, d_v, generator=g)
    valid_lens = torch.randint(1, num_kv + 1, (batch,), generator=g)
    return queries, keys, values, valid_lens


def _copy_additive_weights(ours, theirs):
    with torch.no_grad():
        for name in ("W_q", "W_k", "w_v"):
            getattr(theirs, name).weight.copy_(getattr(ours, name).weight)


@settings(max_examples=20, deadline=None)
@given(SHAPES, st.integers(1, 8), st.booleans())
def test_additive_matches_d2l(shape, num_hiddens, per_query_lens):
    batch, num_queries, num_kv, d, d_v, seed = shape
    queries, keys, values, valid_lens = _random_batch(batch, num_queries, num_kv, d, d_v, seed,
                                                      d_k=d + 1)
    if per_query_lens:
        valid_lens = valid_lens[:, None].repeat(1, num_queries)
    ours = au.AdditiveAttention(num_hiddens, key_size=d + 1, query_size=d).eval()
    theirs = d2l.AdditiveAttention(num_hiddens, dropout=0.0).eval()
    theirs(queries, keys, values, valid_lens)  # materialise d2l's lazy layers
    _copy_additive_weights(ours, theirs)
    with torch.no_grad():
        expected = theirs(queries, keys, values, valid_lens.clone())
        got = ours(queries, keys, values, valid_lens)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(ours.attention_weights, theirs.attention_weights)
    assert got.shape == (batch, num_queries, d_v)
    assert ours.attention_weights.shape == (batch, num_queries, num_kv)


def test_additive_lazy_layers_infer_their_sizes():
    queries, keys, values, valid_lens = _random_batch(2, 3, 4, 5, 6, seed=0, d_k=7)
    attention = au.AdditiveAttention(num_hiddens=8)
    attention(queries, keys, values, valid_lens)
    assert attention.W_q.weight.shape == (8, 5)
    assert attention.W_k.weight.shape == (8, 7)
    assert attention.w_v.weight.shape == (1, 8)
    assert attention.W_q.bias is None and attention.W_k.bias is None and attention.w_v.bias is None


@settings(max_examples=20, deadline=None)
@given(SHAPES, st.booleans())
def test_scaled_dot_product_matches_d2l(shape, with_lens):
    batch, num_queries, num_kv, d, d_v, seed = shape
    queries, keys, values, valid_lens = _random_batch(batch, num_queries, num_kv, d, d_v, seed)
    valid_lens = valid_lens if with_lens else None
    theirs = d2l.DotProductAttention(dropout=0.0).eval()
    ours = au.DotProductAttention().eval()
    expected = theirs(queries, keys, values, valid_lens)
    torch.testing.assert_close(ours(queries, keys, values, valid_lens), expected)
    torch.testing.assert_close(ours.attention_weights, theirs.attention_weights)
    torch.testing.assert_close(ours.scores, queries @ keys.transpose(1, 2) / math.sqrt(d))


def test_plain_dot_product_is_d2l_on_rescaled_queries():
    """Without scaling, scores are q.k: d2l's (scaled) model on sqrt(d) * queries."""
    queries, keys, values, valid_lens = _random_batch(2, 3, 5, 4, 2, seed=1)
    ours = au.DotProductAttention(scaled=False)
    expected = d2l.DotProductAttention(0.0)(queries * 2.0, keys, values, valid_lens)
    torch.testing.assert_close(ours(queries, keys, values, valid_lens), expected)
    torch.testing.assert_close(ours.scores, queries @ keys.transpose(1, 2))


def test_d2l_chapter_example_uniform_over_valid_keys():
    torch.manual_seed(0)
    queries = torch.normal(0, 1, (2, 1, 20))
    keys = torch.ones((2, 10, 2))
    values = torch.arange(40, dtype=torch.float32).reshape(1, 10, 4).repeat(2, 1, 1)
    attention = au.AdditiveAttention(num_hiddens=8, dropout=0.1).eval()
    out = attention(queries, keys, values, torch.tensor([2, 6]))
    assert out.shape == (2, 1, 4)
    expected = torch.zeros(2, 1, 10)
    expected[0, 0, :2], expected[1, 0, :6] = 1 / 2, 1 / 6
    torch.testing.assert_close(attention.attention_weights, expected)


@settings(max_examples=20, deadline=None)
@given(SHAPES)
def test_dot_product_matches_torch_sdpa_with_boolean_mask(shape):
    batch, num_queries, num_kv, d, d_v, seed = shape
    queries, keys, values, valid_lens = _random_batch(batch, num_queries, num_kv, d, d_v, seed)
    mask = au.valid_lens_to_mask(valid_lens, num_queries, num_kv)  # (B, Tq, Tk)
    expected = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask)
    attention = au.DotProductAttention()
    torch.testing.assert_close(attention(queries, keys, values, valid_lens), expected)
    got, weights = au.scaled_dot_product(queries, keys, values, mask=mask)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(weights, attention.attention_weights)


def test_scaled_dot_product_is_causal_and_leading_dims():
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))  # (B, h, T, d)
    causal = torch.tril(torch.ones(5, 5, dtype=torch.int64))  # 0 = masked, broadcasts
    got, attention = au.scaled_dot_product(q, k, v, mask=causal)
    torch.testing.assert_close(got, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert attention.shape == (2, 3, 5, 5)
    assert torch.all(attention.triu(1) == 0)
    unmasked, _ = au.scaled_dot_product(q, k, v)
    torch.testing.assert_close(unmasked, F.scaled_dot_product_attention(q, k, v))


def test_dot_product_is_causal_via_per_query_lengths():
    queries, keys, values, _ = _random_batch(2, 6, 6, 4, 3, seed=4)
    causal_lens = torch.arange(1, 7).repeat(2, 1)  # (B, Tq): query i sees keys 0..i
    got = au.DotProductAttention()(queries, keys, values, causal_lens)
    expected = F.scaled_dot_product_attention(queries, keys, values, is_causal=True)
    torch.testing.assert_close(got, expected)


def test_uva_tutorial_table():
    torch.manual_seed(42)
    q, k, v = (torch.randn(3, 2) for _ in range(3))
    values, attention = au.scaled_dot_product(q, k, v)
    torch.testing.assert_close(attention[0], torch.tensor([0.4028, 0.2886, 0.3086]),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(values, attention @ v)


def test_bilinear_scores_are_k_W_q():
    queries, keys, values, valid_lens = _random_batch(2, 3, 5, 4, 2, seed=5, d_k=6)
    attention = au.BilinearAttention(query_size=4, key_size=6)
    out = attention(queries, keys, values, valid_lens)
    W = attention.W.detach()  # (dk, dq)
    expected = torch.einsum("bkx,xy,bqy->bqk", keys, W, queries)  # k^T W q
    torch.testing.assert_close(attention.scores, expected)
    torch.testing.assert_close(out, torch.bmm(au.masked_softmax(expected, valid_lens), values))
    assert out.shape == (2, 3, 2)


def test_bilinear_with_identity_is_plain_dot_product():
    queries, keys, values, valid_lens = _random_batch(2, 3, 5, 4, 2, seed=6)
    bilinear = au.BilinearAttention(4, 4)
    with torch.no_grad():
        bilinear.W.copy_(torch.eye(4))
    dot = au.DotProductAttention(scaled=False)
    torch.testing.assert_close(bilinear(queries, keys, values, valid_lens),
                               dot(queries, keys, values, valid_lens))


@pytest.mark.parametrize("scaled", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_fast_path_equals_teaching_path(scaled, dtype):
    queries, keys, values, _ = _random_batch(3, 4, 6, 8, 5, seed=7)
    queries, keys, values = (t.to(dtype) for t in (queries, keys, values))
    valid_lens = torch.tensor([0, 3, 6])
    attention = au.DotProductAttention(scaled=scaled)
    slow = attention(queries, keys, values, valid_lens)
    fast = attention(queries, keys, values, valid_lens, need_weights=False)
    assert attention.attention_weights is None and attention.scores is None
    tol = {"atol": 2e-3, "rtol": 2e-3} if dtype == torch.float16 else {}
    torch.testing.assert_close(fast, slow, **tol)
    assert torch.all(fast[0] == 0) and torch.all(slow[0] == 0)
    assert fast.dtype == dtype and torch.isfinite(fast).all()


def _models():
    return [au.AdditiveAttention(4), au.DotProductAttention(), au.DotProductAttention(scaled=False),
            au.BilinearAttention(3, 3)]


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_differing_batch_sizes_are_rejected(model):
    with pytest.raises(ValueError, match=r"batch size.*\(2, 1, 3\).*\(3, 4, 3\)"):
        model(torch.randn(2, 1, 3), torch.randn(3, 4, 3), torch.randn(3, 4, 2))


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_keys_and_values_must_share_num_kv(model):
    with pytest.raises(ValueError, match=r"num_kv.*\(2, 4, 3\).*\(2, 5, 2\)"):
        model(torch.randn(2, 1, 3), torch.randn(2, 4, 3), torch.randn(2, 5, 2))


@pytest.mark.parametrize("scaled", [True, False])
def test_dot_product_needs_equal_query_and_key_sizes(scaled):
    with pytest.raises(ValueError, match=r"same size d.*\(2, 1, 3\).*\(2, 4, 5\)"):
        au.DotProductAttention(scaled=scaled)(torch.randn(2, 1, 3), torch.randn(2, 4, 5),
                                              torch.randn(2, 4, 2))


def test_additive_allows_different_query_and_key_sizes():
    out = au.AdditiveAttention(4)(torch.randn(2, 1, 3), torch.randn(2, 4, 5), torch.randn(2, 4, 2))
    assert out.shape == (2, 1, 2)


def test_bilinear_checks_sizes_against_W():
    with pytest.raises(ValueError, match=r"key_size=3, query_size=2.*\(2, 1, 3\)"):
        au.BilinearAttention(2, 3)(torch.randn(2, 1, 3), torch.randn(2, 4, 3),
                                   torch.randn(2, 4, 2))


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_wrong_rank_and_type_are_rejected(model):
    with pytest.raises(ValueError, match=r"queries must be 3-D.*\(1, 3\)"):
        model(torch.randn(1, 3), torch.randn(2, 4, 3), torch.randn(2, 4, 2))
    with pytest.raises(TypeError, match="keys must be a torch.Tensor"):
        model(torch.randn(2, 1, 3), [[1.0]], torch.randn(2, 4, 2))


def test_bad_valid_lens_are_rejected():
    queries, keys, values, _ = _random_batch(2, 1, 4, 3, 2, seed=0)
    attention = au.DotProductAttention()
    with pytest.raises(ValueError, match="valid_lens must lie in 0 .. num_kv=4"):
        attention(queries, keys, values, torch.tensor([1, 5]))
    with pytest.raises(TypeError, match="integers"):
        attention(queries, keys, values, torch.tensor([1.0, 2.0]))


def test_scaled_dot_product_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"q \(2, 3, 4\), k \(2, 5, 3\)"):
        au.scaled_dot_product(torch.randn(2, 3, 4), torch.randn(2, 5, 3), torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match=r"k \(2, 5, 4\), v \(2, 6, 3\)"):
        au.scaled_dot_product(torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 6, 3))
    with pytest.raises(ValueError, match=r"leading dims.*q \(2, 3, 4\), k \(3, 5, 4\)"):
        au.scaled_dot_product(torch.randn(2, 3, 4), torch.randn(3, 5, 4), torch.randn(3, 5, 4))
    with pytest.raises(ValueError, match=r"mask \(4,\) does not broadcast"):
        au.scaled_dot_product(torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 2),
                              mask=torch.ones(4))


def test_scaled_dot_product_refuses_an_additive_float_mask():
    """0/-inf (the additive mask 05 prints) must not be read as "nonzero = keep"."""
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 2)
    additive = torch.zeros(5).masked_fill(torch.arange(5) >= 3, float("-inf"))
    with pytest.raises(ValueError, match=r"mask must be boolean or hold only 0 and 1 .* got the "
                                         r"value -inf; for an additive mask .* pass mask == 0"):
        au.scaled_dot_product(q, k, v, mask=additive)
    _, from_additive = au.scaled_dot_product(q, k, v, mask=additive == 0)
    for keep in (torch.arange(5) < 3, (torch.arange(5) < 3).float(), (torch.arange(5) < 3).long()):
        _, attention = au.scaled_dot_product(q, k, v, mask=keep)
        assert torch.equal(attention, from_additive) and torch.all(attention[..., 3:] == 0)
    with pytest.raises(ValueError, match="got the value nan"):
        au.scaled_dot_product(q, k, v, mask=torch.full((5,), float("nan")))
    with pytest.raises(TypeError, match="mask must be a torch.Tensor"):
        au.scaled_dot_product(q, k, v, mask=[1, 1, 0, 0, 0])


def test_scaled_dot_product_names_types_and_dtypes():
    q = torch.randn(2, 3, 4)
    with pytest.raises(TypeError, match="k must be a floating-point torch.Tensor, got list"):
        au.scaled_dot_product(q, [[1.0]], q)
    with pytest.raises(TypeError, match=r"q, k, v must share one dtype, got q torch.float32, "
                                        r"k torch.float64, v torch.float32"):
        au.scaled_dot_product(q, q.double(), q)


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_float64_inputs_say_how_to_convert(model):
    queries, keys, values, lens = _random_batch(2, 3, 5, 3, 2, seed=11)
    args = (queries.double(), keys.double(), values.double(), lens)
    if any(True for _ in model.parameters()):
        with pytest.raises(TypeError, match=r"are torch.float64 but the parameters of \w+ are "
                                            r"torch.float32: .* module.double\(\) for float64"):
            model(*args)
    assert model.double()(*args).dtype == torch.float64  # the fix the message gives works
    with pytest.raises(TypeError, match=r"queries, keys, values must share one dtype, got "
                                        r"queries torch.float64, keys torch.float32"):
        model(queries.double(), keys, values, lens)


@pytest.mark.parametrize(("sizes", "match"), [
    ((5, 3, 2), r"queries must have query_size=3 features in its last dimension, got shape "
                r"\(2, 3, 5\)"),
    ((3, 4, 2), r"keys must have key_size=3 features in its last dimension, got shape "
                r"\(2, 5, 4\)")])
def test_additive_attention_names_a_wrong_feature_size(sizes, match):
    model = au.AdditiveAttention(8, key_size=3, query_size=3)
    queries, keys, values, lens = _random_batch(2, 3, 5, sizes[0], sizes[2], 12, d_k=sizes[1])
    with pytest.raises(ValueError, match=match):
        model(queries, keys, values, lens)


def test_lazy_additive_attention_checks_sizes_once_built():
    model = au.AdditiveAttention(8)
    queries, keys, values, lens = _random_batch(2, 3, 5, 3, 2, seed=13, d_k=4)
    model(queries, keys, values, lens)  # builds W_q (3 -> 8) and W_k (4 -> 8)
    with pytest.raises(ValueError, match="queries must have query_size=3 features"):
        model(torch.randn(2, 3, 4), keys, values, lens)


@pytest.mark.parametrize("empty", ["batch", "num_queries", "num_kv"])
@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_empty_dimensions_give_empty_or_zero_results(model, empty):
    batch, num_queries, num_kv = (0 if empty == name else 2 for name in
                                  ("batch", "num_queries", "num_kv"))
    queries, keys, values, _ = _random_batch(max(batch, 1), max(num_queries, 1), 3, 3, 2, 14)
    queries, keys, values = queries[:batch, :num_queries], keys[:batch], values[:batch]
    keys, values = keys[:, :num_kv], values[:, :num_kv]
    out = model(queries, keys, values)
    assert out.shape == (batch, num_queries, 2) and torch.all(out == 0)


def test_a_zero_feature_size_is_refused():
    with pytest.raises(ValueError, match=r"feature size d >= 1, got queries \(2, 3, 0\)"):
        au.DotProductAttention()(torch.randn(2, 3, 0), torch.randn(2, 5, 0), torch.randn(2, 5, 2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_low_precision_forward_is_finite(model, dtype):
    queries, keys, values, _ = _random_batch(2, 3, 5, 3, 2, seed=8)
    model = model.to(dtype)
    out = model(*(t.to(dtype) for t in (queries, keys, values)), torch.tensor([0, 5]))
    assert out.dtype == dtype and torch.isfinite(out).all()
    assert torch.all(out[0] == 0)
    weights = model.attention_weights
    assert torch.isfinite(weights).all() and torch.all(weights[0] == 0)
    torch.testing.assert_close(weights[1].float().sum(-1), torch.ones(3), atol=1e-2, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_scaled_dot_product_low_precision(dtype):
    q = torch.randn(2, 3, 4).to(dtype) * 100
    values, attention = au.scaled_dot_product(q, q, q, mask=torch.tensor([True, False, False]))
    assert torch.isfinite(values).all() and torch.all(attention[..., 1:] == 0)


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_inputs_are_not_mutated(model):
    queries, keys, values, valid_lens = _random_batch(2, 3, 5, 3, 2, seed=9)
    copies = [t.clone() for t in (queries, keys, values, valid_lens)]
    model(queries, keys, values, valid_lens)
    for before, after in zip(copies, (queries, keys, values, valid_lens), strict=True):
        assert torch.equal(before, after)


def test_models_move_with_to_cpu():
    queries, keys, values, valid_lens = _random_batch(2, 3, 5, 3, 2, seed=10)
    for model in _models():
        assert model.to("cpu")(queries, keys, values, valid_lens).device.type == "cpu"


# The fused teaching path (DotProductAttention's default with need_weights=True) against the
# plain path it replaces (fused=False: masked_softmax then bmm, what the chapters write).

LENGTHS = {"none": None, "per row, with 0": torch.tensor([0, 3, 6]),
           "per query, with 0": torch.tensor([[1, 2, 0, 6], [6, 6, 6, 6], [3, 0, 2, 1]])}


def _fused_and_plain(dtype=torch.float64, scaled=True):
    return (au.DotProductAttention(scaled=scaled).to(dtype),
            au.DotProductAttention(scaled=scaled, fused=False).to(dtype))


def _leaves(dtype, seed=9, shape=(3, 4, 6, 5, 3)):
    batch, num_queries, num_kv, d, d_v = shape
    queries, keys, values, _ = _random_batch(batch, num_queries, num_kv, d, d_v, seed)
    return [t.to(dtype).requires_grad_() for t in (queries, keys, values)]


@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
@pytest.mark.parametrize("scaled", [True, False])
def test_fused_teaching_path_gradcheck(lengths, scaled):
    attention = au.DotProductAttention(scaled=scaled)

    def both(q, k, v):  # the output and the weights, so both backward branches are checked
        return attention(q, k, v, lengths), attention.attention_weights

    assert torch.autograd.gradcheck(both, _leaves(torch.float64))
    assert torch.autograd.gradcheck(lambda *qkv: both(*qkv)[1], _leaves(torch.float64))


@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
def test_fused_teaching_path_equals_plain_path_with_gradients(lengths):
    fused, plain = _fused_and_plain(torch.float32)
    results = []
    for attention in (fused, plain):
        leaves = _leaves(torch.float32)
        out = attention(*leaves, lengths)
        weights = attention.attention_weights
        (out.square().sum() + (weights * torch.arange(6.0)).sum()).backward()
        results.append((out, weights, attention.scores, *(t.grad for t in leaves)))
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected)
    assert type(fused.attention_weights.grad_fn).__name__ == "_WeightedAttentionBackward"


def test_fused_teaching_path_masked_keys_get_no_gradient_and_empty_rows_are_zero():
    queries, keys, values = _leaves(torch.float32)
    attention = au.DotProductAttention()
    out = attention(queries, keys, values, torch.tensor([0, 3, 6]))
    out.sum().backward()
    weights = attention.attention_weights
    assert torch.all(weights[0] == 0) and torch.all(out[0] == 0)
    assert torch.all(weights[1, :, 3:] == 0)
    assert torch.all(keys.grad[:2, 3:] == 0) and torch.all(values.grad[:2, 3:] == 0)
    assert torch.all(queries.grad[0] == 0)
    torch.testing.assert_close(weights[1:].sum(-1), torch.ones(2, 4))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fused_teaching_path_low_precision_is_finite_and_close(dtype):
    lengths = torch.tensor([0, 3, 6])
    leaves = _leaves(dtype)
    attention = au.DotProductAttention()
    out = attention(*(t * 30 for t in leaves), lengths)  # large scores: no overflow, no NaN
    out.float().square().sum().backward()
    weights = attention.attention_weights
    assert out.dtype == weights.dtype == dtype
    assert all(torch.isfinite(t).all() for t in (out, weights, *(t.grad for t in leaves)))
    assert torch.all(weights[0] == 0) and torch.all(weights[1, :, 3:] == 0)
    reference = au.DotProductAttention(fused=False)
    expected = reference(*(t.detach().float() * 30 for t in leaves), lengths)
    torch.testing.assert_close(out.float(), expected, atol=5e-2, rtol=5e-2)


def test_dropout_in_training_takes_the_plain_path():
    queries, keys, values = _leaves(torch.float32)
    attention = au.DotProductAttention(dropout=0.5).train()
    torch.manual_seed(0)
    out = attention(queries, keys, values, torch.tensor([2, 3, 6]))
    assert type(attention.attention_weights.grad_fn).__name__ != "_WeightedAttentionBackward"
    torch.testing.assert_close(attention.attention_weights.sum(-1), torch.ones(3, 4))
    out.sum().backward()
    assert torch.isfinite(keys.grad).all()
    attention.eval()(queries, keys, values, torch.tensor([2, 3, 6]))  # eval: fused again
    assert type(attention.attention_weights.grad_fn).__name__ == "_WeightedAttentionBackward"


def test_fused_teaching_path_saves_one_weight_tensor_for_backward():
    """Autograd keeps one (B, Tq, Tk) tensor (the weights) plus the small q, k, v and output,
    d2l's keeps more; the plain path keeps scores and weights."""
    from attention_lab.measure import saved_tensor_mib

    batch, length, d = 8, 128, 8
    queries, keys, values, lengths = _random_batch(batch, length, length, d, d, seed=10)
    queries.requires_grad_()
    weights_mib = batch * length * length * 4 / 2**20
    small_mib = 4 * batch * length * d * 4 / 2**20  # q, k, v, output
    for name, attention in [("fused", au.DotProductAttention()),
                            ("plain", au.DotProductAttention(fused=False)),
                            ("d2l", d2l.DotProductAttention(0.0))]:
        _, mib = saved_tensor_mib(lambda a=attention: a(queries, keys, values, lengths))
        if name == "fused":
            fused_mib = mib
            assert mib == pytest.approx(weights_mib + small_mib, rel=0.01)
        else:
            assert mib > fused_mib
