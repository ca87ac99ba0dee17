"""Chapter 04's explorer: why dot products are scaled, measured against the dimension d."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.text import Text
from torch.nn import functional as F

from attention_lab.layout import freeze_layout
from attention_lab.panel import Explorer, check_choice, check_int, check_number

SCALING_DIMS = tuple(2 ** i for i in range(1, 11))  # d = 2 ... 1024


def softmax_jacobian_norm(weights: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of d softmax / d scores for each row of ``weights`` ``(..., num_kv)``.

    The Jacobian of ``p = softmax(s)`` is ``diag(p) - p p^T``; its squared norm is
    ``sum p^2 - 2 sum p^3 + (sum p^2)^2``.  It is 0 for one-hot weights (a saturated
    softmax), small for weights spread evenly over many keys (``1/n - 1/n^2`` squared
    for ``n`` keys), and largest in between, when a few keys share the weight: as the
    scores spread out it first rises, then falls to 0.  Returns ``(...)``.
    """
    p2, p3 = (weights ** 2).sum(-1), (weights ** 3).sum(-1)  # (...), (...)
    return (p2 - 2 * p3 + p2 ** 2).clamp_min(0).sqrt()


def softmax_stats(scores: torch.Tensor) -> dict[str, float]:
    """Mean over rows of ``scores`` ``(n, num_kv)``: largest weight, entropy / log(num_kv),
    and :func:`softmax_jacobian_norm`."""
    weights = F.softmax(scores.float(), dim=-1)  # (n, Tk)
    entropy = -(weights * weights.clamp_min(1e-30).log()).sum(-1)  # (n,)
    return {"max_weight": float(weights.max(-1).values.mean()),
            "entropy": float(entropy.mean() / math.log(scores.shape[-1])),
            "grad_norm": float(softmax_jacobian_norm(weights).mean())}


def _binned_normal_density(edges: np.ndarray, variance: float) -> np.ndarray:
    """Histogram of ``N(0, variance)`` over ``edges`` (density), the tails in the end bins."""
    cdf = torch.special.ndtr(torch.as_tensor(edges, dtype=torch.float64) / math.sqrt(variance))
    cdf[0], cdf[-1] = 0.0, 1.0  # values outside the bins are counted in the end bins
    return (torch.diff(cdf) / torch.diff(torch.as_tensor(edges))).numpy()


def _check_dims(dims: object) -> tuple[int, ...]:
    """``dims``: increasing integers in ``1 ..`` :data:`MAX_SIZE`, at least one."""
    if isinstance(dims, str) or not isinstance(dims, Sequence) or not dims:
        raise TypeError(f"dims must be a non-empty list of increasing integers, got {dims!r}")
    dims = tuple(check_int(f"dims[{i}]", d, 1, MAX_SIZE) for i, d in enumerate(dims))
    if any(a >= b for a, b in itertools.pairwise(dims)):
        raise ValueError(f"dims must be increasing, got {list(dims)}")
    return dims


SIGMA_RANGE = (1e-3, 1e3)  # entry scales the explorer accepts (the slider offers 0.5 .. 1.5)
MAX_SIZE = 4096  # largest d, num_queries, num_kv
MAX_ELEMENTS = 2**25  # num_queries * num_kv * max(dims): the keys, drawn once (128 MiB)
HISTOGRAM_HEADROOM = 1.45  # y range / tallest bar: keeps the legend's corner free


class ScalingExplorer(Explorer):
    """Why dot products are scaled: score spread and softmax saturation against ``d``.

    ``num_queries`` queries, each with its own ``num_kv`` keys, entries
    ``N(0, sigma^2)`` (one seeded draw of size ``max(dims)``; dimension ``d``
    uses the first ``d`` entries).  Top row: histograms of ``q.k`` and
    ``q.k / sqrt(d)`` over fixed bins (values outside land in the end bins),
    each with the theory's histogram over the same bins (normal, variance
    ``sigma^4 d`` and ``sigma^4``).
    Bottom: largest weight, entropy / log(num_kv) and softmax-gradient norm
    against ``d`` for both, a marker at the current ``d``, and a table of the
    measured numbers (in a panel: an HTML table, the caption).  :meth:`update`
    changes every artist in place.
    """

    STATS = ("max_weight", "entropy", "grad_norm")
    LABELS = {"max_weight": "largest weight", "entropy": "entropy / log Tk",
              "grad_norm": "‖∂softmax/∂s‖"}

    def __init__(self, d: int = 64, sigma: float = 1.0, dims: Sequence[int] = SCALING_DIMS,
                 num_queries: int = 128, num_kv: int = 32, seed: int = 0,
                 raw_range: float = 120.0, scaled_range: float = 8.0, num_bins: int = 60):
        self.dims = _check_dims(dims)
        num_queries = check_int("num_queries", num_queries, 1, MAX_SIZE)
        num_kv = check_int("num_kv", num_kv, 2, MAX_SIZE)  # entropy / log(num_kv) needs 2
        if num_queries * num_kv * max(self.dims) > MAX_ELEMENTS:
            raise ValueError(f"num_queries * num_kv * max(dims) must be at most {MAX_ELEMENTS} "
                             f"(the keys are drawn once), got {num_queries} * {num_kv} * "
                             f"{max(self.dims)}")
        seed = check_int("seed", seed, 0, 2**63 - 1)
        raw_range = check_number("raw_range", raw_range, 1e-6, 1e12, "histogram half-width")
        scaled_range = check_number("scaled_range", scaled_range, 1e-6, 1e12,
                                    "histogram half-width")
        num_bins = check_int("num_bins", num_bins, 1, 1000)
        d, sigma = self._check(d, sigma)
        generator = torch.Generator().manual_seed(seed)
        self.q = torch.randn(num_queries, max(self.dims), generator=generator)  # (n, d)
        self.k = torch.randn(num_queries, num_kv, max(self.dims), generator=generator)  # (n,Tk,d)
        self.bins = {"raw": np.linspace(-raw_range, raw_range, num_bins + 1),
                     "scaled": np.linspace(-scaled_range, scaled_range, num_bins + 1)}
        self._curves: dict[float, dict[str, dict[str, np.ndarray]]] = {}
        self._build_figure()
        self.update(d=d, sigma=sigma)
        freeze_layout(self.fig)

    def _check(self, d: object, sigma: object) -> tuple[int, float]:
        """``d`` (one of ``dims``) and ``sigma`` (in :data:`SIGMA_RANGE`), checked."""
        return (check_choice("d", d, self.dims),
                check_number("sigma", sigma, *SIGMA_RANGE, "entries are N(0, sigma^2)"))

    def scores(self, d: int, sigma: float) -> dict[str, torch.Tensor]:
        """``{'raw': q.k, 'scaled': q.k / sqrt(d)}``, each ``(num_queries, num_kv)``."""
        d, sigma = self._check(d, sigma)
        q, k = self.q[:, :d] * sigma, self.k[:, :, :d] * sigma  # (n, d), (n, Tk, d)
        raw = torch.einsum("nd,ntd->nt", q, k)  # (n, Tk)
        return {"raw": raw, "scaled": raw / math.sqrt(d)}

    def curves(self, sigma: float) -> dict[str, dict[str, np.ndarray]]:
        """``{'raw'|'scaled': {stat: values over self.dims}}`` (cached per ``sigma``)."""
        if sigma not in self._curves:
            rows = [{kind: softmax_stats(s) for kind, s in self.scores(d, sigma).items()}
                    for d in self.dims]
            self._curves[sigma] = {kind: {stat: np.array([row[kind][stat] for row in rows])
                                          for stat in self.STATS} for kind in ("raw", "scaled")}
        return self._curves[sigma]

    def _build_figure(self) -> None:
        self.fig = Figure(figsize=(10, 6.4), layout="constrained")
        (ax_raw, ax_scaled), (ax_curves, ax_text) = self.fig.subplots(2, 2)
        self.stairs, self.theory = {}, {}
        for kind, ax, title, color in (("raw", ax_raw, "q·k (not scaled)", "tab:red"),
                                       ("scaled", ax_scaled, "q·k / √d (scaled)", "tab:blue")):
            edges = self.bins[kind]
            self.stairs[kind] = ax.stairs(np.zeros(len(edges) - 1), edges, fill=True,
                                          color=color, alpha=0.5, label="measured")
            self.theory[kind] = ax.stairs(np.zeros(len(edges) - 1), edges, color="k", lw=1,
                                          linestyle="--", label="theory N(0, σ⁴d)"
                                          if kind == "raw" else "theory N(0, σ⁴)")
            ax.set(title=title, xlabel="score", ylabel="density", xlim=(edges[0], edges[-1]))
            ax.set_yticks([])  # the shape matters; the y range changes with every update
            ax.legend(loc="upper right", fontsize=8)
        self.lines = {}
        for stat, color in zip(self.STATS, ("tab:purple", "tab:green", "tab:orange"),
                               strict=True):
            for kind, style in (("raw", "-"), ("scaled", "--")):
                (self.lines[kind, stat],) = ax_curves.plot(
                    self.dims, np.zeros(len(self.dims)), style, color=color, marker=".",
                    label=f"{self.LABELS[stat]} ({'q·k' if kind == 'raw' else 'scaled'})")
        self.marker = ax_curves.axvline(self.dims[0], color="gray", lw=1)
        ax_curves.set(xscale="log", xlabel="d (log scale)", ylim=(0, 1.02),
                      title="softmax of each query's scores (mean over queries)")
        ax_curves.set_xticks(self.dims, [str(d) for d in self.dims], fontsize=7)
        ax_curves.minorticks_off()
        ax_text.axis("off")
        ax_text.legend(*ax_curves.get_legend_handles_labels(), fontsize=8, loc="lower left",
                       ncols=2, title="solid: q·k   dashed: q·k/√d", title_fontsize=8)
        self.text = ax_text.text(0.0, 1.0, "", family="monospace", fontsize=9, va="top")

    def update(self, d: int | None = None, sigma: float | None = None) -> Figure:
        """Redraw for dimension ``d`` (one of ``dims``) and entry scale ``sigma`` (in
        :data:`SIGMA_RANGE`); each left out keeps its value."""
        d, sigma = self._check(self.d if d is None else d, self.sigma if sigma is None else sigma)
        scores = {kind: s.cpu() for kind, s in self.scores(d, sigma).items()}
        curves = self.curves(sigma)
        self.d, self.sigma = d, sigma
        theory_var = {"raw": sigma ** 4 * d, "scaled": sigma ** 4}
        for kind, s in scores.items():
            edges = self.bins[kind]
            values = s.flatten().numpy().clip(edges[0], edges[-1])
            heights, _ = np.histogram(values, edges, density=True)
            self.stairs[kind].set_data(heights)
            density = _binned_normal_density(edges, theory_var[kind])
            self.theory[kind].set_data(density)
            top = max(heights.max(), density.max())  # (the legend sits in the top 30 %)
            self.theory[kind].axes.set_ylim(0, HISTOGRAM_HEADROOM * top)
        for (kind, stat), line in self.lines.items():
            line.set_ydata(curves[kind][stat])
        self.marker.set_xdata([d, d])
        stats = {kind: softmax_stats(s) for kind, s in scores.items()}
        self.table = [("variance", *(float(s.var()) for s in scores.values()), 2),
                      ("theory σ⁴·d, σ⁴", *(theory_var[k] for k in scores), 2),
                      *((self.LABELS[stat], *(stats[k][stat] for k in scores), 3)
                        for stat in self.STATS)]
        lines = [self._setting(), "", f"{'':18}{'q·k':>10}{'q·k/√d':>10}"]
        self.text.set_text("\n".join(lines + [f"{name:18}{a:10.{n}f}{b:10.{n}f}"
                                              for name, a, b, n in self.table]))
        return self.fig

    def _setting(self) -> str:
        return f"d = {self.d}, σ = {self.sigma:g}, Tk = {self.k.shape[1]}"

    def changing_artists(self) -> list[Artist]:
        """Histograms, curves, marker and table (the legends sit above every histogram)."""
        return [*self.stairs.values(), *self.theory.values(), *self.lines.values(),
                self.marker, self.text]

    def caption(self) -> str:
        """The setting and the table of measured numbers, as an HTML table."""
        cell = "style='padding: 0 10px; text-align: right'"
        rows = "".join(f"<tr><td>{name}</td><td {cell}>{a:.{n}f}</td><td {cell}>{b:.{n}f}</td>"
                       "</tr>" for name, a, b, n in self.table)
        return (f"<b>{self._setting()}</b><table style='font-family: monospace'>"
                f"<tr><th></th><th {cell}>q·k</th><th {cell}>q·k/√d</th></tr>{rows}</table>")

    def caption_texts(self) -> dict[Text, str]:
        return {self.text: "(the numbers: in the table above the figure)"}
