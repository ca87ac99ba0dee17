"""attention_lab.measure: FLOP counts, peak memory, saved tensors, slopes (not speed)."""


import pytest
import torch

from attention_lab.measure import (
    attention_flops,
    loglog_slope,
    matmul_peak_gflops,
    peak_memory_bytes,
    saved_tensor_mib,
)


def test_attention_flops_counts_two_matmuls_forward_and_three_times_that_with_backward():
    forward = attention_flops(2, 4, 16, 8, "forward")
    assert forward == 4 * 2 * 4 * 16**2 * 8
    assert attention_flops(2, 4, 16, 8, "forward+backward") == 3 * forward


def test_peak_memory_sees_a_large_allocation_on_cpu():
    size = 64 * 2**20
    peak = peak_memory_bytes(lambda: torch.ones(size // 4).sum(), "cpu")
    assert peak is not None and peak >= 0.9 * size


def test_matmul_peak_is_positive():
    assert matmul_peak_gflops(n=128, repeats=1) > 0


def test_saved_tensor_mib_and_slope():
    x = torch.randn(256, 256, requires_grad=True)
    out, mib = saved_tensor_mib(lambda: (x * x).sum())
    assert out.ndim == 0 and mib == pytest.approx(256 * 256 * 4 / 2**20)
    assert loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="same length"):
        loglog_slope([1, 2], [1.0])
