"""Chapter 01's explorer: Nadaraya-Watson attention pooling as the kernel width changes."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.text import Text

import attention_utils as au
from attention_lab.layout import freeze_layout, index_ticks, nice_ceiling, pin_ylabel
from attention_lab.panel import Explorer, check_data, check_int, check_number

NW_TICKS = np.linspace(0, 1, 6)  # colour-bar ticks, as fractions of the image's range
HEADINGS = ("attention weights (rows sum to 1)", "Nadaraya-Watson fit",
            "weights of the selected query")  # the titles' constant parts
SIGMA_RANGE = (1e-4, 1e4)  # kernel widths the explorer accepts (the slider spans 0.02 .. 5)


class NadarayaWatsonExplorer(Explorer):
    """Kernel width ``sigma`` -> attention weights and fitted curve, side by side.

    ``x_train``, ``y_train`` ``(num_kv,)``: the keys and values (training data,
    read best sorted by x); ``x_query`` ``(num_queries,)``: the queries (sorted);
    ``y_true`` ``(num_queries,)``, optional: the true function at the queries.

    The figure, built once: left, the weights ``(num_queries, num_kv)`` as a
    heatmap with the selected query's row outlined; right, the data, the true
    function and the prediction, with the selected query marked; below it the
    selected row's weights as bars over ``x_i``.  ``update(sigma=..., query=...)``
    changes the image data, the prediction line, the bars and the titles, and
    returns the figure.  ``sigma`` lies in :data:`SIGMA_RANGE`; ``query`` is a
    row index into ``x_query``.  The tensors must be finite.  In a panel the
    titles keep their headings and the caption gives σ, the error and the row.
    """

    def __init__(self, x_train: torch.Tensor, y_train: torch.Tensor, x_query: torch.Tensor,
                 y_true: torch.Tensor | None = None, sigma: float = 1.0, query: int | None = None):
        check_data("x_train", x_train, 1, "(num_kv,)")
        check_data("y_train", y_train, 1, "(num_kv,)")
        check_data("x_query", x_query, 1, "(num_queries,)")
        if y_train.shape != x_train.shape:
            raise ValueError(f"y_train must be (num_kv,) like x_train {tuple(x_train.shape)}, "
                             f"got {tuple(y_train.shape)}")
        if y_true is not None:
            check_data("y_true", y_true, 1, "(num_queries,)")
            if y_true.shape != x_query.shape:
                raise ValueError(f"y_true must be (num_queries,) like x_query "
                                 f"{tuple(x_query.shape)}, got {tuple(y_true.shape)}")
        self.x_train, self.y_train, self.x_query = x_train, y_train, x_query
        self.y_true = None if y_true is None else au.to_numpy(y_true)
        self.sigma = self._check_sigma(sigma)
        self.query = len(x_query) // 2 if query is None else self._check_query(query)
        self.y_hat, self.weights = self._compute(self.sigma)  # (Tq,), (Tq, Tk)
        self.fig = Figure(figsize=(12, 4.8), layout="constrained")
        self._draw()
        self._redraw()  # titles set before the layout is computed, so they fit
        freeze_layout(self.fig)
        for ax in (self.colorbar.ax, self.axes[2]):  # their tick labels change with sigma
            pin_ylabel(ax)

    @staticmethod
    def _check_sigma(sigma: object) -> float:
        return check_number("sigma", sigma, *SIGMA_RANGE, "the kernel width")

    def _check_query(self, query: object) -> int:
        return check_int("query (a row index into x_query)", query, 0, len(self.x_query) - 1)

    def _compute(self, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """Prediction ``(Tq,)`` and weights ``(Tq, Tk)`` for kernel width ``sigma``, as arrays.

        Raises a ValueError naming ``sigma`` where the data's spread makes the
        weights overflow (they are checked before anything is drawn).
        """
        y_hat, weights = au.nadaraya_watson(self.x_query, self.x_train, self.y_train, sigma)
        y_hat, weights = au.to_numpy(y_hat), au.to_numpy(weights)  # (Tq,), (Tq, Tk)
        if not (np.isfinite(weights).all() and np.isfinite(y_hat).all()):
            raise ValueError(f"sigma={sigma:g} gives non-finite weights for these data: use a "
                             "larger sigma or data of a smaller spread")
        return y_hat, weights

    def _draw(self) -> None:
        xs, ys, xq = au.to_numpy(self.x_train), au.to_numpy(self.y_train), au.to_numpy(self.x_query)
        weights, y_hat = self.weights, self.y_hat
        num_kv = weights.shape[1]
        gs = self.fig.add_gridspec(2, 2, width_ratios=[1, 1.35], height_ratios=[1.7, 1])
        ax_w = self.fig.add_subplot(gs[:, 0])
        self.image = ax_w.imshow(weights, cmap="Reds", vmin=0, interpolation="nearest",
                                 aspect="auto")
        # The colour bar shows the scale 0..1 of its own and gets new labels when
        # the image's range changes: only its labels are redrawn, not the bar.
        self.colorbar = self.fig.colorbar(ScalarMappable(Normalize(0, 1), "Reds"), ax=ax_w,
                                          shrink=0.9, ticks=NW_TICKS, label="weight α(x, xᵢ)")
        index_ticks(ax_w.set_xticks, xs)
        index_ticks(ax_w.set_yticks, xq)
        ax_w.set_xlabel(r"Keys: training inputs $x_i$ (sorted)")
        ax_w.set_ylabel(r"Queries: $x$")
        box_x = [-0.5, num_kv - 0.5, num_kv - 0.5, -0.5, -0.5]
        (self.row_box,) = ax_w.plot(box_x, [0] * 5, color="tab:blue", lw=1.5)
        self.weights_title = ax_w.set_title("")

        ax_fit = self.fig.add_subplot(gs[0, 1])
        ax_fit.scatter(xs, ys, s=14, color="0.55", label=r"noisy data $(x_i, y_i)$", zorder=2)
        if self.y_true is not None:
            ax_fit.plot(xq, self.y_true, "k--", lw=1.2, label=r"true $f(x)$")
        prediction = "prediction\n" r"$\hat f(x) = \sum_i \alpha(x, x_i)\, y_i$"
        (self.curve,) = ax_fit.plot(xq, y_hat, color="tab:red", lw=2.2, zorder=3,
                                    label=prediction)
        (self.marker,) = ax_fit.plot([], [], "o", color="tab:blue", ms=8, zorder=4,
                                     label=r"selected query $x$")
        self.fit_line = ax_fit.axvline(0, color="tab:blue", lw=0.8, ls=":")
        ax_fit.set_ylabel("y")
        ax_fit.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False,
                      labelspacing=1.0)
        ax_fit.tick_params(labelbottom=False)
        self.fit_title = ax_fit.set_title("")

        ax_row = self.fig.add_subplot(gs[1, 1], sharex=ax_fit)
        width = 0.8 * (xs.max() - xs.min()) / max(num_kv, 1) if num_kv > 1 else 0.1
        self.bar_edges = np.stack([xs - width / 2, xs + width / 2], axis=1)  # (Tk, 2)
        self.bars = PolyCollection(self._bar_verts(np.zeros(num_kv)), color="tab:red")
        ax_row.add_collection(self.bars)  # one artist for all bars: one draw call
        self.row_line = ax_row.axvline(0, color="tab:blue", lw=0.8, ls=":")
        ax_row.set_xlabel(r"$x$ (keys $x_i$ and queries)")
        ax_row.set_ylabel("α(x, xᵢ)")
        self.row_title = ax_row.set_title("", fontsize=10)
        self.axes = (ax_w, ax_fit, ax_row)

    def _bar_verts(self, heights: np.ndarray) -> np.ndarray:
        """Corners ``(Tk, 4, 2)`` of one bar per key at ``x_i``, ``heights`` tall."""
        (left, right), zero = self.bar_edges.T, np.zeros_like(heights)
        return np.stack([np.stack(corner, axis=1) for corner in
                         ((left, zero), (left, heights), (right, heights), (right, zero))], axis=1)

    def update(self, sigma: float | None = None, query: int | None = None) -> Figure:
        """Recompute for kernel width ``sigma`` and outline query row ``query``; returns the fig.

        ``sigma`` lies in :data:`SIGMA_RANGE`; ``query`` is a row index into
        ``x_query``.  Arguments left as None keep their current value; a
        rejected update changes nothing.
        """
        sigma = self.sigma if sigma is None else self._check_sigma(sigma)
        query = self.query if query is None else self._check_query(query)
        y_hat, weights = self._compute(sigma)  # (Tq,), (Tq, Tk)
        self.sigma, self.query, self.y_hat, self.weights = sigma, query, y_hat, weights
        self._redraw()
        return self.fig

    def _redraw(self) -> None:
        q, row = self.query, self.weights[self.query]  # (Tk,)
        xq = float(self.x_query[q])
        self.image.set_data(self.weights)
        vmax = nice_ceiling(float(self.weights.max()))
        self.image.set_clim(0, vmax)
        self.colorbar.set_ticks(NW_TICKS, labels=[f"{vmax * t:.3g}" for t in NW_TICKS])
        self.row_box.set_ydata([q - 0.5, q - 0.5, q + 0.5, q + 0.5, q - 0.5])
        self.weights_title.set_text(f"{HEADINGS[0]}, σ = {self.sigma:.3g}")
        self.curve.set_ydata(self.y_hat)
        self.marker.set_data([xq], [self.y_hat[q]])
        self.fit_line.set_xdata([xq, xq])
        self.row_line.set_xdata([xq, xq])
        fit = HEADINGS[1]
        if self.y_true is not None:
            self.mse = float(np.mean((self.y_hat - self.y_true) ** 2))
            fit += f": {self._mse_text()}"
        self.fit_title.set_text(fit)
        self.bars.set_verts(self._bar_verts(row))
        top = nice_ceiling(1.15 * float(row.max()))
        self.axes[2].set_ylim(0, top)
        self.axes[2].set_yticks([0, top / 2, top], [f"{v:.3g}" for v in (0, top / 2, top)])
        self.row_title.set_text(f"row {q}: weights of query x = {xq:.2f}; largest "
                                f"{row.max():.2f}, sum {row.sum():.2f}")

    def _mse_text(self) -> str:
        return f"mean squared error vs true f = {self.mse:.3f}"

    def caption(self) -> str:
        """σ, the fit's error and the selected row, which the titles give in the static figure."""
        q, row = self.query, self.weights[self.query]  # (Tk,)
        parts = [f"<b>σ = {self.sigma:.3g}</b>"]
        if self.y_true is not None:
            parts.append(f"fit: {self._mse_text()}")
        parts.append(f"row {q}: query x = {float(self.x_query[q]):.2f}, largest weight "
                     f"{row.max():.2f}, sum {row.sum():.2f}")
        return " · ".join(parts)

    def caption_texts(self) -> dict[Text, str]:
        return dict(zip((self.weights_title, self.fit_title, self.row_title), HEADINGS,
                        strict=True))

    def changing_artists(self) -> list[Artist]:
        """Everything but the data points, the true curve and the fixed axes."""
        return [self.image, *self.colorbar.ax.get_yticklabels(), self.row_box, self.weights_title,
                self.curve, self.marker, self.fit_line, self.fit_title, self.bars, self.row_line,
                *self.axes[2].get_yticklabels(), self.row_title]

