"""Chapter 03's explorer: additive-attention weights as valid lengths and the hidden size change."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.text import Text

import attention_utils as au
from attention_lab.data.examples import (
    additive_example_inputs,
)
from attention_lab.layout import freeze_layout
from attention_lab.panel import Explorer, check_int, valid_lengths

MAX_HIDDENS = 4096  # num_hiddens the explorer accepts (the slider offers 1 .. 64)
SEED_MAX = 2**63 - 1


class AdditiveAttentionExplorer(Explorer):
    """Weights of :class:`AdditiveAttention` on d2l's example batch, with distinct keys.

    One heatmap: a row per batch entry (each has one query), a column per key,
    every cell annotated with its weight.  :meth:`update` takes one valid length
    per batch row (each in ``0 .. 10``) and ``num_hiddens`` (``1 ..``
    :data:`MAX_HIDDENS`); left out, each keeps its value.  The layer for a
    ``num_hiddens`` is built once, from ``seed`` (so a setting always gives the
    same picture), and reused.  In a panel the caption gives the setting the
    title shows in the static figure.
    """

    def __init__(self, valid_lens: Sequence[int] = (2, 6), num_hiddens: int = 8, seed: int = 0,
                 distinct_keys: bool = True):
        if isinstance(valid_lens, str) or not isinstance(valid_lens, Sequence) \
                or len(valid_lens) != 2:
            raise TypeError(f"valid_lens must be two integers (one per batch row), "
                            f"got {valid_lens!r}")
        if not isinstance(distinct_keys, bool):
            raise TypeError(f"distinct_keys must be True or False, got {distinct_keys!r}")
        self.seed = check_int("seed", seed, 0, SEED_MAX)
        self.queries, self.keys, self.values = additive_example_inputs(distinct_keys, seed)
        self.names = ("valid_len_0", "valid_len_1")
        self.valid_lens = valid_lengths(dict(zip(self.names, valid_lens, strict=True)),
                                        self.names, (0, 0), self.keys.shape[1])
        self.num_hiddens = self._check_hiddens(num_hiddens)
        self._layers: dict[int, au.AdditiveAttention] = {}
        self.grid = au.HeatmapGrid(np.zeros((2, self.keys.shape[1])), xlabel="Keys",
                                   ylabel="Queries", figsize=(6.5, 2.2), vmin=0.0, vmax=1.0,
                                   annotate=True, yticklabels=["batch 0", "batch 1"],
                                   titles=["num_hiddens, valid_lens"])  # reserves the title's room
        freeze_layout(self.grid.fig)
        self.fig = self.grid.fig
        self.title = self.grid.axes[0, 0].title
        self.update()

    @staticmethod
    def _check_hiddens(num_hiddens: object) -> int:
        return check_int("num_hiddens", num_hiddens, 1, MAX_HIDDENS)

    def layer(self, num_hiddens: int) -> au.AdditiveAttention:
        """The (eval-mode) layer for ``num_hiddens``, built once from ``self.seed``."""
        if num_hiddens not in self._layers:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                layer = au.AdditiveAttention(num_hiddens, key_size=self.keys.shape[-1],
                                             query_size=self.queries.shape[-1])
            self._layers[num_hiddens] = layer.to(self.device).eval()
        return self._layers[num_hiddens]

    def weights(self, valid_len_0: int, valid_len_1: int, num_hiddens: int) -> torch.Tensor:
        """Attention weights ``(2, 1, num_kv)`` for the given valid lengths."""
        valid_lens = torch.tensor([valid_len_0, valid_len_1], device=self.device)
        layer = self.layer(num_hiddens)
        with torch.no_grad():
            layer(self.queries, self.keys, self.values, valid_lens)
        return layer.attention_weights

    def update(self, valid_len_0: int | None = None, valid_len_1: int | None = None,
               num_hiddens: int | None = None) -> Figure:
        lengths = valid_lengths({"valid_len_0": valid_len_0, "valid_len_1": valid_len_1},
                                self.names, self.valid_lens, self.keys.shape[1])
        num_hiddens = self.num_hiddens if num_hiddens is None else self._check_hiddens(num_hiddens)
        weights = self.weights(*lengths, num_hiddens)  # (B, 1, Tk)
        self.valid_lens, self.num_hiddens = lengths, num_hiddens
        self.grid.set_matrices(weights[:, 0])  # (B, Tk)
        self.title.set_text(self._setting())
        return self.fig

    def _setting(self) -> str:
        return f"num_hiddens={self.num_hiddens}, valid_lens={list(self.valid_lens)}"

    def changing_artists(self) -> list[Artist]:
        return [*self.grid.changing_artists(), self.title]

    def caption(self) -> str:
        return f"<b>{self._setting()}</b>"

    def caption_texts(self) -> dict[Text, str]:
        return {self.title: "additive attention weights"}
