"""Chapter 10's explorers: where each running max came from, and cost against length."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from torch import nn

import attention_utils as au
from attention_lab.layout import fixed_yticks, freeze_layout
from attention_lab.measure import block_cost, loglog_slope
from attention_lab.models.cummax import MaxStateSuper, running_maxima
from attention_lab.panel import Explorer, check_data, check_int


class MaxSourceExplorer(Explorer):
    """Which earlier position supplied each running max of a :class:`MaxStateSuper`.

    ``x`` is ``(batch, seq, dim_size)``; row 0 is shown.  Left: the source
    position of every (position, channel) of one head; middle: the source head;
    right: one channel's projected value, its running max over positions and
    the final ``out_score`` after the max over heads.  ``update(head, channel,
    length)`` shows the first ``length`` positions (at first: the last head,
    which takes the max over every head; channel 0; the whole sequence; a value
    left out keeps its setting); the axes keep the whole sequence, so later
    positions stay blank.  ``head`` lies in ``0 .. heads - 1``, ``channel`` in
    ``0 .. d_h - 1`` and ``length`` in ``1 .. seq``; others are refused by name.
    """

    def __init__(self, block: MaxStateSuper, x: torch.Tensor):
        if not isinstance(block, MaxStateSuper):
            raise TypeError(f"block must be a MaxStateSuper, got {type(block).__name__}")
        check_data("x", x, 3, f"(batch, seq, dim_size={block.dim_size})")
        if x.shape[-1] != block.dim_size:
            raise ValueError(f"x must be (batch, seq, dim_size={block.dim_size}), got shape "
                             f"{tuple(x.shape)}")
        self.block, self.x = block, x[:1]
        self.head, self.channel, self.length = block.heads - 1, 0, x.shape[1]
        self.fig = Figure(figsize=(11, 3.6), layout="constrained")
        self.ax_pos, self.ax_head, self.ax_line = self.fig.subplots(1, 3)
        seq, d_h = x.shape[1], block.dim_size // block.heads
        blank = np.zeros((seq, d_h))
        self.pos_image = self.ax_pos.imshow(blank, cmap="viridis", vmin=0, vmax=seq - 1,
                                            aspect="auto", interpolation="nearest")
        self.head_image = self.ax_head.imshow(blank, cmap="Purples", vmin=0,
                                              vmax=max(block.heads - 1, 1), aspect="auto",
                                              interpolation="nearest")
        self.fig.colorbar(self.pos_image, ax=self.ax_pos, label="source position")
        self.fig.colorbar(self.head_image, ax=self.ax_head, label="source head",
                          ticks=range(block.heads))
        self.markers = [ax.axvline(0, color="red", lw=1) for ax in (self.ax_pos, self.ax_head)]
        for ax in (self.ax_pos, self.ax_head):
            ax.set_xlabel("channel c (within the head)")
            ax.set_ylabel("position t")
        (self.value_line,) = self.ax_line.plot([], [], ".", color="0.6", label="out (projected)")
        (self.run_line,) = self.ax_line.step([], [], where="post", label="cummax over t")
        (self.score_line,) = self.ax_line.step([], [], where="post", ls="--",
                                               label="out_score\n(then over heads)")
        self.ax_line.set_xlabel("position t")
        self.ax_line.set_xlim(-0.5, seq - 0.5)
        self.ax_line.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
                            borderaxespad=0)  # outside: the points go anywhere
        self.update()
        freeze_layout(self.fig)

    def changing_artists(self) -> list[Artist]:
        """Images, markers, titles, lines and the line plot's y tick labels."""
        return [self.pos_image, self.head_image, *self.markers,
                *(ax.title for ax in (self.ax_pos, self.ax_head, self.ax_line)),
                self.value_line, self.run_line, self.score_line,
                *self.ax_line.get_yticklabels()]

    def update(self, head: int | None = None, channel: int | None = None,
               length: int | None = None) -> Figure:
        """Show ``head``, ``channel`` and the first ``length`` positions (None keeps each);
        every value is checked before anything changes."""
        d_h = self.block.dim_size // self.block.heads
        head = self.head if head is None else check_int("head", head, 0, self.block.heads - 1)
        channel = self.channel if channel is None else check_int("channel", channel, 0, d_h - 1)
        seq = self.length if length is None else check_int("length", length, 1, self.x.shape[1])
        # each (1, h, T, d_h)
        out, running, score, positions, heads = running_maxima(self.block, self.x[:, :seq])
        self.head, self.channel, self.length = head, channel, seq
        out, running = out[0, :, :, channel], running[0, :, :, channel]  # (h, T)
        score = score[0, head, :, channel]  # (T,)
        for image, index in ((self.pos_image, positions), (self.head_image, heads)):
            shown = np.ma.masked_all(image.get_array().shape)  # (T_max, d_h), blank below seq
            shown[:seq] = au.to_numpy(index[0, head])
            image.set_data(shown)
        for marker in self.markers:
            marker.set_xdata([channel, channel])
        t = np.arange(seq)
        self.value_line.set_data(t, au.to_numpy(out[head]))
        self.run_line.set_data(t, au.to_numpy(running[head]))
        self.score_line.set_data(t, au.to_numpy(score))
        self.ax_pos.set_title(f"head {head}: source position")
        self.ax_head.set_title(f"head {head}: source head (<= {head})")
        self.ax_line.set_title(f"head {head}, channel {channel}")
        shown = torch.stack([out[head], running[head], score])  # (3, T)
        fixed_yticks(self.ax_line, shown.min().item(), shown.max().item())
        return self.fig


MAX_BATCH, MAX_LENGTH = 64, 2**16  # what CostExplorer measures: beyond, a move takes minutes
COST_METRICS = {"forward_ms": "forward time (ms)", "train_ms": "forward + backward time (ms)",
                "saved_mib": "saved for backward (MiB)"}


class CostExplorer(Explorer):
    """Time and memory of several blocks against sequence length, on log-log axes.

    ``blocks`` maps a label to a module taking ``(batch, seq, dim_size)``.
    ``update(batch)`` measures every block at every length on ``self.device``
    (:func:`block_cost`; results are cached per device and batch in
    ``self.results``) and redraws; legend labels give each line's fitted
    slope over the longest three lengths.
    """

    def __init__(self, blocks: Mapping[str, nn.Module], lengths: Sequence[int] = (128, 256, 512,
                 1024, 2048), batch: int = 4, dim_size: int = 64, repeats: int = 3):
        if not isinstance(blocks, Mapping) or not blocks or not all(
                isinstance(block, nn.Module) for block in blocks.values()):
            raise TypeError(f"blocks must map labels to nn.Modules (at least one), got {blocks!r}")
        if isinstance(lengths, str) or not isinstance(lengths, Sequence) or len(lengths) < 3:
            raise TypeError(f"lengths must be a list of at least 3 sequence lengths (the slope "
                            f"is fitted over the longest three), got {lengths!r}")
        self.lengths = [check_int(f"lengths[{i}]", n, 1, MAX_LENGTH)
                        for i, n in enumerate(lengths)]
        self.dim_size = check_int("dim_size", dim_size, 1, 4096)
        self.repeats = check_int("repeats", repeats, 1, 100)
        batch = check_int("batch", batch, 1, MAX_BATCH)
        self.blocks = dict(blocks)
        self.results: dict[tuple[str, int], dict[str, dict[str, list[float]]]] = {}
        self.fig = Figure(figsize=(12, 3.8), layout="constrained")
        self.axes = dict(zip(COST_METRICS, self.fig.subplots(1, 3), strict=True))
        nan = [math.nan] * len(self.lengths)
        self.lines = {(metric, name): ax.plot(self.lengths, nan, "o-", label=name)[0]
                      for metric, ax in self.axes.items() for name in self.blocks}
        for metric, ax in self.axes.items():
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xticks(self.lengths, [str(n) for n in self.lengths])
            ax.set_xlabel("sequence length N")
            ax.set_title(COST_METRICS[metric], fontsize=10)
            ax.legend(fontsize=8, loc="upper left")
        self.suptitle = self.fig.suptitle("")
        self.update(batch)
        freeze_layout(self.fig)

    def measure(self, batch: int) -> dict[str, dict[str, list[float]]]:
        """Measure (or reuse) every block at every length on ``self.device``."""
        key = (str(self.device), batch)
        if key not in self.results:
            generator = torch.Generator().manual_seed(0)
            table = {name: {metric: [] for metric in (*COST_METRICS, "peak_mib")}
                     for name in self.blocks}
            for seq in self.lengths:
                x = torch.randn(batch, seq, self.dim_size, generator=generator).to(self.device)
                for name, block in self.blocks.items():
                    for metric, value in block_cost(block, x, self.repeats).items():
                        table[name][metric].append(value)
            self.results[key] = table
        return self.results[key]

    def frame_key(self) -> tuple[str, int]:
        """Device and batch: measurements are cached per pair, so is their picture."""
        return str(self.device), self._batch

    def update(self, batch: int | None = None) -> Figure:
        """Measure (or reuse) at ``batch`` in ``1 ..`` :data:`MAX_BATCH` (None keeps it)."""
        batch = self._batch if batch is None else check_int("batch", batch, 1, MAX_BATCH)
        table = self.measure(batch)
        self._batch = batch
        for metric, ax in self.axes.items():
            for text, name in zip(ax.get_legend().get_texts(), self.blocks, strict=True):
                values = table[name][metric]
                self.lines[metric, name].set_ydata(values)
                text.set_text(f"{name} (slope {loglog_slope(self.lengths, values):.2f})")
            ax.relim()
            ax.autoscale_view()
        self.suptitle.set_text(f"batch {batch}, width {self.dim_size}, on "
                               f"{au.device_name(self.device)}; slopes fitted over N >= "
                               f"{self.lengths[-3]}")
        return self.fig

