"""Digit-string reversal, the toy task of chapters 07 and 09."""

from __future__ import annotations

import torch

BOS = 10  # digits 0-9 are tokens 0-9; the decoder starts from this begin-of-sequence token


def reversal_data(num_examples: int, num_steps: int, seed: int = 0,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random digit strings and their reversals: ``(src, tgt)``, both ``(num_examples, num_steps)``
    long tensors of digits 0-9, drawn from a generator seeded with ``seed``."""
    if num_examples < 1 or num_steps < 1:
        raise ValueError(f"num_examples and num_steps must be >= 1, got {num_examples} and "
                         f"{num_steps}")
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(0, 10, (num_examples, num_steps), generator=generator)  # (N, T)
    return src, src.flip(1)

