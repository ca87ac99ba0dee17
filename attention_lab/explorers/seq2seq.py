"""Chapter 07's explorer: type a digit string, see a trained seq2seq model's alignment."""

from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.text import Text

import attention_utils as au
from attention_lab.data.reversal import BOS
from attention_lab.layout import freeze_layout, pin_ylabel
from attention_lab.models.seq2seq import ToySeq2Seq
from attention_lab.panel import Explorer, check_choice


class AlignmentExplorer(Explorer):
    """Type a digit string, pick a trained :class:`ToySeq2Seq`: its greedy output and alignment.

    ``models`` maps display names to trained models of the same ``num_steps``.
    ``update(digits, model)`` decodes ``digits`` (a string of ``num_steps``
    digits) with ``models[model]`` and redraws the heatmap (decoder steps x
    source digits), its tick labels and the title in place.  In a panel the
    caption gives the model, its output and the verdict the title shows in the
    static figure.
    """

    def __init__(self, models: Mapping[str, ToySeq2Seq], digits: str, model: str):
        if not isinstance(models, Mapping) or not models or not all(
                isinstance(name, str) and isinstance(net, ToySeq2Seq)
                for name, net in models.items()):
            raise TypeError("models must map names (strings) to ToySeq2Seq models, at least "
                            f"one, got {models!r}")
        steps = sorted({net.num_steps for net in models.values()})
        if len(steps) != 1:
            raise ValueError(f"models must all have the same num_steps, got {steps}")
        self.models = dict(models)
        self.num_steps = steps[0]
        self.digits, self.model = self._check(digits, model)
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

    def _check(self, digits: object, model: object) -> tuple[str, str]:
        """``digits`` (``num_steps`` ASCII digits) and ``model`` (a key of ``models``), checked."""
        model = check_choice("model", model, list(self.models))
        if not isinstance(digits, str):
            raise TypeError(f"digits must be a string of {self.num_steps} digits 0-9, got "
                            f"{type(digits).__name__} {digits!r}")
        if len(digits) != self.num_steps or not digits.isdigit() or not digits.isascii():
            raise ValueError(f"digits must be a string of {self.num_steps} digits 0-9, "
                             f"got {digits!r}")
        return digits, model

    def update(self, digits: str | None = None, model: str | None = None) -> Figure:
        """Decode ``digits`` with ``models[model]``; each left out keeps its value."""
        digits, model = self._check(self.digits if digits is None else digits,
                                    self.model if model is None else model)
        net = self.models[model]
        src = torch.tensor([[int(c) for c in digits]], device=self.device)  # (1, T)
        with torch.no_grad():
            tokens = net(src).argmax(-1)[0].tolist()  # (T,)
        self.digits, self.model = digits, model
        labels = [str(t) if t < BOS else "<bos>" for t in tokens]  # untrained nets may emit BOS
        self.output = "".join(labels)
        self.grid.set_matrices(net.attention_weights[0])  # (Tq, Tk)
        self.ax.set_xticklabels(list(digits))
        self.ax.set_yticklabels(labels)
        self.title.set_text(f"{model}: {self._result()}")
        return self.fig

    def _result(self) -> str:
        expected = self.digits[::-1]
        verdict = "correct" if self.output == expected else f"expected {expected}"
        return f"{self.digits} -> {self.output} ({verdict})"

    def changing_artists(self) -> list[Artist]:
        return [*self.grid.changing_artists(), self.title,
                *self.ax.xaxis.get_majorticklabels(), *self.ax.yaxis.get_majorticklabels()]

    def caption(self) -> str:
        return f"<b>{html.escape(self.model)}</b>: {html.escape(self._result())}"

    def caption_texts(self) -> dict[Text, str]:
        return {self.title: "attention weights"}
