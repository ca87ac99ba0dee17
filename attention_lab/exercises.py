"""Inline checkers for the implement-it-yourself exercises of chapters 02-05 (Neuromatch style).

An exercise cell holds a stub the learner fills in; the cell after it passes the
learner's function to one of these checkers.  A checker runs the function on
several seeded inputs (shapes, masks, edge cases such as a valid length of 0),
compares every result with :mod:`attention_utils`, the library the chapters
teach, and prints one short report:

- ``<exercise>: all N checks passed`` when every case agrees (so a solution's
  output gives nothing of the answer away);
- otherwise the first case that disagrees: what the input was, what was
  expected and what came back, and a hint for the mistake it looks like.

A stub that still raises ``NotImplementedError`` gets a reminder, not a
traceback, so every notebook runs top to bottom as shipped.  A checker prints
its report and returns None (a notebook cell then shows the report only); it
never raises because of what the learner's function does, and raises
``TypeError`` only when it is given something that is not callable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

import attention_utils as au

__all__ = ["check_additive_scores", "check_masked_softmax", "check_scaled_dot_product",
           "check_transpose_qkv"]


@dataclass
class Case:
    """One input of a check: a description for the learner, the arguments, the expected result.

    ``variants`` maps a hint to what a typical wrong implementation returns on
    this input; a result that matches one gets that hint.
    """

    name: str
    args: tuple
    expected: object
    variants: dict[str, Callable[[], object]] = field(default_factory=dict)


# ----------------------------------------------------------------------------
# The machinery every checker shares
# ----------------------------------------------------------------------------


def _check(exercise: str, fn: object, cases: Sequence[Case], hints: Callable[[Case, object], str],
           atol: float = 1e-5) -> None:
    """Run ``fn`` on every case; print "all N checks passed" or explain the first failure."""
    if not callable(fn):
        raise TypeError(f"pass your function itself (e.g. check(my_function)), got "
                        f"{type(fn).__name__}")
    for number, case in enumerate(cases, start=1):
        problem = _run(fn, case, hints, atol)
        if problem is _NOT_IMPLEMENTED:
            print(f"{exercise}: not implemented yet. Replace the `raise NotImplementedError` in "
                  "the cell above with your code, run that cell, then run this one again.")
            return
        if problem:
            print(f"{exercise}: check {number} of {len(cases)} failed, on {case.name}\n{problem}")
            return
    print(f"{exercise}: all {len(cases)} checks passed")


_NOT_IMPLEMENTED = "not implemented"


def _run(fn: Callable, case: Case, hints: Callable[[Case, object], str], atol: float) -> str:
    """'' when ``fn`` agrees with ``case.expected``, else what went wrong (with a hint)."""
    copies = tuple(_clone(arg) for arg in case.args)
    try:
        got = fn(*copies)
    except NotImplementedError:
        return _NOT_IMPLEMENTED
    except Exception as err:  # noqa: BLE001  (reported to the learner, not raised)
        hint = hints(case, err)
        return (f"  your function raised {type(err).__name__}: {err}"
                + (f"\n  hint: {hint}" if hint else ""))
    for original, copy in zip(case.args, copies, strict=True):
        if isinstance(original, torch.Tensor) and not torch.equal(original, copy):
            return ("  your function changed one of its input tensors in place\n"
                    "  hint: work on new tensors (masked_fill, not masked_fill_ or X[...] = ...); "
                    "the caller may still need the original")
    difference = _difference(case.expected, got, atol)
    if not difference:
        return ""
    hint = (_matching_variant(case, got, atol) or _dtype_hint(case.expected, got)
            or hints(case, got))
    return difference + (f"\n  hint: {hint}" if hint else "")


def _dtype_hint(expected: object, got: object) -> str:
    if (isinstance(expected, torch.Tensor) and isinstance(got, torch.Tensor)
            and got.shape == expected.shape and got.dtype != expected.dtype):
        return ("return the input's dtype: compute in it (float16 stays float16; the safe fill "
                "value of a dtype is torch.finfo(dtype).min)")
    return ""


def _clone(value: object) -> object:
    return value.clone() if isinstance(value, torch.Tensor) else value


def _difference(expected: object, got: object, atol: float) -> str:
    """'' when ``got`` matches ``expected`` (a tensor or a tuple of tensors), else a report."""
    if isinstance(expected, tuple):
        if not isinstance(got, tuple | list) or len(got) != len(expected):
            kind = f"a {len(got)}-tuple" if isinstance(got, tuple | list) else type(got).__name__
            return f"  expected a tuple of {len(expected)} tensors, got {kind}"
        for position, (want, have) in enumerate(zip(expected, got, strict=True)):
            report = _difference(want, have, atol)
            if report:
                return f"  in item {position} of the returned tuple:\n{report}"
        return ""
    if not isinstance(got, torch.Tensor):
        return f"  expected a tensor of shape {tuple(expected.shape)}, got {type(got).__name__}"
    got = got.detach()
    if got.shape != expected.shape:
        return f"  expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
    if got.dtype != expected.dtype:
        return f"  expected dtype {expected.dtype} (the input's), got {got.dtype}"
    if _close(expected, got, atol):
        return ""
    row = _worst_row(expected, got)
    where = f"row {list(row)}" if row else "the result"
    return (f"  {where}:\n    expected {_show(expected[row])}\n"
            f"    got      {_show(got[row])}")


def _close(expected: torch.Tensor, got: object, atol: float) -> bool:
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False
    scale = 100 * atol if expected.dtype in (torch.float16, torch.bfloat16) else atol
    return bool(torch.allclose(got.detach().double(), expected.double(), atol=scale,
                               rtol=10 * scale, equal_nan=False))


def _worst_row(expected: torch.Tensor, got: torch.Tensor) -> tuple[int, ...]:
    """Index of the last-axis row where ``got`` is furthest from ``expected`` (NaN first)."""
    error = (got.double() - expected.double()).abs().nan_to_num(math.inf)
    if expected.dim() < 2:
        return ()
    per_row = error.amax(-1)  # (...)
    return tuple(int(i) for i in torch.unravel_index(per_row.argmax(), per_row.shape))


def _show(row: torch.Tensor) -> str:
    values = [round(float(value), 4) for value in row.reshape(-1)[:8]]
    return str(values)[:-1] + (", ...]" if row.numel() > 8 else "]")


def _matching_variant(case: Case, got: object, atol: float) -> str:
    """The hint of the first typical mistake whose result ``got`` matches, or ''."""
    for hint, variant in case.variants.items():
        try:
            wrong = variant()
        except Exception:  # noqa: BLE001, S112  (a variant that cannot run on this input)
            continue
        if isinstance(wrong, tuple) and isinstance(got, tuple | list) and len(got) == len(wrong):
            if all(_close(w, g, atol) for w, g in zip(wrong, got, strict=True)):
                return hint
        elif isinstance(wrong, torch.Tensor) and _close(wrong, got, atol):
            return hint
    return ""


def _rand(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=generator)


def _randn(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator)


# ----------------------------------------------------------------------------
# Chapter 02: masked softmax
# ----------------------------------------------------------------------------


def _masked_softmax_case(name: str, X: torch.Tensor, lens: torch.Tensor | None) -> Case:
    variants = {}
    if lens is not None:
        keep = au.valid_lens_to_mask(lens, X.shape[1], X.shape[2], device=X.device)
        variants = {
            "a row with valid length 0 came out uniform, as d2l's masked_softmax does: set the "
            "masked weights to exactly 0 after the softmax, so an empty row is all zeros":
                lambda: F.softmax(X.masked_fill(~keep, torch.finfo(X.dtype).min), dim=-1),
            "the kept weights do not sum to 1: you zeroed the masked weights after the softmax, "
            "but the masked scores must also be kept out of the softmax itself (fill them with "
            "a very negative number first)":
                lambda: F.softmax(X, dim=-1).masked_fill(~keep, 0.0),
        }
        if lens.dim() == 1 and X.shape[1] > 1:
            flat = lens.repeat(X.shape[1]).reshape(X.shape[0], X.shape[1])  # (B, Tq) wrong order
            variants["each batch row's length must hold for all of its queries: spread a 1-D "
                     "valid_lens with repeat_interleave (or lens[:, None]), not repeat"] = (
                lambda: au.masked_softmax(X, flat))
        for shift, word in ((1, "one key too many"), (-1, "one key too few")):
            shifted = (lens + shift).clamp(0, X.shape[-1])
            variants[f"off by one ({word}): key j (counted from 0) is kept exactly when "
                     "j < valid_len"] = (lambda s=shifted: au.masked_softmax(X, s))
    return Case(name, (X, lens), au.masked_softmax(X, lens), variants)


def _masked_softmax_hint(case: Case, got: object) -> str:
    X, lens = case.args
    expected = case.expected
    if isinstance(got, Exception):
        return ("valid_lens is None, 1-D (batch,) with one length per batch row, or 2-D (batch, "
                f"num_queries) with one per query; here it is {_describe_lens(lens)}")
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.isnan().any():
        if X.abs().max() > 100:
            return ("NaN with large scores: exp overflows. Use F.softmax, which subtracts each "
                    "row's maximum first")
        return ("NaN where a row has no valid key: the softmax of a row that is all -inf (or "
                "of a fill that overflows to -inf, as -1e6 does in float16) is 0/0. Fill with "
                "torch.finfo(X.dtype).min and zero the masked weights after the softmax")
    return ("compare your weights with the expected ones above: which keys should be zero, "
            "and do the kept ones sum to 1?")


def _describe_lens(lens: torch.Tensor | None) -> str:
    return "None" if lens is None else f"{lens.dim()}-D {tuple(lens.shape)}"


def check_masked_softmax(fn: Callable) -> None:
    """Check ``fn(X, valid_lens)`` against :func:`attention_utils.masked_softmax`.

    ``X`` is ``(batch, num_queries, num_kv)``; ``valid_lens`` is None, ``(batch,)``
    or ``(batch, num_queries)``.  Cases: no mask, d2l's 1-D and 2-D examples,
    the masked-softmax article's 1-D ``[1, 2, 3]`` on ``(3, 8, 5)``, an empty
    row (valid length 0), float16 with an empty row, and scores near 1000.
    """
    g = torch.Generator().manual_seed(0)
    cases = [
        _masked_softmax_case("X (2, 2, 4), valid_lens None (a plain softmax)", _rand(g, 2, 2, 4),
                             None),
        _masked_softmax_case("X (2, 2, 4), 1-D valid_lens [2, 3]", _rand(g, 2, 2, 4),
                             torch.tensor([2, 3])),
        _masked_softmax_case("X (2, 2, 4), 2-D valid_lens [[1, 3], [2, 4]]", _rand(g, 2, 2, 4),
                             torch.tensor([[1, 3], [2, 4]])),
        _masked_softmax_case("X (3, 8, 5), 1-D valid_lens [1, 2, 3]", _rand(g, 3, 8, 5),
                             torch.tensor([1, 2, 3])),
        _masked_softmax_case("X (2, 3, 4), valid_lens [0, 4] (an empty row and a full one)",
                             _randn(g, 2, 3, 4), torch.tensor([0, 4])),
        _masked_softmax_case("X (2, 2, 4) in float16, valid_lens [[0, 2], [4, 1]]",
                             _randn(g, 2, 2, 4).half(), torch.tensor([[0, 2], [4, 1]])),
        _masked_softmax_case("X (1, 2, 4) with scores near 1000, valid_lens [3]",
                             1000 + _randn(g, 1, 2, 4), torch.tensor([3])),
    ]
    _check("masked_softmax", fn, cases, _masked_softmax_hint)


# ----------------------------------------------------------------------------
# Chapter 03: additive scoring
# ----------------------------------------------------------------------------


def additive_scores_reference(queries: torch.Tensor, keys: torch.Tensor,
                              layer: au.AdditiveAttention) -> torch.Tensor:
    """The scores ``(batch, num_queries, num_kv)`` whose masked softmax is ``layer``'s weights."""
    features = layer.W_q(queries).unsqueeze(2) + layer.W_k(keys).unsqueeze(1)  # (B, Tq, Tk, H)
    return layer.w_v(torch.tanh(features)).squeeze(-1)  # (B, Tq, Tk)


def _additive_case(name: str, g: torch.Generator, batch: int, num_queries: int, num_kv: int,
                   query_size: int, key_size: int, num_hiddens: int,
                   keys: torch.Tensor | None = None) -> Case:
    queries = _randn(g, batch, num_queries, query_size)  # (B, Tq, dq)
    keys = _randn(g, batch, num_kv, key_size) if keys is None else keys  # (B, Tk, dk)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=g)))
        layer = au.AdditiveAttention(num_hiddens, key_size=key_size, query_size=query_size)
    with torch.no_grad():
        expected = additive_scores_reference(queries, keys, layer)
    W_q, W_k, w_v = layer.W_q, layer.W_k, layer.w_v
    variants = {
        "you left out the tanh between the sum and w_v":
            lambda: w_v(W_q(queries).unsqueeze(2) + W_k(keys).unsqueeze(1)).squeeze(-1),
        "W_q projects the queries and W_k the keys, not the other way round":
            lambda: w_v(torch.tanh(W_k(queries).unsqueeze(2) + W_q(keys).unsqueeze(1))).squeeze(-1),
    }
    return Case(name, (queries, keys, W_q, W_k, w_v), expected, variants)


def _additive_hint(case: Case, got: object) -> str:
    queries, keys = case.args[:2]
    B, Tq, Tk = queries.shape[0], queries.shape[1], keys.shape[1]
    if isinstance(got, Exception):
        return (f"W_q takes the queries (size {queries.shape[-1]} here) and W_k the keys (size "
                f"{keys.shape[-1]}); both give num_hiddens features")
    if isinstance(got, torch.Tensor) and got.dim() == 4:
        return ("w_v maps the hidden axis to one number per pair: apply it to the "
                "(B, Tq, Tk, H) features and drop the last axis with .squeeze(-1)")
    if isinstance(got, torch.Tensor) and tuple(got.shape) == (B, Tk, Tq):
        return ("queries and keys are swapped on the pair axes: queries.unsqueeze(2) + "
                "keys.unsqueeze(1) gives (B, Tq, Tk, H)")
    return "score(q, k) = w_v(tanh(W_q(q) + W_k(k))) for every query-key pair"


def check_additive_scores(fn: Callable) -> None:
    """Check ``fn(queries, keys, W_q, W_k, w_v)`` -> scores ``(batch, num_queries, num_kv)``.

    ``W_q``, ``W_k`` and ``w_v`` are the ``nn.Linear`` layers of a seeded
    :class:`attention_utils.AdditiveAttention`; the expected scores are those
    whose masked softmax is that layer's ``attention_weights``.  Cases: d2l's
    sizes, queries and keys of the same size (so swapping W_q and W_k shows),
    one key only, ``num_hiddens = 1``, and the all-ones keys of chapter 03's demo.
    """
    g = torch.Generator().manual_seed(3)
    cases = [
        _additive_case("queries (2, 1, 20), keys (2, 10, 2), num_hiddens 8", g, 2, 1, 10, 20, 2,
                       8),
        _additive_case("queries (2, 3, 5), keys (2, 4, 5), num_hiddens 6", g, 2, 3, 4, 5, 5, 6),
        _additive_case("queries (1, 2, 3), one key (1, 1, 4), num_hiddens 4", g, 1, 2, 1, 3, 4,
                       4),
        _additive_case("queries (2, 2, 3), keys (2, 5, 3), num_hiddens 1", g, 2, 2, 5, 3, 3, 1),
        _additive_case("queries (2, 1, 20), all-ones keys (2, 10, 2), num_hiddens 8", g, 2, 1, 10,
                       20, 2, 8, keys=torch.ones(2, 10, 2)),
    ]
    with torch.no_grad():
        _check("additive_scores", fn, cases, _additive_hint)


# ----------------------------------------------------------------------------
# Chapter 04: scaled dot product
# ----------------------------------------------------------------------------


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
            scale: float, fill: float | None = None, dim: int = -1,
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """A typical hand-written attention: ``fill`` replaces masked logits, softmax over ``dim``."""
    logits = q @ k.transpose(-2, -1) * scale  # (..., Tq, Tk)
    if mask is not None:
        logits = logits.masked_fill(mask == 0, fill)
    attention = F.softmax(logits, dim=dim)  # (..., Tq, Tk)
    return attention @ v, attention  # (..., Tq, dv), (..., Tq, Tk)


def _dot_case(name: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              mask: torch.Tensor | None = None) -> Case:
    d, dv = q.shape[-1], v.shape[-1]
    big = torch.finfo(q.dtype).min
    right = 1 / math.sqrt(d)
    variants = {
        "scale the scores by 1/sqrt(d), with d the size of the queries and keys":
            lambda: _attend(q, k, v, mask, 1.0, big),
        "divide by sqrt(d), not by d": lambda: _attend(q, k, v, mask, 1 / d, big),
        "the softmax runs over the keys, the last axis (dim=-1)":
            lambda: _attend(q, k, v, mask, right, big, dim=-2),
        "return (values, attention), in that order":
            lambda: au.scaled_dot_product(q, k, v, mask)[::-1],
    }
    if dv != d:
        variants["d is the size of the queries and keys (q.shape[-1]), not of the values"] = (
            lambda: _attend(q, k, v, mask, 1 / math.sqrt(dv), big))
    if mask is not None:
        variants["the mask is inverted: 0/False marks a key to drop, 1/True one to keep"] = (
            lambda: au.scaled_dot_product(q, k, v, mask == 0))
        variants["a fully masked row came out uniform (UvA's -9e15 fill does that): zero the "
                 "masked weights after the softmax, so such a row is all zeros"] = (
            lambda: _attend(q, k, v, mask, right, -9e15))
    return Case(name, (q, k, v, mask), au.scaled_dot_product(q, k, v, mask), variants)


def _dot_hint(case: Case, got: object) -> str:
    if isinstance(got, Exception):
        return ("q, k and v may have any number of leading dims: transpose the last two axes "
                "of k with k.transpose(-2, -1), and let the mask broadcast")
    if isinstance(got, tuple | list) and any(isinstance(t, torch.Tensor) and t.isnan().any()
                                             for t in got):
        return ("NaN on a fully masked row: softmax of a row of -inf is 0/0. Fill with a "
                "finite very negative number (torch.finfo(dtype).min) and zero the masked "
                "weights after the softmax")
    return "softmax(q @ k^T / sqrt(d)) over the kept keys, then @ v"


def check_scaled_dot_product(fn: Callable) -> None:
    """Check ``fn(q, k, v, mask=None)`` -> ``(values, attention)`` against
    :func:`attention_utils.scaled_dot_product`.

    Masks are boolean, True = keep.  Cases: UvA Tutorial 6's example (seed 42,
    no mask), a batch whose values are wider than the keys (``d_v != d``), four
    leading dims' worth of heads with a causal mask, a fully masked row (all-zero
    weights) and ``d = 64``.
    """
    g = torch.Generator().manual_seed(42)  # UvA's example: torch.manual_seed(42), randn (3, 2) x3
    uva = [_randn(g, 3, 2) for _ in range(3)]
    g = torch.Generator().manual_seed(4)
    causal = torch.ones(4, 4, dtype=torch.bool).tril()  # (Tq, Tk)
    no_key = torch.tensor([[True, True, False], [False, False, False]])  # (Tq, Tk): row 1 empty
    cases = [
        _dot_case("UvA's example: q, k, v (3, 2), no mask", *uva),
        _dot_case("q (2, 3, 4), k (2, 5, 4), v (2, 5, 6) (d_v = 6, d = 4)", _randn(g, 2, 3, 4),
                  _randn(g, 2, 5, 4), _randn(g, 2, 5, 6)),
        _dot_case("q, k, v (2, 3, 4, 8) (batch, heads, T, d) with a causal mask (4, 4)",
                  _randn(g, 2, 3, 4, 8), _randn(g, 2, 3, 4, 8), _randn(g, 2, 3, 4, 8), causal),
        _dot_case("q (2, 3), k (3, 3), v (3, 2) with a mask whose row 1 keeps no key",
                  _randn(g, 2, 3), _randn(g, 3, 3), _randn(g, 3, 2), no_key),
        _dot_case("q (1, 2, 64), k (1, 6, 64), v (1, 6, 3)", _randn(g, 1, 2, 64),
                  _randn(g, 1, 6, 64), _randn(g, 1, 6, 3)),
    ]
    _check("scaled_dot_product", fn, cases, _dot_hint)


# ----------------------------------------------------------------------------
# Chapter 05: splitting heads
# ----------------------------------------------------------------------------


def _heads_case(name: str, X: torch.Tensor, num_heads: int) -> Case:
    B, T, d = X.shape
    h, d_h = num_heads, d // num_heads
    variants = {
        "a reshape alone mixes positions into the heads: split the last axis into "
        "(num_heads, d/num_heads), move the head axis next to the batch (permute), then fold":
            lambda: X.reshape(B * h, T, d_h),
        "row b*num_heads + i must hold head i of batch row b: keep the batch axis first when "
        "you permute (0, 2, 1, 3), then fold":
            lambda: X.reshape(B, T, h, d_h).permute(2, 0, 1, 3).reshape(B * h, T, d_h),
        "head i takes the contiguous features i*d_h .. (i+1)*d_h - 1: reshape the last axis to "
        "(num_heads, d_h), not (d_h, num_heads)":
            lambda: X.reshape(B, T, d_h, h).permute(0, 3, 1, 2).reshape(B * h, T, d_h),
    }
    return Case(name, (X, num_heads), au.transpose_qkv(X, num_heads), variants)


def _heads_hint(case: Case, got: object) -> str:
    X, h = case.args
    B, T, d = X.shape
    if isinstance(got, Exception):
        return f"X is {tuple(X.shape)}: reshape it to (B, T, num_heads, d // num_heads) first"
    if isinstance(got, torch.Tensor) and tuple(got.shape) == (B * h, d // h, T):
        return "the positions stay on axis 1 and the features of a head on axis 2"
    return ("(B, T, d) -> reshape (B, T, h, d_h) -> permute (B, h, T, d_h) -> reshape "
            "(B*h, T, d_h)")


def check_transpose_qkv(fn: Callable) -> None:
    """Check ``fn(X, num_heads)`` against :func:`attention_utils.transpose_qkv`.

    ``X`` is ``(batch, n, num_hiddens)``; the result ``(batch * num_heads, n,
    num_hiddens / num_heads)``.  Cases: chapter 05's worked example, 4 heads,
    batch 3, one head (nothing to split), one feature per head, one position.
    """
    demo = torch.arange(4.0).repeat(2, 3, 1) + 10 * torch.arange(2.0)[:, None, None]  # (2, 3, 4)
    g = torch.Generator().manual_seed(5)
    cases = [
        _heads_case("chapter 05's worked example: X (2, 3, 4), 2 heads", demo, 2),
        _heads_case("X (2, 5, 16), 4 heads", _randn(g, 2, 5, 16), 4),
        _heads_case("X (3, 2, 6), 3 heads", _randn(g, 3, 2, 6), 3),
        _heads_case("X (1, 4, 8), 1 head", _randn(g, 1, 4, 8), 1),
        _heads_case("X (2, 3, 8), 8 heads of one feature", _randn(g, 2, 3, 8), 8),
        _heads_case("X (2, 1, 6), one position, 2 heads", _randn(g, 2, 1, 6), 2),
    ]
    _check("transpose_qkv", fn, cases, _heads_hint)
