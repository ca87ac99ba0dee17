"""Chapter 07's explorer: type a digit string, see a trained seq2seq model's alignment."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure

import attention_utils as au
from attention_lab.data.reversal import BOS
from attention_lab.layout import freeze_layout, pin_ylabel
from attention_lab.models.seq2seq import ToySeq2Seq
from attention_lab.panel import Explorer


class AlignmentExplorer(Explorer):
    """Type a digit string, pick a trained :class:`ToySeq2Seq`: its greedy output and alignment.

    ``models`` maps display names to trained models of the same ``num_steps``.
    ``update(digits, model)`` decodes ``digits`` (a string of ``num_steps``
    digits) with ``models[model]`` and redraws the heatmap (decoder steps x
    source digits), its tick labels and the title in place.
    """

    def __init__(self, models: Mapping[str, ToySeq2Seq], digits: str, model: str):
        self.models = dict(models)
        self.num_steps = next(iter(self.models.values())).num_steps
        blank = np.zeros((self.num_steps, self.num_steps))
        self.grid = au.HeatmapGrid(blank, "source digit (key)", "output digit (query)",
                                   titles=[" "],  # reserves the title's room in the frozen layout
                                   figsize=(3.6, 3.2), vmin=0.0, vmax=1.0,
                                   xticklabels=["0"] * self.num_steps,
                                   yticklabels=["<bos>"] * self.num_steps)  # widest output label
        freeze_layout(self.grid.fig)
        self.fig, self.ax = self.grid.fig, self.grid.axes[0, 0]
        pin_ylabel(self.ax)
        self.title = self.ax.set_title(" ", fontsize=9)
        self.update(digits, model)

    def update(self, digits: str = "01234567", model: str = "") -> Figure:
        if model not in self.models:
            raise ValueError(f"model must be one of {list(self.models)}, got {model!r}")
        if len(digits) != self.num_steps or not digits.isdigit() or not digits.isascii():
            raise ValueError(f"digits must be a string of {self.num_steps} digits 0-9, "
                             f"got {digits!r}")
        net = self.models[model]
        src = torch.tensor([[int(c) for c in digits]], device=self.device)  # (1, T)
        with torch.no_grad():
            tokens = net(src).argmax(-1)[0].tolist()  # (T,)
        labels = [str(t) if t < BOS else "<bos>" for t in tokens]  # untrained nets may emit BOS
        output = "".join(labels)
        self.grid.set_matrices(net.attention_weights[0])  # (Tq, Tk)
        self.ax.set_xticklabels(list(digits))
        self.ax.set_yticklabels(labels)
        verdict = "correct" if output == digits[::-1] else f"expected {digits[::-1]}"
        self.title.set_text(f"{model}: {digits} -> {output} ({verdict})")
        return self.fig

    def changing_artists(self) -> list[Artist]:
        return [*self.grid.changing_artists(), self.title,
                *self.ax.xaxis.get_majorticklabels(), *self.ax.yaxis.get_majorticklabels()]

