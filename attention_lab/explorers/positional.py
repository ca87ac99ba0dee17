"""Chapter 06's explorer: sinusoidal positional encodings, their dot products, and the
rotation that takes the encoding of position t to that of position t + k."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import attention_utils as au
from attention_lab.panel import Explorer

T_COLOR, TK_COLOR, FREQ_COLOR = "tab:blue", "tab:orange", "tab:green"


def frequencies(num_hiddens: int) -> torch.Tensor:
    """``omega_j = 1 / 10000^(2j / num_hiddens)`` for ``j = 0 .. num_hiddens/2 - 1``, float64.

    Pair ``j`` of :class:`attention_utils.PositionalEncoding` is
    ``(sin(t omega_j), cos(t omega_j))`` in dimensions ``2j, 2j + 1``.
    """
    if isinstance(num_hiddens, bool) or not isinstance(num_hiddens, int) or (
            num_hiddens < 2 or num_hiddens % 2):
        raise ValueError(f"num_hiddens must be a positive even integer, got {num_hiddens!r}")
    return 10000.0 ** (-torch.arange(0, num_hiddens, 2, dtype=torch.float64) / num_hiddens)


def offset_rotation(k: int, num_hiddens: int) -> torch.Tensor:
    """``R_k`` ``(num_hiddens, num_hiddens)``, float64, with ``R_k @ p_t == p_(t+k)`` for every t.

    One 2 x 2 rotation per (sin, cos) pair ``j``, by the angle ``k * omega_j``:
    ``sin(a + b) = sin a cos b + cos a sin b`` and ``cos(a + b) = cos a cos b -
    sin a sin b``.  It depends on the offset ``k`` only, not on ``t``.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"k (the offset) must be an integer, got {type(k).__name__}")
    blocks = []
    for angle in (int(k) * frequencies(num_hiddens)).tolist():  # one per pair (2j, 2j+1)
        c, s = math.cos(angle), math.sin(angle)
        blocks.append(torch.tensor([[c, s], [-s, c]], dtype=torch.float64))
    return torch.block_diag(*blocks)  # (d, d)


def check_index(name: str, value: object, low: int, high: int) -> int:
    """``value`` as an int in ``low .. high``, else a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer in {low} .. {high}, "
                        f"got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low} .. {high}, got {value}")
    return int(value)


class PositionalExplorer(Explorer):
    """Sinusoidal encodings of positions ``t`` and ``t + k``, one frequency pair at a time.

    Four panels, drawn once:

    - the encoding matrix ``P`` (positions down, dimensions across) with rows
      ``t`` and ``t + k`` outlined and the columns ``2j, 2j + 1`` of frequency
      ``j`` marked;
    - pair ``j`` of every position as a point ``(cos t omega_j, sin t omega_j)``
      on the unit circle, with ``t`` and ``t + k`` and the rotation by
      ``k omega_j`` between them (a spiral when it turns more than once);
    - the dot products of query position ``t`` with every position ``s``:
      plain, ``p_t . p_s`` (symmetric about ``t``), and rotated,
      ``(R_k p_t) . p_s`` (peaked at ``t + k``);
    - the terms ``cos(k omega_j)`` whose sum is ``p_t . p_(t+k)``.

    ``update(position=t, offset=k, frequency=j)`` checks all three before it
    changes anything; parameters left out keep their value.  The Axes are placed
    by hand (no layout engine), so the layout never moves.
    """

    def __init__(self, num_hiddens: int = 32, max_position: int = 40, max_offset: int = 20,
                 position: int = 10, offset: int = 5, frequency: int = 3):
        self.omega = frequencies(num_hiddens).numpy()  # (d/2,)
        self.num_hiddens = num_hiddens
        self.max_position = check_index("max_position", max_position, 0, 10_000)
        self.max_offset = check_index("max_offset", max_offset, 0, 10_000)
        self.num_positions = max_position + max_offset + 1
        encoding = au.PositionalEncoding(num_hiddens, 0.0, max_len=self.num_positions)
        self.P = encoding.P[0].double().numpy()  # (N, d)
        self.gram = self.P @ self.P.T  # (N, N): p_t . p_s
        self.position = self.offset = self.frequency = None
        self._check(position, offset, frequency)
        self._build_figure()
        self.update(position=position, offset=offset, frequency=frequency)

    def _check(self, position, offset, frequency) -> tuple[int, int, int]:
        return (check_index("position", position, 0, self.max_position),
                check_index("offset", offset, 0, self.max_offset),
                check_index("frequency", frequency, 0, len(self.omega) - 1))

    def _build_figure(self) -> None:
        n, d = self.P.shape
        # Axes placed by hand and no layout engine: the layout is frozen from the start, and
        # no draw is needed to freeze it (attention_lab.layout.freeze_layout would add one)
        self.fig = Figure(figsize=(11.5, 7.6))
        (ax_p, ax_c), (ax_g, ax_b) = self.fig.subplots(2, 2, gridspec_kw={
            "width_ratios": (1.1, 1), "left": 0.06, "right": 0.985, "bottom": 0.07,
            "top": 0.93, "wspace": 0.3, "hspace": 0.38})
        image = ax_p.imshow(self.P, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto",
                            interpolation="nearest")
        self.fig.colorbar(image, ax=ax_p, fraction=0.05, pad=0.02, label="encoding value")
        ax_p.set(xlabel="dimension", ylabel="position t")
        self.rows = [ax_p.add_patch(Rectangle((-0.5, 0), d, 1, fill=False, lw=2.2, ec=color))
                     for color in (T_COLOR, TK_COLOR)]
        self.band = ax_p.add_patch(Rectangle((0, -0.5), 2, n, fill=False, lw=2.5, ec=FREQ_COLOR))
        theta = np.linspace(0, 2 * math.pi, 200)
        ax_c.plot(np.cos(theta), np.sin(theta), color="0.8", lw=1, zorder=1)
        ax_c.axhline(0, color="0.9", lw=0.8, zorder=0)
        ax_c.axvline(0, color="0.9", lw=0.8, zorder=0)
        (self.dots,) = ax_c.plot([], [], ".", color="0.55", ms=4, label="every position")
        (self.radii,) = ax_c.plot([], [], color="0.4", lw=1)
        (self.spiral,) = ax_c.plot([], [], color=FREQ_COLOR, lw=1.8, label="rotation by k·ω_j")
        (self.point_t,) = ax_c.plot([], [], "o", color=T_COLOR, ms=9, label="position t")
        (self.point_tk,) = ax_c.plot([], [], "o", color=TK_COLOR, ms=9, label="position t + k")
        ax_c.set(xlim=(-1.25, 2.25), ylim=(-1.25, 1.25), aspect="equal",  # legend on the right
                 xlabel="cos(t·ω_j)   (dimension 2j + 1)", ylabel="sin(t·ω_j)   (dimension 2j)")
        ax_c.set_xticks([-1, -0.5, 0, 0.5, 1])
        self.circle_legend = ax_c.legend(loc="center right", fontsize=8,  # clear of the circle
                                         frameon=False)
        s = np.arange(n)
        (self.plain,) = ax_g.plot(s, np.zeros(n), color=T_COLOR, lw=1.8, label="p_t · p_s")
        (self.rotated,) = ax_g.plot(s, np.zeros(n), color=TK_COLOR, lw=1.8,
                                    label="(R_k p_t) · p_s")
        (self.equal_marks,) = ax_g.plot([], [], "s", color=T_COLOR, ms=7, mfc="white",
                                        label="s = t − k and s = t + k: equal dot products")
        self.line_t = ax_g.axvline(0, color=T_COLOR, lw=1, ls=":")
        self.line_tk = ax_g.axvline(0, color=TK_COLOR, lw=1, ls=":")
        low, high = float(self.gram.min()), float(self.gram.max())
        ax_g.set(xlim=(-0.5, n - 0.5), ylim=(low - 1.5, high + 0.4 * (high - low)),
                 xlabel="key position s", ylabel="dot product")
        self.gram_legend = ax_g.legend(loc="upper right", fontsize=7.5, framealpha=0.9)
        js = np.arange(len(self.omega))
        self.bars = list(ax_b.bar(js, np.zeros(len(js)), color="0.7", zorder=1))
        ax_b.axhline(0, color="0.3", lw=0.8, zorder=0.5)
        ax_b.set(xlabel="frequency pair j", ylabel="cos(k·ω_j)", ylim=(-1.1, 1.1),
                 xlim=(-0.6, len(js) - 0.4))
        ax_b.set_xticks(js[::max(1, len(js) // 8)])
        self.titles = [ax.set_title(" ", fontsize=10) for ax in (ax_p, ax_c, ax_g, ax_b)]

    def update(self, position: int | None = None, offset: int | None = None,
               frequency: int | None = None) -> Figure:
        """Show positions ``t = position`` and ``t + offset`` and frequency pair ``frequency``."""
        t, k, j = self._check(self.position if position is None else position,
                              self.offset if offset is None else offset,
                              self.frequency if frequency is None else frequency)
        self.position, self.offset, self.frequency = t, k, j
        n = self.num_positions
        for rect, row in zip(self.rows, (t, t + k), strict=True):
            rect.set_y(row - 0.5)
        self.band.set_x(2 * j - 0.5)
        self.titles[0].set_text(f"encoding matrix P: rows t = {t} and t + k = {t + k}, "
                                f"columns {2 * j}, {2 * j + 1} (pair j = {j})")
        self._draw_circle(t, k, j, n)
        rotated = self.P @ (offset_rotation(k, self.num_hiddens).numpy() @ self.P[t])  # (N,)
        self.plain.set_ydata(self.gram[t])
        self.rotated.set_ydata(rotated)
        marks = [s for s in (t - k, t + k) if 0 <= s < n]
        self.equal_marks.set_data(marks, self.gram[t, marks])
        self.line_t.set_xdata([t, t])
        self.line_tk.set_xdata([t + k, t + k])
        plain_peak, rotated_peak = int(self.gram[t].argmax()), int(rotated.argmax())
        self.titles[2].set_text(f"query t = {t}: p_t · p_s peaks at s = {plain_peak}, "
                                f"(R_k p_t) · p_s at s = {rotated_peak}")
        terms = np.cos(k * self.omega)  # (d/2,)
        for i, (bar, term) in enumerate(zip(self.bars, terms, strict=True)):
            bar.set_height(term)
            bar.set_color(FREQ_COLOR if i == j else "0.7")
        self.titles[3].set_text(f"p_t · p_(t+k) = Σ_j cos(k·ω_j) = {terms.sum():.2f}   (k = {k})")
        return self.fig

    def _draw_circle(self, t: int, k: int, j: int, n: int) -> None:
        omega = self.omega[j]
        angles = np.arange(n) * omega
        self.dots.set_data(np.cos(angles), np.sin(angles))
        self.point_t.set_data([math.cos(t * omega)], [math.sin(t * omega)])
        self.point_tk.set_data([math.cos((t + k) * omega)], [math.sin((t + k) * omega)])
        self.radii.set_data([math.cos(t * omega), 0, math.cos((t + k) * omega)],
                            [math.sin(t * omega), 0, math.sin((t + k) * omega)])
        sweep = np.linspace(t * omega, (t + k) * omega, 400)
        radius = 0.3 + 0.08 * (sweep - t * omega) / (2 * math.pi)  # one step out per full turn
        self.spiral.set_data(radius * np.cos(sweep), radius * np.sin(sweep))
        turn = k * omega
        self.titles[1].set_text(f"pair j = {j}: ω_j = {omega:.4g} rad per position; rotation\n"
                                f"k·ω_j = {turn:.3g} rad = {math.degrees(turn):.1f}° "
                                f"= {turn / (2 * math.pi):.2f} turns")

    def frame_key(self) -> tuple[int, int, int]:
        """Position, offset and frequency fix the whole picture."""
        return self.position, self.offset, self.frequency

    def changing_artists(self) -> list[Artist]:
        """Outlines, circle, curves, bars, titles, and the legends that points and lines
        pass under."""
        return [*self.rows, self.band, self.dots, self.radii, self.spiral, self.point_t,
                self.point_tk, self.circle_legend, self.plain, self.rotated,
                self.equal_marks, self.line_t, self.line_tk, self.gram_legend, *self.bars,
                *self.titles]
