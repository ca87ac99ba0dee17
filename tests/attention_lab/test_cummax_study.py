"""attention_lab.cummax_study: the study's pieces on tiny settings (no timed tests)."""

import pytest

from attention_lab.cummax_study import (
    best_learning_rate,
    per_epoch_drop,
    spike_sensitivity,
    train_recall,
    train_stories,
)


def test_train_recall_is_seeded(one_thread):
    a = train_recall("cummax", 3e-3, 0, steps=3, batch_size=8, dim_size=16, test_size=50)
    b = train_recall("cummax", 3e-3, 0, steps=3, batch_size=8, dim_size=16, test_size=50)
    assert a == b and len(a["losses"]) == 3 and 0 <= a["accuracy"] <= 1


def test_train_stories_epochs(one_thread):
    run = train_stories("in-block softmax", 3e-3, 0, epochs=2, steps_per_epoch=2, batch_size=2,
                        seq_len=16, dim_size=16, layers=1, test_windows=4)
    assert len(run["losses"]) == 4 and len(run["epoch_losses"]) == 2
    assert run["test_loss"] > 0 and 0 <= run["answer_accuracy"] <= 1


def test_per_epoch_drop():
    assert per_epoch_drop([3.0, 2.0, 1.5]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="epoch_losses needs >= 2 epochs, got 1"):
        per_epoch_drop([1.0])


def test_best_learning_rate_picks_the_best_mean():
    runs = [{"lr": 0.1, "seed": 0, "loss": 1.0}, {"lr": 0.1, "seed": 1, "loss": 3.0},
            {"lr": 0.01, "seed": 0, "loss": 1.5}, {"lr": 0.01, "seed": 1, "loss": 1.7}]
    best = best_learning_rate(runs, "loss", higher_is_better=False)
    assert best["lr"] == 0.01 and best["mean"] == pytest.approx(1.6)
    assert best["std"] == pytest.approx(0.1) and best["seeds"] == 2
    assert best_learning_rate(runs, "loss", higher_is_better=True)["lr"] == 0.1


def test_spike_sensitivity_grows_with_the_spike():
    small = spike_sensitivity("cummax", seq_len=32, dim_size=16, heads=4, scale=1.5, seeds=(0,))
    large = spike_sensitivity("cummax", seq_len=32, dim_size=16, heads=4, scale=10, seeds=(0,))
    assert 0 < small < large
    assert spike_sensitivity("softmax (fused)", seq_len=32, dim_size=16, heads=4, scale=1.0,
                             seeds=(0,)) == 0


def test_ratio_verdict():
    from attention_lab.cummax_study import ratio_verdict

    assert ratio_verdict(0.5, 0.6, 0.69, smaller_is_better=True) == "holds"
    assert ratio_verdict(0.7, 0.9, 0.69, smaller_is_better=True) == "does not hold"
    assert ratio_verdict(0.6, 0.9, 0.69, smaller_is_better=True) == "not settled"
    assert ratio_verdict(1.5, 1.6, 1.4, smaller_is_better=False) == "holds"
    assert ratio_verdict(1.0, 1.3, 1.4, smaller_is_better=False) == "does not hold"
    with pytest.raises(ValueError, match="low must be <= high"):
        ratio_verdict(2.0, 1.0, 1.4, smaller_is_better=False)


def test_paired_ratio_pairs_rounds():
    from attention_lab.cummax_study import paired_ratio

    rows = [{"kind": "a", "length": 8, "times_ms": [2.0, 4.0, 8.0]},
            {"kind": "b", "length": 8, "times_ms": [1.0, 4.0, 4.0]}]
    assert paired_ratio(rows, "a", "b", 8) == {"median": 2.0, "q25": 1.5, "q75": 2.0}


def test_verdict_rows_on_the_stored_results():
    import json
    import pathlib

    from attention_lab.cummax_study import verdict_rows

    results = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    load = lambda name: json.loads((results / name).read_text())  # noqa: E731
    rows = verdict_rows(load("2026-12-02-cpu-2core-cummax.json"),
                        load("2026-12-02-cpu-2core-cummax-quality.json"),
                        load("2026-11-23-cpu-2core.json"))
    assert len(rows) == 7
    for row in rows:
        assert set(row) == {"claim", "article", "measured", "configuration", "verdict"}
        assert "hold" in row["verdict"] or "settled" in row["verdict"]
    accuracy = next(row for row in rows if row["claim"] == "higher accuracy")
    assert "stopped improving" in accuracy["configuration"]  # the converged runs, not the short
    assert "18 of 18 runs" in accuracy["configuration"]


def test_plateaued_compares_the_last_scores_with_the_best_before_them():
    from attention_lab.cummax_study import plateaued

    assert not plateaued([0.1, 0.9], patience=2, min_delta=0.01)  # too few scores to tell
    assert plateaued([0.5, 0.9, 0.905, 0.909], patience=2, min_delta=0.01)
    assert not plateaued([0.5, 0.9, 0.905, 0.92], patience=2, min_delta=0.01)
    assert plateaued([0.9, 0.5, 0.6], patience=2, min_delta=0.0)  # worse counts as no gain
    with pytest.raises(ValueError, match="patience must be >= 1, got 0"):
        plateaued([0.1, 0.2], patience=0, min_delta=0.01)


def scripted_training(scores):
    """A model whose weight counts the steps taken, and a score read from ``scores``."""
    import torch

    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)

    def step():
        with torch.no_grad():
            model.weight += 1
        return 0.0

    return model, step, iter(scores).__next__


def test_train_until_plateau_stops_and_keeps_the_best_weights():
    from attention_lab.cummax_study import Plateau, train_until_plateau

    model, step, score = scripted_training([0.1, 0.5, 0.4, 0.45, 0.9])
    run = train_until_plateau(model, step, score, steps=100,
                              plateau=Plateau(every=2, patience=2, min_delta=0.01))
    assert run["scores"] == [0.1, 0.5, 0.4, 0.45] and run["steps"] == 8
    assert run["best_step"] == 4 and model.weight.item() == 4  # the weights of the best score
    assert run["converged"] and len(run["losses"]) == 8


def test_train_until_plateau_says_when_the_budget_ran_out_first():
    from attention_lab.cummax_study import Plateau, train_until_plateau

    model, step, score = scripted_training([0.1, 0.5, 0.6])
    run = train_until_plateau(model, step, score, steps=5,
                              plateau=Plateau(every=2, patience=2, min_delta=0.01))
    assert run["steps"] == 5 and run["scores"] == [0.1, 0.5, 0.6]  # scored at 2, 4 and 5
    assert not run["converged"] and run["best_step"] == 5 and model.weight.item() == 5


def test_training_to_a_plateau_is_seeded_and_within_budget(one_thread):
    from attention_lab.cummax_study import Plateau

    plateau = Plateau(every=2, patience=1, min_delta=1.0)  # stops at the second score
    runs = [train_recall("cummax", 3e-3, 0, steps=10, batch_size=8, dim_size=16, test_size=50,
                         plateau=plateau) for _ in range(2)]
    for run in runs:
        run.pop("seconds")
        assert run["steps"] == 4 and run["converged"] and len(run["scores"]) == 2
    assert runs[0] == runs[1]
    story = train_stories("softmax (fused)", 3e-3, 0, epochs=3, steps_per_epoch=2,
                          batch_size=2, seq_len=16, dim_size=16, layers=1, test_windows=4,
                          plateau=plateau)
    assert story["steps"] == 4 and len(story["epoch_losses"]) == 2 and story["test_loss"] > 0


def test_converged_summary_reports_the_runs_at_the_best_learning_rate():
    from attention_lab.cummax_study import converged_summary

    runs = [{"lr": lr, "seed": seed, "accuracy": acc, "steps": steps, "best_step": steps - 500,
             "seconds": 1.04, "converged": steps < 900}
            for lr, seed, acc, steps in ((0.1, 0, 0.5, 800), (0.1, 1, 0.7, 1000),
                                         (0.01, 0, 0.9, 600), (0.01, 1, 0.9, 1000))]
    summary = converged_summary(runs, "accuracy", higher_is_better=True)
    assert summary["lr"] == 0.01 and summary["mean"] == pytest.approx(0.9)
    assert summary["steps"] == [600, 1000] and summary["best_steps"] == [100, 500]
    assert summary["seconds"] == [1.0, 1.0] and summary["converged"] == 1
