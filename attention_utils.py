"""Attention Lab's one shared module: the code every notebook imports.

Names and signatures of what learners already know from d2l.ai
(``masked_softmax``, ``show_heatmaps``, ``AdditiveAttention``,
``DotProductAttention``, ``MultiHeadAttention``, ...) are kept, so the book and
these notebooks can be read side by side.  Unlike d2l 1.0.3, every function
here checks its inputs, never mutates them, and masks safely in float16 and
bfloat16.

Shape letters, used in every shape comment (nanoGPT style)::

    B   batch size
    h   number of heads (always right after the batch axis)
    Tq  number of queries            (num_queries)
    Tk  number of key-value pairs    (num_kv)
    d   query / key size             (d_h per head)
    dv  value size

In docstrings the same shapes read: queries ``(batch, num_queries, d)``, keys
``(batch, num_kv, d)``, values ``(batch, num_kv, d_v)`` and attention weights
``(batch, num_queries, num_kv)``; with heads, ``(batch, num_heads, ...)``.

Masking convention: a valid length ``n`` keeps keys ``0 .. n-1`` of a row.  A
row whose valid length is 0 keeps no key at all and gets all-zero weights (so
its output is a zero vector), which is what
``torch.nn.functional.scaled_dot_product_attention`` returns for a boolean mask
row that is all False.  It is never NaN and never d2l's uniform weights.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import html
import itertools
import math
import platform
import random
import struct
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence

import ipywidgets as widgets
import matplotlib
import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PolyCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, MaxNLocator
from torch import nn
from torch.nn import functional as F

__all__ = [
    "AdditiveAttention",
    "BilinearAttention",
    "DotProductAttention",
    "Explorer",
    "HeatmapGrid",
    "MultiHeadAttention",
    "explorer_panel",
    "figure_png",
    "get_device",
    "gpu_toggle",
    "masked_softmax",
    "print_environment",
    "scaled_dot_product",
    "sequence_mask",
    "set_seed",
    "show_heatmaps",
    "timed",
    "transpose_output",
    "transpose_qkv",
    "valid_lens_to_mask",
]


# ----------------------------------------------------------------------------
# Set-up: seeds, device, versions
# ----------------------------------------------------------------------------


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (the global generator learners' code uses)
    torch.manual_seed(seed)


def get_device(use_gpu: bool = True) -> torch.device:
    """CUDA when ``use_gpu`` is true and a CUDA device is available, else CPU."""
    if use_gpu and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def device_name(device: torch.device | str) -> str:
    """A human-readable name: ``'cpu'`` or ``'cuda (NVIDIA H100 ...)'``."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def print_environment(device: torch.device) -> None:
    """Print the versions this notebook ran with and the device it uses."""
    import ipywidgets

    print(f"python {platform.python_version()} | torch {torch.__version__} | "
          f"numpy {np.__version__} | matplotlib {matplotlib.__version__} | "
          f"ipywidgets {ipywidgets.__version__}")
    reason = "" if torch.cuda.is_available() else " (CUDA not available: GPU toggles are off)"
    print(f"device: {device_name(device)}{reason}")


def timed(fn: Callable[[], object], device: torch.device | str = "cpu") -> tuple[object, float]:
    """Run ``fn()`` once and return ``(result, milliseconds)``.

    On CUDA the clock waits for queued kernels (``torch.cuda.synchronize``)
    before and after, so the time is the GPU's and not the launch's.
    """
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if cuda:
        torch.cuda.synchronize()
    return result, (time.perf_counter() - start) * 1e3


# ----------------------------------------------------------------------------
# Input checks: every public function fails loudly, naming the argument
# ----------------------------------------------------------------------------


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _check_tensor(name: str, x: object, ndim: int, layout: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {_shape(x)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")


def _check_qkv(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
               same_size: bool) -> None:
    """Check the (queries, keys, values) triple of an attention forward.

    ``same_size``: queries and keys must share their last size ``d`` (the
    dot-product family); additive and bilinear scoring allow different sizes.
    """
    _check_tensor("queries", queries, 3, "(batch, num_queries, d)")
    _check_tensor("keys", keys, 3, "(batch, num_kv, d)")
    _check_tensor("values", values, 3, "(batch, num_kv, d_v)")
    if not queries.shape[0] == keys.shape[0] == values.shape[0]:
        raise ValueError(
            "queries, keys and values must have the same batch size, got shapes "
            f"queries {_shape(queries)}, keys {_shape(keys)}, values {_shape(values)}")
    if keys.shape[1] != values.shape[1]:
        raise ValueError(
            "keys (batch, num_kv, d) and values (batch, num_kv, d_v) must have the same "
            f"num_kv, got keys {_shape(keys)} and values {_shape(values)}")
    if same_size and queries.shape[-1] != keys.shape[-1]:
        raise ValueError(
            "queries and keys must have the same size d for dot-product scoring, got "
            f"queries {_shape(queries)} and keys {_shape(keys)}")


def _as_lengths(valid_lens: object, device: torch.device, name: str = "valid_lens",
                ) -> torch.Tensor:
    """``valid_lens`` as an integer tensor on ``device`` (a new tensor, never a view)."""
    if isinstance(valid_lens, torch.Tensor):
        lengths = valid_lens
    elif isinstance(valid_lens, np.ndarray | Sequence):
        array = np.asarray(valid_lens)
        if array.dtype.kind not in "biuf":  # strings, objects: torch's own error names nothing
            raise TypeError(f"{name} must hold integers (e.g. torch.long), got {array.dtype}")
        lengths = torch.as_tensor(array)
    else:
        raise TypeError(f"{name} must be None, a torch.Tensor, an array or a list of "
                        f"integers, got {type(valid_lens).__name__}")
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"{name} must hold integers (e.g. torch.long), got {lengths.dtype}")
    return lengths.to(device=device, dtype=torch.long)


def _check_lengths(valid_lens: object, batch: int, num_queries: int, num_kv: int,
                   device: torch.device, name: str = "valid_lens") -> torch.Tensor:
    """Validate ``valid_lens`` and return it as ``(batch, num_queries)`` long tensor."""
    lengths = _as_lengths(valid_lens, device, name)
    if lengths.dim() == 1:
        if lengths.shape[0] != batch:
            raise ValueError(f"{name} of shape (batch,) must have batch={batch} entries, "
                             f"got shape {_shape(lengths)}")
        lengths = lengths[:, None].expand(batch, num_queries)  # (B, Tq)
    elif lengths.dim() == 2:
        if _shape(lengths) != (batch, num_queries):
            raise ValueError(f"{name} of shape (batch, num_queries) must be "
                             f"({batch}, {num_queries}), got {_shape(lengths)}")
    else:
        raise ValueError(f"{name} must be None, (batch,) or (batch, num_queries), "
                         f"got shape {_shape(lengths)}")
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > num_kv):
        raise ValueError(f"{name} must lie in 0 .. num_kv={num_kv}, got values from "
                         f"{int(lengths.min())} to {int(lengths.max())}")
    return lengths


# ----------------------------------------------------------------------------
# Chapter 02: masking
# ----------------------------------------------------------------------------


def valid_lens_to_mask(valid_lens: object, num_queries: int, num_kv: int,
                       batch: int | None = None, device: torch.device | str = "cpu",
                       ) -> torch.Tensor:
    """Boolean keep-mask ``(batch, num_queries, num_kv)``: True where a key counts.

    ``valid_lens`` is ``(batch,)`` or ``(batch, num_queries)``, integer.  This is
    the mask ``F.scaled_dot_product_attention`` takes as ``attn_mask``; PyTorch's
    ``key_padding_mask`` is its negation (True there means *ignore*).
    """
    lengths = _as_lengths(valid_lens, torch.device(device))
    batch = lengths.shape[0] if batch is None else batch
    lengths = _check_lengths(lengths, batch, num_queries, num_kv, torch.device(device))
    positions = torch.arange(num_kv, device=device)  # (Tk,)
    return positions < lengths[..., None]  # (B, Tq, Tk)


def _softmax_keep(scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis using only the keys where ``keep`` is True.

    Masked keys get weight exactly 0; a row with no kept key gets all zeros.
    The fill value is the dtype's own minimum, so float16 and bfloat16 neither
    overflow nor produce NaN, and no gradient reaches a masked score.
    """
    filled = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    return F.softmax(filled, dim=-1).masked_fill(~keep, 0.0)


def sequence_mask(X: torch.Tensor, valid_len: object, value: float = 0.0) -> torch.Tensor:
    """Return a copy of ``X`` ``(n, num_kv)`` with positions >= ``valid_len`` set to ``value``.

    ``valid_len`` is ``(n,)``, integer.  Unlike d2l 1.0.3, ``X`` is not modified.
    """
    if not isinstance(X, torch.Tensor) or X.dim() != 2:
        given = _shape(X) if isinstance(X, torch.Tensor) else type(X).__name__
        raise ValueError(f"X must be a 2-D tensor (n, num_kv), got {given}")
    if isinstance(valid_len, torch.Tensor | np.ndarray) and valid_len.ndim != 1:
        raise ValueError(f"valid_len must be 1-D (n,), got shape {tuple(valid_len.shape)}")
    lengths = _check_lengths(valid_len, X.shape[0], 1, X.shape[1], X.device,
                             "valid_len")[:, 0]  # (n,)
    keep = torch.arange(X.shape[1], device=X.device) < lengths[:, None]  # (n, Tk)
    return X.masked_fill(~keep, value)


def masked_softmax(X: torch.Tensor, valid_lens: object = None) -> torch.Tensor:
    """Softmax over the last axis of ``X`` ``(batch, num_queries, num_kv)``, masking padded keys.

    ``valid_lens`` is None (plain softmax), ``(batch,)`` (one length per batch
    row, shared by its queries) or ``(batch, num_queries)`` (one per query),
    integer.  Keys at positions >= the valid length get weight exactly 0 and no
    gradient; a valid length of 0 gives an all-zero row.  The result is a new
    tensor of ``X``'s dtype; ``X`` is never modified.

    Raises ``ValueError`` for a wrongly shaped ``X`` or ``valid_lens``, or lengths
    outside ``0 .. num_kv``; ``TypeError`` for non-integer lengths.
    """
    if valid_lens is None:
        if not isinstance(X, torch.Tensor):
            raise TypeError(f"X must be a torch.Tensor, got {type(X).__name__}")
        return F.softmax(X, dim=-1)
    _check_tensor("X", X, 3, "(batch, num_queries, num_kv) when valid_lens is given")
    batch, num_queries, num_kv = X.shape
    lengths = _check_lengths(valid_lens, batch, num_queries, num_kv, X.device)  # (B, Tq)
    keep = torch.arange(num_kv, device=X.device) < lengths[..., None]  # (B, Tq, Tk)
    return _softmax_keep(X, keep)


# ----------------------------------------------------------------------------
# Chapter 01: heatmaps and the explorer machinery the widgets drive
# ----------------------------------------------------------------------------


def _to_numpy(x: object) -> np.ndarray:
    """Tensors on any device, with or without grad, and arrays -> float NumPy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=np.float32)


def _as_grid(matrices: object) -> np.ndarray:
    """2-D, 3-D or 4-D input -> ``(rows, cols, num_queries, num_kv)`` array."""
    array = _to_numpy(matrices)
    if array.ndim == 2:
        return array[None, None]
    if array.ndim == 3:
        return array[None]
    if array.ndim == 4:
        return array
    raise ValueError("matrices must be 2-D (num_queries, num_kv), 3-D (cols, ...) or 4-D "
                     f"(rows, cols, num_queries, num_kv), got shape {array.shape}")


class HeatmapGrid:
    """A grid of heatmaps drawn once; :meth:`set_matrices` updates them in place.

    ``matrices`` is 2-D ``(num_queries, num_kv)``, 3-D ``(cols, num_queries,
    num_kv)`` or 4-D ``(rows, cols, num_queries, num_kv)``.  Redrawing changes
    the data of the existing images (``AxesImage.set_data``) rather than
    building a new figure, which keeps slider updates fast.
    """

    def __init__(self, matrices: object, xlabel: str, ylabel: str,
                 titles: Sequence[str] | None = None, figsize: tuple[float, float] = (2.5, 2.5),
                 cmap: str = "Reds", *, xticklabels: Sequence[str] | None = None,
                 yticklabels: Sequence[str] | None = None, vmin: float | None = 0.0,
                 vmax: float | None = None, colorbar: bool = True, annotate: bool = False):
        grid = _as_grid(matrices)
        rows, cols = grid.shape[:2]
        if titles is not None and len(titles) != cols:
            raise ValueError(f"titles must have one entry per column ({cols}), got {len(titles)}")
        self.fig = Figure(figsize=(figsize[0] * cols + (0.8 if colorbar else 0),
                                   figsize[1] * rows), layout="constrained")
        axes = self.fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
        self.axes = axes
        vmax = float(grid.max()) if vmax is None else vmax
        self.images = []
        for i in range(rows):
            for j in range(cols):
                ax = axes[i, j]
                image = ax.imshow(grid[i, j], cmap=cmap, vmin=vmin, vmax=vmax,
                                  interpolation="nearest", aspect="auto")
                self.images.append(image)
                if i == rows - 1:
                    ax.set_xlabel(xlabel)
                if j == 0:
                    ax.set_ylabel(ylabel)
                if titles is not None and i == 0:
                    ax.set_title(titles[j])
                _set_ticklabels(ax, grid.shape[3], grid.shape[2], xticklabels, yticklabels)
        self.texts = _annotate(axes, grid, vmax) if annotate else []
        self._vmax = vmax
        if colorbar:
            self.fig.colorbar(self.images[0], ax=axes, shrink=0.8)
        self._shape = grid.shape
        freeze_layout(self.fig)

    def set_matrices(self, matrices: object) -> Figure:
        """Replace the data of every heatmap (same grid shape); returns the figure."""
        grid = _as_grid(matrices)
        if grid.shape[:2] != self._shape[:2]:
            raise ValueError(f"matrices must keep the grid's {self._shape[:2]} panels, "
                             f"got {grid.shape[:2]}")
        for image, matrix in zip(self.images, grid.reshape(-1, *grid.shape[2:]), strict=True):
            image.set_data(matrix)
        _set_annotations(self.texts, grid, self._vmax)
        return self.fig

    def changing_artists(self) -> list[Artist]:
        """What :meth:`set_matrices` changes: the images and their printed values."""
        return [*self.images, *self.texts]


def _set_ticklabels(ax, num_cols: int, num_rows: int, xticklabels, yticklabels) -> None:
    """Token labels where given, else integer positions (never fractional ticks)."""
    if xticklabels is not None:
        ax.set_xticks(range(num_cols), list(xticklabels), rotation=90)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if yticklabels is not None:
        ax.set_yticks(range(num_rows), list(yticklabels))
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _annotate(axes: np.ndarray, grid: np.ndarray, vmax: float) -> list:
    texts = []
    for i, j in np.ndindex(*grid.shape[:2]):
        for q, k in np.ndindex(*grid.shape[2:]):
            texts.append(axes[i, j].text(k, q, "", ha="center", va="center", fontsize=7))
    _set_annotations(texts, grid, vmax)
    return texts


def _set_annotations(texts: list, grid: np.ndarray, vmax: float) -> None:
    """Write each value in its cell: white on dark cells, black on light ones."""
    for text, value in zip(texts, grid.reshape(-1), strict=False):
        text.set_text(f"{value:.2f}")
        text.set_color("white" if value > 0.6 * vmax else "black")


def freeze_layout(fig: Figure) -> Figure:
    """Lay ``fig`` out once, then keep that layout for every redraw.

    Constrained layout costs a solve on every draw; sliders only change data,
    so the first layout stays right and later redraws skip the solve.
    """
    fig.draw_without_rendering()  # a bare Figure's canvas.draw() is a no-op: no layout
    fig.set_layout_engine("none")
    return fig


def _pin_ylabel(ax: Axes) -> None:
    """Keep ``ax``'s y label where the frozen layout put it, however wide later tick labels are.

    Without this every draw moves the label beside the widest tick label, and
    a redraw of only the tick labels would leave it behind.
    """
    x_pixels, _ = ax.yaxis.label.get_position()  # set by the layout's draw, in pixels
    ax.yaxis.set_label_coords((x_pixels - ax.bbox.x0) / ax.bbox.width, 0.5)


def show_heatmaps(matrices: object, xlabel: str, ylabel: str,
                  titles: Sequence[str] | None = None, figsize: tuple[float, float] = (2.5, 2.5),
                  cmap: str = "Reds", **kwargs) -> Figure:
    """Draw attention weights as heatmaps and return the Figure (d2l's signature).

    ``matrices``: 2-D, 3-D or 4-D ``(rows, cols, num_queries, num_kv)``,
    a tensor on any device (with or without grad) or an array.  Keyword
    arguments ``xticklabels``/``yticklabels`` label keys/queries with tokens;
    ``vmin``, ``vmax``, ``colorbar`` and ``annotate`` are passed to
    :class:`HeatmapGrid`.  One colour bar is shared by all panels.
    """
    return HeatmapGrid(matrices, xlabel, ylabel, titles, figsize, cmap, **kwargs).fig


def figure_png(fig: Figure, dpi: int = 80, changing: Sequence[Artist] | None = None) -> bytes:
    """Render ``fig`` to PNG bytes: one Agg draw, or a blit of ``changing`` only.

    With ``changing=None`` the whole figure is drawn once (``savefig`` would
    draw twice, once more for the layout engine a colour bar leaves behind, and
    ``bbox_inches='tight'`` adds another pass).  With a list of the artists an
    update changed (children of ``fig`` or of its Axes; an Axes or an Axis
    counts as one artist), the rest of the figure is drawn once into a cached
    background and later calls restore it and draw only those artists, in the
    order a full draw would use, pasting the glyphs of any text drawn before
    (:func:`_draw_text`): several times faster, and the same picture (tested).
    A background is drawn for each dpi, artist list and set of visible Axes
    (the last few are kept); a full draw discards them.  PNGs are RGB (figures
    are opaque), written by :func:`png_bytes`.
    """
    if fig.dpi != dpi:
        fig.set_dpi(dpi)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    if changing is None:
        canvas.draw()
        fig._attention_lab_backgrounds = {}  # a full draw may have changed what they hold
    else:
        _blit(fig, canvas, _draw_order(fig, changing))
    return png_bytes(np.asarray(canvas.buffer_rgba())[..., :3])  # opaque: alpha is waste


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an ``(height, width, 3)`` uint8 array as PNG: unfiltered rows, zlib level 1.

    About 40 % faster than Pillow's encoder on these figures (which tries a
    filter per row) and the same size; lossless either way.
    """
    height, width, _ = rgb.shape
    rows = np.zeros((height, 1 + 3 * width), np.uint8)  # each row: filter byte 0, then pixels
    rows[:, 1:].reshape(height, width, 3)[...] = rgb  # one copy, even from a strided RGBA view
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows, 1)) + _png_chunk(b"IEND", b""))


def _draw_order(fig: Figure, changing: Sequence[Artist]) -> list[Artist]:
    """``changing`` plus the frames (spines) drawn over it, in a full draw's order.

    A full draw paints the figure's children by zorder and each Axes' children
    by zorder; a spine is drawn after the data under it, so an Axes whose data
    change has its spines redrawn too.  Tick labels (``axis.get_majorticklabels()``
    of an Axis with fixed ticks) count as children of their Axes.  Children of
    hidden Axes are left out, as a full draw leaves them out.
    """
    wanted = set(changing)
    for artist in changing:
        parent = artist.axes
        if (parent is not None and parent is not artist and parent not in wanted
                and parent.axison and parent.get_frame_on()):
            wanted.update(parent.spines.values())
    order, hidden = [], []
    for top in sorted(fig.get_children(), key=lambda a: a.get_zorder()):
        if top in wanted:
            order.append(top)
        elif isinstance(top, Axes):
            children = []
            for child in sorted(top.get_children(), key=lambda a: a.get_zorder()):
                if child in wanted:
                    children.append(child)
                elif isinstance(child, Axis):
                    children += [label for tick in child.majorTicks
                                 for label in (tick.label1, tick.label2) if label in wanted]
            (order if top.get_visible() else hidden).extend(children)
    missing = set(changing).difference(order, hidden)
    if missing:
        raise ValueError("changing must hold children of the figure or of its Axes, or tick "
                         f"labels, got {sorted(type(a).__name__ for a in missing)}")
    return order


def _left_out(artist: Artist) -> contextlib.AbstractContextManager:
    """Keep ``artist`` out of the background draw.

    Texts are drawn fully transparent (a tick label must still count in the
    layout of its axis label); other artists are hidden.
    """
    if isinstance(artist, Text):
        return artist._cm_set(alpha=0.0)
    return artist._cm_set(visible=False)


BACKGROUNDS_KEPT = 8  # per figure, e.g. one per number of visible panels


def _blit(fig: Figure, canvas: FigureCanvasAgg, order: list[Artist]) -> None:
    """Restore (or first draw) the background without ``order``, then draw ``order``.

    Backgrounds are kept per dpi, size, artist list and set of visible Axes, so
    moving back to an earlier panel layout does not draw the figure again.
    """
    key = (fig.dpi, canvas.get_width_height(), tuple(map(id, order)),
           tuple(ax.get_visible() for ax in fig.axes))
    backgrounds = fig.__dict__.setdefault("_attention_lab_backgrounds", {})
    if key in backgrounds:
        canvas.restore_region(backgrounds[key])
    else:
        with contextlib.ExitStack() as stack:
            for artist in order:
                stack.enter_context(_left_out(artist))
            canvas.draw()
        if len(backgrounds) >= BACKGROUNDS_KEPT:
            del backgrounds[next(iter(backgrounds))]  # the oldest
        backgrounds[key] = canvas.copy_from_bbox(fig.bbox)
    renderer = canvas.get_renderer()
    for artist in order:
        if isinstance(artist, Text):
            _draw_text(artist, renderer)
        else:
            artist.draw(renderer)


GLYPH_RUNS_KEPT = 4096  # rendered texts kept by _draw_text (tick labels, titles, ...)
_glyph_runs: OrderedDict[tuple, list[tuple[np.ndarray, int, int, float]]] = OrderedDict()


def _text_key(text: Text, renderer: RendererAgg) -> tuple | None:
    """Everything that shapes ``text``'s glyphs, or None for texts that are not kept.

    The anchor is in pixels, so a kept text is pasted exactly where it was
    drawn; colour and alpha are applied when pasting.  Texts with a box, path
    effects, TeX, wrapping or a clip, and subclasses (an Annotation draws its
    arrow too), are drawn afresh every time.
    """
    if (type(text) is not Text or text.get_bbox_patch() is not None
            or text.get_path_effects() or text.get_usetex() or text.get_wrap()
            or text.get_clip_on() and (text.get_clip_box() or text.get_clip_path())):
        return None
    font = text.get_fontproperties()
    return (text.get_text(), tuple(text.get_transform().transform(text.get_unitless_position())),
            text.get_rotation(), text.get_rotation_mode(), text.get_horizontalalignment(),
            text.get_verticalalignment(), text._multialignment, text._linespacing,
            tuple(font.get_family()), font.get_style(), font.get_variant(), font.get_weight(),
            font.get_stretch(), font.get_size_in_points(), font.get_file(),
            text.get_antialiased(), renderer.dpi,
            get_hinting_flag(), matplotlib.rcParams["text.hinting_factor"],
            matplotlib.rcParams["text.kerning_factor"])


class _TextRecorder:
    """Stands in for ``RendererAgg.draw_text`` while one Text draws.

    Paints the same pixels and keeps each line as ``(glyph bitmap, x, y,
    angle)``; a line of mathtext is drawn by Agg and makes the text not kept.
    """

    def __init__(self, renderer: RendererAgg):
        self.renderer = renderer
        self.runs: list[tuple[np.ndarray, int, int, float]] = []
        self.kept = True

    def __call__(self, gc, x, y, s, prop, angle, ismath=False, mtext=None) -> None:
        if ismath:
            self.kept = False
            RendererAgg.draw_text(self.renderer, gc, x, y, s, prop, angle, ismath, mtext)
            return
        font = self.renderer._prepare_font(prop)
        font.set_text(s, 0, flags=get_hinting_flag())
        font.draw_glyphs_to_bitmap(antialiased=gc.get_antialiased())
        descent = font.get_descent() / 64
        x_offset, y_offset = font.get_bitmap_offset()
        x = round(x + x_offset / 64 + descent * math.sin(math.radians(angle)))
        y = round(y + y_offset / 64 + descent * math.cos(math.radians(angle))) + 1
        glyphs = np.array(font.get_image())  # a copy: the font's buffer is reused
        self.renderer._renderer.draw_text_image(glyphs, x, y, angle, gc)
        self.runs.append((glyphs, x, y, angle))


def _draw_text(text: Text, renderer: RendererAgg) -> None:
    """``text.draw(renderer)``, pasting the glyphs of a text drawn before instead of
    laying it out and rasterising it again (tick labels and titles repeat as a
    slider moves back and forth).  Same pixels; the last :data:`GLYPH_RUNS_KEPT`
    texts are kept.
    """
    key = _text_key(text, renderer) if text.get_visible() and text.get_text() else None
    if key is None:
        text.draw(renderer)
        return
    runs = _glyph_runs.get(key)
    if runs is None:
        recorder = _TextRecorder(renderer)
        renderer.draw_text = recorder  # this renderer only, while this text draws
        try:
            text.draw(renderer)
        finally:
            del renderer.draw_text
        if recorder.kept:
            _glyph_runs[key] = recorder.runs
            if len(_glyph_runs) > GLYPH_RUNS_KEPT:
                _glyph_runs.popitem(last=False)  # the least recently used
        return
    _glyph_runs.move_to_end(key)
    gc = renderer.new_gc()
    gc.set_foreground(text.get_color())
    gc.set_alpha(text.get_alpha())
    gc.set_antialiased(text.get_antialiased())
    for glyphs, x, y, angle in runs:
        renderer._renderer.draw_text_image(glyphs, x, y, angle, gc)
    gc.restore()


class Explorer:
    """Base of every figure a widget drives.

    A subclass builds ``self.fig`` once in ``__init__`` and implements
    :meth:`update`, which recomputes and changes the existing artists (never a
    new figure) and returns ``self.fig``.  :meth:`changing_artists` lists the
    artists ``update`` changes, so a slider move redraws only those (see
    :func:`figure_png`; tests/test_blit.py checks every explorer's frames
    against full draws).  :meth:`to` moves tensors and modules for the GPU
    toggle; ``self.device`` says where the last update ran.  Explorers are
    plain objects: tests call ``update`` without a browser.
    """

    fig: Figure
    device: torch.device = torch.device("cpu")

    def update(self, **params) -> Figure:
        raise NotImplementedError

    def changing_artists(self) -> list[Artist] | None:
        """The artists :meth:`update` changes, which :func:`figure_png` redraws alone.

        None (the default) redraws the whole figure on every update.
        """
        return None

    def frame_key(self) -> Hashable | None:
        """A key that fixes the whole picture, if there is one; the panel reuses its frames.

        None (the default): every update is drawn.
        """
        return None

    def to(self, device: torch.device | str) -> Explorer:
        """Move the explorer's tensors and modules; subclasses with any override this."""
        self.device = torch.device(device)
        return self


def gpu_toggle(cuda_available: bool | None = None) -> tuple[widgets.ToggleButton, widgets.HTML]:
    """The GPU toggle and the line that explains its state.

    Enabled only when CUDA is available; otherwise disabled, with the reason
    shown next to it (and in its tooltip).  ``cuda_available`` overrides
    ``torch.cuda.is_available()`` for tests.
    """
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    reason = ("computation runs on the CPU; switch on to move it to CUDA" if available else
              "GPU unavailable: torch.cuda.is_available() is False on this machine")
    toggle = widgets.ToggleButton(value=False, description="GPU", icon="microchip",
                                  disabled=not available, tooltip=reason)
    return toggle, widgets.HTML(f"<i>{reason}</i>")


def explorer_panel(explorer: Explorer, controls: Mapping[str, widgets.ValueWidget],
                   gpu: bool = True, dpi: int = 80) -> widgets.VBox:
    """Wire widgets to an explorer: moving a control calls ``explorer.update``.

    ``controls`` maps ``update``'s keyword names to widgets.  The figure is
    shown as a PNG ``widgets.Image`` re-rendered after each update, redrawing
    only :meth:`Explorer.changing_artists` (and reusing the PNG of an earlier
    update with the same :meth:`Explorer.frame_key`); a status line says which
    device ran the update and how long computing and drawing took, or, when
    ``update`` rejects a value, the error (the figure stays).
    With ``gpu=True`` a GPU toggle moves the explorer with
    :meth:`Explorer.to` (disabled, with its reason, where CUDA is absent).
    """
    image = widgets.Image(format="png",
                          layout=widgets.Layout(align_self="flex-start"))  # natural size, unblurred
    status = widgets.HTML()
    frames: dict[Hashable, bytes] = {}  # frame_key -> PNG

    def redraw(_change=None) -> None:
        params = {name: control.value for name, control in controls.items()}
        try:
            _, compute_ms = timed(lambda: explorer.update(**params), explorer.device)
        except (ValueError, TypeError) as err:  # e.g. a value typed into a Text box
            status.value = f"<span style='color:#b00'>not updated: {html.escape(str(err))}</span>"
            return
        key = explorer.frame_key()
        if key in frames:
            image.value, draw = frames[key], "draw 0 ms (this frame was drawn before)"
        else:
            png, draw_ms = timed(lambda: figure_png(explorer.fig, dpi, explorer.changing_artists()))
            image.value, draw = png, f"draw {draw_ms:.0f} ms"
            if key is not None:
                frames[key] = png
        status.value = (f"last update on <b>{device_name(explorer.device)}</b>: "
                        f"compute {compute_ms:.1f} ms, {draw}")

    for control in controls.values():
        control.observe(redraw, names="value")
    rows = [widgets.HBox(list(controls.values()))]
    if gpu:
        toggle, reason = gpu_toggle()

        def move(change) -> None:
            explorer.to(get_device(change["new"]))
            reason.value = f"<i>computation on {device_name(explorer.device)}</i>"
            redraw()

        toggle.observe(move, names="value")
        rows.append(widgets.HBox([toggle, reason]))
    redraw()
    return widgets.VBox([*rows, image, status])


# ----------------------------------------------------------------------------
# Chapters 03-04: scoring functions
# ----------------------------------------------------------------------------


class AdditiveAttention(nn.Module):
    """Additive (Bahdanau) attention: ``score(q, k) = w_v^T tanh(W_q q + W_k k)``.

    d2l's names: ``W_k`` ``(key_size -> num_hiddens)``, ``W_q``
    ``(query_size -> num_hiddens)`` and ``w_v`` ``(num_hiddens -> 1)``, all
    without bias; lazy layers when ``key_size``/``query_size`` are not given.

    ``forward(queries (batch, num_queries, d_q), keys (batch, num_kv, d_k),
    values (batch, num_kv, d_v), valid_lens=None)`` returns ``(batch,
    num_queries, d_v)`` and keeps ``attention_weights`` ``(batch, num_queries,
    num_kv)``.  Queries and keys may have different sizes.
    """

    def __init__(self, num_hiddens: int, dropout: float = 0.0, key_size: int | None = None,
                 query_size: int | None = None):
        super().__init__()
        self.W_k = _projection(key_size, num_hiddens, bias=False)
        self.W_q = _projection(query_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.attention_weights: torch.Tensor | None = None

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: object = None) -> torch.Tensor:
        _check_qkv(queries, keys, values, same_size=False)
        q, k = self.W_q(queries), self.W_k(keys)  # (B, Tq, H), (B, Tk, H)
        features = torch.tanh(q.unsqueeze(2) + k.unsqueeze(1))  # (B, Tq, Tk, H)
        scores = self.w_v(features).squeeze(-1)  # (B, Tq, Tk)
        self.attention_weights = masked_softmax(scores, valid_lens)  # (B, Tq, Tk)
        return torch.bmm(self.dropout(self.attention_weights), values)  # (B, Tq, dv)


class DotProductAttention(nn.Module):
    """Dot-product attention; scaled by ``1/sqrt(d)`` unless ``scaled=False``.

    ``forward(queries (batch, num_queries, d), keys (batch, num_kv, d), values
    (batch, num_kv, d_v), valid_lens=None, need_weights=True)`` returns
    ``(batch, num_queries, d_v)``.  With ``need_weights=True`` (the teaching
    path) it keeps ``scores`` and ``attention_weights``, both ``(batch,
    num_queries, num_kv)``.  With ``need_weights=False`` (the fast path) it calls
    ``F.scaled_dot_product_attention`` with the equivalent boolean mask and sets
    both attributes to None, so no stale weights are left behind.
    """

    def __init__(self, dropout: float = 0.0, scaled: bool = True):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.scaled = scaled
        self.scores: torch.Tensor | None = None
        self.attention_weights: torch.Tensor | None = None

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: object = None, need_weights: bool = True) -> torch.Tensor:
        _check_qkv(queries, keys, values, same_size=True)
        scale = 1 / math.sqrt(queries.shape[-1]) if self.scaled else 1.0
        if not need_weights:
            self.scores = self.attention_weights = None
            return _sdpa(queries, keys, values, valid_lens, scale, self.dropout)
        self.scores = torch.bmm(queries, keys.transpose(1, 2)) * scale  # (B, Tq, Tk)
        self.attention_weights = masked_softmax(self.scores, valid_lens)  # (B, Tq, Tk)
        return torch.bmm(self.dropout(self.attention_weights), values)  # (B, Tq, dv)


def _sdpa(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, valid_lens: object,
          scale: float, dropout: nn.Dropout) -> torch.Tensor:
    """Fast path: ``F.scaled_dot_product_attention`` with valid lengths as a boolean mask."""
    batch, num_queries, _ = queries.shape
    mask = None
    if valid_lens is not None:
        mask = valid_lens_to_mask(valid_lens, num_queries, keys.shape[1], batch,
                                  queries.device)  # (B, Tq, Tk)
    p = dropout.p if dropout.training else 0.0
    out = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask,
                                         dropout_p=p, scale=scale)  # (B, Tq, dv)
    if mask is not None:  # rows with no valid key: zeros, as in the teaching path
        out = out.masked_fill(~mask.any(-1, keepdim=True), 0.0)
    return out


class BilinearAttention(nn.Module):
    """Bilinear ("general", Luong) attention: ``score(k, q) = k^T W q``.

    ``W`` is ``(key_size, query_size)``, so queries and keys may have different
    sizes.  ``forward(queries (batch, num_queries, query_size), keys (batch,
    num_kv, key_size), values (batch, num_kv, d_v), valid_lens=None)`` returns
    ``(batch, num_queries, d_v)`` and keeps ``scores`` and ``attention_weights``
    ``(batch, num_queries, num_kv)``.
    """

    def __init__(self, query_size: int, key_size: int, dropout: float = 0.0):
        super().__init__()
        self.W = nn.Parameter(torch.randn(key_size, query_size) / math.sqrt(query_size))
        self.dropout = nn.Dropout(dropout)
        self.scores: torch.Tensor | None = None
        self.attention_weights: torch.Tensor | None = None

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: object = None) -> torch.Tensor:
        _check_qkv(queries, keys, values, same_size=False)
        key_size, query_size = self.W.shape
        if queries.shape[-1] != query_size or keys.shape[-1] != key_size:
            raise ValueError(f"W is (key_size={key_size}, query_size={query_size}), got queries "
                             f"{_shape(queries)} and keys {_shape(keys)}")
        projected = queries @ self.W.T  # (B, Tq, dk)
        self.scores = torch.bmm(projected, keys.transpose(1, 2))  # (B, Tq, Tk)
        self.attention_weights = masked_softmax(self.scores, valid_lens)  # (B, Tq, Tk)
        return torch.bmm(self.dropout(self.attention_weights), values)  # (B, Tq, dv)


def scaled_dot_product(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """UvA Tutorial 6's function: ``softmax(q k^T / sqrt(d)) v`` over any leading dims.

    ``q`` ``(..., num_queries, d)``, ``k`` ``(..., num_kv, d)``, ``v`` ``(...,
    num_kv, d_v)``; ``mask`` broadcastable to ``(..., num_queries, num_kv)``,
    0/False = masked.  Returns ``(values (..., num_queries, d_v), attention
    (..., num_queries, num_kv))``.  Fully masked rows get zero weights.
    """
    if (min(q.dim(), k.dim(), v.dim()) < 2 or q.shape[-1] != k.shape[-1]
            or k.shape[-2] != v.shape[-2]):
        raise ValueError(f"need q (..., num_queries, d), k (..., num_kv, d), v (..., num_kv, "
                         f"d_v), got q {_shape(q)}, k {_shape(k)}, v {_shape(v)}")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError as err:
        raise ValueError(f"q, k and v must have the same (or broadcastable) leading dims, "
                         f"got q {_shape(q)}, k {_shape(k)}, v {_shape(v)}") from err
    logits = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, Tk)
    if mask is None:
        attention = F.softmax(logits, dim=-1)
    else:
        try:
            keep = torch.broadcast_to(mask.to(logits.device) != 0, logits.shape)
        except RuntimeError as err:
            raise ValueError(f"mask {_shape(mask)} does not broadcast to the attention "
                             f"logits {_shape(logits)}") from err
        attention = _softmax_keep(logits, keep)  # (..., Tq, Tk)
    return attention @ v, attention  # (..., Tq, dv), (..., Tq, Tk)


# ----------------------------------------------------------------------------
# Chapter 05: multi-head attention (d2l's layout: heads folded into the batch)
# ----------------------------------------------------------------------------


def transpose_qkv(X: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(batch, n, num_hiddens)`` -> ``(batch * num_heads, n, num_hiddens / num_heads)``."""
    X = X.reshape(X.shape[0], X.shape[1], num_heads, -1)  # (B, n, h, d_h)
    X = X.permute(0, 2, 1, 3)  # (B, h, n, d_h)
    return X.reshape(-1, X.shape[2], X.shape[3])  # (B*h, n, d_h)


def transpose_output(X: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Undo :func:`transpose_qkv`: ``(batch * num_heads, n, d_h)`` -> ``(batch, n, num_hiddens)``.
    """
    X = X.reshape(-1, num_heads, X.shape[1], X.shape[2])  # (B, h, n, d_h)
    X = X.permute(0, 2, 1, 3)  # (B, n, h, d_h)
    return X.reshape(X.shape[0], X.shape[1], -1)  # (B, n, h*d_h)


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with d2l's names and layout.

    ``W_q``, ``W_k``, ``W_v`` project to ``num_hiddens`` (lazy unless
    ``query_size``/``key_size``/``value_size`` are given), heads split
    ``num_hiddens`` evenly, ``W_o`` mixes them.  ``forward(queries (batch,
    num_queries, d_q), keys (batch, num_kv, d_k), values (batch, num_kv, d_v),
    valid_lens=None, need_weights=True)`` returns ``(batch, num_queries,
    num_hiddens)``; ``attention_weights`` is ``(batch, num_heads, num_queries,
    num_kv)``, or None after a fast-path call (``need_weights=False``).

    Raises ``ValueError`` at construction if ``num_heads`` does not divide
    ``num_hiddens``.
    """

    def __init__(self, num_hiddens: int, num_heads: int, dropout: float = 0.0, bias: bool = False,
                 query_size: int | None = None, key_size: int | None = None,
                 value_size: int | None = None):
        super().__init__()
        if num_heads < 1 or num_hiddens % num_heads:
            raise ValueError(f"num_heads must divide num_hiddens, got num_hiddens={num_hiddens} "
                             f"and num_heads={num_heads}")
        self.num_heads = num_heads
        self.attention = DotProductAttention(dropout)
        self.W_q = _projection(query_size, num_hiddens, bias)
        self.W_k = _projection(key_size, num_hiddens, bias)
        self.W_v = _projection(value_size, num_hiddens, bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.attention_weights: torch.Tensor | None = None

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: object = None, need_weights: bool = True) -> torch.Tensor:
        _check_qkv(queries, keys, values, same_size=False)
        batch, num_queries, num_kv = queries.shape[0], queries.shape[1], keys.shape[1]
        q = transpose_qkv(self.W_q(queries), self.num_heads)  # (B*h, Tq, d_h)
        k = transpose_qkv(self.W_k(keys), self.num_heads)  # (B*h, Tk, d_h)
        v = transpose_qkv(self.W_v(values), self.num_heads)  # (B*h, Tk, d_h)
        if valid_lens is not None:
            lengths = _check_lengths(valid_lens, batch, num_queries, num_kv, queries.device)
            valid_lens = lengths.repeat_interleave(self.num_heads, dim=0)  # (B*h, Tq)
        output = self.attention(q, k, v, valid_lens, need_weights)  # (B*h, Tq, d_h)
        weights = self.attention.attention_weights
        self.attention_weights = None if weights is None else weights.reshape(
            batch, self.num_heads, num_queries, num_kv)  # (B, h, Tq, Tk)
        return self.W_o(transpose_output(output, self.num_heads))  # (B, Tq, num_hiddens)


def _projection(in_features: int | None, out_features: int, bias: bool) -> nn.Module:
    if in_features is None:
        return nn.LazyLinear(out_features, bias=bias)
    return nn.Linear(in_features, out_features, bias=bias)


# ----------------------------------------------------------------------------
# Chapter sections below are filled by the chapters that need them.
# ----------------------------------------------------------------------------


# --- Chapter 01: Nadaraya-Watson attention pooling ---


def _check_positive(name: str, value: object, meaning: str) -> float:
    """``value`` as a float, or a ValueError/TypeError naming ``name`` and what it means."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{name} ({meaning}) must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} ({meaning}) must be a positive finite number, got {value}")
    return float(value)


def nadaraya_watson(x_query: torch.Tensor, x_key: torch.Tensor, y_key: torch.Tensor,
                    sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Nadaraya-Watson kernel regression with a Gaussian kernel, written as attention pooling.

    ``x_query`` ``(num_queries,)`` are the queries, ``x_key`` ``(num_kv,)`` the
    keys and ``y_key`` ``(num_kv,)`` the values; ``sigma`` > 0 is the kernel
    width.  The attention weights ``(num_queries, num_kv)`` are
    ``softmax(-(x_query - x_key)^2 / (2 sigma^2))`` over the keys, so each row
    sums to 1, and the prediction ``(num_queries,)`` is ``weights @ y_key``.
    Returns ``(y_hat, weights)``; the inputs are not modified.
    """
    _check_tensor("x_query", x_query, 1, "(num_queries,)")
    _check_tensor("x_key", x_key, 1, "(num_kv,)")
    _check_tensor("y_key", y_key, 1, "(num_kv,)")
    if x_key.shape != y_key.shape or x_key.numel() == 0:
        raise ValueError("x_key and y_key must be (num_kv,) with the same num_kv >= 1, got "
                         f"x_key {_shape(x_key)} and y_key {_shape(y_key)}")
    sigma = _check_positive("sigma", sigma, "the kernel width")
    diffs = x_query[:, None] - x_key[None, :]  # (Tq, Tk)
    weights = F.softmax(-diffs**2 / (2 * sigma**2), dim=-1)  # (Tq, Tk)
    return weights @ y_key, weights  # (Tq,), (Tq, Tk)


def _index_ticks(ax_set_ticks: Callable, x: np.ndarray, num: int = 5) -> None:
    """About ``num`` ticks at evenly spaced indices of ``x``, labelled with the values of ``x``."""
    positions = np.arange(0, len(x), max(1, math.ceil(len(x) / num)))
    ax_set_ticks(positions, [f"{x[i]:.1f}" for i in positions])


def _fixed_yticks(ax: Axes, low: float, high: float, intervals: int = 4) -> None:
    """Fit ``low .. high`` (plus 5 %) with ``intervals`` steps of 1, 2 or 5 times a power of ten.

    The ticks then sit at the same heights whatever the data, so an update
    relabels them rather than redrawing the axis (see :func:`figure_png`).
    """
    pad = 0.05 * max(high - low, 1e-6)
    low, high = low - pad, high + pad
    step = _nice_ceiling((high - low) / intervals)
    while math.floor(low / step) * step + intervals * step < high:
        step = _nice_ceiling(step * 1.01)
    ticks = math.floor(low / step) * step + step * np.arange(intervals + 1)
    decimals = max(0, -math.floor(math.log10(step)))
    ax.set_ylim(ticks[0], ticks[-1])
    ax.set_yticks(ticks, [f"{t:.{decimals}f}" for t in ticks])


NW_TICKS = np.linspace(0, 1, 6)  # colour-bar ticks, as fractions of the image's range


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is >= ``value`` (> 0)."""
    value = max(value, 1e-6)
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value * (1 - 1e-9))


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
    returns the figure.  ``query`` is a row index into ``x_query``.
    """

    def __init__(self, x_train: torch.Tensor, y_train: torch.Tensor, x_query: torch.Tensor,
                 y_true: torch.Tensor | None = None, sigma: float = 1.0, query: int | None = None):
        self.x_train, self.y_train, self.x_query = x_train, y_train, x_query
        self.y_true = None if y_true is None else _to_numpy(y_true)
        if self.y_true is not None and self.y_true.shape != tuple(x_query.shape):
            raise ValueError(f"y_true must be (num_queries,) like x_query {_shape(x_query)}, "
                             f"got {self.y_true.shape}")
        self.sigma = _check_positive("sigma", sigma, "the kernel width")
        self.query = len(x_query) // 2
        self._compute()
        self.fig = Figure(figsize=(12, 4.8), layout="constrained")
        self._draw()
        self.update(query=query)  # titles set before the layout is computed, so they fit
        freeze_layout(self.fig)
        for ax in (self.colorbar.ax, self.axes[2]):  # their tick labels change with sigma
            _pin_ylabel(ax)

    def _compute(self) -> None:
        y_hat, weights = nadaraya_watson(self.x_query, self.x_train, self.y_train, self.sigma)
        self.y_hat, self.weights = _to_numpy(y_hat), _to_numpy(weights)  # (Tq,), (Tq, Tk)

    def _draw(self) -> None:
        xs, ys, xq = _to_numpy(self.x_train), _to_numpy(self.y_train), _to_numpy(self.x_query)
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
        _index_ticks(ax_w.set_xticks, xs)
        _index_ticks(ax_w.set_yticks, xq)
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

        Arguments left as None keep their current value.
        """
        if sigma is not None:
            self.sigma = _check_positive("sigma", sigma, "the kernel width")
        if query is not None:
            if not isinstance(query, int | np.integer) or not 0 <= query < len(self.x_query):
                raise ValueError(f"query must be a row index in 0 .. {len(self.x_query) - 1}, "
                                 f"got {query!r}")
            self.query = int(query)
        self._compute()
        self._redraw()
        return self.fig

    def _redraw(self) -> None:
        q, row = self.query, self.weights[self.query]  # (Tk,)
        xq = float(self.x_query[q])
        self.image.set_data(self.weights)
        vmax = _nice_ceiling(float(self.weights.max()))
        self.image.set_clim(0, vmax)
        self.colorbar.set_ticks(NW_TICKS, labels=[f"{vmax * t:.3g}" for t in NW_TICKS])
        self.row_box.set_ydata([q - 0.5, q - 0.5, q + 0.5, q + 0.5, q - 0.5])
        self.weights_title.set_text(f"attention weights (rows sum to 1), σ = {self.sigma:.3g}")
        self.curve.set_ydata(self.y_hat)
        self.marker.set_data([xq], [self.y_hat[q]])
        self.fit_line.set_xdata([xq, xq])
        self.row_line.set_xdata([xq, xq])
        fit = "Nadaraya-Watson fit"
        if self.y_true is not None:
            self.mse = float(np.mean((self.y_hat - self.y_true) ** 2))
            fit += f": mean squared error vs true f = {self.mse:.3f}"
        self.fit_title.set_text(fit)
        self.bars.set_verts(self._bar_verts(row))
        top = _nice_ceiling(1.15 * float(row.max()))
        self.axes[2].set_ylim(0, top)
        self.axes[2].set_yticks([0, top / 2, top], [f"{v:.3g}" for v in (0, top / 2, top)])
        self.row_title.set_text(f"row {q}: weights of query x = {xq:.2f}; largest "
                                f"{row.max():.2f}, sum {row.sum():.2f}")

    def changing_artists(self) -> list[Artist]:
        """Everything but the data points, the true curve and the fixed axes."""
        return [self.image, *self.colorbar.ax.get_yticklabels(), self.row_box, self.weights_title,
                self.curve, self.marker, self.fit_line, self.fit_title, self.bars, self.row_line,
                *self.axes[2].get_yticklabels(), self.row_title]

    def to(self, device: torch.device | str) -> NadarayaWatsonExplorer:
        self.device = torch.device(device)
        self.x_train = self.x_train.to(self.device)
        self.y_train = self.y_train.to(self.device)
        self.x_query = self.x_query.to(self.device)
        return self


class SoftmaxTemperatureExplorer(Explorer):
    """Notebook 00's warm-up: ``softmax(scores / temperature)`` over each row, as a heatmap.

    ``scores`` ``(num_queries, num_kv)``; tick labels name the keys and queries.
    ``update(temperature=...)`` changes the heatmap's data and its printed
    values in place and returns the figure.  Each row of ``self.weights`` sums to 1.
    """

    def __init__(self, scores: torch.Tensor, xticklabels: Sequence[str] | None = None,
                 yticklabels: Sequence[str] | None = None, temperature: float = 1.0):
        _check_tensor("scores", scores, 2, "(num_queries, num_kv)")
        self.scores = scores.detach().clone()
        self.temperature = _check_positive("temperature", temperature, "divides the scores")
        self.weights = F.softmax(self.scores / self.temperature, dim=-1)  # (Tq, Tk)
        self.grid = HeatmapGrid(self.weights, "Keys", "Queries", [self._title()],
                                figsize=(3.6, 3.0), vmax=1.0, xticklabels=xticklabels,
                                yticklabels=yticklabels, annotate=True)
        self.fig = self.grid.fig
        self.title = self.grid.axes[0, 0].title
        for text in self.grid.texts:
            text.set_fontsize(9)
        self._contrast_texts()

    def _title(self) -> str:
        return f"softmax(scores / {self.temperature:.2g})"

    def _contrast_texts(self) -> None:
        """Printed values in white on dark cells, black on light ones."""
        for text, weight in zip(self.grid.texts, _to_numpy(self.weights).reshape(-1), strict=True):
            text.set_color("white" if weight > 0.55 else "black")

    def update(self, temperature: float | None = None) -> Figure:
        """Recompute the weights at ``temperature`` (None keeps it); returns the figure."""
        if temperature is not None:
            self.temperature = _check_positive("temperature", temperature, "divides the scores")
        self.weights = F.softmax(self.scores / self.temperature, dim=-1)  # (Tq, Tk)
        self.title.set_text(self._title())
        self.grid.set_matrices(self.weights)
        self._contrast_texts()
        return self.fig

    def changing_artists(self) -> list[Artist]:
        return [*self.grid.changing_artists(), self.title]

    def to(self, device: torch.device | str) -> SoftmaxTemperatureExplorer:
        self.device = torch.device(device)
        self.scores = self.scores.to(self.device)
        return self


# --- Chapter 02: masked-softmax explorer ---


class MaskedSoftmaxExplorer(Explorer):
    """Masked-softmax weights of fixed ``scores`` as each batch row's valid length changes.

    ``scores`` is ``(batch, num_queries, num_kv)``.  The figure has one panel per
    batch row (queries down, keys across), every cell annotated with its weight;
    the masked keys (positions >= the row's valid length) lie under a grey
    hatched band.  ``update(valid_len_0=2, valid_len_1=3, ...)`` takes one
    keyword per batch row, named as in :attr:`names`, so a dict of one
    ``IntSlider`` per row plugs straight into :func:`explorer_panel`; rows left
    out keep their length.  ``valid_lens`` (default: every key valid) sets the
    starting lengths.
    """

    def __init__(self, scores: torch.Tensor, valid_lens: Sequence[int] | None = None,
                 figsize: tuple[float, float] = (2.8, 2.2)):
        _check_tensor("scores", scores, 3, "(batch, num_queries, num_kv)")
        batch, _, num_kv = scores.shape
        self.scores = scores.detach().clone()  # (B, Tq, Tk)
        self.names = tuple(f"valid_len_{i}" for i in range(batch))
        valid_lens = (num_kv,) * batch if valid_lens is None else tuple(valid_lens)
        if len(valid_lens) != batch:
            raise ValueError(f"valid_lens must have one length per batch row ({batch}), "
                             f"got {len(valid_lens)}")
        self.valid_lens = (num_kv,) * batch  # what rows left out of _checked fall back to
        self.valid_lens = self._checked(dict(zip(self.names, valid_lens, strict=True)))
        self.grid = HeatmapGrid(self._weights(), "keys", "queries", figsize=figsize, vmin=0.0,
                                vmax=1.0, annotate=True, titles=self._titles())
        self.fig = self.grid.fig
        self.grid.axes[0, 0].set_xticks(range(num_kv))  # shared by every panel
        self.grid.axes[0, 0].set_yticks(range(scores.shape[1]))
        self.masks = [ax.axvspan(num_kv - 0.5, num_kv - 0.5, facecolor="0.88", edgecolor="0.45",
                                 hatch="//", linewidth=0) for ax in self.grid.axes[0]]
        self.update()

    def _checked(self, lengths: Mapping[str, object]) -> tuple[int, ...]:
        """The valid lengths after ``lengths`` (keyword -> int) is applied, checked."""
        unknown = sorted(set(lengths) - set(self.names))
        if unknown:
            raise TypeError(f"update takes the keywords {', '.join(self.names)}, got {unknown}")
        num_kv = self.scores.shape[-1]
        for name, n in lengths.items():
            if isinstance(n, bool) or not isinstance(n, int | np.integer):
                raise TypeError(f"{name} must be an int, got {type(n).__name__}")
            if not 0 <= n <= num_kv:
                raise ValueError(f"{name} must lie in 0 .. num_kv={num_kv}, got {n}")
        return tuple(int(lengths.get(name, n))
                     for name, n in zip(self.names, self.valid_lens, strict=True))

    def _weights(self) -> torch.Tensor:
        lengths = torch.tensor(self.valid_lens, device=self.device)  # (B,)
        return masked_softmax(self.scores, lengths)  # (B, Tq, Tk)

    def _titles(self) -> list[str]:
        return [f"batch row {i}: valid_len={n}" for i, n in enumerate(self.valid_lens)]

    def update(self, **valid_lens: int) -> Figure:
        """Recompute the weights with the given lengths; redraws images, bands and labels."""
        self.valid_lens = self._checked(valid_lens)
        weights = _to_numpy(self._weights())  # (B, Tq, Tk)
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

    def to(self, device: torch.device | str) -> MaskedSoftmaxExplorer:
        """Move the scores; later updates compute the weights on ``device``."""
        self.device = torch.device(device)
        self.scores = self.scores.to(self.device)
        return self


# --- Chapter 03: additive-attention explorer ---


def additive_example_inputs(distinct_keys: bool = True, seed: int = 0,
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """d2l's additive-attention example: queries ``(2, 1, 20)``, keys ``(2, 10, 2)``, values
    ``(2, 10, 4)``.

    With ``distinct_keys=False`` every key is ``[1, 1]`` (d2l's choice); otherwise the
    keys are ``N(0, 1)`` draws.  Seeded by ``seed``; the global random state is untouched.
    """
    generator = torch.Generator().manual_seed(seed)
    queries = torch.randn(2, 1, 20, generator=generator)  # (B, Tq, dq)
    keys = (torch.randn(2, 10, 2, generator=generator) if distinct_keys
            else torch.ones(2, 10, 2))  # (B, Tk, dk)
    values = torch.arange(40, dtype=torch.float32).reshape(1, 10, 4).repeat(2, 1, 1)  # (B, Tk, dv)
    return queries, keys, values


class AdditiveAttentionExplorer(Explorer):
    """Weights of :class:`AdditiveAttention` on d2l's example batch, with distinct keys.

    One heatmap: a row per batch entry (each has one query), a column per key,
    every cell annotated with its weight.  :meth:`update` takes one valid length
    per batch row and ``num_hiddens``; the layer for a ``num_hiddens`` is built
    once, from ``seed`` (so a setting always gives the same picture), and reused.
    """

    def __init__(self, valid_lens: Sequence[int] = (2, 6), num_hiddens: int = 8, seed: int = 0,
                 distinct_keys: bool = True):
        self.seed = seed
        self.queries, self.keys, self.values = additive_example_inputs(distinct_keys, seed)
        self._layers: dict[int, AdditiveAttention] = {}
        self.grid = HeatmapGrid(np.zeros((2, self.keys.shape[1])), xlabel="Keys",
                                ylabel="Queries", figsize=(6.5, 2.2), vmin=0.0, vmax=1.0,
                                annotate=True, yticklabels=["batch 0", "batch 1"],
                                titles=["num_hiddens, valid_lens"])  # reserves the title's room
        self.fig = self.grid.fig
        self.title = self.grid.axes[0, 0].title
        self.update(valid_len_0=valid_lens[0], valid_len_1=valid_lens[1], num_hiddens=num_hiddens)

    def layer(self, num_hiddens: int) -> AdditiveAttention:
        """The (eval-mode) layer for ``num_hiddens``, built once from ``self.seed``."""
        if num_hiddens not in self._layers:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                layer = AdditiveAttention(num_hiddens, key_size=self.keys.shape[-1],
                                          query_size=self.queries.shape[-1])
            self._layers[num_hiddens] = layer.to(self.device).eval()
        return self._layers[num_hiddens]

    def weights(self, valid_len_0: int, valid_len_1: int, num_hiddens: int) -> torch.Tensor:
        """Attention weights ``(2, 1, num_kv)`` for the given valid lengths."""
        valid_lens = torch.tensor([valid_len_0, valid_len_1], device=self.device)
        layer = self.layer(num_hiddens)
        with torch.no_grad():
            layer(self.queries, self.keys, self.values, valid_lens)
        return layer.attention_weights

    def update(self, valid_len_0: int = 2, valid_len_1: int = 6, num_hiddens: int = 8) -> Figure:
        weights = self.weights(valid_len_0, valid_len_1, num_hiddens)  # (B, 1, Tk)
        self.grid.set_matrices(weights[:, 0])  # (B, Tk)
        self.title.set_text(f"num_hiddens={num_hiddens}, "
                            f"valid_lens=[{valid_len_0}, {valid_len_1}]")
        return self.fig

    def changing_artists(self) -> list[Artist]:
        return [*self.grid.changing_artists(), self.title]

    def to(self, device: torch.device | str) -> AdditiveAttentionExplorer:
        self.device = torch.device(device)
        self.queries, self.keys, self.values = (t.to(self.device) for t in
                                                (self.queries, self.keys, self.values))
        for layer in self._layers.values():
            layer.to(self.device)
        return self


# --- Chapter 04: scaling experiment explorer ---

SCALING_DIMS = tuple(2 ** i for i in range(1, 11))  # d = 2 ... 1024


def softmax_jacobian_norm(weights: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of d softmax / d scores for each row of ``weights`` ``(..., num_kv)``.

    The Jacobian of ``p = softmax(s)`` is ``diag(p) - p p^T``; its squared norm is
    ``sum p^2 - 2 sum p^3 + (sum p^2)^2``.  It is largest for spread-out weights and
    tends to 0 as the softmax saturates (one weight near 1).  Returns ``(...)``.
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
    measured numbers.  :meth:`update` changes every artist in place.
    """

    STATS = ("max_weight", "entropy", "grad_norm")
    LABELS = {"max_weight": "largest weight", "entropy": "entropy / log Tk",
              "grad_norm": "‖∂softmax/∂s‖"}

    def __init__(self, d: int = 64, sigma: float = 1.0, dims: Sequence[int] = SCALING_DIMS,
                 num_queries: int = 128, num_kv: int = 32, seed: int = 0,
                 raw_range: float = 120.0, scaled_range: float = 8.0, num_bins: int = 60):
        self.dims = tuple(dims)
        generator = torch.Generator().manual_seed(seed)
        self.q = torch.randn(num_queries, max(self.dims), generator=generator)  # (n, d)
        self.k = torch.randn(num_queries, num_kv, max(self.dims), generator=generator)  # (n,Tk,d)
        self.bins = {"raw": np.linspace(-raw_range, raw_range, num_bins + 1),
                     "scaled": np.linspace(-scaled_range, scaled_range, num_bins + 1)}
        self._curves: dict[float, dict[str, dict[str, np.ndarray]]] = {}
        self._build_figure()
        self.update(d=d, sigma=sigma)
        freeze_layout(self.fig)

    def scores(self, d: int, sigma: float) -> dict[str, torch.Tensor]:
        """``{'raw': q.k, 'scaled': q.k / sqrt(d)}``, each ``(num_queries, num_kv)``."""
        if d not in self.dims:
            raise ValueError(f"d must be one of {self.dims}, got {d}")
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

    def update(self, d: int = 64, sigma: float = 1.0) -> Figure:
        scores = {kind: s.cpu() for kind, s in self.scores(d, sigma).items()}
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
        curves = self.curves(sigma)
        for (kind, stat), line in self.lines.items():
            line.set_ydata(curves[kind][stat])
        self.marker.set_xdata([d, d])
        stats = {kind: softmax_stats(s) for kind, s in scores.items()}
        rows = [("variance", *(f"{float(s.var()):10.2f}" for s in scores.values())),
                ("theory σ⁴·d, σ⁴", *(f"{theory_var[k]:10.2f}" for k in scores)),
                *((self.LABELS[stat], *(f"{stats[k][stat]:10.3f}" for k in scores))
                  for stat in self.STATS)]
        lines = [f"d = {d}, σ = {sigma:g}, Tk = {self.k.shape[1]}", "",
                 f"{'':18}{'q·k':>10}{'q·k/√d':>10}"]
        self.text.set_text("\n".join(lines + [f"{name:18}{a}{b}" for name, a, b in rows]))
        return self.fig

    def changing_artists(self) -> list[Artist]:
        """Histograms, curves, marker and table (the legends sit above every histogram)."""
        return [*self.stairs.values(), *self.theory.values(), *self.lines.values(),
                self.marker, self.text]

    def to(self, device: torch.device | str) -> ScalingExplorer:
        self.device = torch.device(device)
        self.q, self.k = self.q.to(self.device), self.k.to(self.device)
        return self


def time_scoring_functions(batch: int = 4, num_queries: int = 128, num_kv: int = 128,
                           d: int = 64, device: torch.device | str = "cpu", repeats: int = 5,
                           seed: int = 0) -> dict[str, float]:
    """Best-of-``repeats`` forward time (ms) of the four scoring models on one random batch.

    Additive uses ``num_hiddens = d``; bilinear a ``(d, d)`` matrix.  Weights are
    kept (the teaching path), so every model does the same amount of bookkeeping.
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    queries, keys, values = (torch.randn(batch, n, d, generator=generator).to(device)
                             for n in (num_queries, num_kv, num_kv))  # (B, n, d)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        models = {"additive": AdditiveAttention(d, key_size=d, query_size=d),
                  "dot product": DotProductAttention(scaled=False),
                  "scaled dot product": DotProductAttention(),
                  "bilinear": BilinearAttention(d, d)}
    times = {name: math.inf for name in models}
    with torch.no_grad():
        for model in models.values():
            model.to(device).eval()(queries, keys, values)  # warm-up
        for _ in range(repeats):  # round-robin: a busy spell does not hit one model only
            for name, model in models.items():
                ms = timed(lambda m=model: m(queries, keys, values), device)[1]
                times[name] = min(times[name], ms)
    return times


def timing_panel(run: Callable[[torch.device], str]) -> widgets.VBox:
    """GPU toggle + "Time it" button: a click shows ``run(device)`` (an HTML string).

    The toggle is disabled, with its reason, where CUDA is absent.
    """
    toggle, reason = gpu_toggle()
    button = widgets.Button(description="Time it", icon="clock")
    result = widgets.HTML()

    def click(_button) -> None:
        result.value = run(get_device(toggle.value))

    button.on_click(click)
    return widgets.VBox([widgets.HBox([toggle, button, reason]), result])


# --- Chapter 05: multi-head explorer ---

MULTIHEAD_SENTENCES = (("the", "cat", "sat", "on", "the", "mat"),
                       ("dogs", "chase", "cats", "<pad>", "<pad>", "<pad>"))


def token_embeddings(sentences: Sequence[Sequence[str]], size: int, seed: int = 0,
                     scale: float = 1.0) -> torch.Tensor:
    """One seeded random vector per distinct token: ``(batch, num_tokens, size)``.

    ``sentences`` are equally long token lists (pad them).  Equal tokens get
    equal vectors (there is no position information), entries are
    ``N(0, scale**2)``; the global random state is left untouched.
    """
    lengths = {len(sentence) for sentence in sentences}
    if len(lengths) != 1:
        raise ValueError(f"sentences must all have the same number of tokens (pad them), "
                         f"got lengths {[len(sentence) for sentence in sentences]}")
    vocab = sorted({token for sentence in sentences for token in sentence})
    generator = torch.Generator().manual_seed(seed)
    table = torch.randn(len(vocab), size, generator=generator) * scale  # (V, d)
    ids = torch.tensor([[vocab.index(token) for token in sentence] for sentence in sentences])
    return table[ids]  # (B, T, d)


class MultiHeadExplorer(Explorer):
    """Per-head self-attention weights of :class:`MultiHeadAttention` on a padded batch.

    One row of heatmaps per sentence (queries down, keys across, both labelled
    with the sentence's tokens), one column per head.  ``max_heads`` columns are
    drawn once; :meth:`update` changes the image data in place and hides the
    columns beyond ``num_heads`` with ``set_visible``.  The layer is rebuilt
    from ``seed`` when ``num_heads`` changes, so a setting always gives the same
    picture; since ``W_q``, ``W_k``, ``W_v`` are ``(num_hiddens, num_hiddens)``
    whatever the head count, every head count uses the *same* matrices, split
    differently.  ``valid_lens`` defaults to each sentence's non-``<pad>`` count.
    """

    def __init__(self, sentences: Sequence[Sequence[str]] = MULTIHEAD_SENTENCES,
                 num_hiddens: int = 16, max_heads: int = 8, num_heads: int = 8,
                 valid_lens: Sequence[int] | None = None, seed: int = 0, scale: float = 2.0):
        if max_heads < 1 or num_hiddens % max_heads:
            raise ValueError(f"max_heads must divide num_hiddens, got num_hiddens={num_hiddens} "
                             f"and max_heads={max_heads}")
        self.tokens = [list(sentence) for sentence in sentences]
        self.num_hiddens, self.max_heads, self.seed = num_hiddens, max_heads, seed
        self.head_choices = [h for h in range(1, max_heads + 1) if num_hiddens % h == 0]
        self.X = token_embeddings(self.tokens, num_hiddens, seed, scale)  # (B, T, d)
        if valid_lens is None:
            valid_lens = [sum(token != "<pad>" for token in s) for s in self.tokens]
        self.valid_lens = list(valid_lens)
        self.num_heads = None
        self._build_figure()
        self.update(num_heads=num_heads)

    def _build_figure(self) -> None:
        batch, num_tokens = len(self.tokens), len(self.tokens[0])
        self.fig = Figure(figsize=(1.35 * self.max_heads + 1.2, 1.75 * batch),
                          layout="constrained")
        self.axes = self.fig.subplots(batch, self.max_heads, squeeze=False)
        blank = np.zeros((num_tokens, num_tokens))
        self.images = [[ax.imshow(blank, cmap="Reds", vmin=0.0, vmax=1.0,
                                  interpolation="nearest", aspect="auto") for ax in row]
                       for row in self.axes]
        for (r, c), ax in np.ndenumerate(self.axes):
            ax.set_xticks(range(num_tokens), self.tokens[r], rotation=90, fontsize=7)
            ax.set_yticks(range(num_tokens), self.tokens[r] if c == 0 else [], fontsize=7)
            if r == 0:
                ax.set_title(f"head {c + 1}", fontsize=9)
        for r, row in enumerate(self.axes):
            row[0].set_ylabel(f"queries (sentence {r + 1})", fontsize=8)
        self.fig.supxlabel("keys", fontsize=9)
        self.title = self.fig.suptitle(" ", fontsize=10)
        self.fig.colorbar(self.images[0][0], ax=self.axes, shrink=0.8, label="weight")
        freeze_layout(self.fig)

    def _build_layer(self, num_heads: int) -> MultiHeadAttention:
        """The layer for ``num_heads``, its weights drawn from ``seed`` (global RNG untouched)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            layer = MultiHeadAttention(self.num_hiddens, num_heads, query_size=self.num_hiddens,
                                       key_size=self.num_hiddens, value_size=self.num_hiddens)
        return layer.to(self.device).eval()

    def weights(self) -> torch.Tensor:
        """Self-attention weights ``(batch, num_heads, num_tokens, num_tokens)`` on the CPU."""
        lengths = torch.tensor(self.valid_lens, device=self.device)
        with torch.no_grad():
            self.layer(self.X, self.X, self.X, lengths)
        return self.layer.attention_weights.cpu()  # (B, h, T, T)

    def update(self, num_heads: int | None = None, **valid_lens: int) -> Figure:
        """Set ``num_heads`` and/or ``valid_len_0``, ``valid_len_1``, ...; redraw in place."""
        num_tokens = len(self.tokens[0])
        for name, value in valid_lens.items():
            index = name.removeprefix("valid_len_")
            if not (index.isdigit() and int(index) < len(self.tokens)):
                raise TypeError(f"unknown argument {name!r}: expected num_heads or valid_len_0 "
                                f".. valid_len_{len(self.tokens) - 1}")
            if not 0 <= value <= num_tokens:
                raise ValueError(f"{name} must lie in 0 .. {num_tokens}, got {value}")
        for name, value in valid_lens.items():
            self.valid_lens[int(name.removeprefix("valid_len_"))] = int(value)
        if num_heads is not None and num_heads != self.num_heads:
            if num_heads not in self.head_choices:
                raise ValueError(f"num_heads must be one of {self.head_choices} (divisors of "
                                 f"num_hiddens={self.num_hiddens} up to {self.max_heads}), "
                                 f"got {num_heads}")
            self.num_heads, self.layer = num_heads, self._build_layer(num_heads)
        weights = self.weights().numpy()  # (B, h, T, T)
        for r, row in enumerate(self.images):
            for c, image in enumerate(row):
                self.axes[r, c].set_visible(c < self.num_heads)
                if c < self.num_heads:
                    image.set_data(weights[r, c])
        self.title.set_text(f"num_heads = {self.num_heads} (d_h = "
                            f"{self.num_hiddens // self.num_heads}), valid_lens = "
                            f"{self.valid_lens}")
        return self.fig

    def changing_artists(self) -> list[Artist]:
        """Images and title; hiding a column rebuilds the cached background."""
        return [*(image for row in self.images for image in row), self.title]

    def to(self, device: torch.device | str) -> MultiHeadExplorer:
        self.device = torch.device(device)
        self.X, self.layer = self.X.to(self.device), self.layer.to(self.device)
        return self


# --- Chapter 06: seq2seq concat-rule Attn ---


class Attn(nn.Module):
    """The concat-rule attention of the PyTorch seq2seq tutorial, kept as written there.

    ``attn`` is ``Linear(query_size + key_size -> value_size1)`` and
    ``attn_combine`` is ``Linear(query_size + value_size2 -> output_size)``.
    ``forward(Q (1, n, query_size), K (1, n, key_size), V (1, value_size1,
    value_size2))`` returns ``(output (1, n, output_size), attn_weights (n,
    value_size1))``: the weights are ``softmax(attn([Q[0]; K[0]]))``, one slot
    per position of ``V``.  They are computed from ``Q`` and ``K`` alone, so
    they never compare the query with the values' content (location-based).
    The ``n`` rows share the one ``V``; :meth:`step` is the batched form.
    """

    def __init__(self, query_size: int, key_size: int, value_size1: int, value_size2: int,
                 output_size: int):
        super().__init__()
        self.query_size, self.key_size = query_size, key_size
        self.value_size1, self.value_size2 = value_size1, value_size2
        self.attn = nn.Linear(query_size + key_size, value_size1)
        self.attn_combine = nn.Linear(query_size + value_size2, output_size)

    def forward(self, Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_forward(Q, K, V)
        attn_weights = F.softmax(self.attn(torch.cat((Q[0], K[0]), 1)), dim=1)  # (n, vs1)
        attn_applied = torch.bmm(attn_weights.unsqueeze(0), V)  # (1, n, vs2)
        output = torch.cat((Q[0], attn_applied[0]), 1)  # (n, query_size + vs2)
        output = self.attn_combine(output).unsqueeze(0)  # (1, n, output_size)
        return output, attn_weights

    def step(self, q: torch.Tensor, k: torch.Tensor, values: torch.Tensor,
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched :meth:`forward`: each row has its own values.

        ``q`` ``(batch, query_size)``, ``k`` ``(batch, key_size)``, ``values``
        ``(batch, value_size1, value_size2)`` -> ``(output (batch, output_size),
        weights (batch, value_size1))``.  With batch 1 it equals ``forward``.
        """
        batch = q.shape[0] if isinstance(q, torch.Tensor) and q.dim() == 2 else 0
        self._check({"q": (q, (batch, self.query_size)), "k": (k, (batch, self.key_size)),
                     "values": (values, (batch, self.value_size1, self.value_size2))})
        weights = F.softmax(self.attn(torch.cat((q, k), 1)), dim=1)  # (B, vs1)
        applied = torch.bmm(weights.unsqueeze(1), values)  # (B, 1, vs2)
        return self.attn_combine(torch.cat((q, applied[:, 0]), 1)), weights  # (B, out)

    def _check_forward(self, Q: object, K: object, V: object) -> None:
        n = Q.shape[1] if isinstance(Q, torch.Tensor) and Q.dim() == 3 else 0
        self._check({"Q": (Q, (1, n, self.query_size)), "K": (K, (1, n, self.key_size)),
                     "V": (V, (1, self.value_size1, self.value_size2))})

    @staticmethod
    def _check(expected: dict[str, tuple[object, tuple[int, ...]]]) -> None:
        """``{name: (tensor, expected shape)}``; 0 in a shape is "whatever the first has"."""
        for name, (tensor, shape) in expected.items():
            layout = "(" + ", ".join(str(s or "n") for s in shape) + ")"
            _check_tensor(name, tensor, len(shape), layout)
            if any(s and s != t for s, t in zip(shape, tensor.shape, strict=True)):
                given = ", ".join(f"{n} {_shape(t)}" for n, (t, _) in expected.items()
                                  if isinstance(t, torch.Tensor))
                raise ValueError(f"{name} must have shape {layout}, got {given}")


BOS = 10  # digits 0-9 are tokens 0-9; the decoder starts from this begin-of-sequence token


def reversal_data(num_examples: int, num_steps: int, seed: int = 0,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random digit strings and their reversals: ``(src, tgt)``, both ``(num_examples, num_steps)``
    long tensors of digits 0-9, drawn from a generator seeded with ``seed``."""
    if num_examples < 1 or num_steps < 1:
        raise ValueError(f"num_examples and num_steps must be >= 1, got {num_examples} and "
                         f"{num_steps}")
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(0, 10, (num_examples, num_steps), generator=generator)  # (N, T)
    return src, src.flip(1)


class ToySeq2Seq(nn.Module):
    """A tiny GRU encoder-decoder with attention, for fixed-length digit tasks.

    The encoder is a bidirectional GRU: ``num_steps`` outputs of size
    ``2 * num_hiddens`` (the values), its two final states summed start the
    decoder (a ``GRUCell`` of size ``num_hiddens``).  ``scoring='concat'`` uses
    :class:`Attn` (query: the decoder's input embedding, key: its hidden state),
    as the PyTorch tutorial's decoder does; ``scoring='additive'`` uses
    :class:`AdditiveAttention` (query: the hidden state, keys = values: the
    encoder outputs) and a combine layer of the same shape.  Everything else
    is shared.

    ``forward(src (batch, num_steps), tgt_in=None)`` returns logits ``(batch,
    num_steps, vocab_size)``; ``tgt_in`` (starting with :data:`BOS`) is teacher
    forcing, None decodes greedily.  ``attention_weights`` is ``(batch,
    num_steps, num_steps)``: decoder steps x source positions.
    """

    def __init__(self, scoring: str, num_hiddens: int = 32, num_steps: int = 8,
                 vocab_size: int = 11):
        super().__init__()
        if scoring not in ("concat", "additive"):
            raise ValueError(f"scoring must be 'concat' or 'additive', got {scoring!r}")
        self.scoring, self.num_steps = scoring, num_steps
        H = num_hiddens
        self.src_embedding = nn.Embedding(vocab_size, H)
        self.tgt_embedding = nn.Embedding(vocab_size, H)
        self.encoder = nn.GRU(H, H, batch_first=True, bidirectional=True)
        self.decoder = nn.GRUCell(H, H)
        self.dense = nn.Linear(H, vocab_size)
        if scoring == "concat":
            self.attention = Attn(H, H, num_steps, 2 * H, H)
        else:
            self.attention = AdditiveAttention(H, key_size=2 * H, query_size=H)
            self.attn_combine = nn.Linear(3 * H, H)
        self.attention_weights: torch.Tensor | None = None

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(src, torch.Tensor) or src.dim() != 2 or src.shape[1] != self.num_steps:
            given = _shape(src) if isinstance(src, torch.Tensor) else type(src).__name__
            raise ValueError(f"src must be (batch, num_steps={self.num_steps}), got {given}")
        enc_outputs, h = self.encoder(self.src_embedding(src))  # (B, Tk, 2H), (2, B, H)
        h, token = h.sum(0), torch.full_like(src[:, 0], BOS)  # (B, H), (B,)
        logits, weights = [], []
        for t in range(self.num_steps):
            x = self.tgt_embedding(token if tgt_in is None else tgt_in[:, t])  # (B, H)
            x, w = self._attend(x, h, enc_outputs)  # (B, H), (B, Tk)
            h = self.decoder(F.relu(x), h)  # (B, H)
            logits.append(self.dense(h))  # (B, V)
            weights.append(w)
            token = logits[-1].argmax(-1)  # (B,)
        self.attention_weights = torch.stack(weights, 1)  # (B, Tq, Tk)
        return torch.stack(logits, 1)  # (B, Tq, V)

    def _attend(self, x: torch.Tensor, h: torch.Tensor, enc_outputs: torch.Tensor,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.scoring == "concat":
            return self.attention.step(x, h, enc_outputs)  # (B, H), (B, Tk)
        context = self.attention(h[:, None], enc_outputs, enc_outputs)  # (B, 1, 2H)
        combined = self.attn_combine(torch.cat((x, context[:, 0]), 1))  # (B, H)
        return combined, self.attention.attention_weights[:, 0]  # (B, H), (B, Tk)


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
        self.grid = HeatmapGrid(blank, "source digit (key)", "output digit (query)",
                                titles=[" "],  # reserves the title's room in the frozen layout
                                figsize=(3.6, 3.2), vmin=0.0, vmax=1.0,
                                xticklabels=["0"] * self.num_steps,
                                yticklabels=["<bos>"] * self.num_steps)  # widest output label
        self.fig, self.ax = self.grid.fig, self.grid.axes[0, 0]
        _pin_ylabel(self.ax)
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

    def to(self, device: torch.device | str) -> AlignmentExplorer:
        self.device = torch.device(device)
        for net in self.models.values():
            net.to(self.device)
        return self


# --- Chapter 07: cumulative-max attention ---


class MaxStateSuper(nn.Module):
    """SamOut's cumulative-max block, as the source article describes it.

    One ``Linear(dim_size, 3 * dim_size)`` gives three tensors ``out``,
    ``out1``, ``out2``, each split into heads ``(batch, heads, seq, d_h)``.
    Then ``out = cummax(out, dim=2)`` (running max over positions),
    ``out_score = cummax(out, dim=1)`` (running max over *heads*: head ``i``
    sees heads ``0 .. i``) and the result ``(out_score + out1) * out2 + out1``
    is merged back to ``(batch, seq, dim_size)``.  Causal: output ``t`` depends
    on inputs ``0 .. t`` only.  The article's ``state`` argument (for
    step-by-step decoding) is left out.

    Raises ``ValueError`` at construction if ``heads`` does not divide ``dim_size``.
    """

    def __init__(self, dim_size: int, heads: int):
        super().__init__()
        if heads < 1 or dim_size < 1 or dim_size % heads:
            raise ValueError(f"heads must divide dim_size, got dim_size={dim_size} and "
                             f"heads={heads}")
        self.dim_size, self.heads = dim_size, heads
        self.combined = nn.Linear(dim_size, 3 * dim_size)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` ``(batch, seq, dim_size)`` -> ``out, out1, out2``, each ``(batch, heads, seq,
        d_h)``."""
        _check_tensor("x", x, 3, "(batch, seq, dim_size)")
        if x.shape[-1] != self.dim_size:
            raise ValueError(f"x must be (batch, seq, dim_size={self.dim_size}), "
                             f"got shape {_shape(x)}")
        batch, seq, _ = x.shape
        parts = self.combined(x).chunk(3, dim=-1)  # 3 x (B, T, d)
        return tuple(part.reshape(batch, seq, self.heads, -1).permute(0, 2, 1, 3)
                     for part in parts)  # 3 x (B, h, T, d_h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, out1, out2 = self.project(x)  # 3 x (B, h, T, d_h)
        out = torch.cummax(out, dim=2).values  # (B, h, T, d_h): max over positions <= t
        out_score = torch.cummax(out, dim=1).values  # (B, h, T, d_h): max over heads <= i
        out = (out_score + out1) * out2 + out1  # (B, h, T, d_h)
        return out.permute(0, 2, 1, 3).reshape(x.shape)  # (B, T, d)


def max_state_sources(block: MaxStateSuper, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each running max of ``block`` came from: ``(positions, heads)``.

    Both are long tensors ``(batch, heads, seq, d_h)``: ``out_score[b, i, t, c]``
    equals the projected ``out[b, heads[b, i, t, c], positions[b, i, t, c], c]``,
    with ``positions <= t`` and ``heads <= i``.  This plays the part of
    attention weights, which this block does not have.
    """
    *_, positions, heads = _running_maxima(block, x)
    return positions, heads


def _running_maxima(block: MaxStateSuper, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(out, running, score, positions, heads)``, each ``(batch, heads, seq, d_h)``.

    ``out`` is the projection, ``running`` its cummax over positions, ``score``
    that cummax over heads; ``positions`` and ``heads`` say where each came
    from (see :func:`max_state_sources`).
    """
    with torch.no_grad():
        out, _, _ = block.project(x)  # (B, h, T, d_h)
        running, position_index = torch.cummax(out, dim=2)  # 2 x (B, h, T, d_h)
        score, head_index = torch.cummax(running, dim=1)  # 2 x (B, h, T, d_h)
    return out, running, score, position_index.gather(1, head_index), head_index


class CausalSelfAttention(MultiHeadAttention):
    """Causal multi-head self-attention with :class:`MaxStateSuper`'s interface.

    ``forward(x (batch, seq, dim_size))`` returns ``(batch, seq, dim_size)``;
    query ``t`` sees keys ``0 .. t``.  ``fused=False`` is the teaching path
    (:class:`MultiHeadAttention` with valid lengths ``1 .. seq``, keeping
    ``attention_weights`` ``(batch, heads, seq, seq)``); ``fused=True`` calls
    ``F.scaled_dot_product_attention(..., is_causal=True)`` on the same
    projections, so no ``(seq, seq)`` tensor is kept.
    """

    def __init__(self, dim_size: int, heads: int, fused: bool = False):
        super().__init__(dim_size, heads, query_size=dim_size, key_size=dim_size,
                         value_size=dim_size)
        self.dim_size, self.fused = dim_size, fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_tensor("x", x, 3, "(batch, seq, dim_size)")
        if x.shape[-1] != self.dim_size:
            raise ValueError(f"x must be (batch, seq, dim_size={self.dim_size}), "
                             f"got shape {_shape(x)}")
        batch, seq, _ = x.shape
        if not self.fused:
            lengths = torch.arange(1, seq + 1, device=x.device).expand(batch, seq)  # (B, T)
            return super().forward(x, x, x, lengths)  # (B, T, d)
        q, k, v = (W(x).reshape(batch, seq, self.num_heads, -1).transpose(1, 2)
                   for W in (self.W_q, self.W_k, self.W_v))  # 3 x (B, h, T, d_h)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, h, T, d_h)
        self.attention_weights = None
        return self.W_o(out.transpose(1, 2).reshape(batch, seq, -1))  # (B, T, d)


class MaxSourceExplorer(Explorer):
    """Which earlier position supplied each running max of a :class:`MaxStateSuper`.

    ``x`` is ``(batch, seq, dim_size)``; row 0 is shown.  Left: the source
    position of every (position, channel) of one head; middle: the source head;
    right: one channel's projected value, its running max over positions and
    the final ``out_score`` after the max over heads.  ``update(head, channel,
    length)`` shows the first ``length`` positions (defaults: the last head,
    which takes the max over every head; channel 0; the whole sequence); the
    axes keep the whole sequence, so later positions stay blank.
    """

    def __init__(self, block: MaxStateSuper, x: torch.Tensor):
        self.block, self.x = block, x[:1]
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

    def to(self, device: torch.device | str) -> MaxSourceExplorer:
        self.device = torch.device(device)
        self.block, self.x = self.block.to(self.device), self.x.to(self.device)
        return self

    def update(self, head: int | None = None, channel: int = 0,
               length: int | None = None) -> Figure:
        head = self.block.heads - 1 if head is None else head
        seq = self.x.shape[1] if length is None else length
        # each (1, h, T, d_h)
        out, running, score, positions, heads = _running_maxima(self.block, self.x[:, :seq])
        out, running = out[0, :, :, channel], running[0, :, :, channel]  # (h, T)
        score = score[0, head, :, channel]  # (T,)
        for image, index in ((self.pos_image, positions), (self.head_image, heads)):
            shown = np.ma.masked_all(image.get_array().shape)  # (T_max, d_h), blank below seq
            shown[:seq] = _to_numpy(index[0, head])
            image.set_data(shown)
        for marker in self.markers:
            marker.set_xdata([channel, channel])
        t = np.arange(seq)
        self.value_line.set_data(t, _to_numpy(out[head]))
        self.run_line.set_data(t, _to_numpy(running[head]))
        self.score_line.set_data(t, _to_numpy(score))
        self.ax_pos.set_title(f"head {head}: source position")
        self.ax_head.set_title(f"head {head}: source head (<= {head})")
        self.ax_line.set_title(f"head {head}, channel {channel}")
        shown = torch.stack([out[head], running[head], score])  # (3, T)
        _fixed_yticks(self.ax_line, shown.min().item(), shown.max().item())
        return self.fig


def saved_tensor_mib(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    """Run ``fn()`` (a forward pass) and return ``(result, MiB saved for backward)``.

    Counts every distinct storage that autograd keeps for the backward pass
    (``torch.autograd.graph.saved_tensors_hooks``), the activation memory that
    training holds between forward and backward.  Parameters are not counted.
    """
    storages: dict[tuple[str, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if not isinstance(tensor, nn.Parameter):
            storages[(str(tensor.device), storage.data_ptr())] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = fn()
    return result, sum(storages.values()) / 2**20


def median_ms(fn: Callable[[], object], device: torch.device | str = "cpu", repeats: int = 3,
              slow_ms: float = 200.0) -> float:
    """Median of ``repeats`` timed calls after a warm-up call; a slow warm-up is kept as is.

    A call slower than ``slow_ms`` is dominated by real work, not warm-up, so
    its single time is returned; this keeps long sequences affordable.
    """
    _, first = timed(fn, device)
    if first > slow_ms:
        return first
    return float(np.median([timed(fn, device)[1] for _ in range(repeats)]))


def block_cost(block: nn.Module, x: torch.Tensor, repeats: int = 3) -> dict[str, float]:
    """Cost of ``block`` on ``x`` ``(batch, seq, dim_size)``.

    Returns ``forward_ms`` (inference, no grad), ``train_ms`` (forward +
    backward), ``saved_mib`` (tensors saved for backward, any device) and
    ``peak_mib`` (CUDA only: peak allocated during forward + backward above the
    memory in use before; NaN on the CPU).
    """
    device = x.device
    x = x.detach().requires_grad_(True)
    saved: list[float] = []

    def infer() -> None:
        with torch.no_grad():
            block(x)

    def train() -> None:
        out, mib = saved_tensor_mib(lambda: block(x))  # (B, T, d)
        out.sum().backward()
        saved.append(mib)

    forward_ms = median_ms(infer, device, repeats)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    train_ms = median_ms(train, device, repeats)
    peak_mib = (torch.cuda.max_memory_allocated(device) - before) / 2**20 if cuda else math.nan
    block.zero_grad(set_to_none=True)
    return {"forward_ms": forward_ms, "train_ms": train_ms, "saved_mib": saved[-1],
            "peak_mib": peak_mib}


def loglog_slope(lengths: Sequence[float], values: Sequence[float], last: int = 3) -> float:
    """Slope of ``log(values)`` against ``log(lengths)`` over the ``last`` points.

    About 1 for cost linear in the length, about 2 for quadratic cost.
    """
    if len(lengths) != len(values) or len(lengths) < 2:
        raise ValueError(f"lengths and values must have the same length >= 2, got "
                         f"{len(lengths)} and {len(values)}")
    x, y = np.log(np.asarray(lengths[-last:], float)), np.log(np.asarray(values[-last:], float))
    return float(np.polyfit(x, y, 1)[0])


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
        self.blocks, self.lengths = dict(blocks), list(lengths)
        self.dim_size, self.repeats = dim_size, repeats
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

    def to(self, device: torch.device | str) -> CostExplorer:
        self.device = torch.device(device)
        for block in self.blocks.values():
            block.to(self.device)
        return self

    def update(self, batch: int = 4) -> Figure:
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
                               f"{device_name(self.device)}; slopes fitted over N >= "
                               f"{self.lengths[-3]}")
        return self.fig


def associative_recall_batch(batch_size: int, num_pairs: int, num_keys: int, num_values: int,
                             generator: torch.Generator | None = None,
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of associative recall: ``num_pairs`` (key, value) tokens, then a query key.

    Keys in a sequence are distinct.  Returns ``keys`` and ``values`` ``(batch,
    num_pairs + 1)`` (the last token is the query: its value is the marker
    ``num_values``) and ``targets`` ``(batch,)``, the value stored under the
    query's key.  Solving it needs a content-based lookup.
    """
    if not 1 <= num_pairs <= num_keys:
        raise ValueError(f"num_pairs must lie in 1 .. num_keys={num_keys}, got {num_pairs}")
    rows = torch.arange(batch_size)
    keys = torch.rand(batch_size, num_keys, generator=generator).argsort(dim=1)[:, :num_pairs]
    values = torch.randint(num_values, (batch_size, num_pairs), generator=generator)  # (B, n)
    pick = torch.randint(num_pairs, (batch_size,), generator=generator)  # (B,)
    query = torch.full((batch_size, 1), num_values)  # (B, 1)
    keys = torch.cat([keys, keys[rows, pick, None]], dim=1)  # (B, n+1)
    return keys, torch.cat([values, query], dim=1), values[rows, pick]


class RecallNet(nn.Module):
    """A one-block pre-norm model for :func:`associative_recall_batch`.

    Token ``t`` embeds as ``key_emb[key] + value_emb[value] + pos_emb[t]``;
    then ``x + mixer(LN(x))``, ``x + MLP(LN(x))`` and a linear read-out at the
    last (query) position.  ``mixer`` is any module ``(batch, seq, dim_size)
    -> (batch, seq, dim_size)``, e.g. :class:`MaxStateSuper` or
    :class:`CausalSelfAttention`.  ``forward(keys, values)`` returns logits
    ``(batch, num_values)``.
    """

    def __init__(self, mixer: nn.Module, dim_size: int, num_keys: int, num_values: int,
                 seq_len: int):
        super().__init__()
        self.key_emb = nn.Embedding(num_keys, dim_size)
        self.value_emb = nn.Embedding(num_values + 1, dim_size)
        self.pos_emb = nn.Parameter(0.02 * torch.randn(seq_len, dim_size))
        self.norm1, self.mixer = nn.LayerNorm(dim_size), mixer
        self.norm2, self.norm_out = nn.LayerNorm(dim_size), nn.LayerNorm(dim_size)
        self.mlp = nn.Sequential(nn.Linear(dim_size, 4 * dim_size), nn.GELU(),
                                 nn.Linear(4 * dim_size, dim_size))
        self.read_out = nn.Linear(dim_size, num_values)

    def forward(self, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        x = self.key_emb(keys) + self.value_emb(values) + self.pos_emb[:keys.shape[1]]  # (B, T, d)
        x = x + self.mixer(self.norm1(x))  # (B, T, d)
        x = x + self.mlp(self.norm2(x))  # (B, T, d)
        return self.read_out(self.norm_out(x[:, -1]))  # (B, num_values)


# --- Chapter 08: small Transformer ---


class PositionalEncoding(nn.Module):
    """Sinusoidal positional encoding (d2l's name and signature).

    ``P[0, i, 2j] = sin(i / 10000^(2j/num_hiddens))`` and ``P[0, i, 2j+1] =
    cos(...)``, shape ``(1, max_len, num_hiddens)``, kept as a buffer so
    ``.to(device)`` moves it.  ``forward(X (batch, num_steps, num_hiddens))``
    returns ``dropout(X + P[:, :num_steps])``, same shape; ``X`` is not modified.
    """

    def __init__(self, num_hiddens: int, dropout: float, max_len: int = 1000):
        super().__init__()
        if num_hiddens < 2 or num_hiddens % 2:
            raise ValueError(f"num_hiddens must be a positive even number, got {num_hiddens}")
        self.dropout = nn.Dropout(dropout)
        positions = torch.arange(max_len, dtype=torch.float32).reshape(-1, 1)  # (max_len, 1)
        frequencies = torch.pow(10000, torch.arange(0, num_hiddens, 2, dtype=torch.float32)
                                / num_hiddens)  # (num_hiddens/2,)
        angles = positions / frequencies  # (max_len, num_hiddens/2)
        P = torch.zeros(1, max_len, num_hiddens)
        P[:, :, 0::2] = torch.sin(angles)
        P[:, :, 1::2] = torch.cos(angles)
        self.register_buffer("P", P, persistent=False)  # (1, max_len, num_hiddens)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        _check_tensor("X", X, 3, "(batch, num_steps, num_hiddens)")
        if X.shape[1] > self.P.shape[1] or X.shape[2] != self.P.shape[2]:
            raise ValueError(f"X must be (batch, num_steps <= max_len={self.P.shape[1]}, "
                             f"num_hiddens={self.P.shape[2]}), got {_shape(X)}")
        return self.dropout(X + self.P[:, :X.shape[1], :])  # (B, T, num_hiddens)


class TransformerEncoderBlock(nn.Module):
    """d2l's post-norm encoder block on this module's :class:`MultiHeadAttention`.

    ``Y = LayerNorm(X + MHA(X, X, X))`` then ``LayerNorm(Y + FFN(Y))``, with
    ``FFN = Linear(num_hiddens, ffn_num_hiddens) -> ReLU -> Linear(..., num_hiddens)``.
    ``forward(X (batch, num_steps, num_hiddens), valid_lens=None)`` returns the
    same shape; ``attention.attention_weights`` is ``(batch, num_heads,
    num_steps, num_steps)``.
    """

    def __init__(self, num_hiddens: int, ffn_num_hiddens: int, num_heads: int, dropout: float,
                 use_bias: bool = False):
        super().__init__()
        self.attention = MultiHeadAttention(num_hiddens, num_heads, dropout, use_bias,
                                            query_size=num_hiddens, key_size=num_hiddens,
                                            value_size=num_hiddens)
        self.norm1 = nn.LayerNorm(num_hiddens)
        self.ffn = nn.Sequential(nn.Linear(num_hiddens, ffn_num_hiddens), nn.ReLU(),
                                 nn.Linear(ffn_num_hiddens, num_hiddens))
        self.norm2 = nn.LayerNorm(num_hiddens)
        self.dropout = nn.Dropout(dropout)

    def forward(self, X: torch.Tensor, valid_lens: object = None) -> torch.Tensor:
        Y = self.norm1(X + self.dropout(self.attention(X, X, X, valid_lens)))  # (B, T, H)
        return self.norm2(Y + self.dropout(self.ffn(Y)))  # (B, T, H)


class TinyTransformer(nn.Module):
    """Token classifier: embedding + :class:`PositionalEncoding` + encoder blocks + linear head.

    Encoder-only and bidirectional (every position attends to every valid
    position).  ``forward(tokens (batch, num_steps) long, valid_lens=None)``
    returns logits ``(batch, num_steps, vocab_size)`` and keeps
    ``attention_weights``: a list with one ``(batch, num_heads, num_steps,
    num_steps)`` tensor per layer.  ``scale_embedding=True`` multiplies the
    embeddings by ``sqrt(num_hiddens)`` before adding positions, as d2l does.
    """

    def __init__(self, vocab_size: int, num_hiddens: int, ffn_num_hiddens: int, num_heads: int,
                 num_blks: int, dropout: float = 0.0, max_len: int = 1000,
                 scale_embedding: bool = False):
        super().__init__()
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.scale_embedding = scale_embedding
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.pos_encoding = PositionalEncoding(num_hiddens, dropout, max_len)
        self.blks = nn.ModuleList(
            TransformerEncoderBlock(num_hiddens, ffn_num_hiddens, num_heads, dropout)
            for _ in range(num_blks))
        self.dense = nn.Linear(num_hiddens, vocab_size)
        self.attention_weights: list[torch.Tensor] = []

    def forward(self, tokens: torch.Tensor, valid_lens: object = None) -> torch.Tensor:
        _check_tokens(tokens, self.vocab_size)
        X = self.embedding(tokens)  # (B, T, H)
        if self.scale_embedding:  # d2l multiplies by sqrt(num_hiddens)
            X = X * math.sqrt(self.num_hiddens)
        X = self.pos_encoding(X)  # (B, T, H)
        self.attention_weights = []
        for blk in self.blks:
            X = blk(X, valid_lens)  # (B, T, H)
            self.attention_weights.append(blk.attention.attention_weights)  # (B, h, T, T)
        return self.dense(X)  # (B, T, vocab_size)


def _check_tokens(tokens: object, vocab_size: int) -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.is_floating_point():
        given = (f"{tokens.dtype} tensor of shape {_shape(tokens)}"
                 if isinstance(tokens, torch.Tensor) else type(tokens).__name__)
        raise TypeError(f"tokens must be an integer tensor (batch, num_steps), got {given}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise ValueError(f"tokens must lie in 0 .. vocab_size-1={vocab_size - 1}, got values "
                         f"from {int(tokens.min())} to {int(tokens.max())}")


def _check_weights(weights: object) -> np.ndarray:
    """Attention weights ``(..., num_queries, num_kv)`` as a float64 array (a copy)."""
    if not isinstance(weights, torch.Tensor | np.ndarray):
        raise TypeError(f"weights must be a torch.Tensor or array (..., num_queries, num_kv), "
                        f"got {type(weights).__name__}")
    array = _to_numpy(weights).astype(np.float64)
    if array.ndim < 2 or 0 in array.shape[-2:]:
        raise ValueError("weights must be (..., num_queries, num_kv) with at least one query "
                         f"and one key, got shape {array.shape}")
    if array.min() < 0 or not np.allclose(array.sum(-1), 1.0, atol=1e-3):
        raise ValueError("weights must be non-negative with rows summing to 1 (a softmax over "
                         "num_kv); pass unmasked rows only")
    return array


def attention_entropy(weights: object) -> np.ndarray:
    """Mean entropy (nats) of each attention row: ``-sum_j w_ij log w_ij`` averaged over i.

    ``weights`` ``(..., num_queries, num_kv)``, rows summing to 1; returns
    ``(...)`` (a float for a single matrix).  0 for one-hot rows (a head that
    looks at exactly one key), ``log(num_kv)`` for uniform rows.
    """
    w = _check_weights(weights)
    terms = np.where(w > 0, -w * np.log(np.where(w > 0, w, 1.0)), 0.0)  # (..., Tq, Tk)
    return terms.sum(-1).mean(-1)  # (...)


def attention_distance(weights: object, anti_diagonal: bool = False) -> np.ndarray:
    """Mean attention-weighted distance (in positions) from the diagonal or anti-diagonal.

    For query ``i`` and key ``j`` of ``(..., n, n)`` weights the distance is
    ``|i - j|`` (diagonal: 0 when every query looks at itself) or, with
    ``anti_diagonal=True``, ``|(n - 1 - i) - j|`` (0 when query ``i`` looks at
    the mirrored position, the reversal pattern).  Returns ``sum_j w_ij * dist``
    averaged over queries i, shape ``(...)``.
    """
    w = _check_weights(weights)
    num_queries, num_kv = w.shape[-2:]
    if num_queries != num_kv:
        raise ValueError("weights must be square (..., n, n) for a distance from the diagonal, "
                         f"got shape {w.shape}")
    i, j = np.arange(num_queries)[:, None], np.arange(num_kv)[None, :]
    target = num_queries - 1 - i if anti_diagonal else i  # (Tq, 1)
    return (w * np.abs(target - j)).sum(-1).mean(-1)  # (...)


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
        self.model = model
        self.device = next(model.parameters()).device
        tokens = self._tokens(sequence, num_steps=None)  # (T,)
        self.num_steps = len(tokens)
        weights, output = self._attend(tokens)  # (L, h, T, T), (T,)
        self.grid = HeatmapGrid(weights, "key position:token", "query position:token",
                                figsize=figsize, cmap="Reds", vmin=0.0, vmax=1.0)
        self.fig = self.grid.fig
        self.grid.images[0].colorbar.set_label("attention weight")
        for (layer, head), ax in np.ndenumerate(self.grid.axes):
            if head == 0:
                ax.set_ylabel(f"layer {layer + 1}\nquery position:token")
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
        self.fig.set_layout_engine("constrained")
        freeze_layout(self.fig)

    def _tokens(self, sequence: object, num_steps: int | None) -> torch.Tensor:
        if isinstance(sequence, str):
            if not (sequence.isascii() and sequence.isdigit()):
                raise ValueError(f"sequence must be a string of digits, got {sequence!r}")
            ids = [int(c) for c in sequence]
        elif isinstance(sequence, Sequence | np.ndarray | torch.Tensor):
            ids = [int(t) for t in sequence]
        else:
            raise TypeError("sequence must be a string of digits or a list of token ids, got "
                            f"{type(sequence).__name__}")
        if num_steps is not None and len(ids) != num_steps:
            raise ValueError(f"sequence must have {num_steps} tokens (the explorer's num_steps), "
                             f"got {len(ids)}: {sequence!r}")
        if not ids or min(ids) < 0 or max(ids) >= self.model.vocab_size:
            raise ValueError(f"sequence must hold 1 or more token ids in 0 .. "
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

    @staticmethod
    def _labels(tokens: torch.Tensor) -> list[str]:
        return [f"{i}:{t}" for i, t in enumerate(tokens.tolist())]

    def _draw(self, tokens: torch.Tensor, weights: torch.Tensor, output: torch.Tensor) -> None:
        self.token_labels = labels = self._labels(tokens)
        for label, text in zip(self.tick_labels, itertools.cycle(labels)):  # what a redraw shows
            label.set_text(text)
        entropy = attention_entropy(weights)  # (L, h)
        d_diag = attention_distance(weights)  # (L, h)
        d_anti = attention_distance(weights, anti_diagonal=True)  # (L, h)
        for (layer, head), title in zip(np.ndindex(*entropy.shape), self.titles, strict=True):
            title.set_text(f"head {head + 1}: H = {entropy[layer, head]:.2f}\n"
                           f"d_diag = {d_diag[layer, head]:.2f} · d_anti = "
                           f"{d_anti[layer, head]:.2f}")
        text_in = "".join(map(str, tokens.tolist()))
        text_out = "".join(map(str, output.tolist()))
        correct = int((output == tokens.flip(0)).sum())
        self.suptitle.set_text(f"input {text_in} \u2192 output {text_out} "
                               f"({correct}/{len(labels)} reversed correctly)")

    def update(self, sequence: object) -> Figure:
        """Run the model on ``sequence`` and redraw every map, title and tick label in place."""
        tokens = self._tokens(sequence, self.num_steps)  # (T,)
        weights, output = self._attend(tokens)  # (L, h, T, T), (T,)
        self.grid.set_matrices(weights)
        self._draw(tokens, weights, output)
        return self.fig

    def changing_artists(self) -> list[Artist]:
        return [*self.grid.changing_artists(), *self.titles, self.suptitle, *self.tick_labels]

    def to(self, device: torch.device | str) -> TransformerAttentionExplorer:
        """Move the model (and so every later forward pass) to ``device``."""
        self.device = torch.device(device)
        self.model.to(self.device)
        return self


# --- Chapter 09: benchmarks ---

BENCH_IMPLEMENTATIONS = ("teaching path", "fast path", "d2l 1.0.3", "SDPA", "cummax block")
BENCH_MODES = ("forward", "forward+backward")


def _resident_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def peak_memory_bytes(fn: Callable[[], object], device: torch.device | str = "cpu") -> int | None:
    """Peak memory ``fn()`` needs above what was in use before the call, in bytes.

    CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak.  CPU
    (Linux): the process's resident high-water mark (``VmHWM``, reset through
    ``/proc/self/clear_refs``) minus the resident size before the call, after
    handing freed heap pages back to the OS so that each large tensor (such as
    a materialised ``(B, h, Tq, Tk)`` weight matrix) shows at its size.  None
    where neither is available.
    """
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    _release_free_memory()
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        before = _resident_bytes("VmRSS")
    except OSError:
        return None
    fn()
    return max(_resident_bytes("VmHWM") - before, 0)


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``; no-op elsewhere).

    glibc keeps freed blocks for reuse, and reusing them does not raise the
    resident size; after a trim every page a call touches is counted.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def matmul_peak_gflops(n: int = 2048, device: torch.device | str = "cpu", repeats: int = 3,
                       ) -> float:
    """This machine's achieved float32 matmul speed (best of ``repeats``), in GFLOP/s."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = min(timed(lambda: a @ b, device)[1] for _ in range(repeats + 1))  # first is warm-up
    return 2 * n**3 / (best * 1e6)


def attention_flops(batch: int, heads: int, length: int, head_dim: int, mode: str) -> int:
    """Matmul FLOPs of softmax attention: ``QK^T`` and ``PV`` forward; backward twice that."""
    forward = 4 * batch * heads * length**2 * head_dim
    return forward if mode == "forward" else 3 * forward


def _bench_case(name: str, batch: int, heads: int, length: int, head_dim: int,
                device: torch.device) -> tuple[Callable[..., torch.Tensor], list[torch.Tensor]]:
    """One implementation as ``(function, inputs)``; heads folded into batch where d2l does."""
    if name == "cummax block":
        block = MaxStateSuper(heads * head_dim, heads).to(device)
        return block, [torch.randn(batch, length, heads * head_dim, device=device)]
    q, k, v = (torch.randn(batch, heads, length, head_dim, device=device) for _ in range(3))
    if name == "SDPA":
        return F.scaled_dot_product_attention, [q, k, v]  # (B, h, T, dh)
    folded = [x.reshape(batch * heads, length, head_dim) for x in (q, k, v)]  # (B*h, T, dh)
    if name == "d2l 1.0.3":
        from d2l import torch as d2l

        return d2l.DotProductAttention(dropout=0.0).eval(), folded
    attention = DotProductAttention().eval()
    if name == "fast path":
        return lambda q, k, v: attention(q, k, v, need_weights=False), folded
    return attention, folded


def _run_case(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], mode: str) -> None:
    if mode == "forward":
        with torch.no_grad():
            fn(*inputs)
    else:
        fn(*inputs).sum().backward()


MAX_ROUNDS = 15  # benchmark_attention's rounds at the cheapest lengths


def benchmark_attention(lengths: Sequence[int], *, batch: int = 8, heads: int = 8,
                        head_dim: int = 64, repeats: int = 3,
                        implementations: Sequence[str] = BENCH_IMPLEMENTATIONS,
                        modes: Sequence[str] = BENCH_MODES, device: torch.device | str = "cpu",
                        max_seconds: float = 10.0, round_seconds: float = 1.0,
                        log: Callable[[str], None] | None = None) -> list[dict]:
    """Time and measure every implementation at every length, interleaved.

    For each length, every round runs each (implementation, mode) once, in an
    order rotated from round to round, so drifts in machine load and the
    after-effects of one case on the next hit all of them alike.  There are
    ``repeats`` rounds after a warm-up round, or more (up to ``MAX_ROUNDS``)
    where they take under ``round_seconds`` together.  The row keeps the
    median and the best time, and ``x_sdpa``, the median over rounds of the
    time divided by SDPA's time *in the same round* (a paired ratio: the load
    of that moment cancels).  A case whose estimate (its time at the previous
    length scaled by the squared length ratio) exceeds ``max_seconds`` per
    call is skipped and says so.  Returns one dict per (implementation, mode,
    length) with ``median_ms``, ``best_ms``, ``x_sdpa``, ``peak_mb``,
    ``gflops`` (softmax paths) or ``skipped``.
    """
    device = torch.device(device)
    rows, previous = [], {}
    for length in lengths:
        cases = []
        for name in implementations:
            for mode in modes:
                last = previous.get((name, mode))
                estimate = None if last is None else last[1] / 1e3 * (length / last[0]) ** 2
                if estimate is not None and estimate > max_seconds:
                    rows.append({"implementation": name, "mode": mode, "length": length,
                                 "skipped": f"estimated {estimate:.0f} s per call "
                                            f"> {max_seconds:.0f} s budget"})
                    continue
                fn, inputs = _bench_case(name, batch, heads, length, head_dim, device)
                if mode != "forward":
                    inputs = [x.requires_grad_() for x in inputs]
                run = functools.partial(_run_case, fn, inputs, mode)
                cases.append({"name": name, "mode": mode, "run": run, "times": []})
        round_, rounds = 0, repeats
        while cases and round_ <= rounds:  # round 0 warms up and is discarded
            for case in cases[round_ % len(cases):] + cases[:round_ % len(cases)]:  # rotated
                case["times"].append(timed(case["run"], device)[1])
            if round_ == 0:  # cheap lengths get more rounds: about round_seconds' worth
                per_round = sum(case["times"][0] for case in cases) / 1e3
                rounds = max(repeats, min(MAX_ROUNDS, math.floor(round_seconds / per_round)))
            round_ += 1
        sdpa = {case["mode"]: case["times"][1:] for case in cases if case["name"] == "SDPA"}
        for case in cases:
            name, mode = case["name"], case["mode"]
            median = float(np.median(case["times"][1:]))
            paired = None if mode not in sdpa else float(np.median(  # same round: same load
                np.divide(case["times"][1:], sdpa[mode])))
            peak = peak_memory_bytes(case["run"], device)
            gflops = None
            if name != "cummax block":
                gflops = attention_flops(batch, heads, length, head_dim, mode) / (median * 1e6)
            rows.append({"implementation": name, "mode": mode, "length": length,
                         "median_ms": median, "best_ms": min(case["times"][1:]),
                         "x_sdpa": paired,
                         "peak_mb": None if peak is None else peak / 2**20, "gflops": gflops})
            previous[name, mode] = (length, median)
            if log:
                log(f"T={length:5d} {name:>13s} {mode:>16s} {median:10.1f} ms")
    return rows
