"""Attention Lab's teaching core: what the chapters teach, readable top to bottom.

Masking, heatmaps, scoring functions, multi-head attention and positional encoding, in the
order the chapters meet them; the input checks they share come last.  Names and signatures
of what learners already know from d2l.ai (``masked_softmax``, ``show_heatmaps``,
``AdditiveAttention``, ``DotProductAttention``, ``MultiHeadAttention``, ...) are kept, so the
book and these notebooks can be read side by side.  Unlike d2l 1.0.3, every function here
checks its inputs, never mutates them, and masks safely in float16 and bfloat16.

Shape letters, used in every shape comment (nanoGPT style)::

    B   batch size
    h   number of heads (always right after the batch axis)
    Tq  number of queries            (num_queries)
    Tk  number of key-value pairs    (num_kv)
    d   query / key size             (d_h per head)
    dv  value size

In docstrings the same shapes read: queries ``(batch, num_queries, d)``, keys ``(batch,
num_kv, d)``, values ``(batch, num_kv, d_v)`` and attention weights ``(batch, num_queries,
num_kv)``; with heads, ``(batch, num_heads, ...)``.

Masking convention: a valid length ``n`` keeps keys ``0 .. n-1`` of a row.  A row whose valid
length is 0 keeps no key at all and gets all-zero weights (so its output is a zero vector),
which is what ``torch.nn.functional.scaled_dot_product_attention`` returns for a boolean mask
row that is all False: never NaN, never d2l's uniform weights.  The rule itself is written
once, in :func:`_keep_mask`.

Everything else the notebooks use (explorers, the renderer, trained toy models, data sets,
the benchmark harness) lives in the ``attention_lab`` package, which imports this module;
this module imports nothing from it.
"""

from __future__ import annotations

import math
import platform
import random
from collections.abc import Sequence
from importlib import metadata

import matplotlib
import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

__all__ = [
    "AdditiveAttention", "BilinearAttention", "DotProductAttention", "HeatmapGrid",
    "MultiHeadAttention", "PositionalEncoding", "check_positive", "check_tensor",
    "check_valid_lens", "device_name", "get_device", "masked_softmax", "nadaraya_watson",
    "print_environment", "scaled_dot_product", "sequence_mask", "set_seed", "show_heatmaps",
    "to_numpy", "transpose_output", "transpose_qkv", "valid_lens_to_mask",
]


# ---- Set-up: seeds, device, versions ---------------------------------------------------------


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (the global generator learners' code uses)
    torch.manual_seed(seed)


def get_device(use_gpu: bool = True) -> torch.device:
    """CUDA when ``use_gpu`` is true and a CUDA device is available, else CPU."""
    return torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")


def device_name(device: torch.device | str) -> str:
    """A human-readable name: ``'cpu'`` or ``'cuda (NVIDIA H100 ...)'``."""
    device = torch.device(device)
    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else device.type


def print_environment(device: torch.device) -> None:
    """Print the versions this notebook ran with and the device it uses."""
    print(f"python {platform.python_version()} | torch {torch.__version__} | "
          f"numpy {np.__version__} | matplotlib {matplotlib.__version__} | "
          f"ipywidgets {metadata.version('ipywidgets')}")
    reason = "" if torch.cuda.is_available() else " (CUDA not available: GPU toggles are off)"
    print(f"device: {device_name(device)}{reason}")


# ---- Chapter 02: masking ---------------------------------------------------------------------


def valid_lens_to_mask(valid_lens: object, num_queries: int, num_kv: int, batch: int | None = None,
                       device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean keep-mask ``(batch, num_queries, num_kv)``: True where a key counts.

    ``valid_lens`` is ``(batch,)`` or ``(batch, num_queries)``, integer.  This is
    the mask ``F.scaled_dot_product_attention`` takes as ``attn_mask``; PyTorch's
    ``key_padding_mask`` is its negation (True there means *ignore*).
    """
    lengths = _as_lengths(valid_lens, torch.device(device))
    batch = lengths.shape[0] if batch is None else batch
    lengths = check_valid_lens(lengths, batch, num_queries, num_kv, torch.device(device))
    return _keep_mask(lengths, num_kv)  # (B, Tq, Tk)


def _keep_mask(lengths: torch.Tensor, num_kv: int) -> torch.Tensor:
    """The masking rule, in one place: key ``j`` counts for a row of valid length ``n`` iff
    ``j < n``.  ``lengths`` ``(...)`` long -> keep-mask ``(..., num_kv)``, True = attend."""
    return torch.arange(num_kv, device=lengths.device) < lengths[..., None]  # (..., Tk)


def _shared_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """``(B, Tq)`` lengths as ``(B, 1)`` where all queries of a row share one (masks broadcast)."""
    if lengths.shape[1] > 1 and bool((lengths == lengths[:, :1]).all()):
        return lengths[:, :1]
    return lengths


def sequence_mask(X: torch.Tensor, valid_len: object, value: float = 0.0) -> torch.Tensor:
    """Return a copy of ``X`` ``(n, num_kv)`` with positions >= ``valid_len`` set to ``value``.

    ``valid_len`` is ``(n,)``, integer.  Unlike d2l 1.0.3, ``X`` is not modified.
    """
    if not isinstance(X, torch.Tensor) or X.dim() != 2:
        given = _shape(X) if isinstance(X, torch.Tensor) else type(X).__name__
        raise ValueError(f"X must be a 2-D tensor (n, num_kv), got {given}")
    if isinstance(valid_len, torch.Tensor | np.ndarray) and valid_len.ndim != 1:
        raise ValueError(f"valid_len must be 1-D (n,), got shape {tuple(valid_len.shape)}")
    lengths = check_valid_lens(valid_len, X.shape[0], 1, X.shape[1], X.device,
                               "valid_len")[:, 0]  # (n,)
    _check_fill_value(value, X.dtype)
    keep = _keep_mask(lengths, X.shape[1])  # (n, Tk)
    return X.masked_fill(~keep, value)


def masked_softmax(X: torch.Tensor, valid_lens: object = None) -> torch.Tensor:
    """Softmax over the last axis of ``X`` ``(batch, num_queries, num_kv)``, masking padded keys.

    ``valid_lens`` is None (plain softmax), ``(batch,)`` (one length per batch row, shared by
    its queries) or ``(batch, num_queries)`` (one per query), integer.  Keys at positions >=
    the valid length get weight exactly 0 and no gradient; a valid length of 0 gives an
    all-zero row.  The result is a new tensor of ``X``'s dtype; ``X`` is never modified.

    Raises ``ValueError`` for a wrongly shaped ``X`` or ``valid_lens``, or lengths outside
    ``0 .. num_kv``; ``TypeError`` for non-integer lengths.
    """
    if valid_lens is None:
        if not isinstance(X, torch.Tensor):
            raise TypeError(f"X must be a torch.Tensor, got {type(X).__name__}")
        return F.softmax(X, dim=-1)
    check_tensor("X", X, 3, "(batch, num_queries, num_kv) when valid_lens is given")
    batch, num_queries, num_kv = X.shape
    lengths = check_valid_lens(valid_lens, batch, num_queries, num_kv, X.device)  # (B, Tq)
    return _softmax_keep(X, _keep_mask(lengths, num_kv))  # (B, Tq, Tk)


def _softmax_keep(scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis using only the keys where ``keep`` is True.

    Masked keys get weight exactly 0; a row with no kept key gets all zeros.
    The fill value is the dtype's own minimum, so float16 and bfloat16 neither
    overflow nor produce NaN, and no gradient reaches a masked score.
    """
    filled = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    return F.softmax(filled, dim=-1).masked_fill(~keep, 0.0)


# ---- Chapter 01: heatmaps and Nadaraya-Watson attention pooling ------------------------------


def show_heatmaps(matrices: object, xlabel: str, ylabel: str,
                  titles: Sequence[str] | None = None, figsize: tuple[float, float] = (2.5, 2.5),
                  cmap: str = "Reds", **kwargs) -> Figure:
    """Draw attention weights as heatmaps and return the Figure (d2l's signature).

    ``matrices``: 2-D, 3-D or 4-D ``(rows, cols, num_queries, num_kv)``, a tensor on any device
    (with or without grad) or an array.  Keyword arguments ``xticklabels``/``yticklabels``
    label keys/queries with tokens; ``vmin``, ``vmax``, ``colorbar`` and ``annotate`` are
    passed to :class:`HeatmapGrid`.  One colour bar is shared by all panels.
    """
    return HeatmapGrid(matrices, xlabel, ylabel, titles, figsize, cmap, **kwargs).fig


class HeatmapGrid:
    """A grid of heatmaps drawn once; :meth:`set_matrices` updates them in place.

    ``matrices`` is 2-D ``(num_queries, num_kv)``, 3-D ``(cols, num_queries, num_kv)`` or 4-D
    ``(rows, cols, num_queries, num_kv)``.  Redrawing changes the data of the existing images
    (``AxesImage.set_data``) rather than building a new figure, which keeps slider updates fast.
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
        _check_labels("xticklabels", xticklabels, grid.shape[3], "key (num_kv)")
        _check_labels("yticklabels", yticklabels, grid.shape[2], "query (num_queries)")
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

    def set_matrices(self, matrices: object) -> Figure:
        """Replace the data of every heatmap (same shape); returns the figure."""
        grid = _as_grid(matrices)
        if grid.shape != self._shape:
            raise ValueError(f"matrices must keep the grid's shape (rows, cols, num_queries, "
                             f"num_kv) = {self._shape}, got {grid.shape}; for a new shape "
                             "draw a new HeatmapGrid")
        for image, matrix in zip(self.images, grid.reshape(-1, *grid.shape[2:]), strict=True):
            image.set_data(matrix)
        _set_annotations(self.texts, grid, self._vmax)
        return self.fig

    def changing_artists(self) -> list[Artist]:
        """What :meth:`set_matrices` changes: the images and their printed values."""
        return [*self.images, *self.texts]


def _as_grid(matrices: object) -> np.ndarray:
    """2-D, 3-D or 4-D input -> ``(rows, cols, num_queries, num_kv)`` array."""
    array = to_numpy(matrices)
    if array.ndim in (2, 3, 4):
        return array.reshape((1,) * (4 - array.ndim) + array.shape)  # (rows, cols, Tq, Tk)
    raise ValueError("matrices must be 2-D (num_queries, num_kv), 3-D (cols, ...) or 4-D "
                     f"(rows, cols, num_queries, num_kv), got shape {array.shape}")


def _set_ticklabels(ax, num_cols: int, num_rows: int, xticklabels, yticklabels) -> None:
    """Token labels where given, else integer positions (never fractional ticks)."""
    for axis, count, labels, rotation in ((ax.xaxis, num_cols, xticklabels, 90),
                                          (ax.yaxis, num_rows, yticklabels, 0)):
        if labels is None:
            axis.set_major_locator(MaxNLocator(integer=True))
        else:
            axis.set_ticks(range(count), list(labels), rotation=rotation)


def _annotate(axes: np.ndarray, grid: np.ndarray, vmax: float) -> list:
    texts = [axes[i, j].text(k, q, "", ha="center", va="center", fontsize=7)
             for i, j in np.ndindex(*grid.shape[:2]) for q, k in np.ndindex(*grid.shape[2:])]
    _set_annotations(texts, grid, vmax)
    return texts


def _set_annotations(texts: list, grid: np.ndarray, vmax: float) -> None:
    """Write each value in its cell: white on dark cells, black on light ones."""
    for text, value in zip(texts, grid.reshape(-1), strict=False):
        text.set_text(f"{value:.2f}")
        text.set_color("white" if value > 0.6 * vmax else "black")


def nadaraya_watson(x_query: torch.Tensor, x_key: torch.Tensor, y_key: torch.Tensor,
                    sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Nadaraya-Watson kernel regression with a Gaussian kernel, written as attention pooling.

    ``x_query`` ``(num_queries,)`` are the queries, ``x_key`` ``(num_kv,)`` the keys and
    ``y_key`` ``(num_kv,)`` the values; ``sigma`` > 0 is the kernel width.  The attention
    weights ``(num_queries, num_kv)`` are ``softmax(-(x_query - x_key)^2 / (2 sigma^2))`` over
    the keys, so each row sums to 1, and the prediction ``(num_queries,)`` is ``weights @
    y_key``.  Returns ``(y_hat, weights)``; the inputs are not modified.
    """
    check_tensor("x_query", x_query, 1, "(num_queries,)")
    check_tensor("x_key", x_key, 1, "(num_kv,)")
    check_tensor("y_key", y_key, 1, "(num_kv,)")
    if x_key.shape != y_key.shape or x_key.numel() == 0:
        raise ValueError("x_key and y_key must be (num_kv,) with the same num_kv >= 1, got "
                         f"x_key {_shape(x_key)} and y_key {_shape(y_key)}")
    sigma = check_positive("sigma", sigma, "the kernel width")
    diffs = x_query[:, None] - x_key[None, :]  # (Tq, Tk)
    weights = F.softmax(-diffs**2 / (2 * sigma**2), dim=-1)  # (Tq, Tk)
    return weights @ y_key, weights  # (Tq,), (Tq, Tk)


# ---- Chapters 03-04: scoring functions -------------------------------------------------------


class AdditiveAttention(nn.Module):
    """Additive (Bahdanau) attention: ``score(q, k) = w_v^T tanh(W_q q + W_k k)``.

    d2l's names: ``W_k`` ``(key_size -> num_hiddens)``, ``W_q`` ``(query_size -> num_hiddens)``
    and ``w_v`` ``(num_hiddens -> 1)``, all without bias; lazy layers when
    ``key_size``/``query_size`` are not given.

    ``forward(queries (batch, num_queries, d_q), keys (batch, num_kv, d_k), values (batch,
    num_kv, d_v), valid_lens=None)`` returns ``(batch, num_queries, d_v)`` and keeps
    ``attention_weights`` ``(batch, num_queries, num_kv)``.  Queries and keys may differ in size.
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
        _check_inputs(self, queries, {"queries": (queries, self.W_q, "query_size"),
                                      "keys": (keys, self.W_k, "key_size")})
        q, k = self.W_q(queries), self.W_k(keys)  # (B, Tq, H), (B, Tk, H)
        features = torch.tanh(q.unsqueeze(2) + k.unsqueeze(1))  # (B, Tq, Tk, H)
        scores = self.w_v(features).squeeze(-1)  # (B, Tq, Tk)
        self.attention_weights = masked_softmax(scores, valid_lens)  # (B, Tq, Tk)
        return torch.bmm(self.dropout(self.attention_weights), values)  # (B, Tq, dv)


class DotProductAttention(nn.Module):
    """Dot-product attention; scaled by ``1/sqrt(d)`` unless ``scaled=False``.

    ``forward(queries (batch, num_queries, d), keys (batch, num_kv, d), values (batch, num_kv,
    d_v), valid_lens=None, need_weights=True)`` returns ``(batch, num_queries, d_v)``.  With
    ``need_weights=True`` (the teaching path) it keeps ``attention_weights`` ``(batch,
    num_queries, num_kv)``; ``scores``, the same shape, are recomputed from the kept queries
    and keys when read.  With ``need_weights=False`` (the fast path) it calls
    ``F.scaled_dot_product_attention`` with the equivalent boolean mask and sets both to None,
    so no stale weights are left behind.

    The teaching path runs as one fused autograd step (:class:`_WeightedAttention`: same
    result, and backward keeps one ``(batch, num_queries, num_kv)`` tensor, the weights), or as
    the plain code a chapter writes (``masked_softmax`` then ``bmm``) with ``fused=False`` or
    while dropout is active.
    """

    def __init__(self, dropout: float = 0.0, scaled: bool = True, *, fused: bool = True):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.scaled = scaled
        self.fused = fused
        self.attention_weights: torch.Tensor | None = None
        self._scored: tuple[torch.Tensor, torch.Tensor, float] | None = None

    @property
    def scores(self) -> torch.Tensor | None:
        """``q k^T * scale`` ``(batch, num_queries, num_kv)`` of the last teaching-path call."""
        if self._scored is None:
            return None
        queries, keys, scale = self._scored
        return torch.bmm(queries, keys.transpose(1, 2)) * scale  # (B, Tq, Tk)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                valid_lens: object = None, need_weights: bool = True) -> torch.Tensor:
        _check_qkv(queries, keys, values, same_size=True)
        scale = 1 / math.sqrt(queries.shape[-1]) if self.scaled else 1.0
        if not need_weights:  # fast path: PyTorch's fused kernel, no weights
            self._scored = self.attention_weights = None
            return _sdpa(queries, keys, values, valid_lens, scale, self.dropout)
        self._scored = (queries, keys, scale)
        if self.fused and not (self.training and self.dropout.p > 0):
            lengths = None if valid_lens is None else check_valid_lens(
                valid_lens, queries.shape[0], queries.shape[1], keys.shape[1], queries.device)
            output, self.attention_weights = _WeightedAttention.apply(
                queries, keys, values, lengths, scale)  # (B, Tq, dv), (B, Tq, Tk)
            return output
        # plain path: what the chapters write, step by step
        scores = torch.bmm(queries, keys.transpose(1, 2)) * scale  # (B, Tq, Tk)
        self.attention_weights = masked_softmax(scores, valid_lens)  # (B, Tq, Tk)
        return torch.bmm(self.dropout(self.attention_weights), values)  # (B, Tq, dv)


class _WeightedAttention(torch.autograd.Function):
    """``W = masked_softmax(q k^T * scale, lengths)``, returns ``(W v, W)``: the plain path fused.

    Autograd on the plain path keeps about 2.5 ``(B, Tq, Tk)`` tensors (softmax's output, its
    masked copy, two masks).  Here the scores are filled in place (only where a row has
    padding) and backward keeps the weights alone: softmax's gradient needs only its own
    output, ``dS = W * (dW - rowsum(dW * W))``, and ``rowsum(dW * W)`` is ``rowsum(dO * O)``
    for ``dW = dO v^T``.  Masked keys have ``W = 0``, so they get no gradient; rows with valid
    length 0 get all-zero weights.
    """

    @staticmethod
    def forward(ctx, queries, keys, values, lengths, scale):
        scores = torch.baddbmm(queries.new_zeros(()), queries, keys.transpose(1, 2), beta=0,
                               alpha=scale)  # (B, Tq, Tk): scale * q k^T, scaled in the matmul
        if lengths is not None and bool((lengths < keys.shape[1]).any()):  # padding: fill
            keep = _keep_mask(_shared_lengths(lengths), keys.shape[1])  # (B, Tq or 1, Tk)
            scores.masked_fill_(~keep, torch.finfo(scores.dtype).min)  # in place: ours alone
        weights = F.softmax(scores, dim=-1)  # (B, Tq, Tk); masked keys: exactly 0
        del scores  # freed before the output is allocated
        if lengths is not None and bool((lengths == 0).any()):
            weights[lengths == 0] = 0.0  # rows with no key
        output = torch.bmm(weights, values)  # (B, Tq, dv)
        ctx.set_materialize_grads(False)
        ctx.scale = scale
        ctx.save_for_backward(queries, keys, values, weights, output)
        return output, weights

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, grad_weights):
        queries, keys, values, weights, output = ctx.saved_tensors
        grad_v = None
        if grad_output is None and grad_weights is None:
            return None, None, None, None, None
        if grad_output is None:  # only the weights were used
            grad = grad_weights.clone()
            rowdot = (grad_weights * weights).sum(-1, keepdim=True)  # (B, Tq, 1)
        else:
            grad_output = grad_output.contiguous()  # (B, Tq, dv); .sum()'s is an expanded view
            if ctx.needs_input_grad[2]:
                grad_v = torch.bmm(grad_output.transpose(1, 2), weights).mT  # (B, Tk, dv)
            grad = torch.bmm(grad_output, values.transpose(1, 2))  # (B, Tq, Tk): dL/dW
            rowdot = (grad_output * output).sum(-1, keepdim=True)  # (B, Tq, 1)
            if grad_weights is not None:
                grad += grad_weights
                rowdot += (grad_weights * weights).sum(-1, keepdim=True)
        grad.sub_(rowdot).mul_(weights)  # (B, Tq, Tk): dL/dscores
        zero = grad.new_zeros(())
        grad_q = (torch.baddbmm(zero, grad, keys, beta=0, alpha=ctx.scale)
                  if ctx.needs_input_grad[0] else None)  # (B, Tq, d)
        grad_k = (torch.baddbmm(zero, queries.transpose(1, 2), grad, beta=0, alpha=ctx.scale).mT
                  if ctx.needs_input_grad[1] else None)  # (B, Tk, d)
        return grad_q, grad_k, grad_v, None, None


def _sdpa(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, valid_lens: object,
          scale: float, dropout: nn.Dropout) -> torch.Tensor:
    """Fast path: ``F.scaled_dot_product_attention`` with valid lengths as a boolean mask."""
    batch, num_queries, _ = queries.shape
    mask = None
    if valid_lens is not None:
        lengths = check_valid_lens(valid_lens, batch, num_queries, keys.shape[1], queries.device)
        mask = _keep_mask(_shared_lengths(lengths), keys.shape[1])  # (B, Tq or 1, Tk)
    p = dropout.p if dropout.training else 0.0
    out = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask,
                                         dropout_p=p, scale=scale)  # (B, Tq, dv)
    if mask is not None and bool((lengths == 0).any()):  # rows with no key: zeros, as
        out = out.masked_fill((lengths == 0)[..., None], 0.0)  # in the teaching path
    return out


class BilinearAttention(nn.Module):
    """Bilinear ("general", Luong) attention: ``score(k, q) = k^T W q``.

    ``W`` is ``(key_size, query_size)``, so queries and keys may differ in size.
    ``forward(queries (batch, num_queries, query_size), keys (batch, num_kv, key_size), values
    (batch, num_kv, d_v), valid_lens=None)`` returns ``(batch, num_queries, d_v)`` and keeps
    ``scores`` and ``attention_weights`` ``(batch, num_queries, num_kv)``.
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
        _check_inputs(self, queries, {})
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

    ``q`` ``(..., num_queries, d)``, ``k`` ``(..., num_kv, d)``, ``v`` ``(..., num_kv, d_v)``;
    ``mask`` broadcastable to ``(..., num_queries, num_kv)``, 0/False = masked.  Returns
    ``(values (..., num_queries, d_v), attention (..., num_queries, num_kv))``.  Fully masked
    rows get zero weights.  ``mask`` is boolean or holds only 0 and 1: an additive float mask
    (0 = keep, -inf = drop) is refused with a ValueError (pass ``mask == 0`` for it).
    """
    _check_same_dtype(q=q, k=k, v=v)
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
            keep = torch.broadcast_to(_keep_from_mask(mask).to(logits.device), logits.shape)
        except RuntimeError as err:
            raise ValueError(f"mask {_shape(mask)} does not broadcast to the attention "
                             f"logits {_shape(logits)}") from err
        attention = _softmax_keep(logits, keep)  # (..., Tq, Tk)
    return attention @ v, attention  # (..., Tq, dv), (..., Tq, Tk)


# ---- Chapter 05: multi-head attention (d2l's layout: heads folded into the batch) ------------


def transpose_qkv(X: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(batch, n, num_hiddens)`` -> ``(batch * num_heads, n, num_hiddens / num_heads)``."""
    _check_heads(X, num_heads, "(batch, n, num_hiddens)", 2, "num_hiddens")
    X = X.reshape(X.shape[0], X.shape[1], num_heads, X.shape[2] // num_heads)  # (B, n, h, d_h)
    X = X.permute(0, 2, 1, 3)  # (B, h, n, d_h)
    return X.reshape(X.shape[0] * num_heads, X.shape[2], X.shape[3])  # (B*h, n, d_h)


def transpose_output(X: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Undo :func:`transpose_qkv`: ``(batch * num_heads, n, d_h)`` -> ``(batch, n, num_hiddens)``.
    """
    _check_heads(X, num_heads, "(batch * num_heads, n, d_h)", 0, "batch * num_heads")
    X = X.reshape(X.shape[0] // num_heads, num_heads, X.shape[1], X.shape[2])  # (B, h, n, d_h)
    X = X.permute(0, 2, 1, 3)  # (B, n, h, d_h)
    return X.reshape(X.shape[0], X.shape[1], num_heads * X.shape[3])  # (B, n, h*d_h)


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with d2l's names and layout.

    ``W_q``, ``W_k``, ``W_v`` project to ``num_hiddens`` (lazy unless ``query_size``/
    ``key_size``/``value_size`` are given), heads split ``num_hiddens`` evenly, ``W_o`` mixes
    them.  ``forward(queries (batch, num_queries, d_q), keys (batch, num_kv, d_k), values
    (batch, num_kv, d_v), valid_lens=None, need_weights=True)`` returns ``(batch, num_queries,
    num_hiddens)``; ``attention_weights`` is ``(batch, num_heads, num_queries, num_kv)``, or
    None after a fast-path call (``need_weights=False``).  Raises ``ValueError`` at
    construction if ``num_heads`` does not divide ``num_hiddens``.
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
        _check_inputs(self, queries, {"queries": (queries, self.W_q, "query_size"),
                                      "keys": (keys, self.W_k, "key_size"),
                                      "values": (values, self.W_v, "value_size")})
        batch, num_queries, num_kv = queries.shape[0], queries.shape[1], keys.shape[1]
        q = transpose_qkv(self.W_q(queries), self.num_heads)  # (B*h, Tq, d_h)
        k = transpose_qkv(self.W_k(keys), self.num_heads)  # (B*h, Tk, d_h)
        v = transpose_qkv(self.W_v(values), self.num_heads)  # (B*h, Tk, d_h)
        if valid_lens is not None:
            lengths = check_valid_lens(valid_lens, batch, num_queries, num_kv, queries.device)
            valid_lens = lengths.repeat_interleave(self.num_heads, dim=0)  # (B*h, Tq)
        output = self.attention(q, k, v, valid_lens, need_weights)  # (B*h, Tq, d_h)
        weights = self.attention.attention_weights
        self.attention_weights = None if weights is None else weights.reshape(
            batch, self.num_heads, num_queries, num_kv)  # (B, h, Tq, Tk)
        return self.W_o(transpose_output(output, self.num_heads))  # (B, Tq, num_hiddens)


def _projection(in_features: int | None, out_features: int, bias: bool) -> nn.Module:
    return (nn.LazyLinear(out_features, bias=bias) if in_features is None
            else nn.Linear(in_features, out_features, bias=bias))


# ---- Chapter 06: positional encoding ---------------------------------------------------------


class PositionalEncoding(nn.Module):
    """Sinusoidal positional encoding (d2l's name and signature).

    ``P[0, i, 2j] = sin(i / 10000^(2j/num_hiddens))`` and ``P[0, i, 2j+1] = cos(...)``, shape
    ``(1, max_len, num_hiddens)``, kept as a buffer so ``.to(device)`` moves it.
    ``forward(X (batch, num_steps, num_hiddens))`` returns ``dropout(X + P[:, :num_steps])``,
    same shape; ``X`` is not modified.
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
        check_tensor("X", X, 3, "(batch, num_steps, num_hiddens)")
        if X.shape[1] > self.P.shape[1] or X.shape[2] != self.P.shape[2]:
            raise ValueError(f"X must be (batch, num_steps <= max_len={self.P.shape[1]}, "
                             f"num_hiddens={self.P.shape[2]}), got {_shape(X)}")
        return self.dropout(X + self.P[:, :X.shape[1], :])  # (B, T, num_hiddens)


# ---- Input checks shared by everything above: each names the argument, what it expected,
# and what it got ----------------------------------------------------------------------------


def to_numpy(x: object) -> np.ndarray:
    """Tensors on any device, with or without grad, and arrays -> float NumPy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=np.float32)


def check_tensor(name: str, x: object, ndim: int, layout: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {_shape(x)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")


def check_positive(name: str, value: object, meaning: str) -> float:
    """``value`` as a float, or a ValueError/TypeError naming ``name`` and what it means."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{name} ({meaning}) must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} ({meaning}) must be a positive finite number, got {value}")
    return float(value)


def _check_qkv(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
               same_size: bool) -> None:
    """Check an attention forward's (queries, keys, values); with ``same_size`` queries and
    keys must share their last size ``d`` (dot products; additive and bilinear need not)."""
    check_tensor("queries", queries, 3, "(batch, num_queries, d)")
    check_tensor("keys", keys, 3, "(batch, num_kv, d)")
    check_tensor("values", values, 3, "(batch, num_kv, d_v)")
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
    _check_same_dtype(queries=queries, keys=keys, values=values)
    if 0 in (queries.shape[-1], keys.shape[-1]):
        raise ValueError("queries and keys need a feature size d >= 1, got queries "
                         f"{_shape(queries)} and keys {_shape(keys)}")


def _check_same_dtype(**tensors: torch.Tensor) -> None:
    """Floating-point tensors, all of one dtype (torch's own error names none of them)."""
    for name, x in tensors.items():
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            given = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got {given}")
    if len({x.dtype for x in tensors.values()}) > 1:
        given = ", ".join(f"{name} {x.dtype}" for name, x in tensors.items())
        raise TypeError(f"{', '.join(tensors)} must share one dtype, got {given}; convert "
                        "them to one (e.g. x.float())")


def _check_inputs(module: nn.Module, queries: torch.Tensor,
                  inputs: dict[str, tuple[torch.Tensor, nn.Module, str]]) -> None:
    """Inputs in the dtype of ``module``'s parameters, each with the feature size its
    projection takes (a lazy projection not yet built takes any)."""
    dtype = next(p.dtype for p in module.parameters() if not nn.parameter.is_lazy(p))
    if queries.dtype != dtype:
        raise TypeError(f"queries, keys and values are {queries.dtype} but the parameters of "
                        f"{type(module).__name__} are {dtype}: convert the inputs "
                        f"(x.to({dtype})) or the module (module.to({queries.dtype}), e.g. "
                        "module.double() for float64)")
    for name, (x, layer, size) in inputs.items():
        if not nn.parameter.is_lazy(layer.weight) and x.shape[-1] != layer.in_features:
            raise ValueError(f"{name} must have {size}={layer.in_features} features in its "
                             f"last dimension, got shape {_shape(x)}")


def _check_heads(X: object, num_heads: object, layout: str, axis: int, what: str) -> None:
    """``X`` 3-D ``layout`` whose size on ``axis`` (``what``) ``num_heads`` >= 1 divides."""
    if not isinstance(X, torch.Tensor) or X.dim() != 3:
        given = _shape(X) if isinstance(X, torch.Tensor) else type(X).__name__
        raise ValueError(f"X must be a 3-D tensor {layout}, got {given}")
    if isinstance(num_heads, bool) or not isinstance(num_heads, int) or num_heads < 1 \
            or X.shape[axis] % num_heads:
        raise ValueError(f"num_heads must be a positive integer that divides {what}="
                         f"{X.shape[axis]}, got {num_heads!r}")


def _keep_from_mask(mask: object) -> torch.Tensor:
    """A boolean keep-mask from a boolean or 0/1 ``mask``; an additive float mask (0 = keep,
    -inf = drop), whose nonzero values mean *drop*, is refused rather than read as keep."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor (bool or 0/1), got {type(mask).__name__}")
    if mask.dtype == torch.bool:
        return mask
    other = mask[(mask != 0) & (mask != 1)]
    if other.numel():
        raise ValueError("mask must be boolean or hold only 0 and 1 (True/1 = keep, False/0 = "
                         f"masked), got the value {other.flatten()[0].item()}; for an additive "
                         "mask (0 = keep, -inf = masked) pass mask == 0")
    return mask != 0


def _check_fill_value(value: object, dtype: torch.dtype) -> None:
    """``value`` must be a number that ``dtype`` can hold (torch's overflow error names none)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"value must be a number, got {type(value).__name__}")
    info = torch.finfo(dtype) if dtype.is_floating_point else torch.iinfo(
        torch.uint8 if dtype == torch.bool else dtype)
    if math.isfinite(value) and not info.min <= value <= info.max:
        raise ValueError(f"value must fit X's dtype {dtype}, whose range is {info.min:g} .. "
                         f"{info.max:g}, got {value:g}; torch.finfo(X.dtype).min is the most "
                         "negative value of a float dtype")


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


def check_valid_lens(valid_lens: object, batch: int, num_queries: int, num_kv: int,
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
    low, high = (int(lengths.min()), int(lengths.max())) if lengths.numel() else (0, 0)
    if low < 0 or high > num_kv:
        got = str(low) if low == high else f"values from {low} to {high}"
        raise ValueError(f"{name} must lie in 0 .. num_kv={num_kv}, got {got}")
    return lengths


def _check_labels(name: str, labels: Sequence[str] | None, count: int, what: str) -> None:
    if labels is not None and len(labels) != count:
        raise ValueError(f"{name} must have one label per {what}: {count}, got {len(labels)}")


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)

