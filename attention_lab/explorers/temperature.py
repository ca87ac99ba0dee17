"""Chapter 00's warm-up explorer: softmax weights as a temperature changes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.text import Text

import attention_utils as au
from attention_lab.layout import freeze_layout
from attention_lab.panel import Explorer, check_data, check_number

TEMPERATURES = (1e-3, 1e3)  # what the explorer accepts: sharper or flatter rows look the same


def tempered_softmax(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(scores / temperature)`` over the last dimension, for any positive finite
    temperature, in the dtype of ``scores``.

    Computed as ``softmax((scores - row max) / temperature)`` in float64: the
    shift changes nothing in exact arithmetic and keeps every exponent <= 0,
    so a tiny temperature gives one-hot rows (ties share) instead of inf / inf
    = NaN, and a huge one gives uniform rows.
    """
    shifted = scores.double() - scores.double().amax(-1, keepdim=True)  # (..., Tk), <= 0
    return torch.softmax(shifted / temperature, dim=-1).to(scores.dtype)


def check_temperature(temperature: object) -> float:
    """``temperature`` as a float in :data:`TEMPERATURES`, else an error naming the range."""
    return check_number("temperature", temperature, *TEMPERATURES, "divides the scores")


def _check_labels(name: str, labels: object, count: int, what: str) -> list[str] | None:
    """None, or a list of ``count`` strings (one per ``what``)."""
    if labels is None:
        return None
    if isinstance(labels, str) or not isinstance(labels, Sequence) \
            or not all(isinstance(label, str) for label in labels):
        raise TypeError(f"{name} must be None or a list of strings, one per {what}, "
                        f"got {labels!r}")
    if len(labels) != count:
        raise ValueError(f"{name} must have one label per {what} ({count}), got {len(labels)}")
    return list(labels)


class SoftmaxTemperatureExplorer(Explorer):
    """Notebook 00's warm-up: ``softmax(scores / temperature)`` over each row, as a heatmap.

    ``scores`` ``(num_queries, num_kv)``, finite; tick labels (one string per
    key and per query) name the keys and queries.  ``update(temperature=...)``
    (a number in 0.001 .. 1000, :data:`TEMPERATURES`; None keeps it) changes the heatmap's data and
    its printed values in place and returns the figure.  Each row of
    ``self.weights`` sums to 1 (:func:`tempered_softmax`).  In a panel the
    title reads ``softmax(scores / T)`` and the caption gives ``T``.
    """

    def __init__(self, scores: torch.Tensor, xticklabels: Sequence[str] | None = None,
                 yticklabels: Sequence[str] | None = None, temperature: float = 1.0):
        check_data("scores", scores, 2, "(num_queries, num_kv)")
        xticklabels = _check_labels("xticklabels", xticklabels, scores.shape[1], "key")
        yticklabels = _check_labels("yticklabels", yticklabels, scores.shape[0], "query")
        self.scores = scores.detach().clone()
        self.temperature = check_temperature(temperature)
        self.weights = tempered_softmax(self.scores, self.temperature)  # (Tq, Tk)
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
            self.temperature = check_temperature(temperature)
        self.weights = tempered_softmax(self.scores, self.temperature)  # (Tq, Tk)
        self.title.set_text(self._title())
        self.grid.set_matrices(self.weights)
        self._contrast_texts()
        return self.fig

    def changing_artists(self) -> list[Artist]:
        return [*self.grid.changing_artists(), self.title]

    def caption(self) -> str:
        return f"temperature <i>T</i> = {self.temperature:.2g}"

    def caption_texts(self) -> dict[Text, str]:
        return {self.title: "softmax(scores / T)"}
