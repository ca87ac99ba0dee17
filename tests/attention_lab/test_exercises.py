"""The exercise checkers: a correct implementation passes, typical wrong ones get the right hint."""

import math

import pytest
import torch
from d2l import torch as d2l
from torch.nn import functional as F

import attention_utils as au
from attention_lab import exercises


def _stub(*args, **kwargs):
    raise NotImplementedError


def _report(capsys, check, fn) -> tuple[bool, str]:
    """(passed, printed report) of ``check(fn)``; a checker itself returns None."""
    assert check(fn) is None
    out = capsys.readouterr().out
    return out.rstrip().endswith("checks passed"), out


CHECKS = [exercises.check_masked_softmax, exercises.check_additive_scores,
          exercises.check_scaled_dot_product, exercises.check_transpose_qkv]


def _additive(q, k, W_q, W_k, w_v):
    return w_v(torch.tanh(W_q(q).unsqueeze(2) + W_k(k).unsqueeze(1))).squeeze(-1)


CORRECT = {exercises.check_masked_softmax: au.masked_softmax,
           exercises.check_additive_scores: _additive,
           exercises.check_scaled_dot_product: au.scaled_dot_product,
           exercises.check_transpose_qkv: au.transpose_qkv}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_a_correct_implementation_passes_and_the_report_gives_nothing_away(capsys, check):
    passed, out = _report(capsys, check, CORRECT[check])
    assert passed
    name = check.__name__.removeprefix("check_")
    assert out.strip().startswith(f"{name}: all ") and out.strip().endswith(" checks passed")
    assert len(out.strip().splitlines()) == 1


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_stub_gets_a_reminder_not_a_traceback(capsys, check):
    passed, out = _report(capsys, check, _stub)
    assert not passed
    assert "not implemented yet" in out and "Traceback" not in out


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_something_not_callable_is_refused(check):
    with pytest.raises(TypeError, match="pass your function itself"):
        check(torch.zeros(2))


def test_an_error_inside_the_learners_function_is_reported_with_the_input(capsys):
    def only_2d(X, valid_lens):
        if valid_lens is not None and valid_lens.dim() == 1:
            raise ValueError("I only know 2-D lengths")
        return au.masked_softmax(X, valid_lens)

    passed, out = _report(capsys, exercises.check_masked_softmax, only_2d)
    assert not passed
    assert "check 2 of 7 failed, on X (2, 2, 4), 1-D valid_lens [2, 3]" in out
    assert "raised ValueError: I only know 2-D lengths" in out and "1-D (2,)" in out


# ----------------------------------------------------------------------------
# masked softmax: d2l's, -inf, repeat instead of repeat_interleave, off by one, ...
# ----------------------------------------------------------------------------


def _keep(X, lens):
    if lens is None:
        lens = torch.full(X.shape[:1], X.shape[-1])
    return au.valid_lens_to_mask(lens, X.shape[1], X.shape[2])


def _fill_inf(X, lens):
    return F.softmax(X.masked_fill(~_keep(X, lens), float("-inf")), dim=-1)


def _no_zeroing(X, lens):
    return F.softmax(X.masked_fill(~_keep(X, lens), torch.finfo(X.dtype).min), dim=-1)


def _zero_only(X, lens):
    return F.softmax(X, dim=-1).masked_fill(~_keep(X, lens), 0.0)


def _repeat(X, lens):
    if lens is not None and lens.dim() == 1:
        lens = lens.repeat(X.shape[1]).reshape(X.shape[0], X.shape[1])
    return au.masked_softmax(X, lens)


def _off_by_one(X, lens):
    return au.masked_softmax(X, None if lens is None else (lens + 1).clamp(max=X.shape[-1]))


def _manual_exp(X, lens):
    e = torch.exp(X) * _keep(X, lens)
    return e / e.sum(-1, keepdim=True).clamp_min(torch.finfo(X.dtype).tiny)


@pytest.mark.parametrize(("wrong", "failed_check", "hint"), [
    (lambda X, lens: d2l.masked_softmax(X, lens), 2, "changed one of its input tensors in place"),
    (_fill_inf, 5, "NaN where a row has no valid key"),
    (_no_zeroing, 5, "came out uniform, as d2l's masked_softmax does"),
    (_zero_only, 2, "the kept weights do not sum to 1"),
    (_repeat, 2, "repeat_interleave"),
    (_off_by_one, 2, "off by one (one key too many)"),
    (lambda X, lens: au.masked_softmax(X.float(), lens), 6, "return the input's dtype"),
    (_manual_exp, 7, "exp overflows"),
], ids=["d2l", "-inf", "no zeroing", "zeroing only", "repeat", "off by one", "float32",
        "manual exp"])
def test_masked_softmax_mistakes_get_their_hint(capsys, wrong, failed_check, hint):
    passed, out = _report(capsys, exercises.check_masked_softmax, wrong)
    assert not passed
    assert f"check {failed_check} of 7 failed" in out
    assert hint in out


def test_a_failure_shows_the_row_expected_and_got(capsys):
    _, out = _report(capsys, exercises.check_masked_softmax, _no_zeroing)
    assert "row [0, 0]:\n    expected [0.0, 0.0, 0.0, 0.0]\n    got      [0.25, 0.25, 0.25, 0.25]" \
        in out


# ----------------------------------------------------------------------------
# additive scoring
# ----------------------------------------------------------------------------


def test_the_reference_scores_give_the_librarys_weights():
    torch.manual_seed(0)
    layer = au.AdditiveAttention(8, key_size=2, query_size=20)
    q, k, v = torch.randn(2, 3, 20), torch.randn(2, 10, 2), torch.randn(2, 10, 4)
    lens = torch.tensor([2, 6])
    with torch.no_grad():
        layer(q, k, v, lens)
        weights = au.masked_softmax(exercises.additive_scores_reference(q, k, layer), lens)
    torch.testing.assert_close(weights, layer.attention_weights)


@pytest.mark.parametrize(("wrong", "failed_check", "hint"), [
    (lambda q, k, W_q, W_k, w_v: w_v(W_q(q).unsqueeze(2) + W_k(k).unsqueeze(1)).squeeze(-1), 1,
     "you left out the tanh"),
    (lambda q, k, W_q, W_k, w_v: w_v(torch.tanh(W_q(q).unsqueeze(2) + W_k(k).unsqueeze(1))), 1,
     "drop the last axis with .squeeze(-1)"),
    (lambda q, k, W_q, W_k, w_v: w_v(torch.tanh(W_q(q).unsqueeze(1) + W_k(k).unsqueeze(2)))
     .squeeze(-1), 1, "queries and keys are swapped on the pair axes"),
    (lambda q, k, W_q, W_k, w_v: w_v(torch.tanh(W_k(q).unsqueeze(2) + W_q(k).unsqueeze(1)))
     .squeeze(-1), 1, "W_q takes the queries (size 20 here)"),
], ids=["no tanh", "no squeeze", "swapped axes", "swapped projections"])
def test_additive_mistakes_get_their_hint(capsys, wrong, failed_check, hint):
    passed, out = _report(capsys, exercises.check_additive_scores, wrong)
    assert not passed
    assert f"check {failed_check} of 5 failed" in out and hint in out


def test_swapped_projections_of_equal_size_are_named(capsys):
    def swapped_when_possible(q, k, W_q, W_k, w_v):
        if q.shape[-1] == k.shape[-1]:
            W_q, W_k = W_k, W_q
        return _additive(q, k, W_q, W_k, w_v)

    _, out = _report(capsys, exercises.check_additive_scores, swapped_when_possible)
    assert "check 2 of 5 failed" in out and "W_q projects the queries and W_k the keys" in out


# ----------------------------------------------------------------------------
# scaled dot product
# ----------------------------------------------------------------------------


def _uva(q, k, v, mask=None, scale=None, fill=-9e15):
    logits = q @ k.transpose(-2, -1) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if mask is not None:
        logits = logits.masked_fill(mask == 0, fill)
    attention = F.softmax(logits, dim=-1)
    return attention @ v, attention


@pytest.mark.parametrize(("wrong", "failed_check", "hint"), [
    (_uva, 4, "UvA's -9e15 fill does that"),
    (lambda q, k, v, mask=None: _uva(q, k, v, mask, fill=float("-inf")), 4,
     "NaN on a fully masked row"),
    (lambda q, k, v, mask=None: _uva(q, k, v, mask, scale=1.0), 1, "scale the scores by 1/sqrt(d)"),
    (lambda q, k, v, mask=None: _uva(q, k, v, mask, scale=1 / q.shape[-1]), 1,
     "divide by sqrt(d), not by d"),
    (lambda q, k, v, mask=None: _uva(q, k, v, mask, scale=v.shape[-1] ** -0.5), 2,
     "not of the values"),
    (lambda q, k, v, mask=None: au.scaled_dot_product(q, k, v, mask)[::-1], 1,
     "return (values, attention), in that order"),
    (lambda q, k, v, mask=None: au.scaled_dot_product(q, k, v, None if mask is None else ~mask),
     3, "the mask is inverted"),
    (lambda q, k, v, mask=None: tuple(t.squeeze(0) for t in au.scaled_dot_product(
        q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0), mask)) if q.dim() == 2 else
     (torch.bmm(q, k), None), 2, "raised RuntimeError"),
], ids=["uva fill", "-inf", "no scale", "by d", "by sqrt(dv)", "swapped outputs", "inverted mask",
        "bmm only"])
def test_scaled_dot_product_mistakes_get_their_hint(capsys, wrong, failed_check, hint):
    passed, out = _report(capsys, exercises.check_scaled_dot_product, wrong)
    assert not passed
    assert f"check {failed_check} of 5 failed" in out and hint in out


def test_the_first_case_is_uvas_printed_example(capsys):
    def keep_attention(q, k, v, mask=None):
        values, attention = au.scaled_dot_product(q, k, v, mask)
        seen.append(attention)
        return values, attention

    seen: list[torch.Tensor] = []
    exercises.check_scaled_dot_product(keep_attention)
    torch.testing.assert_close(seen[0][0], torch.tensor([0.4028, 0.2886, 0.3086]), atol=1e-4,
                               rtol=0)


# ----------------------------------------------------------------------------
# transpose_qkv
# ----------------------------------------------------------------------------


def _split(X, h):
    return X.reshape(X.shape[0], X.shape[1], h, -1)


@pytest.mark.parametrize(("wrong", "hint"), [
    (lambda X, h: X.reshape(X.shape[0] * h, X.shape[1], -1), "a reshape alone mixes positions"),
    (lambda X, h: _split(X, h).permute(2, 0, 1, 3).reshape(-1, X.shape[1], X.shape[2] // h),
     "keep the batch axis first"),
    (lambda X, h: X.reshape(X.shape[0], X.shape[1], -1, h).permute(0, 3, 1, 2)
     .reshape(-1, X.shape[1], X.shape[2] // h), "not (d_h, num_heads)"),
    (lambda X, h: au.transpose_qkv(X, h).transpose(1, 2), "the positions stay on axis 1"),
    (lambda X, h: X.reshape(X.shape[0], X.shape[1], h, 3), "reshape it to (B, T, num_heads"),
], ids=["reshape only", "heads first", "features strided", "transposed", "wrong split"])
def test_transpose_qkv_mistakes_get_their_hint(capsys, wrong, hint):
    passed, out = _report(capsys, exercises.check_transpose_qkv, wrong)
    assert not passed
    assert "check 1 of 6 failed, on chapter 05's worked example" in out and hint in out


def test_a_checker_does_not_change_global_random_state():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    exercises.check_additive_scores(_additive)
    assert torch.equal(torch.random.get_rng_state(), before)
