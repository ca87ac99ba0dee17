"""Chapter 00's warm-up explorer: softmax weights as a temperature changes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from torch.nn import functional as F

import attention_utils as au
from attention_lab.layout import freeze_layout
from attention_lab.panel import Explorer


class SoftmaxTemperatureExplorer(Explorer):
    """Notebook 00's warm-up: ``softmax(scores / temperature)`` over each row, as a heatmap.

    ``scores`` ``(num_queries, num_kv)``; tick labels name the keys and queries.
    ``update(temperature=...)`` changes the heatmap's data and its printed
    values in place and returns the figure.  Each row of ``self.weights`` sums to 1.
    """

    def __init__(self, scores: torch.Tensor, xticklabels: Sequence[str] | None = None,
                 yticklabels: Sequence[str] | None = None, temperature: float = 1.0):
        au.check_tensor("scores", scores, 2, "(num_queries, num_kv)")
        self.scores = scores.detach().clone()
        self.temperature = au.check_positive("temperature", temperature, "divides the scores")
        self.weights = F.softmax(self.scores / self.temperature, dim=-1)  # (Tq, Tk)
        self.grid = au.HeatmapGrid(self.weights, "Keys", "Queries", [self._title()],
                                   figsize=(3.6, 3.0), vmax=1.0, xticklabels=xticklabels,
                                   yticklabels=yticklabels, annotate=True)
        freeze_layout(self.grid.fig)
        self.fig = self.grid.fig
        self.title = self.grid.axes[0, 0].title
        for text in self.grid.texts:
            text.set_fontsize(9)
        self._contrast_texts()

    def _title(self) -> str:
        return f"softmax(scores / {self.temperature:.2g})"

    def _contrast_texts(self) -> None:
        """Printed values in white on dark cells, black on light ones."""
        weights = au.to_numpy(self.weights).reshape(-1)
        for text, weight in zip(self.grid.texts, weights, strict=True):
            text.set_color("white" if weight > 0.55 else "black")

    def update(self, temperature: float | None = None) -> Figure:
        """Recompute the weights at ``temperature`` (None keeps it); returns the figure."""
        if temperature is not None:
            self.temperature = au.check_positive("temperature", temperature, "divides the scores")
        self.weights = F.softmax(self.scores / self.temperature, dim=-1)  # (Tq, Tk)
        self.title.set_text(self._title())
        self.grid.set_matrices(self.weights)
        self._contrast_texts()
        return self.fig

    def changing_artists(self) -> list[Artist]:
        return [*self.grid.changing_artists(), self.title]

