"""Chapter 09's model: a small Transformer encoder (d2l's post-norm block on
:class:`attention_utils.MultiHeadAttention`) that labels every position.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import attention_utils as au
from attention_lab.data.reversal import check_tokens


class TransformerEncoderBlock(nn.Module):
    """d2l's post-norm encoder block on this module's :class:`MultiHeadAttention`.

    ``Y = LayerNorm(X + MHA(X, X, X))`` then ``LayerNorm(Y + FFN(Y))``, with
    ``FFN = Linear(num_hiddens, ffn_num_hiddens) -> ReLU -> Linear(..., num_hiddens)``.
    ``forward(X (batch, num_steps, num_hiddens), valid_lens=None)`` returns the
    same shape; ``attention.attention_weights`` is ``(batch, num_heads,
    num_steps, num_steps)``.
    """

    def __init__(self, num_hiddens: int, ffn_num_hiddens: int, num_heads: int, dropout: float,
                 use_bias: bool = False):
        super().__init__()
        self.attention = au.MultiHeadAttention(num_hiddens, num_heads, dropout, use_bias,
                                               query_size=num_hiddens, key_size=num_hiddens,
                                               value_size=num_hiddens)
        self.norm1 = nn.LayerNorm(num_hiddens)
        self.ffn = nn.Sequential(nn.Linear(num_hiddens, ffn_num_hiddens), nn.ReLU(),
                                 nn.Linear(ffn_num_hiddens, num_hiddens))
        self.norm2 = nn.LayerNorm(num_hiddens)
        self.dropout = nn.Dropout(dropout)

    def forward(self, X: torch.Tensor, valid_lens: object = None) -> torch.Tensor:
        Y = self.norm1(X + self.dropout(self.attention(X, X, X, valid_lens)))  # (B, T, H)
        return self.norm2(Y + self.dropout(self.ffn(Y)))  # (B, T, H)


class TinyTransformer(nn.Module):
    """Token classifier: embedding + :class:`PositionalEncoding` + encoder blocks + linear head.

    Encoder-only and bidirectional (every position attends to every valid
    position).  ``forward(tokens (batch, num_steps) long, valid_lens=None)``
    returns logits ``(batch, num_steps, vocab_size)`` and keeps
    ``attention_weights``: a list with one ``(batch, num_heads, num_steps,
    num_steps)`` tensor per layer.  ``scale_embedding=True`` multiplies the
    embeddings by ``sqrt(num_hiddens)`` before adding positions, as d2l does.
    """

    def __init__(self, vocab_size: int, num_hiddens: int, ffn_num_hiddens: int, num_heads: int,
                 num_blks: int, dropout: float = 0.0, max_len: int = 1000,
                 scale_embedding: bool = False):
        super().__init__()
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.scale_embedding = scale_embedding
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.pos_encoding = au.PositionalEncoding(num_hiddens, dropout, max_len)
        self.blks = nn.ModuleList(
            TransformerEncoderBlock(num_hiddens, ffn_num_hiddens, num_heads, dropout)
            for _ in range(num_blks))
        self.dense = nn.Linear(num_hiddens, vocab_size)
        self.attention_weights: list[torch.Tensor] = []

    def forward(self, tokens: torch.Tensor, valid_lens: object = None) -> torch.Tensor:
        check_tokens("tokens", tokens, self.vocab_size)
        X = self.embedding(tokens)  # (B, T, H)
        if self.scale_embedding:  # d2l multiplies by sqrt(num_hiddens)
            X = X * math.sqrt(self.num_hiddens)
        X = self.pos_encoding(X)  # (B, T, H)
        self.attention_weights = []
        for blk in self.blks:
            X = blk(X, valid_lens)  # (B, T, H)
            self.attention_weights.append(blk.attention.attention_weights)  # (B, h, T, T)
        return self.dense(X)  # (B, T, vocab_size)

