"""Digit-string reversal, the toy task of chapters 07 and 09."""

from __future__ import annotations

import torch

BOS = 10  # digits 0-9 are tokens 0-9; the decoder starts from this begin-of-sequence token


def reversal_data(num_examples: int, num_steps: int, seed: int = 0,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random digit strings and their reversals: ``(src, tgt)``, both ``(num_examples, num_steps)``
    long tensors of digits 0-9, drawn from a generator seeded with ``seed``."""
    for name, value in (("num_examples", num_examples), ("num_steps", num_steps),
                        ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if num_examples < 1 or num_steps < 1:
        raise ValueError(f"num_examples and num_steps must be >= 1, got {num_examples} and "
                         f"{num_steps}")
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(0, 10, (num_examples, num_steps), generator=generator)  # (N, T)
    return src, src.flip(1)


def check_tokens(name: str, tokens: object, vocab_size: int, num_steps: int | None = None,
                 ) -> None:
    """Refuse anything but an integer tensor ``(batch, num_steps)`` of tokens 0..vocab_size-1.

    ``num_steps=None`` accepts any length.  Raises ``TypeError`` (not an integer
    tensor of rank 2) or ``ValueError`` (wrong length, empty, token out of range),
    naming ``name``, what was expected and what was given.
    """
    steps = "num_steps" if num_steps is None else f"num_steps={num_steps}"
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.is_floating_point() \
            or tokens.is_complex() or tokens.dtype == torch.bool:
        given = (f"{tokens.dtype} tensor of shape {tuple(tokens.shape)}"
                 if isinstance(tokens, torch.Tensor) else type(tokens).__name__)
        raise TypeError(f"{name} must be an integer tensor (batch, {steps}), got {given}")
    if (num_steps is not None and tokens.shape[1] != num_steps) or not tokens.numel():
        raise ValueError(f"{name} must be (batch, {steps}) with batch, num_steps >= 1, got "
                         f"{tuple(tokens.shape)}")
    low, high = int(tokens.min()), int(tokens.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(f"{name} must lie in 0 .. vocab_size-1={vocab_size - 1}, got values "
                         f"from {low} to {high}")
