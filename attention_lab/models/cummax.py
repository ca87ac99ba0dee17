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

    ``score="softmax"`` is the article's own baseline: the line it leaves
    commented out in the same block, ``out_score = torch.softmax(out,
    dim=1)``, used *in place of* ``out_score = cummax(out, dim=1)`` (the
    line that assigns the same ``out_score``); everything else, the running
    max over positions included, stays.  On the ``(batch, heads, seq, d_h)`` layout ``dim=1`` is
    the **heads** axis: for every position and channel the ``heads`` running
    maxima are turned into weights that sum to 1 over the heads.  It is *not*
    softmax attention over positions (nothing compares a query with keys) and
    it is still causal: the running max reads positions ``<= t`` and the
    softmax mixes heads at the same position.

    Raises ``ValueError`` at construction if ``heads`` does not divide
    ``dim_size`` or ``score`` is neither ``"cummax"`` nor ``"softmax"``.
    """

    SCORES = ("cummax", "softmax")

    def __init__(self, dim_size: int, heads: int, score: str = "cummax"):
        super().__init__()
        if heads < 1 or dim_size < 1 or dim_size % heads:
            raise ValueError(f"heads must divide dim_size, got dim_size={dim_size} and "
                             f"heads={heads}")
        if score not in self.SCORES:
            raise ValueError(f"score must be one of {self.SCORES}, got {score!r}")
        self.dim_size, self.heads, self.score = dim_size, heads, score
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
        d_h = self.dim_size // self.heads  # explicit: an empty x has no size to infer
        return tuple(part.reshape(batch, seq, self.heads, d_h).permute(0, 2, 1, 3)
                     for part in parts)  # 3 x (B, h, T, d_h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, out1, out2 = self.project(x)  # 3 x (B, h, T, d_h)
        out = torch.cummax(out, dim=2).values  # (B, h, T, d_h): max over positions <= t
        if self.score == "cummax":
            out_score = torch.cummax(out, dim=1).values  # (B, h, T, d_h): max over heads <= i
        else:  # the article's commented-out line
            out_score = torch.softmax(out, dim=1)  # (B, h, T, d_h): sums to 1 over heads
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
    if getattr(block, "score", None) != "cummax":
        raise ValueError("block must be a MaxStateSuper with score='cummax' (the softmax "
                         f"variant has no source head), got {block!r}")
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
        d_h = self.dim_size // self.num_heads
        q, k, v = (W(x).reshape(batch, seq, self.num_heads, d_h).transpose(1, 2)
                   for W in (self.W_q, self.W_k, self.W_v))  # 3 x (B, h, T, d_h)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, h, T, d_h)
        self.attention_weights = None
        return self.W_o(out.transpose(1, 2).reshape(batch, seq, self.dim_size))  # (B, T, d)


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



MIXERS = ("cummax", "in-block softmax", "softmax (fused)", "softmax (teaching)")


def make_mixer(kind: str, dim_size: int, heads: int) -> nn.Module:
    """The token mixer ``kind`` (one of :data:`MIXERS`), ``(batch, seq, dim_size)`` in and out.

    ``"cummax"``: :class:`MaxStateSuper`; ``"in-block softmax"``: the same block
    with the article's commented-out softmax over heads (``score="softmax"``);
    ``"softmax (fused)"`` / ``"softmax (teaching)"``: :class:`CausalSelfAttention`
    through SDPA or through the teaching path.  All four are causal.
    """
    if kind == "cummax":
        return MaxStateSuper(dim_size, heads)
    if kind == "in-block softmax":
        return MaxStateSuper(dim_size, heads, score="softmax")
    if kind in ("softmax (fused)", "softmax (teaching)"):
        return CausalSelfAttention(dim_size, heads, fused=kind == "softmax (fused)")
    raise ValueError(f"kind must be one of {MIXERS}, got {kind!r}")


class MixerLM(nn.Module):
    """A decoder-only language model whose token mixer is chosen by name.

    Token and learned position embeddings, then ``layers`` pre-norm blocks
    ``x + mixer(LN(x))``, ``x + MLP(LN(x))`` (MLP ``dim_size -> 4 dim_size ->
    dim_size``, GELU), a final LayerNorm and a linear head.  ``forward(tokens
    (batch, seq))`` returns next-token logits ``(batch, seq, vocab_size)``; with
    a causal mixer, logit ``t`` reads tokens ``0 .. t`` only.  The article's
    configuration is ``dim_size=512, heads=8, layers=6``.
    """

    def __init__(self, kind: str, vocab_size: int, dim_size: int, heads: int, layers: int,
                 max_len: int):
        super().__init__()
        self.kind, self.max_len = kind, max_len
        self.token_emb = nn.Embedding(vocab_size, dim_size)
        self.pos_emb = nn.Parameter(0.02 * torch.randn(max_len, dim_size))
        self.mixers = nn.ModuleList(make_mixer(kind, dim_size, heads) for _ in range(layers))
        self.norms1 = nn.ModuleList(nn.LayerNorm(dim_size) for _ in range(layers))
        self.norms2 = nn.ModuleList(nn.LayerNorm(dim_size) for _ in range(layers))
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(dim_size, 4 * dim_size), nn.GELU(),
                          nn.Linear(4 * dim_size, dim_size)) for _ in range(layers))
        self.norm_out, self.head = nn.LayerNorm(dim_size), nn.Linear(dim_size, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
            raise ValueError(f"tokens must be a 2-D tensor (batch, seq), got "
                             f"{getattr(tokens, 'shape', type(tokens).__name__)}")
        if not 1 <= tokens.shape[1] <= self.max_len:
            raise ValueError(f"tokens' seq must lie in 1 .. max_len={self.max_len}, "
                             f"got {tokens.shape[1]}")
        x = self.token_emb(tokens) + self.pos_emb[:tokens.shape[1]]  # (B, T, d)
        blocks = zip(self.mixers, self.norms1, self.norms2, self.mlps, strict=True)
        for mixer, norm1, norm2, mlp in blocks:
            x = x + mixer(norm1(x))  # (B, T, d)
            x = x + mlp(norm2(x))  # (B, T, d)
        return self.head(self.norm_out(x))  # (B, T, vocab)
