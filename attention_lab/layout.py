"""Layouts and ticks that stay put, so a redraw changes few artists.

A frozen layout (:func:`freeze_layout`) and ticks at fixed positions let an
update relabel a few texts instead of laying the figure out again.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def freeze_layout(fig: Figure) -> Figure:
    """Lay ``fig`` out once, then keep that layout for every redraw.

    Constrained layout costs a solve on every draw; sliders only change data,
    so the first layout stays right and later redraws skip the solve.
    """
    fig.draw_without_rendering()  # a bare Figure's canvas.draw() is a no-op: no layout
    fig.set_layout_engine("none")
    return fig


def pin_ylabel(ax: Axes) -> None:
    """Keep ``ax``'s y label where the frozen layout put it, however wide later tick labels are.

    Without this every draw moves the label beside the widest tick label, and
    a redraw of only the tick labels would leave it behind.
    """
    x_pixels, _ = ax.yaxis.label.get_position()  # set by the layout's draw, in pixels
    ax.yaxis.set_label_coords((x_pixels - ax.bbox.x0) / ax.bbox.width, 0.5)


def index_ticks(ax_set_ticks: Callable, x: np.ndarray, num: int = 5) -> None:
    """About ``num`` ticks at evenly spaced indices of ``x``, labelled with the values of ``x``."""
    positions = np.arange(0, len(x), max(1, math.ceil(len(x) / num)))
    ax_set_ticks(positions, [f"{x[i]:.1f}" for i in positions])


def fixed_yticks(ax: Axes, low: float, high: float, intervals: int = 4) -> None:
    """Fit ``low .. high`` (plus 5 %) with ``intervals`` steps of 1, 2 or 5 times a power of ten.

    The ticks then sit at the same heights whatever the data, so an update
    relabels them rather than redrawing the axis (see :func:`figure_png`).
    """
    pad = 0.05 * max(high - low, 1e-6)
    low, high = low - pad, high + pad
    step = nice_ceiling((high - low) / intervals)
    while math.floor(low / step) * step + intervals * step < high:
        step = nice_ceiling(step * 1.01)
    ticks = math.floor(low / step) * step + step * np.arange(intervals + 1)
    decimals = max(0, -math.floor(math.log10(step)))
    ax.set_ylim(ticks[0], ticks[-1])
    ax.set_yticks(ticks, [f"{t:.{decimals}f}" for t in ticks])


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is >= ``value`` (> 0)."""
    value = max(value, 1e-6)
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value * (1 - 1e-9))

