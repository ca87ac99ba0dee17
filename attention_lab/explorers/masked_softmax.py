"""Chapter 02's explorer: masked-softmax weights as each batch row's valid length changes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.text import Text

import attention_utils as au
from attention_lab.layout import freeze_layout
from attention_lab.panel import Explorer, check_data, check_figsize, valid_lengths

MAX_ROWS = 8  # batch rows the figure draws side by side


class MaskedSoftmaxExplorer(Explorer):
    """Masked-softmax weights of fixed ``scores`` as each batch row's valid length changes.

    ``scores`` is ``(batch, num_queries, num_kv)``.  The figure has one panel per
    batch row (queries down, keys across), every cell annotated with its weight;
    the masked keys (positions >= the row's valid length) lie under a grey
    hatched band.  ``update(valid_len_0=2, valid_len_1=3, ...)`` takes one
    keyword per batch row, named as in :attr:`names`, so a dict of one
    ``IntSlider`` per row plugs straight into :func:`explorer_panel`; rows left
    out keep their length.  ``valid_lens`` (default: every key valid) sets the
    starting lengths.  In a panel the titles name the rows and the caption
    gives the lengths.
    """

    def __init__(self, scores: torch.Tensor, valid_lens: Sequence[int] | None = None,
                 figsize: tuple[float, float] = (2.8, 2.2)):
        check_data("scores", scores, 3, "(batch, num_queries, num_kv)")
        batch, _, num_kv = scores.shape
        if batch > MAX_ROWS:
            raise ValueError(f"scores must have 1 .. {MAX_ROWS} batch rows (one panel each), "
                             f"got {batch}")
        figsize = check_figsize(figsize)
        self.names = tuple(f"valid_len_{i}" for i in range(batch))
        if valid_lens is None:
            valid_lens = (num_kv,) * batch
        if isinstance(valid_lens, str) or not isinstance(valid_lens, Sequence):
            raise TypeError(f"valid_lens must be None or one integer per batch row ({batch}), "
                            f"got {valid_lens!r}")
        if len(valid_lens) != batch:
            raise ValueError(f"valid_lens must have one length per batch row ({batch}), "
                             f"got {len(valid_lens)}")
        self.valid_lens = valid_lengths(dict(zip(self.names, valid_lens, strict=True)),
                                        self.names, (num_kv,) * batch, num_kv)
        self.scores = scores.detach().clone()  # (B, Tq, Tk)
        self.grid = au.HeatmapGrid(self._weights(), "keys", "queries", figsize=figsize, vmin=0.0,
                                   vmax=1.0, annotate=True, titles=self._titles())
        freeze_layout(self.grid.fig)
        self.fig = self.grid.fig
        self.grid.axes[0, 0].set_xticks(range(num_kv))  # shared by every panel
        self.grid.axes[0, 0].set_yticks(range(scores.shape[1]))
        self.masks = [ax.axvspan(num_kv - 0.5, num_kv - 0.5, facecolor="0.88", edgecolor="0.45",
                                 hatch="//", linewidth=0) for ax in self.grid.axes[0]]
        self.update()

    def _weights(self, valid_lens: Sequence[int] | None = None) -> torch.Tensor:
        lengths = torch.tensor(self.valid_lens if valid_lens is None else valid_lens,
                               device=self.device)  # (B,)
        return au.masked_softmax(self.scores, lengths)  # (B, Tq, Tk)

    def _titles(self) -> list[str]:
        return [f"batch row {i}: valid_len={n}" for i, n in enumerate(self.valid_lens)]

    def update(self, **valid_lens: int) -> Figure:
        """Recompute the weights with the given lengths; redraws images, bands and labels.

        Each ``valid_len_<i>`` is an integer in ``0 .. num_kv``; rows left out
        (or None) keep their length.
        """
        lengths = valid_lengths(valid_lens, self.names, self.valid_lens, self.scores.shape[-1])
        weights = au.to_numpy(self._weights(lengths))  # (B, Tq, Tk)
        self.valid_lens = lengths
        self.grid.set_matrices(weights)
        num_kv = weights.shape[-1]
        for ax, mask, title, n in zip(self.grid.axes[0], self.masks, self._titles(),
                                      self.valid_lens, strict=True):
            mask.set_x(n - 0.5)
            mask.set_width(num_kv - n)
            mask.set_visible(n < num_kv)
            ax.set_title(title)
        return self.fig

    def changing_artists(self) -> list[Artist]:
        return [*self.grid.changing_artists(), *self.masks,
                *(ax.title for ax in self.grid.axes[0])]

    def caption(self) -> str:
        return f"valid lengths, one per batch row: <b>{list(self.valid_lens)}</b>"

    def caption_texts(self) -> dict[Text, str]:
        return {ax.title: f"batch row {i}" for i, ax in enumerate(self.grid.axes[0])}

