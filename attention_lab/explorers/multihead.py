"""Chapter 05's explorer: per-head weights of multi-head self-attention as the head count
changes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.text import Text

import attention_utils as au
from attention_lab.data.examples import (
    MULTIHEAD_SENTENCES,
    token_embeddings,
)
from attention_lab.layout import freeze_layout
from attention_lab.panel import Explorer, check_choice, check_int, check_number, valid_lengths

MAX_HIDDENS = 1024  # num_hiddens the explorer accepts
MAX_HEADS = 16  # columns of panels
MAX_SENTENCES = 4  # rows of panels
MAX_TOKENS = 16  # tokens per sentence
UNUSED_HEAD = "0.88"  # the face of a column beyond num_heads (its map hidden)


class MultiHeadExplorer(Explorer):
    """Per-head self-attention weights of :class:`MultiHeadAttention` on a padded batch.

    One row of heatmaps per sentence (queries down, keys across, both labelled
    with the sentence's tokens), one column per head.  ``max_heads`` columns are
    drawn once, each map a ``pcolormesh`` (a quarter of an ``imshow``'s drawing
    time here); :meth:`update` changes the maps' data in place, and the columns
    beyond ``num_heads`` show an empty grey frame (the layout never changes, so
    a new head count only redraws the maps).  The layer is rebuilt
    from ``seed`` when ``num_heads`` changes, so a setting always gives the same
    picture; since ``W_q``, ``W_k``, ``W_v`` are ``(num_hiddens, num_hiddens)``
    whatever the head count, every head count uses the *same* matrices, split
    differently.  ``valid_lens`` defaults to each sentence's non-``<pad>`` count.
    """

    def __init__(self, sentences: Sequence[Sequence[str]] = MULTIHEAD_SENTENCES,
                 num_hiddens: int = 16, max_heads: int = 8, num_heads: int = 8,
                 valid_lens: Sequence[int] | None = None, seed: int = 0, scale: float = 2.0):
        self.tokens = _check_sentences(sentences)
        num_hiddens = check_int("num_hiddens", num_hiddens, 1, MAX_HIDDENS)
        max_heads = check_int("max_heads", max_heads, 1, MAX_HEADS)
        if num_hiddens % max_heads:
            raise ValueError(f"max_heads must divide num_hiddens, got num_hiddens={num_hiddens} "
                             f"and max_heads={max_heads}")
        self.num_hiddens, self.max_heads = num_hiddens, max_heads
        self.seed = check_int("seed", seed, 0, 2**63 - 1)
        scale = check_number("scale", scale, 1e-3, 1e3, "of the token embeddings")
        self.head_choices = [h for h in range(1, max_heads + 1) if num_hiddens % h == 0]
        num_heads = check_choice("num_heads", num_heads, self.head_choices)
        self.names = tuple(f"valid_len_{i}" for i in range(len(self.tokens)))
        if valid_lens is None:
            valid_lens = [sum(token != "<pad>" for token in s) for s in self.tokens]
        if isinstance(valid_lens, str) or not isinstance(valid_lens, Sequence) \
                or len(valid_lens) != len(self.tokens):
            raise TypeError(f"valid_lens must be None or one integer per sentence "
                            f"({len(self.tokens)}), got {valid_lens!r}")
        self.valid_lens = list(valid_lengths(dict(zip(self.names, valid_lens, strict=True)),
                                             self.names, valid_lens, len(self.tokens[0])))
        self.X = token_embeddings(self.tokens, num_hiddens, self.seed, scale)  # (B, T, d)
        self.num_heads = None
        self._build_figure()
        self.update(num_heads=num_heads)

    def _build_figure(self) -> None:
        batch, num_tokens = len(self.tokens), len(self.tokens[0])
        self.fig = Figure(figsize=(1.35 * self.max_heads + 1.2, 1.75 * batch),
                          layout="constrained")
        self.axes = self.fig.subplots(batch, self.max_heads, squeeze=False)
        blank, edges = np.zeros((num_tokens, num_tokens)), np.arange(num_tokens + 1) - 0.5
        self.images = [[ax.pcolormesh(edges, edges, blank, cmap="Reds", vmin=0.0, vmax=1.0)
                        for ax in row] for row in self.axes]
        for (r, c), ax in np.ndenumerate(self.axes):
            ax.set(xlim=(edges[0], edges[-1]), ylim=(edges[-1], edges[0]),  # queries down
                   facecolor=UNUSED_HEAD)
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
        return self._weights(self.layer, self.valid_lens)

    def _weights(self, layer: au.MultiHeadAttention, valid_lens: Sequence[int]) -> torch.Tensor:
        lengths = torch.tensor(valid_lens, device=self.device)
        with torch.no_grad():
            layer(self.X, self.X, self.X, lengths)
        return layer.attention_weights.cpu()  # (B, h, T, T)

    def update(self, num_heads: int | None = None, **valid_lens: int) -> Figure:
        """Set ``num_heads`` (one of :attr:`head_choices`) and/or ``valid_len_0``,
        ``valid_len_1``, ... (each in ``0 .. num_tokens``); redraw in place.

        Everything is checked and computed before anything changes: a rejected
        update leaves the explorer and its figure as they were.
        """
        lengths = list(valid_lengths(valid_lens, self.names, self.valid_lens,
                                     len(self.tokens[0])))
        heads = self.num_heads if num_heads is None else \
            check_choice("num_heads", num_heads, self.head_choices)
        layer = self.layer if heads == self.num_heads else self._build_layer(heads)
        weights = self._weights(layer, lengths).numpy()  # (B, h, T, T)
        self.valid_lens, self.num_heads, self.layer = lengths, heads, layer
        for r, row in enumerate(self.images):
            for c, image in enumerate(row):
                image.set_visible(c < self.num_heads)
                if c < self.num_heads:
                    image.set_array(weights[r, c])
        self.title.set_text(self._setting())
        return self.fig

    def _setting(self) -> str:
        return (f"num_heads = {self.num_heads} (d_h = {self.num_hiddens // self.num_heads}), "
                f"valid_lens = {self.valid_lens}")

    def changing_artists(self) -> list[Artist]:
        """The maps and the title."""
        return [*(image for row in self.images for image in row), self.title]

    def caption(self) -> str:
        return f"<b>{self._setting()}</b>"

    def caption_texts(self) -> dict[Text, str]:
        return {self.title: "multi-head self-attention weights"}


def _check_sentences(sentences: object) -> list[list[str]]:
    """1 .. :data:`MAX_SENTENCES` token lists (strings), all of one length in 1 ..
    :data:`MAX_TOKENS`."""
    if isinstance(sentences, str) or not isinstance(sentences, Sequence) or not all(
            isinstance(s, Sequence) and not isinstance(s, str)
            and all(isinstance(token, str) for token in s) for s in sentences):
        raise TypeError(f"sentences must be a list of token lists (strings), got {sentences!r}")
    lengths = sorted({len(s) for s in sentences})
    if not 1 <= len(sentences) <= MAX_SENTENCES or len(lengths) != 1 \
            or not 1 <= lengths[0] <= MAX_TOKENS:
        raise ValueError(f"sentences must be 1 .. {MAX_SENTENCES} token lists of one length in "
                         f"1 .. {MAX_TOKENS} (pad them), got {len(sentences)} of lengths "
                         f"{lengths}")
    return [list(s) for s in sentences]
