"""Chapter 07's models: the seq2seq tutorial's concat-rule ``Attn`` and a tiny GRU
encoder-decoder that uses it or additive attention.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

import attention_utils as au
from attention_lab.data.reversal import BOS, check_tokens


class Attn(nn.Module):
    """The concat-rule attention of the PyTorch seq2seq tutorial, kept as written there.

    ``attn`` is ``Linear(query_size + key_size -> value_size1)`` and
    ``attn_combine`` is ``Linear(query_size + value_size2 -> output_size)``.
    ``forward(Q (1, n, query_size), K (1, n, key_size), V (1, value_size1,
    value_size2))`` returns ``(output (1, n, output_size), attn_weights (n,
    value_size1))``: the weights are ``softmax(attn([Q[0]; K[0]]))``, one slot
    per position of ``V``.  They are computed from ``Q`` and ``K`` alone, so
    they never compare the query with the values' content (location-based).
    The ``n`` rows share the one ``V``; :meth:`step` is the batched form.
    """

    def __init__(self, query_size: int, key_size: int, value_size1: int, value_size2: int,
                 output_size: int):
        super().__init__()
        self.query_size, self.key_size = query_size, key_size
        self.value_size1, self.value_size2 = value_size1, value_size2
        self.attn = nn.Linear(query_size + key_size, value_size1)
        self.attn_combine = nn.Linear(query_size + value_size2, output_size)

    def forward(self, Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_forward(Q, K, V)
        attn_weights = F.softmax(self.attn(torch.cat((Q[0], K[0]), 1)), dim=1)  # (n, vs1)
        attn_applied = torch.bmm(attn_weights.unsqueeze(0), V)  # (1, n, vs2)
        output = torch.cat((Q[0], attn_applied[0]), 1)  # (n, query_size + vs2)
        output = self.attn_combine(output).unsqueeze(0)  # (1, n, output_size)
        return output, attn_weights

    def step(self, q: torch.Tensor, k: torch.Tensor, values: torch.Tensor,
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched :meth:`forward`: each row has its own values.

        ``q`` ``(batch, query_size)``, ``k`` ``(batch, key_size)``, ``values``
        ``(batch, value_size1, value_size2)`` -> ``(output (batch, output_size),
        weights (batch, value_size1))``.  With batch 1 it equals ``forward``.
        """
        batch = q.shape[0] if isinstance(q, torch.Tensor) and q.dim() == 2 else 0
        self._check({"q": (q, (batch, self.query_size)), "k": (k, (batch, self.key_size)),
                     "values": (values, (batch, self.value_size1, self.value_size2))})
        weights = F.softmax(self.attn(torch.cat((q, k), 1)), dim=1)  # (B, vs1)
        applied = torch.bmm(weights.unsqueeze(1), values)  # (B, 1, vs2)
        return self.attn_combine(torch.cat((q, applied[:, 0]), 1)), weights  # (B, out)

    def _check_forward(self, Q: object, K: object, V: object) -> None:
        n = Q.shape[1] if isinstance(Q, torch.Tensor) and Q.dim() == 3 else 0
        self._check({"Q": (Q, (1, n, self.query_size)), "K": (K, (1, n, self.key_size)),
                     "V": (V, (1, self.value_size1, self.value_size2))})

    @staticmethod
    def _check(expected: dict[str, tuple[object, tuple[int, ...]]]) -> None:
        """``{name: (tensor, expected shape)}``; 0 in a shape is "whatever the first has"."""
        for name, (tensor, shape) in expected.items():
            layout = "(" + ", ".join(str(s or "n") for s in shape) + ")"
            au.check_tensor(name, tensor, len(shape), layout)
            if any(s and s != t for s, t in zip(shape, tensor.shape, strict=True)):
                given = ", ".join(f"{n} {tuple(t.shape)}" for n, (t, _) in expected.items()
                                  if isinstance(t, torch.Tensor))
                raise ValueError(f"{name} must have shape {layout}, got {given}")


class ToySeq2Seq(nn.Module):
    """A tiny GRU encoder-decoder with attention, for fixed-length digit tasks.

    The encoder is a bidirectional GRU: ``num_steps`` outputs of size
    ``2 * num_hiddens`` (the values), its two final states summed start the
    decoder (a ``GRUCell`` of size ``num_hiddens``).  ``scoring='concat'`` uses
    :class:`Attn` (query: the decoder's input embedding, key: its hidden state),
    as the PyTorch tutorial's decoder does; ``scoring='additive'`` uses
    :class:`AdditiveAttention` (query: the hidden state, keys = values: the
    encoder outputs) and a combine layer of the same shape.  Everything else
    is shared.

    ``forward(src (batch, num_steps), tgt_in=None)`` returns logits ``(batch,
    num_steps, vocab_size)``; ``tgt_in`` (starting with :data:`BOS`) is teacher
    forcing, None decodes greedily.  ``attention_weights`` is ``(batch,
    num_steps, num_steps)``: decoder steps x source positions.
    """

    def __init__(self, scoring: str, num_hiddens: int = 32, num_steps: int = 8,
                 vocab_size: int = 11):
        super().__init__()
        if scoring not in ("concat", "additive"):
            raise ValueError(f"scoring must be 'concat' or 'additive', got {scoring!r}")
        self.scoring, self.num_steps, self.vocab_size = scoring, num_steps, vocab_size
        H = num_hiddens
        self.src_embedding = nn.Embedding(vocab_size, H)
        self.tgt_embedding = nn.Embedding(vocab_size, H)
        self.encoder = nn.GRU(H, H, batch_first=True, bidirectional=True)
        self.decoder = nn.GRUCell(H, H)
        self.dense = nn.Linear(H, vocab_size)
        if scoring == "concat":
            self.attention = Attn(H, H, num_steps, 2 * H, H)
        else:
            self.attention = au.AdditiveAttention(H, key_size=2 * H, query_size=H)
            self.attn_combine = nn.Linear(3 * H, H)
        self.attention_weights: torch.Tensor | None = None

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor | None = None) -> torch.Tensor:
        check_tokens("src", src, self.vocab_size, self.num_steps)
        if tgt_in is not None:
            check_tokens("tgt_in", tgt_in, self.vocab_size, self.num_steps)
            if tgt_in.shape[0] != src.shape[0]:
                raise ValueError(f"tgt_in must have the batch size of src, got src "
                                 f"{tuple(src.shape)} and tgt_in {tuple(tgt_in.shape)}")
        enc_outputs, h = self.encoder(self.src_embedding(src))  # (B, Tk, 2H), (2, B, H)
        h, token = h.sum(0), torch.full_like(src[:, 0], BOS)  # (B, H), (B,)
        logits, weights = [], []
        for t in range(self.num_steps):
            x = self.tgt_embedding(token if tgt_in is None else tgt_in[:, t])  # (B, H)
            x, w = self._attend(x, h, enc_outputs)  # (B, H), (B, Tk)
            h = self.decoder(F.relu(x), h)  # (B, H)
            logits.append(self.dense(h))  # (B, V)
            weights.append(w)
            token = logits[-1].argmax(-1)  # (B,)
        self.attention_weights = torch.stack(weights, 1)  # (B, Tq, Tk)
        return torch.stack(logits, 1)  # (B, Tq, V)

    def _attend(self, x: torch.Tensor, h: torch.Tensor, enc_outputs: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.scoring == "concat":
            return self.attention.step(x, h, enc_outputs)  # (B, H), (B, Tk)
        context = self.attention(h[:, None], enc_outputs, enc_outputs)  # (B, 1, 2H)
        combined = self.attn_combine(torch.cat((x, context[:, 0]), 1))  # (B, H)
        return combined, self.attention.attention_weights[:, 0]  # (B, H), (B, Tk)

