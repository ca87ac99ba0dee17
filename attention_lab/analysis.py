"""Statistics that name what an attention head does: entropy and distance from the
(anti-)diagonal.
"""

from __future__ import annotations

import numpy as np
import torch

import attention_utils as au


def _check_weights(weights: object) -> np.ndarray:
    """Attention weights ``(..., num_queries, num_kv)`` as a float64 array (a copy)."""
    if not isinstance(weights, torch.Tensor | np.ndarray):
        raise TypeError(f"weights must be a torch.Tensor or array (..., num_queries, num_kv), "
                        f"got {type(weights).__name__}")
    array = au.to_numpy(weights).astype(np.float64)
    if array.ndim < 2 or 0 in array.shape[-2:]:
        raise ValueError("weights must be (..., num_queries, num_kv) with at least one query "
                         f"and one key, got shape {array.shape}")
    if array.min() < 0 or not np.allclose(array.sum(-1), 1.0, atol=1e-3):
        raise ValueError("weights must be non-negative with rows summing to 1 (a softmax over "
                         "num_kv); pass unmasked rows only")
    return array


def attention_entropy(weights: object) -> np.ndarray:
    """Mean entropy (nats) of each attention row: ``-sum_j w_ij log w_ij`` averaged over i.

    ``weights`` ``(..., num_queries, num_kv)``, rows summing to 1; returns
    ``(...)`` (a float for a single matrix).  0 for one-hot rows (a head that
    looks at exactly one key), ``log(num_kv)`` for uniform rows.
    """
    w = _check_weights(weights)
    terms = np.where(w > 0, -w * np.log(np.where(w > 0, w, 1.0)), 0.0)  # (..., Tq, Tk)
    return terms.sum(-1).mean(-1)  # (...)


def attention_distance(weights: object, anti_diagonal: bool = False) -> np.ndarray:
    """Mean attention-weighted distance (in positions) from the diagonal or anti-diagonal.

    For query ``i`` and key ``j`` of ``(..., n, n)`` weights the distance is
    ``|i - j|`` (diagonal: 0 when every query looks at itself) or, with
    ``anti_diagonal=True``, ``|(n - 1 - i) - j|`` (0 when query ``i`` looks at
    the mirrored position, the reversal pattern).  Returns ``sum_j w_ij * dist``
    averaged over queries i, shape ``(...)``.
    """
    w = _check_weights(weights)
    num_queries, num_kv = w.shape[-2:]
    if num_queries != num_kv:
        raise ValueError("weights must be square (..., n, n) for a distance from the diagonal, "
                         f"got shape {w.shape}")
    i, j = np.arange(num_queries)[:, None], np.arange(num_kv)[None, :]
    target = num_queries - 1 - i if anti_diagonal else i  # (Tq, 1)
    return (w * np.abs(target - j)).sum(-1).mean(-1)  # (...)

