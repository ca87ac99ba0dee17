"""Fixed, seeded example inputs the explorers of chapters 03 and 05 start from."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def additive_example_inputs(distinct_keys: bool = True, seed: int = 0,
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """d2l's additive-attention example: queries ``(2, 1, 20)``, keys ``(2, 10, 2)``, values
    ``(2, 10, 4)``.

    With ``distinct_keys=False`` every key is ``[1, 1]`` (d2l's choice); otherwise the
    keys are ``N(0, 1)`` draws.  Seeded by ``seed``; the global random state is untouched.
    """
    generator = torch.Generator().manual_seed(seed)
    queries = torch.randn(2, 1, 20, generator=generator)  # (B, Tq, dq)
    keys = (torch.randn(2, 10, 2, generator=generator) if distinct_keys
            else torch.ones(2, 10, 2))  # (B, Tk, dk)
    values = torch.arange(40, dtype=torch.float32).reshape(1, 10, 4).repeat(2, 1, 1)  # (B, Tk, dv)
    return queries, keys, values


MULTIHEAD_SENTENCES = (("the", "cat", "sat", "on", "the", "mat"),
                       ("dogs", "chase", "cats", "<pad>", "<pad>", "<pad>"))


def token_embeddings(sentences: Sequence[Sequence[str]], size: int, seed: int = 0,
                     scale: float = 1.0) -> torch.Tensor:
    """One seeded random vector per distinct token: ``(batch, num_tokens, size)``.

    ``sentences`` are equally long token lists (pad them).  Equal tokens get
    equal vectors (there is no position information), entries are
    ``N(0, scale**2)``; the global random state is left untouched.
    """
    lengths = {len(sentence) for sentence in sentences}
    if len(lengths) != 1:
        raise ValueError(f"sentences must all have the same number of tokens (pad them), "
                         f"got lengths {[len(sentence) for sentence in sentences]}")
    vocab = sorted({token for sentence in sentences for token in sentence})
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(len(vocab), size, generator=generator) * scale  # (V, d)
    ids = torch.tensor([[vocab.index(token) for token in sentence] for sentence in sentences])
    return table[ids]  # (B, T, d)

