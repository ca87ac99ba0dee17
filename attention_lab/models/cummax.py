"""Chapter 10's models: SamOut's cumulative-max block (``MaxStateSuper``), causal softmax
self-attention with the same interface, and the associative-recall network.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

import attention_utils as au


class MaxStateSuper(nn.Module):
    """SamOut's cumulative-max block, as the source article describes it.

    One ``Linear(dim_size, 3 * dim_size)`` gives three tensors ``out``,
    ``out1``, ``out2``, each split into heads ``(batch, heads, seq, d_h)``.
    Then ``out = cummax(out, dim=2)`` (running max over positions),
    ``out_score = cummax(out, dim=1)`` (running max over *heads*: head ``i``
    sees heads ``0 .. i``) and the result ``(out_score + out1) * out2 + out1``
    is merged back to ``(batch, seq, dim_size)``.  Causal: output ``t`` depends
    on inputs ``0 .. t`` only.  The article's ``state`` argument (for
    step-by-step decoding) is left out.

    Raises ``ValueError`` at construction if ``heads`` does not divide ``dim_size``.
    """

    def __init__(self, dim_size: int, heads: int):
        super().__init__()
        if heads < 1 or dim_size < 1 or dim_size % heads:
            raise ValueError(f"heads must divide dim_size, got dim_size={dim_size} and "
                             f"heads={heads}")
        self.dim_size, self.heads = dim_size, heads
        self.combined = nn.Linear(dim_size, 3 * dim_size)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` ``(batch, seq, dim_size)`` -> ``out, out1, out2``, each ``(batch, heads, seq,
        d_h)``."""
        au.check_tensor("x", x, 3, "(batch, seq, dim_size)")
        if x.shape[-1] != self.dim_size:
            raise ValueError(f"x must be (batch, seq, dim_size={self.dim_size}), "
                             f"got shape {tuple(x.shape)}")
        batch, seq, _ = x.shape
        parts = self.combined(x).chunk(3, dim=-1)  # 3 x (B, T, d)
        return tuple(part.reshape(batch, seq, self.heads, -1).permute(0, 2, 1, 3)
                     for part in parts)  # 3 x (B, h, T, d_h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, out1, out2 = self.project(x)  # 3 x (B, h, T, d_h)
        out = torch.cummax(out, dim=2).values  # (B, h, T, d_h): max over positions <= t
        out_score = torch.cummax(out, dim=1).values  # (B, h, T, d_h): max over heads <= i
        out = (out_score + out1) * out2 + out1  # (B, h, T, d_h)
        return out.permute(0, 2, 1, 3).reshape(x.shape)  # (B, T, d)


def max_state_sources(block: MaxStateSuper, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each running max of ``block`` came from: ``(positions, heads)``.

    Both are long tensors ``(batch, heads, seq, d_h)``: ``out_score[b, i, t, c]``
    equals the projected ``out[b, heads[b, i, t, c], positions[b, i, t, c], c]``,
    with ``positions <= t`` and ``heads <= i``.  This plays the part of
    attention weights, which this block does not have.
    """
    *_, positions, heads = running_maxima(block, x)
    return positions, heads


def running_maxima(block: MaxStateSuper, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(out, running, score, positions, heads)``, each ``(batch, heads, seq, d_h)``.

    ``out`` is the projection, ``running`` its cummax over positions, ``score``
    that cummax over heads; ``positions`` and ``heads`` say where each came
    from (see :func:`max_state_sources`).
    """
    with torch.no_grad():
        out, _, _ = block.project(x)  # (B, h, T, d_h)
        running, position_index = torch.cummax(out, dim=2)  # 2 x (B, h, T, d_h)
        score, head_index = torch.cummax(running, dim=1)  # 2 x (B, h, T, d_h)
    return out, running, score, position_index.gather(1, head_index), head_index


class CausalSelfAttention(au.MultiHeadAttention):
    """Causal multi-head self-attention with :class:`MaxStateSuper`'s interface.

    ``forward(x (batch, seq, dim_size))`` returns ``(batch, seq, dim_size)``;
    query ``t`` sees keys ``0 .. t``.  ``fused=False`` is the plain teaching path
    (:class:`MultiHeadAttention` with valid lengths ``1 .. seq``, ``masked_softmax``
    then ``bmm``, keeping ``attention_weights`` ``(batch, heads, seq, seq)``,
    and all that autograd saves for them); ``fused=True`` calls
    ``F.scaled_dot_product_attention(..., is_causal=True)`` on the same
    projections, so no ``(seq, seq)`` tensor is kept.
    """

    def __init__(self, dim_size: int, heads: int, fused: bool = False):
        super().__init__(dim_size, heads, query_size=dim_size, key_size=dim_size,
                         value_size=dim_size)
        self.dim_size, self.fused = dim_size, fused
        self.attention.fused = False  # the plain path, what chapters 02-05 write

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        au.check_tensor("x", x, 3, "(batch, seq, dim_size)")
        if x.shape[-1] != self.dim_size:
            raise ValueError(f"x must be (batch, seq, dim_size={self.dim_size}), "
                             f"got shape {tuple(x.shape)}")
        batch, seq, _ = x.shape
        if not self.fused:
            lengths = torch.arange(1, seq + 1, device=x.device).expand(batch, seq)  # (B, T)
            return super().forward(x, x, x, lengths)  # (B, T, d)
        q, k, v = (W(x).reshape(batch, seq, self.num_heads, -1).transpose(1, 2)
                   for W in (self.W_q, self.W_k, self.W_v))  # 3 x (B, h, T, d_h)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, h, T, d_h)
        self.attention_weights = None
        return self.W_o(out.transpose(1, 2).reshape(batch, seq, -1))  # (B, T, d)


class RecallNet(nn.Module):
    """A one-block pre-norm model for :func:`associative_recall_batch`.

    Token ``t`` embeds as ``key_emb[key] + value_emb[value] + pos_emb[t]``;
    then ``x + mixer(LN(x))``, ``x + MLP(LN(x))`` and a linear read-out at the
    last (query) position.  ``mixer`` is any module ``(batch, seq, dim_size)
    -> (batch, seq, dim_size)``, e.g. :class:`MaxStateSuper` or
    :class:`CausalSelfAttention`.  ``forward(keys, values)`` returns logits
    ``(batch, num_values)``.
    """

    def __init__(self, mixer: nn.Module, dim_size: int, num_keys: int, num_values: int,
                 seq_len: int):
        super().__init__()
        self.key_emb = nn.Embedding(num_keys, dim_size)
        self.value_emb = nn.Embedding(num_values + 1, dim_size)
        self.pos_emb = nn.Parameter(0.02 * torch.randn(seq_len, dim_size))
        self.norm1, self.mixer = nn.LayerNorm(dim_size), mixer
        self.norm2, self.norm_out = nn.LayerNorm(dim_size), nn.LayerNorm(dim_size)
        self.mlp = nn.Sequential(nn.Linear(dim_size, 4 * dim_size), nn.GELU(),
                                 nn.Linear(4 * dim_size, dim_size))
        self.read_out = nn.Linear(dim_size, num_values)

    def forward(self, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        x = self.key_emb(keys) + self.value_emb(values) + self.pos_emb[:keys.shape[1]]  # (B, T, d)
        x = x + self.mixer(self.norm1(x))  # (B, T, d)
        x = x + self.mlp(self.norm2(x))  # (B, T, d)
        return self.read_out(self.norm_out(x[:, -1]))  # (B, num_values)

