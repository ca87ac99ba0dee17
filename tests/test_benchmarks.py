"""The measuring tools of chapter 09 and `make bench` (correctness only: no timed tests)."""

import torch

import attention_utils as au


def test_attention_flops_counts_two_matmuls_forward_and_three_times_that_with_backward():
    forward = au.attention_flops(2, 4, 16, 8, "forward")
    assert forward == 4 * 2 * 4 * 16**2 * 8
    assert au.attention_flops(2, 4, 16, 8, "forward+backward") == 3 * forward


def test_peak_memory_sees_a_large_allocation_on_cpu():
    size = 64 * 2**20
    peak = au.peak_memory_bytes(lambda: torch.ones(size // 4).sum(), "cpu")
    assert peak is not None and peak >= 0.9 * size


def test_matmul_peak_is_positive():
    assert au.matmul_peak_gflops(n=128, repeats=1) > 0


def test_benchmark_rows_cover_every_case_and_skip_with_a_reason():
    rows = au.benchmark_attention([16, 64], batch=1, heads=2, head_dim=8, repeats=1,
                                  implementations=["teaching path", "fast path", "SDPA"],
                                  max_seconds=1e-9)
    first = [r for r in rows if r["length"] == 16]
    assert {(r["implementation"], r["mode"]) for r in first} == {
        (i, m) for i in ("teaching path", "fast path", "SDPA") for m in au.BENCH_MODES}
    assert all(r["median_ms"] > 0 and r["gflops"] > 0 for r in first)
    assert all(r["x_sdpa"] > 0 for r in first)
    assert all(r["x_sdpa"] == 1.0 for r in first if r["implementation"] == "SDPA")
    later = [r for r in rows if r["length"] == 64]
    assert later and all("budget" in r["skipped"] for r in later)
