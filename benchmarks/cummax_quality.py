"""Chapter 10's learning-quality study: does the cumulative-max block learn as well as attention?

Three mixers (the cumulative-max block, the article's in-block softmax variant
and causal softmax attention through SDPA), each trained on two tasks,
associative recall and next-token prediction on the generated story corpus
(:mod:`attention_lab.data.stories`), at width 64, 3 seeds x 3 learning rates,
to the same step budget, on one thread.  Also measures the article's
per-epoch loss drop (0.85 vs 0.68) on the story task at each model's best
learning rate, and its "42 % more sensitive to peaks at 2048" as the relative
output change after a single-token spike (:func:`spike_sensitivity`) at
T = 2048 in the article's width.  Writes JSON with every loss curve
(default benchmarks/results/<date>-cpu-<n>core-cummax-quality.json).

    python benchmarks/cummax_quality.py [--seeds 0 1 2] [--lrs 1e-3 3e-3 1e-2]
"""

import argparse
import datetime
import json
import os
import pathlib
import time

import numpy as np
import torch

from attention_lab.benchmark import save_result
from attention_lab.checkpoints import threads
from attention_lab.cummax_study import (
    best_learning_rate,
    per_epoch_drop,
    spike_sensitivity,
    train_recall,
    train_stories,
)

MODELS = ("cummax", "in-block softmax", "softmax (fused)")
RECALL = {"steps": 250, "batch_size": 64, "num_pairs": 8, "num_keys": 16, "num_values": 16,
          "dim_size": 64, "heads": 4}
STORIES = {"epochs": 5, "steps_per_epoch": 40, "batch_size": 16, "seq_len": 64,
           "dim_size": 64, "heads": 4, "layers": 2}
SPIKE = {"seq_len": 2048, "dim_size": 512, "heads": 8, "seeds": [0, 1, 2]}
SPIKE_SCALES = (1.5, 2.0, 3.0, 5.0, 10.0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2])
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--spike-only", type=pathlib.Path, default=None, metavar="JSON",
                        help="only (re)measure the spike sensitivity and update this stored "
                             "study in place")
    parser.add_argument("--long-recall", type=pathlib.Path, default=None, metavar="JSON",
                        help="train cummax and the in-block variant 8x longer on recall "
                             "(seed 0, best lr) and add the result to this stored study")
    return parser.parse_args()


LONG_RECALL_FACTOR = 8


def add_long_recall(path: pathlib.Path) -> None:
    """Does the gap close with more steps?  The two slow learners, 8x the step budget."""
    report = json.loads(path.read_text())
    config = {**report["recall"], "steps": report["recall"]["steps"] * LONG_RECALL_FACTOR}
    long = {}
    with threads(1):
        for model in ("cummax", "in-block softmax"):
            lr = report["summary"][model]["recall_accuracy"]["lr"]
            run = train_recall(model, lr, 0, **config)
            long[model] = {"lr": lr, "seed": 0, "steps": config["steps"],
                           "accuracy": run["accuracy"], "losses": rounded(run["losses"])}
            print(f"{model}: {config['steps']} steps, lr {lr:g}: accuracy {run['accuracy']:.2f}")
    report["long_recall"] = long
    path.write_text(json.dumps(report, indent=1))
    print(f"updated {path}")


def measure_sensitivity() -> dict:
    """The spike sensitivity of every model at every scale (see spike_sensitivity)."""
    return {str(scale): {model: spike_sensitivity(model, scale=scale, **SPIKE)
                         for model in MODELS} for scale in SPIKE_SCALES}


def update_sensitivity(path: pathlib.Path) -> None:
    """Re-measure the spike part of a stored study and write it back."""
    report = json.loads(path.read_text())
    with threads(1):
        report["sensitivity"] = measure_sensitivity()
    report["spike"]["scales"] = list(SPIKE_SCALES)
    print("spike sensitivity:", json.dumps(report["sensitivity"]))
    path.write_text(json.dumps(report, indent=1))
    print(f"updated {path}")


def rounded(values: list[float]) -> list[float]:
    return [round(v, 4) for v in values]


def main() -> None:
    args = parse_args()
    if args.spike_only:
        update_sensitivity(args.spike_only)
        return
    if args.long_recall:
        add_long_recall(args.long_recall)
        return
    start = time.perf_counter()
    runs = {"recall": [], "stories": []}
    with threads(1):
        for model in MODELS:
            for lr in args.lrs:
                for seed in args.seeds:
                    recall = train_recall(model, lr, seed, **RECALL)
                    stories = train_stories(model, lr, seed, **STORIES)
                    runs["recall"].append({"model": model, "lr": lr, "seed": seed,
                                           "accuracy": recall["accuracy"],
                                           "losses": rounded(recall["losses"])})
                    runs["stories"].append({
                        "model": model, "lr": lr, "seed": seed,
                        "test_loss": stories["test_loss"],
                        "answer_accuracy": stories["answer_accuracy"],
                        "epoch_losses": stories["epoch_losses"],
                        "per_epoch_drop": per_epoch_drop(stories["epoch_losses"]),
                        "losses": rounded(stories["losses"])})
                    print(f"{model:>16} lr {lr:g} seed {seed}: recall accuracy "
                          f"{recall['accuracy']:.2f}, story test loss "
                          f"{stories['test_loss']:.3f}, answer accuracy "
                          f"{stories['answer_accuracy']:.2f} "
                          f"({time.perf_counter() - start:.0f} s)", flush=True)
        sensitivity = measure_sensitivity()
    summary = {}
    for model in MODELS:
        recall = [r for r in runs["recall"] if r["model"] == model]
        stories = [r for r in runs["stories"] if r["model"] == model]
        best_stories = best_learning_rate(stories, "test_loss", higher_is_better=False)
        at_best = [r for r in stories if r["lr"] == best_stories["lr"]]
        summary[model] = {
            "recall_accuracy": best_learning_rate(recall, "accuracy", higher_is_better=True),
            "story_test_loss": best_stories,
            "story_answer_accuracy": best_learning_rate(stories, "answer_accuracy",
                                                        higher_is_better=True),
            "per_epoch_drop_at_best_lr": float(np.mean([r["per_epoch_drop"] for r in at_best])),
            "per_epoch_drop_std": float(np.std([r["per_epoch_drop"] for r in at_best])),
        }
        print(model, json.dumps(summary[model]))
    print("spike sensitivity:", json.dumps(sensitivity))
    seconds = time.perf_counter() - start
    print(f"total {seconds:.0f} s")
    today = datetime.date.today().isoformat()
    report = {"date": today, "device": "cpu", "cores": os.cpu_count(), "threads": 1,
              "torch": torch.__version__, "models": list(MODELS), "seeds": args.seeds,
              "lrs": args.lrs, "optimizer": "AdamW", "recall": RECALL, "stories": STORIES,
              "spike": {**SPIKE, "scales": list(SPIKE_SCALES),
                        "definition": "mean over t > s of ||y'_t - y_t|| / mean over t > s "
                                      "of ||y_t||, token s of x ~ N(0, 1) multiplied by the "
                                      "scale, s in T/4, T/2, 3T/4, fresh mixer per seed"},
              "convergence": "per_epoch_drop: (first epoch's mean training loss - last "
                             "epoch's) / (epochs - 1), story task, each model's best lr "
                             "by test loss",
              "seconds": seconds, "summary": summary, "sensitivity": sensitivity,
              "runs": runs}
    save_result(report, args.out, f"{today}-cpu-{os.cpu_count()}core-cummax-quality.json")


if __name__ == "__main__":
    main()
