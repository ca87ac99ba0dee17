"""attention_lab.benchmark: the harness covers every case (correctness only: no timed tests)."""


import json

import pytest
import torch

from attention_lab.benchmark import (
    BENCH_MODES,
    _bench_case,
    bench_valid_lens,
    benchmark_attention,
    time_scoring_functions,
)
from attention_lab.panel import cpu_only_note, timing_panel


def test_benchmark_rows_cover_every_case_and_skip_with_a_reason():
    names = ("teaching path", "fast path", "d2l 1.0.3", "SDPA")
    rows = benchmark_attention([16, 64], batch=2, heads=2, head_dim=8, repeats=1,
                               implementations=names, max_seconds=1e-9)
    first = [r for r in rows if r["length"] == 16]
    assert {(r["implementation"], r["mode"]) for r in first} == {
        (i, m) for i in names for m in BENCH_MODES}
    assert all(r["median_ms"] > 0 and r["gflops"] > 0 for r in first)
    assert all(r["x_sdpa"] > 0 and r["x_d2l"] > 0 for r in first)
    assert all(r["x_sdpa"] == 1.0 for r in first if r["implementation"] == "SDPA")
    assert all(r["x_d2l"] == 1.0 for r in first if r["implementation"] == "d2l 1.0.3")
    later = [r for r in rows if r["length"] == 64]
    assert later and all("budget" in r["skipped"] for r in later)


def test_bench_valid_lens_are_seeded_and_in_range():
    lengths = bench_valid_lens(64, 10)
    assert torch.equal(lengths, bench_valid_lens(64, 10))
    assert lengths.min() >= 1 and lengths.max() <= 10 and len(set(lengths.tolist())) > 1


def test_benchmark_implementations_agree_on_the_masked_job():
    """The softmax paths the benchmark times compute the same attention (same mask)."""
    torch.manual_seed(0)
    outputs = {}
    for name in ("teaching path", "fast path", "d2l 1.0.3", "SDPA"):
        torch.manual_seed(0)
        fn, inputs = _bench_case(name, 2, 2, 6, 4, torch.device("cpu"))
        outputs[name] = fn(*inputs).reshape(2, 2, 6, 4)  # (B, h, T, dh)
    for name, out in outputs.items():
        torch.testing.assert_close(out, outputs["SDPA"], msg=name)


def test_time_scoring_functions_and_panel():
    times = time_scoring_functions(batch=1, num_queries=4, num_kv=4, d=8, repeats=1)
    assert set(times) == {"additive", "dot product", "scaled dot product", "bilinear"}
    assert all(t > 0 for t in times.values())
    calls = []
    panel = timing_panel(lambda device: calls.append(device) or f"ran on {device}")
    toggle, button, _ = panel.children[0].children
    assert toggle.disabled == (not torch.cuda.is_available())
    button.click()
    assert calls == [torch.device("cpu")]
    assert panel.children[1].value == "ran on cpu" + cpu_only_note()
    assert "no GPU time to compare" in cpu_only_note() or torch.cuda.is_available()


def test_training_step_benchmark_rows():
    from attention_lab.benchmark import benchmark_training_steps
    from attention_lab.models.cummax import MIXERS, MixerLM

    rows = benchmark_training_steps(lambda kind: MixerLM(kind, 13, 16, 4, 1, max_len=16),
                                    MIXERS, [8, 16], batch=2, vocab_size=13, repeats=2,
                                    reference="softmax (fused)")
    assert [(r["kind"], r["length"]) for r in rows] == [(k, n) for n in (8, 16) for k in MIXERS]
    for r in rows:
        assert len(r["times_ms"]) == 2 and r["median_ms"] > 0 and r["tokens_per_s"] > 0
        assert r["x_reference"] > 0 and r["parameters"] > 0
        low, high = r["x_reference_quartiles"]
        assert 0 < low <= r["x_reference"] <= high
    assert {r["x_reference"] for r in rows if r["kind"] == "softmax (fused)"} == {1.0}


def test_stored_results_are_found_from_anywhere_and_a_missing_one_says_how_to_make_it():
    from attention_lab.benchmark import stored_result

    assert stored_result("2026-12-02-cpu-2core-cummax.json")["config"]["layers"] == 6
    with pytest.raises(FileNotFoundError, match="make bench"):
        stored_result("1999-01-01-absent.json")


def test_a_saved_result_reads_back(tmp_path, capsys):
    from attention_lab.benchmark import save_result

    path = save_result({"rows": [1, 2]}, tmp_path / "sub" / "run.json", "unused.json")
    assert path == tmp_path / "sub" / "run.json" and capsys.readouterr().out == f"wrote {path}\n"
    assert json.loads(path.read_text()) == {"rows": [1, 2]}
