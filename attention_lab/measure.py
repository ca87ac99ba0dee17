"""Measuring tools: wall-clock time (CUDA-synchronised), medians, memory saved for backward,
peak memory, log-log slopes, FLOP counts.
"""

from __future__ import annotations

import ctypes
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn


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

