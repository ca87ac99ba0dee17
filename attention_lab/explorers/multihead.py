"""Chapter 05's explorer: per-head weights of multi-head self-attention as the head count
changes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure

import attention_utils as au
from attention_lab.data.examples import (
    MULTIHEAD_SENTENCES,
    token_embeddings,
)
from attention_lab.layout import freeze_layout
from attention_lab.panel import Explorer, valid_lengths


class MultiHeadExplorer(Explorer):
    """Per-head self-attention weights of :class:`MultiHeadAttention` on a padded batch.

    One row of heatmaps per sentence (queries down, keys across, both labelled
    with the sentence's tokens), one column per head.  ``max_heads`` columns are
    drawn once; :meth:`update` changes the image data in place and hides the
    columns beyond ``num_heads`` with ``set_visible``.  The layer is rebuilt
    from ``seed`` when ``num_heads`` changes, so a setting always gives the same
    picture; since ``W_q``, ``W_k``, ``W_v`` are ``(num_hiddens, num_hiddens)``
    whatever the head count, every head count uses the *same* matrices, split
    differently.  ``valid_lens`` defaults to each sentence's non-``<pad>`` count.
    """

    def __init__(self, sentences: Sequence[Sequence[str]] = MULTIHEAD_SENTENCES,
                 num_hiddens: int = 16, max_heads: int = 8, num_heads: int = 8,
                 valid_lens: Sequence[int] | None = None, seed: int = 0, scale: float = 2.0):
        if max_heads < 1 or num_hiddens % max_heads:
            raise ValueError(f"max_heads must divide num_hiddens, got num_hiddens={num_hiddens} "
                             f"and max_heads={max_heads}")
        self.tokens = [list(sentence) for sentence in sentences]
        self.num_hiddens, self.max_heads, self.seed = num_hiddens, max_heads, seed
        self.head_choices = [h for h in range(1, max_heads + 1) if num_hiddens % h == 0]
        self.X = token_embeddings(self.tokens, num_hiddens, seed, scale)  # (B, T, d)
        if valid_lens is None:
            valid_lens = [sum(token != "<pad>" for token in s) for s in self.tokens]
        self.valid_lens = list(valid_lens)
        self.num_heads = None
        self._build_figure()
        self.update(num_heads=num_heads)

    def _build_figure(self) -> None:
        batch, num_tokens = len(self.tokens), len(self.tokens[0])
        self.fig = Figure(figsize=(1.35 * self.max_heads + 1.2, 1.75 * batch),
                          layout="constrained")
        self.axes = self.fig.subplots(batch, self.max_heads, squeeze=False)
        blank = np.zeros((num_tokens, num_tokens))
        self.images = [[ax.imshow(blank, cmap="Reds", vmin=0.0, vmax=1.0,
                                  interpolation="nearest", aspect="auto") for ax in row]
                       for row in self.axes]
        for (r, c), ax in np.ndenumerate(self.axes):
            ax.set_xticks(range(num_tokens), self.tokens[r], rotation=90, fontsize=7)
            ax.set_yticks(range(num_tokens), self.tokens[r] if c == 0 else [], fontsize=7)
            if r == 0:
                ax.set_title(f"head {c + 1}", fontsize=9)
        for r, row in enumerate(self.axes):
            row[0].set_ylabel(f"queries (sentence {r + 1})", fontsize=8)
        self.fig.supxlabel("keys", fontsize=9)
        self.title = self.fig.suptitle(" ", fontsize=10)
        self.fig.colorbar(self.images[0][0], ax=self.axes, shrink=0.8, label="weight")
        freeze_layout(self.fig)

    def _build_layer(self, num_heads: int) -> au.MultiHeadAttention:
        """The layer for ``num_heads``, its weights drawn from ``seed`` (global RNG untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            layer = au.MultiHeadAttention(self.num_hiddens, num_heads, query_size=self.num_hiddens,
                                          key_size=self.num_hiddens, value_size=self.num_hiddens)
        return layer.to(self.device).eval()

    def weights(self) -> torch.Tensor:
        """Self-attention weights ``(batch, num_heads, num_tokens, num_tokens)`` on the CPU."""
        lengths = torch.tensor(self.valid_lens, device=self.device)
        with torch.no_grad():
            self.layer(self.X, self.X, self.X, lengths)
        return self.layer.attention_weights.cpu()  # (B, h, T, T)

    def update(self, num_heads: int | None = None, **valid_lens: int) -> Figure:
        """Set ``num_heads`` and/or ``valid_len_0``, ``valid_len_1``, ...; redraw in place."""
        names = [f"valid_len_{i}" for i in range(len(self.tokens))]
        lengths = valid_lengths(valid_lens, names, self.valid_lens, len(self.tokens[0]))
        if num_heads is not None and num_heads not in self.head_choices:
            raise ValueError(f"num_heads must be one of {self.head_choices} (divisors of "
                             f"num_hiddens={self.num_hiddens} up to {self.max_heads}), "
                             f"got {num_heads!r}")
        self.valid_lens = list(lengths)
        if num_heads is not None and num_heads != self.num_heads:
            self.num_heads, self.layer = num_heads, self._build_layer(num_heads)
        weights = self.weights().numpy()  # (B, h, T, T)
        for r, row in enumerate(self.images):
            for c, image in enumerate(row):
                self.axes[r, c].set_visible(c < self.num_heads)
                if c < self.num_heads:
                    image.set_data(weights[r, c])
        self.title.set_text(f"num_heads = {self.num_heads} (d_h = "
                            f"{self.num_hiddens // self.num_heads}), valid_lens = "
                            f"{self.valid_lens}")
        return self.fig

    def changing_artists(self) -> list[Artist]:
        """Images and title; hiding a column rebuilds the cached background."""
        return [*(image for row in self.images for image in row), self.title]

