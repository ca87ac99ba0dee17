"""Chapter 06's comparison of CNN, RNN and self-attention layers, measured rather than stated.

Three layers with one interface, ``(batch, num_steps, d) -> (batch, num_steps, d)``
(:class:`ConvLayer`, :class:`RNNLayer`, :class:`SelfAttentionLayer`), and two
measurements behind d2l §11.6's table (its third column, the cost, is timed
with :mod:`attention_lab.measure`):

- :func:`sequential_products`: the longest chain of matrix products in an
  output's autograd graph, each waiting for the one before: the sequential
  operations no amount of parallel hardware can overlap;
- :func:`fewest_steps`: how many sequential steps (stacked layers, recurrent
  updates) it takes before one output position depends on a given input
  position, found with autograd (:func:`dependence`): the path length
  between them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

import attention_utils as au

# autograd nodes of matrix products (linear layers, bmm, einsum, convolutions)
PRODUCT_NODES = frozenset({"MmBackward0", "AddmmBackward0", "BmmBackward0", "BaddbmmBackward0",
                           "MvBackward0", "AddmvBackward0", "ConvolutionBackward0"})


class ConvLayer(nn.Module):
    """``tanh(Conv1d(x))`` over the sequence axis, ``padding`` keeping the length.

    ``forward(x (batch, num_steps, d))`` returns ``(batch, num_steps, d)``;
    output ``i`` reads inputs ``i - r .. i + r`` with ``r = dilation * (kernel_size - 1) / 2``.
    """

    def __init__(self, d: int, kernel_size: int = 3, dilation: int = 1):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        self.conv = nn.Conv1d(d, d, kernel_size, padding=dilation * (kernel_size // 2),
                              dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        au.check_tensor("x", x, 3, "(batch, num_steps, d)")
        return torch.tanh(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (B, T, d)


class RNNLayer(nn.Module):
    """An Elman RNN (``nn.RNN``, tanh): ``h_i = tanh(W_x x_i + W_h h_{i-1} + b)``.

    ``forward(x (batch, num_steps, d))`` returns every hidden state
    ``(batch, num_steps, d)``, starting from a zero state.
    """

    def __init__(self, d: int):
        super().__init__()
        self.rnn = nn.RNN(d, d, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        au.check_tensor("x", x, 3, "(batch, num_steps, d)")
        return self.rnn(x)[0]  # (B, T, d)


class SelfAttentionLayer(nn.Module):
    """Self-attention with :class:`attention_utils.MultiHeadAttention`: queries = keys = values.

    ``forward(x (batch, num_steps, d), valid_lens=None)`` returns ``(batch,
    num_steps, d)``; ``valid_lens`` as in :func:`attention_utils.masked_softmax`
    (``(batch, num_steps)`` lengths ``1 .. num_steps`` make it causal).  It runs
    the plain teaching path (``masked_softmax`` then ``bmm``), so that its
    autograd graph shows every matrix product :func:`sequential_products` counts.
    """

    def __init__(self, d: int, num_heads: int = 4):
        super().__init__()
        self.attention = au.MultiHeadAttention(d, num_heads, query_size=d, key_size=d,
                                               value_size=d)
        self.attention.attention.fused = False  # the plain path: one graph node per step

    def forward(self, x: torch.Tensor, valid_lens: object = None) -> torch.Tensor:
        return self.attention(x, x, x, valid_lens)  # (B, T, d)


def sequential_products(output: torch.Tensor) -> int:
    """The longest chain of matrix products in ``output``'s autograd graph.

    Products on one chain must run one after another, each needing the
    result of the one before; products on different chains could run at the
    same time.  So this counts the sequential operations of the computation
    that made ``output``, in units of matrix products (:data:`PRODUCT_NODES`).
    It sees what PyTorch records: a fused kernel (cuDNN's RNN on CUDA) is one
    node however many steps it runs inside, so measure on the CPU.
    """
    if not isinstance(output, torch.Tensor) or output.grad_fn is None:
        raise ValueError("output must be a tensor computed with autograd recording "
                         "(an input that requires grad, outside torch.no_grad())")
    order, seen, stack = [], set(), [(output.grad_fn, False)]
    while stack:  # iterative post-order: graphs of long RNNs are deeper than Python's stack
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend((child, False) for child, _ in node.next_functions
                     if child is not None and child not in seen)
    depth: dict[object, int] = {}
    for node in order:  # every child comes before its parent
        below = max((depth[child] for child, _ in node.next_functions if child in depth),
                    default=0)
        depth[node] = below + (type(node).__name__ in PRODUCT_NODES)
    return depth[output.grad_fn]


def dependence(outputs: Callable[[torch.Tensor], Iterable[torch.Tensor]], x: torch.Tensor,
               source: int) -> Iterator[float]:
    """How much each step's output depends on input position ``source``, by autograd.

    ``outputs(x)`` yields, step by step, the output at one fixed position
    ``(batch, d)`` after 1, 2, 3, ... sequential steps (see
    :func:`stacked_outputs`, :func:`recurrent_outputs`).  For each, this yields
    the largest ``|d out.sum() / d x[:, source]|``: exactly 0.0 where no path
    leads from ``x[:, source]`` to the output.  ``x`` ``(batch, num_steps, d)``
    must be float64 (with float64 layers): a dependence carried through many
    layers can shrink below float32's range and read as none.  ``x`` is not
    modified.
    """
    au.check_tensor("x", x, 3, "(batch, num_steps, d)")
    if x.dtype != torch.float64:
        raise TypeError(f"x must be float64 (and the layers too: .double()), got {x.dtype}: "
                        "in float32 a long chain of small gradients can underflow to 0")
    if not -x.shape[1] <= source < x.shape[1]:
        raise ValueError(f"source must be a position in 0 .. {x.shape[1] - 1}, got {source}")
    return _gradient_sizes(outputs, x.detach().clone().requires_grad_(True), source)


def _gradient_sizes(outputs, x: torch.Tensor, source: int) -> Iterator[float]:
    for out in outputs(x):
        (grad,) = torch.autograd.grad(out.sum(), x, retain_graph=True, allow_unused=True)
        yield 0.0 if grad is None else float(grad[:, source].abs().max())


def fewest_steps(outputs: Callable[[torch.Tensor], Iterable[torch.Tensor]], x: torch.Tensor,
                 source: int) -> int | None:
    """The first (1-based) step whose output depends on ``x[:, source]``, or None if none does.

    Arguments as for :func:`dependence`; stops at the first step that depends.
    """
    sizes = dependence(outputs, x, source)
    return next((step for step, size in enumerate(sizes, start=1) if size > 0), None)


def stacked_outputs(layers: Iterable[nn.Module], position: int, **kwargs,
                    ) -> Callable[[torch.Tensor], Iterator[torch.Tensor]]:
    """For :func:`fewest_steps`: the output at ``position`` after each layer of a stack.

    Each of ``layers`` maps ``(batch, num_steps, d)`` to the same shape;
    ``kwargs`` (e.g. ``valid_lens``) go to every layer.
    """
    def outputs(x: torch.Tensor) -> Iterator[torch.Tensor]:
        h = x
        for layer in layers:
            h = layer(h, **kwargs)  # (B, T, d)
            yield h[:, position]  # (B, d)
    return outputs


def recurrent_outputs(layer: nn.Module, position: int,
                      ) -> Callable[[torch.Tensor], Iterator[torch.Tensor]]:
    """For :func:`fewest_steps`: an RNN's output at ``position`` after 1, 2, ... updates.

    After ``s`` updates the RNN has read ``x[:, position - s + 1 .. position]``,
    starting from a zero state: information from ``s`` positions back needs
    ``s`` updates, one after another, to arrive.
    """
    def outputs(x: torch.Tensor) -> Iterator[torch.Tensor]:
        end = position % x.shape[1]
        for steps in range(1, end + 2):
            yield layer(x[:, end - steps + 1:end + 1])[:, -1]  # (B, d)
    return outputs
