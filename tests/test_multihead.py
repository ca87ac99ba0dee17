"""attention_utils multi-head attention: d2l, PyTorch and SDPA parity, the fast path (05)."""

import pytest
import torch
from d2l import torch as d2l
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

import attention_utils as au

SHAPES = st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 6), st.sampled_from(
    [1, 2, 3, 4]), st.integers(1, 4), st.integers(0, 2**16))


def _inputs(batch, num_queries, num_kv, sizes, seed, min_len=1):
    """queries, keys, values of sizes ``sizes = (d_q, d_k, d_v)`` and 1-D valid lengths."""
    g = torch.Generator().manual_seed(seed)
    d_q, d_k, d_v = sizes
    queries = torch.randn(batch, num_queries, d_q, generator=g)
    keys = torch.randn(batch, num_kv, d_k, generator=g)
    values = torch.randn(batch, num_kv, d_v, generator=g)
    valid_lens = torch.randint(min_len, num_kv + 1, (batch,), generator=g)
    return queries, keys, values, valid_lens


def _layer(num_hiddens, num_heads, sizes, bias=False, seed=0):
    torch.manual_seed(seed)
    d_q, d_k, d_v = sizes
    return au.MultiHeadAttention(num_hiddens, num_heads, bias=bias, query_size=d_q,
                                 key_size=d_k, value_size=d_v).eval()


def _keep_mask(valid_lens, num_kv):
    """(batch,) valid lengths -> (batch, num_kv) boolean keep-mask (True = attend)."""
    return torch.arange(num_kv) < valid_lens[:, None]  # (B, Tk)


def _per_head_sdpa(layer, queries, keys, values, **sdpa_kwargs):
    """The same layer computed head by head with F.scaled_dot_product_attention."""
    h = layer.num_heads
    split = [w(x).reshape(x.shape[0], x.shape[1], h, -1).transpose(1, 2)  # (B, h, T, d_h)
             for w, x in ((layer.W_q, queries), (layer.W_k, keys), (layer.W_v, values))]
    out = F.scaled_dot_product_attention(*split, **sdpa_kwargs)  # (B, h, Tq, d_h)
    return layer.W_o(out.transpose(1, 2).reshape(queries.shape[0], queries.shape[1], -1))


@settings(max_examples=30, deadline=None)
@given(SHAPES, st.booleans(), st.booleans())
def test_matches_d2l(shape, per_query_lens, bias):
    batch, num_queries, num_kv, num_heads, d_h, seed = shape
    sizes = (3, 4, 5)
    queries, keys, values, valid_lens = _inputs(batch, num_queries, num_kv, sizes, seed)
    if per_query_lens:
        valid_lens = valid_lens[:, None].repeat(1, num_queries)  # (B, Tq)
    ours = _layer(num_heads * d_h, num_heads, sizes, bias, seed)
    theirs = d2l.MultiHeadAttention(num_heads * d_h, num_heads, dropout=0.0, bias=bias).eval()
    theirs(queries, keys, values, valid_lens)  # materialise d2l's lazy layers
    theirs.load_state_dict(ours.state_dict())
    with torch.no_grad():
        expected = theirs(queries, keys, values, valid_lens)
        got = ours(queries, keys, values, valid_lens)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(  # d2l keeps (B*h, Tq, Tk); ours is (B, h, Tq, Tk)
        ours.attention_weights,
        theirs.attention.attention_weights.reshape(batch, num_heads, num_queries, num_kv))


def _torch_mha(ours, num_hiddens, num_heads, bias):
    theirs = nn.MultiheadAttention(num_hiddens, num_heads, bias=bias, batch_first=True).eval()
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.W_q.weight, ours.W_k.weight,
                                               ours.W_v.weight]))
        theirs.out_proj.weight.copy_(ours.W_o.weight)
        if bias:
            theirs.in_proj_bias.copy_(torch.cat([ours.W_q.bias, ours.W_k.bias, ours.W_v.bias]))
            theirs.out_proj.bias.copy_(ours.W_o.bias)
    return theirs


@settings(max_examples=30, deadline=None)
@given(SHAPES, st.booleans())
def test_matches_torch_multihead_attention_with_padding(shape, bias):
    batch, num_queries, num_kv, num_heads, d_h, seed = shape
    num_hiddens = num_heads * d_h
    sizes = (num_hiddens,) * 3
    queries, keys, values, valid_lens = _inputs(batch, num_queries, num_kv, sizes, seed)
    ours = _layer(num_hiddens, num_heads, sizes, bias, seed)
    theirs = _torch_mha(ours, num_hiddens, num_heads, bias)
    with torch.no_grad():
        expected, weights = theirs(queries, keys, values,
                                   key_padding_mask=~_keep_mask(valid_lens, num_kv),
                                   average_attn_weights=False)
        got = ours(queries, keys, values, valid_lens)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(ours.attention_weights, weights)  # (B, h, Tq, Tk)


@settings(max_examples=20, deadline=None)
@given(SHAPES)
def test_causal_valid_lens_match_torch_attn_mask(shape):
    batch, num_tokens, _, num_heads, d_h, seed = shape
    num_hiddens = num_heads * d_h
    x = _inputs(batch, num_tokens, num_tokens, (num_hiddens,) * 3, seed)[0]
    ours = _layer(num_hiddens, num_heads, (num_hiddens,) * 3, seed=seed)
    theirs = _torch_mha(ours, num_hiddens, num_heads, bias=False)
    causal_lens = torch.arange(1, num_tokens + 1).repeat(batch, 1)  # (B, Tq): query i sees 0..i
    ignore = ~torch.ones(num_tokens, num_tokens, dtype=torch.bool).tril()  # True = ignore
    with torch.no_grad():
        expected, _ = theirs(x, x, x, attn_mask=ignore)
        got = ours(x, x, x, causal_lens)
    torch.testing.assert_close(got, expected)


@settings(max_examples=30, deadline=None)
@given(SHAPES)
def test_matches_per_head_sdpa_with_boolean_mask(shape):
    batch, num_queries, num_kv, num_heads, d_h, seed = shape
    sizes = (3, 4, 5)
    queries, keys, values, valid_lens = _inputs(batch, num_queries, num_kv, sizes, seed)
    ours = _layer(num_heads * d_h, num_heads, sizes, seed=seed)
    keep = _keep_mask(valid_lens, num_kv)[:, None, None, :]  # (B, 1, 1, Tk): all heads, queries
    with torch.no_grad():
        expected = _per_head_sdpa(ours, queries, keys, values, attn_mask=keep)
        got = ours(queries, keys, values, valid_lens)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("num_heads", [1, 2, 4])
def test_causal_valid_lens_match_sdpa_is_causal(num_heads):
    x = _inputs(2, 5, 5, (8, 8, 8), seed=3)[0]
    ours = _layer(8, num_heads, (8, 8, 8))
    causal_lens = torch.arange(1, 6).repeat(2, 1)  # (B, Tq)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, x, x, causal_lens),
                                   _per_head_sdpa(ours, x, x, x, is_causal=True))


@pytest.mark.parametrize("valid_lens", [None, [0, 3], [4, 0], [[0, 1, 4], [2, 0, 3]]],
                         ids=["none", "zero-first", "zero-last", "2-D"])
@pytest.mark.parametrize("bias", [False, True])
def test_fast_path_equals_teaching_path(valid_lens, bias):
    queries, keys, values, _ = _inputs(2, 3, 4, (3, 4, 5), seed=1)
    layer = _layer(8, 2, (3, 4, 5), bias)
    with torch.no_grad():
        slow = layer(queries, keys, values, valid_lens)
        assert layer.attention_weights.shape == (2, 2, 3, 4)
        fast = layer(queries, keys, values, valid_lens, need_weights=False)
    torch.testing.assert_close(fast, slow)
    assert layer.attention_weights is None
    assert layer.attention.attention_weights is None
    assert not torch.isnan(fast).any()


def test_valid_length_zero_gives_w_o_of_zero():
    queries, keys, values, _ = _inputs(2, 3, 4, (3, 4, 5), seed=2)
    layer = _layer(8, 2, (3, 4, 5), bias=True)
    with torch.no_grad():
        for need_weights in (True, False):
            out = layer(queries, keys, values, torch.tensor([0, 4]), need_weights=need_weights)
            torch.testing.assert_close(out[0], layer.W_o.bias.expand(3, 8))
    layer(queries, keys, values, torch.tensor([0, 4]))
    assert (layer.attention_weights[0] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fast_path_equals_teaching_path_in_low_precision(dtype):
    queries, keys, values, _ = _inputs(2, 3, 4, (8, 8, 8), seed=4)
    layer = _layer(8, 2, (8, 8, 8)).to(dtype)
    args = (queries.to(dtype), keys.to(dtype), values.to(dtype), torch.tensor([0, 3]))
    with torch.no_grad():
        slow = layer(*args)
        fast = layer(*args, need_weights=False)
    assert slow.dtype == fast.dtype == dtype
    assert torch.isfinite(slow).all() and torch.isfinite(fast).all()
    torch.testing.assert_close(fast.float(), slow.float(), atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(fast[0], torch.zeros_like(fast[0]))  # valid length 0, no bias


def test_weights_come_back_after_a_fast_call():
    queries, keys, values, _ = _inputs(1, 2, 3, (4, 4, 4), seed=5)
    layer = _layer(4, 2, (4, 4, 4))
    layer(queries, keys, values, need_weights=False)
    assert layer.attention_weights is None
    layer(queries, keys, values)
    assert layer.attention_weights.shape == (1, 2, 2, 3)


def test_gradients_are_finite_with_a_zero_valid_length():
    queries, keys, values, _ = _inputs(2, 3, 4, (4, 4, 4), seed=6)
    layer = _layer(4, 2, (4, 4, 4))
    for need_weights in (True, False):
        q = queries.clone().requires_grad_()
        layer(q, keys, values, torch.tensor([0, 2]), need_weights=need_weights).sum().backward()
        assert torch.isfinite(q.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fast_path_on_cuda_matches_cpu():
    queries, keys, values, _ = _inputs(2, 3, 4, (8, 8, 8), seed=7)
    layer = _layer(8, 4, (8, 8, 8))
    lens = torch.tensor([0, 3])
    with torch.no_grad():
        expected = layer(queries, keys, values, lens)
        cuda = layer.to("cuda")
        args = (queries.cuda(), keys.cuda(), values.cuda(), lens.cuda())
        torch.testing.assert_close(cuda(*args).cpu(), expected)
        torch.testing.assert_close(cuda(*args, need_weights=False).cpu(), expected,
                                   atol=1e-3, rtol=1e-3)


def test_num_heads_must_divide_num_hiddens():
    with pytest.raises(ValueError, match=r"num_hiddens=10 and num_heads=3"):
        au.MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="num_heads must divide"):
        au.MultiHeadAttention(8, 0)


def test_forward_names_both_shapes_on_mismatch():
    layer = _layer(4, 2, (4, 4, 4))
    with pytest.raises(ValueError, match=r"same batch size.*queries \(2, 3, 4\), keys \(3, 5, 4\)"):
        layer(torch.randn(2, 3, 4), torch.randn(3, 5, 4), torch.randn(3, 5, 4))
    with pytest.raises(ValueError, match=r"same num_kv.*keys \(2, 5, 4\) and values \(2, 6, 4\)"):
        layer(torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 6, 4))
    with pytest.raises(ValueError, match=r"valid_lens must lie in 0 \.\. num_kv=5"):
        layer(torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4), [6, 1])
    with pytest.raises(ValueError, match=r"must have batch=2 entries"):
        layer(torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4), [1, 2, 3])
    with pytest.raises(ValueError, match=r"queries must be 3-D"):
        layer(torch.randn(3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 4))


def test_forward_does_not_mutate_inputs():
    queries, keys, values, valid_lens = _inputs(2, 3, 4, (4, 4, 4), seed=8, min_len=0)
    copies = [t.clone() for t in (queries, keys, values, valid_lens)]
    layer = _layer(4, 2, (4, 4, 4))
    layer(queries, keys, values, valid_lens)
    layer(queries, keys, values, valid_lens, need_weights=False)
    for before, after in zip(copies, (queries, keys, values, valid_lens), strict=True):
        assert torch.equal(before, after)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5), st.sampled_from([1, 2, 3, 4]), st.integers(1, 3))
def test_transpose_qkv_round_trip_and_layout(batch, n, num_heads, d_h):
    X = torch.randn(batch, n, num_heads * d_h)
    folded = au.transpose_qkv(X, num_heads)
    assert folded.shape == (batch * num_heads, n, d_h)
    for b in range(batch):  # row b*h + i holds head i of batch row b: columns i*d_h..(i+1)*d_h
        for i in range(num_heads):
            assert torch.equal(folded[b * num_heads + i], X[b, :, i * d_h:(i + 1) * d_h])
    assert torch.equal(au.transpose_output(folded, num_heads), X)


@pytest.mark.parametrize(("X", "num_heads", "match"), [
    (torch.randn(3, 8), 2, r"X must be a 3-D tensor \(batch, n, num_hiddens\), got \(3, 8\)"),
    (torch.randn(2, 3, 7), 2, r"num_heads must be a positive integer that divides "
                              r"num_hiddens=7, got 2"),
    (torch.randn(2, 3, 8), 0, "divides num_hiddens=8, got 0"),
    (torch.randn(2, 3, 8), 2.0, "got 2.0")])
def test_transpose_qkv_names_rank_and_divisibility(X, num_heads, match):
    with pytest.raises(ValueError, match=match):
        au.transpose_qkv(X, num_heads)


def test_transpose_output_names_rank_and_divisibility():
    with pytest.raises(ValueError, match=r"divides batch \* num_heads=3, got 2"):
        au.transpose_output(torch.randn(3, 3, 4), 2)
    with pytest.raises(ValueError, match=r"3-D tensor \(batch \* num_heads, n, d_h\), got "
                                         r"\(3, 4\)"):
        au.transpose_output(torch.randn(3, 4), 2)


@pytest.mark.parametrize("shape", [(0, 3, 4), (2, 0, 4)])
def test_transpose_of_an_empty_tensor_keeps_its_sizes(shape):
    folded = au.transpose_qkv(torch.randn(*shape), 2)
    assert folded.shape == (shape[0] * 2, shape[1], 2)
    assert au.transpose_output(folded, 2).shape == shape


@pytest.mark.parametrize(("shapes", "match"), [
    (((2, 3, 5), (2, 5, 4), (2, 5, 6)), r"queries must have query_size=4 features in its last "
                                        r"dimension, got shape \(2, 3, 5\)"),
    (((2, 3, 4), (2, 5, 3), (2, 5, 6)), r"keys must have key_size=4 .* got shape \(2, 5, 3\)"),
    (((2, 3, 4), (2, 5, 4), (2, 5, 4)), r"values must have value_size=6 .* \(2, 5, 4\)")])
def test_forward_names_a_wrong_feature_size(shapes, match):
    layer = _layer(8, 2, (4, 4, 6))
    with pytest.raises(ValueError, match=match):
        layer(*(torch.randn(*shape) for shape in shapes))


def test_float64_inputs_say_how_to_convert():
    layer = _layer(8, 2, (4, 4, 4))
    X = torch.randn(2, 3, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"queries, keys and values are torch.float64 but the "
                                        r"parameters of MultiHeadAttention are torch.float32: "
                                        r".*module.double\(\) for float64"):
        layer(X, X, X)
    assert layer.double()(X, X, X, [1, 3]).dtype == torch.float64


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("empty", [0, 1, 2])
def test_empty_batch_or_sequences_give_empty_or_zero_outputs(empty, need_weights):
    """An empty batch or query axis gives an empty output; no keys give zeros (no key to read,
    as with a valid length of 0), never a reshape error."""
    sizes = [2, 3, 5]
    sizes[empty] = 0
    batch, num_queries, num_kv = sizes
    layer = _layer(8, 2, (4, 4, 4))
    out = layer(torch.randn(batch, num_queries, 4), torch.randn(batch, num_kv, 4),
                torch.randn(batch, num_kv, 4), need_weights=need_weights)
    assert out.shape == (batch, num_queries, 8) and torch.all(out == 0)
    if need_weights:
        assert layer.attention_weights.shape == (batch, 2, num_queries, num_kv)
