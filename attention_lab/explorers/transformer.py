"""Chapter 09's explorer: every head of a trained Transformer encoder on a typed sequence."""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter

import attention_utils as au
from attention_lab.analysis import attention_distance, attention_entropy
from attention_lab.layout import freeze_layout
from attention_lab.models.transformer import TinyTransformer
from attention_lab.panel import Explorer, check_figsize

MAX_STEPS = 16  # tokens a sequence may have (one tick label each)


class TransformerAttentionExplorer(Explorer):
    """Every head of every layer of a :class:`TinyTransformer` trained to reverse sequences.

    A ``(num_layers, num_heads)`` grid of attention maps (rows: queries, columns:
    keys, ticks ``position:token``; the layer labels each row).  Each panel's
    title names the head and gives its mean entropy ``H`` (nats) and its
    attention-weighted distances from the diagonal (``d_diag``) and the
    anti-diagonal (``d_anti``), see :func:`attention_entropy` and
    :func:`attention_distance`; the figure title shows the model's output and a
    line below the maps says what H and d are.
    ``sequence`` is a string of digits (e.g. ``"31415926"``) or a list of token
    ids, of length ``num_steps`` (fixed when the explorer is built).
    :meth:`update` runs the model in eval mode on ``self.device`` and changes
    the images and texts in place.
    """

    def __init__(self, model: TinyTransformer, sequence: object,
                 figsize: tuple[float, float] = (2.8, 2.6)):
        if not isinstance(model, TinyTransformer):
            raise TypeError(f"model must be a TinyTransformer, got {type(model).__name__}")
        figsize = check_figsize(figsize)
        self.model = model
        self.device = next(model.parameters()).device
        self.tokens = tokens = self._tokens(sequence, num_steps=None)  # (T,)
        self.num_steps = len(tokens)
        weights, output = self._attend(tokens)  # (L, h, T, T), (T,)
        self.grid = au.HeatmapGrid(weights, "key position:token", "query position:token",
                                   figsize=figsize, cmap="Reds", vmin=0.0, vmax=1.0)
        self.fig = self.grid.fig
        self.grid.images[0].colorbar.set_label("attention weight")
        for (layer, head), ax in np.ndenumerate(self.grid.axes):
            if head == 0:
                ax.set_ylabel(f"layer {layer + 1}\nquery position:token")
        self.position_ticks = False  # a panel's ticks give positions only (use_caption)
        self.token_labels = self._labels(tokens)  # what the shared tick formatter shows
        position_token = FuncFormatter(lambda x, _pos: self.token_labels[round(x)])
        for ax in self.grid.axes.flat:  # one tick per position, labelled position:token
            ax.set_xticks(range(self.num_steps))
            ax.set_yticks(range(self.num_steps))
            ax.xaxis.set_major_formatter(position_token)
            ax.yaxis.set_major_formatter(position_token)
            ax.tick_params(labelsize=8)
            ax.tick_params(axis="x", labelrotation=90)
        self.tick_labels = [  # the bottom row's key labels, then the left column's query labels
            *(label for ax in self.grid.axes[-1] for label in ax.get_xticklabels()),
            *(label for ax in self.grid.axes[:, 0] for label in ax.get_yticklabels())]
        self.titles = [ax.set_title(" \n ", fontsize=9) for ax in self.grid.axes.flat]
        self.suptitle = self.fig.suptitle(" ", fontsize=10)
        self.fig.supxlabel(f"H: entropy (uniform {math.log(self.num_steps):.2f}) · "
                           "d: mean distance from the (anti-)diagonal", fontsize=9)
        self._draw(tokens, weights, output)
        freeze_layout(self.fig)

    def _tokens(self, sequence: object, num_steps: int | None) -> torch.Tensor:
        """``sequence`` as token ids ``(T,)``: a string of digits, or a list, array or integer
        tensor of ids in ``0 .. vocab_size - 1``; ``num_steps`` of them once the explorer is built
        (at most :data:`MAX_STEPS` and the model's ``max_len``)."""
        if isinstance(sequence, str):
            if not (sequence.isascii() and sequence.isdigit()):
                raise ValueError(f"sequence must be a string of digits, got {sequence!r}")
            ids = [int(c) for c in sequence]
        elif isinstance(sequence, Sequence | np.ndarray | torch.Tensor):
            ids = list(sequence.tolist() if isinstance(sequence, np.ndarray | torch.Tensor)
                       else sequence)
            if not all(isinstance(t, int | np.integer) and not isinstance(t, bool) for t in ids):
                raise TypeError(f"sequence must hold integer token ids, got {sequence!r}")
            ids = [int(t) for t in ids]
        else:
            raise TypeError("sequence must be a string of digits or a list of token ids, got "
                            f"{type(sequence).__name__}")
        longest = min(MAX_STEPS, self.model.pos_encoding.P.shape[1])
        if num_steps is not None and len(ids) != num_steps:
            raise ValueError(f"sequence must have {num_steps} tokens (the explorer's num_steps), "
                             f"got {len(ids)}: {sequence!r}")
        if not 1 <= len(ids) <= longest:
            raise ValueError(f"sequence must have 1 .. {longest} tokens, got {len(ids)}")
        if min(ids) < 0 or max(ids) >= self.model.vocab_size:
            raise ValueError(f"sequence must hold token ids in 0 .. "
                             f"{self.model.vocab_size - 1}, got {sequence!r}")
        return torch.tensor(ids, dtype=torch.long)

    @torch.no_grad()
    def _attend(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention maps ``(num_layers, num_heads, T, T)`` and argmax outputs ``(T,)``, on CPU."""
        was_training = self.model.training
        self.model.eval()
        logits = self.model(tokens[None].to(self.device))  # (1, T, V)
        self.model.train(was_training)
        weights = torch.stack([w[0] for w in self.model.attention_weights])  # (L, h, T, T)
        return weights.cpu(), logits[0].argmax(-1).cpu()  # (L, h, T, T), (T,)

    def _labels(self, tokens: torch.Tensor) -> list[str]:
        if self.position_ticks:
            return [str(i) for i in range(len(tokens))]
        return [f"{i}:{t}" for i, t in enumerate(tokens.tolist())]

    def _draw(self, tokens: torch.Tensor, weights: torch.Tensor, output: torch.Tensor) -> None:
        self.token_labels = labels = self._labels(tokens)
        for label, text in zip(self.tick_labels, itertools.cycle(labels)):  # what a redraw shows
            label.set_text(text)
        self.stats = {"H": attention_entropy(weights),  # (L, h) each
                      "d_diag": attention_distance(weights),
                      "d_anti": attention_distance(weights, anti_diagonal=True)}
        for (layer, head), title in zip(np.ndindex(*self.grid.axes.shape), self.titles,
                                        strict=True):
            H, d_diag, d_anti = (float(v[layer, head]) for v in self.stats.values())
            title.set_text(f"head {head + 1}: H = {H:.2f}\n"
                           f"d_diag = {d_diag:.2f} · d_anti = {d_anti:.2f}")
        text_in = "".join(map(str, tokens.tolist()))
        text_out = "".join(map(str, output.tolist()))
        correct = int((output == tokens.flip(0)).sum())
        self.result = (f"input {text_in} \u2192 output {text_out} "
                       f"({correct}/{len(labels)} reversed correctly)")
        self.suptitle.set_text(self.result)

    def update(self, sequence: object = None) -> Figure:
        """Run the model on ``sequence`` (None: the current one) and redraw every map, title
        and tick label in place."""
        tokens = (self.tokens.cpu() if sequence is None  # (T,); to() may have moved it
                  else self._tokens(sequence, self.num_steps))
        weights, output = self._attend(tokens)  # (L, h, T, T), (T,)
        self.tokens = tokens  # (T,)
        self.grid.set_matrices(weights)
        self._draw(tokens, weights, output)
        return self.fig

    def changing_artists(self) -> list[Artist]:
        ticks = [] if self.position_ticks else self.tick_labels  # positions never change
        return [*self.grid.changing_artists(), *self.titles, self.suptitle, *ticks]

    def use_caption(self) -> None:
        """In a panel the ticks give positions only: the caption's input line has the tokens
        (32 tick labels of three glyphs were most of what a move redrew)."""
        self.position_ticks = True
        for (layer, head), ax in np.ndenumerate(self.grid.axes):
            if layer == self.grid.axes.shape[0] - 1:
                ax.set_xlabel("key position")
            if head == 0:
                ax.set_ylabel(f"layer {layer + 1}\nquery position")
        self.update()

    def caption(self) -> str:
        """The output line and a table of every head's H, d_diag and d_anti."""
        layers, heads = self.grid.axes.shape
        cell = "style='padding: 0 8px; text-align: right'"
        header = "".join(f"<th {cell} colspan=3>head {h + 1}</th>" for h in range(heads))
        names = "".join(f"<th {cell}>{name}</th>" for _ in range(heads) for name in self.stats)
        rows = "".join(
            f"<tr><td>layer {layer + 1}</td>" + "".join(
                f"<td {cell}>{float(v[layer, head]):.2f}</td>"
                for head in range(heads) for v in self.stats.values()) + "</tr>"
            for layer in range(layers))
        return (f"<b>{html.escape(self.result)}</b><table style='font-family: monospace'>"
                f"<tr><th></th>{header}</tr><tr><th></th>{names}</tr>{rows}</table>")

    def caption_texts(self) -> dict[Text, str]:
        heads = self.grid.axes.shape[1]
        return {self.suptitle: "", **{title: f"head {i % heads + 1}"
                                      for i, title in enumerate(self.titles)}}
