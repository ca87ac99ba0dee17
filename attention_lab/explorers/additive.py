"""Chapter 03's explorer: additive-attention weights as valid lengths and the hidden size change."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure

import attention_utils as au
from attention_lab.data.examples import (
    additive_example_inputs,
)
from attention_lab.layout import freeze_layout
from attention_lab.panel import Explorer


class AdditiveAttentionExplorer(Explorer):
    """Weights of :class:`AdditiveAttention` on d2l's example batch, with distinct keys.

    One heatmap: a row per batch entry (each has one query), a column per key,
    every cell annotated with its weight.  :meth:`update` takes one valid length
    per batch row and ``num_hiddens``; the layer for a ``num_hiddens`` is built
    once, from ``seed`` (so a setting always gives the same picture), and reused.
    """

    def __init__(self, valid_lens: Sequence[int] = (2, 6), num_hiddens: int = 8, seed: int = 0,
                 distinct_keys: bool = True):
        self.seed = seed
        self.queries, self.keys, self.values = additive_example_inputs(distinct_keys, seed)
        self._layers: dict[int, au.AdditiveAttention] = {}
        self.grid = au.HeatmapGrid(np.zeros((2, self.keys.shape[1])), xlabel="Keys",
                                   ylabel="Queries", figsize=(6.5, 2.2), vmin=0.0, vmax=1.0,
                                   annotate=True, yticklabels=["batch 0", "batch 1"],
                                   titles=["num_hiddens, valid_lens"])  # reserves the title's room
        freeze_layout(self.grid.fig)
        self.fig = self.grid.fig
        self.title = self.grid.axes[0, 0].title
        self.update(valid_len_0=valid_lens[0], valid_len_1=valid_lens[1], num_hiddens=num_hiddens)

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

    def update(self, valid_len_0: int = 2, valid_len_1: int = 6, num_hiddens: int = 8) -> Figure:
        weights = self.weights(valid_len_0, valid_len_1, num_hiddens)  # (B, 1, Tk)
        self.grid.set_matrices(weights[:, 0])  # (B, Tk)
        self.title.set_text(f"num_hiddens={num_hiddens}, "
                            f"valid_lens=[{valid_len_0}, {valid_len_1}]")
        return self.fig

    def changing_artists(self) -> list[Artist]:
        return [*self.grid.changing_artists(), self.title]

