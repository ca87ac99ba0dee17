"""Associative recall: (key, value) pairs, then a query key whose value must be recalled."""

from __future__ import annotations

import torch


def associative_recall_batch(batch_size: int, num_pairs: int, num_keys: int, num_values: int,
                             generator: torch.Generator | None = None,
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of associative recall: ``num_pairs`` (key, value) tokens, then a query key.

    Keys in a sequence are distinct.  Returns ``keys`` and ``values`` ``(batch,
    num_pairs + 1)`` (the last token is the query: its value is the marker
    ``num_values``) and ``targets`` ``(batch,)``, the value stored under the
    query's key.  Solving it needs a content-based lookup.
    """
    if not 1 <= num_pairs <= num_keys:
        raise ValueError(f"num_pairs must lie in 1 .. num_keys={num_keys}, got {num_pairs}")
    rows = torch.arange(batch_size)
    keys = torch.rand(batch_size, num_keys, generator=generator).argsort(dim=1)[:, :num_pairs]
    values = torch.randint(num_values, (batch_size, num_pairs), generator=generator)  # (B, n)
    pick = torch.randint(num_pairs, (batch_size,), generator=generator)  # (B,)
    query = torch.full((batch_size, 1), num_values)  # (B, 1)
    keys = torch.cat([keys, keys[rows, pick, None]], dim=1)  # (B, n+1)
    return keys, torch.cat([values, query], dim=1), values[rows, pick]

