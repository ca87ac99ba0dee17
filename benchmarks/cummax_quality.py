"""Chapter 10's learning-quality study: does the cumulative-max block learn as well as attention?

Three mixers (the cumulative-max block, the article's in-block softmax variant
and causal softmax attention through SDPA), each trained on two tasks,
associative recall and next-token prediction on the generated story corpus
(:mod:`attention_lab.data.stories`), at width 64, 3 seeds x 3 learning rates,
to the same step budget, on one thread; with ``--converged``, each again until its
held-out score stops improving.  Also measures the article's
per-epoch loss drop (0.85 vs 0.68) on the story task at each model's best
learning rate, and its "42 % more sensitive to peaks at 2048" as the relative
output change after a single-token spike (:func:`spike_sensitivity`) at
T = 2048 in the article's width.  Writes JSON with every loss curve
(default benchmarks/results/<date>-cpu-<n>core-cummax-quality.json).

    python benchmarks/cummax_quality.py [--seeds 0 1 2] [--lrs 3e-3 1e-2 3e-2]
    python benchmarks/cummax_quality.py --converged benchmarks/results/<study>.json
"""

import argparse
import concurrent.futures
import dataclasses
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
    Plateau,
    best_learning_rate,
    converged_summary,
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
LRS = [3e-3, 1e-2, 3e-2]

# Train to convergence: score held-out data every `every` steps and stop once `patience`
# scores in a row have not beaten the best by `min_delta` (recall: accuracy; stories: minus
# the loss, in nats), keeping the best weights; the budget is the same for every model.
CONVERGED = {
    "recall": {"budget": 80 * RECALL["steps"], "plateau": Plateau(every=250, patience=8,
                                                                 min_delta=0.01)},
    "stories": {"budget": 10 * STORIES["epochs"] * STORIES["steps_per_epoch"],
                "plateau": Plateau(every=STORIES["steps_per_epoch"], patience=10,
                                   min_delta=0.005)},
}
CURVE_CHUNK = 50  # converged runs store their training loss as means of 50 steps


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--lrs", type=float, nargs="+", default=None,
                        help=f"learning rates (default {LRS}; with --converged: the "
                             "stored study's, and runs stored for other rates are kept)")
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--spike-only", type=pathlib.Path, default=None, metavar="JSON",
                        help="only (re)measure the spike sensitivity and update this stored "
                             "study in place")
    parser.add_argument("--converged", type=pathlib.Path, default=None, metavar="JSON",
                        help="train every model, learning rate and seed again on both tasks "
                             "until its held-out score plateaus (or a budget 80x / 10x the "
                             "step budget runs out), in parallel processes, and add the "
                             "result to this stored study")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="processes for --converged, one torch thread each")
    return parser.parse_args()


def converged_run(task: str, model: str, lr: float, seed: int) -> dict:
    """One run of the convergence study (in a worker process, on one thread)."""
    rule = CONVERGED[task]
    with threads(1):
        if task == "recall":
            config = {**RECALL, "steps": rule["budget"]}
            run = train_recall(model, lr, seed, plateau=rule["plateau"], **config)
            metrics = {"accuracy": run["accuracy"]}
        else:
            epochs = rule["budget"] // STORIES["steps_per_epoch"]
            run = train_stories(model, lr, seed, plateau=rule["plateau"],
                                **{**STORIES, "epochs": epochs})
            metrics = {"test_loss": run["test_loss"], "answer_accuracy": run["answer_accuracy"]}
    losses = np.asarray(run["losses"])
    chunks = len(losses) // CURVE_CHUNK
    curve = losses[:chunks * CURVE_CHUNK].reshape(chunks, CURVE_CHUNK).mean(axis=1)
    return {"model": model, "lr": lr, "seed": seed, **metrics, "steps": run["steps"],
            "best_step": run["best_step"], "converged": run["converged"],
            "seconds": run["seconds"], "scores": rounded(run["scores"]),
            "loss_curve": rounded(curve.tolist())}


def add_converged(path: pathlib.Path, workers: int, lrs: list[float] | None) -> None:
    """Train every model at every learning rate (default: the study's) and seed to
    convergence; store it in place, keeping stored converged runs of other learning rates."""
    report = json.loads(path.read_text())
    start = time.perf_counter()
    lrs = lrs or report["lrs"]
    stored = report.get("converged", {"runs": {task: [] for task in CONVERGED}})["runs"]
    runs = {task: [r for r in task_runs if r["lr"] not in lrs]
            for task, task_runs in stored.items()}
    jobs = [(task, model, lr, seed) for task in CONVERGED for model in MODELS
            for lr in lrs for seed in report["seeds"]]
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        futures = {pool.submit(converged_run, *job): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            task, model, lr, seed = futures[future]
            run = future.result()
            runs[task].append(run)
            result = run.get("accuracy", run.get("test_loss"))
            print(f"{task:>7} {model:>16} lr {lr:g} seed {seed}: {result:.3f} after "
                  f"{run['steps']} steps ({'plateau' if run['converged'] else 'budget'}, "
                  f"{run['seconds']:.0f} s; {time.perf_counter() - start:.0f} s)", flush=True)
    for task_runs in runs.values():
        task_runs.sort(key=lambda r: (MODELS.index(r["model"]), r["lr"], r["seed"]))
    summary = {}
    for model in MODELS:
        recall = [r for r in runs["recall"] if r["model"] == model]
        stories = [r for r in runs["stories"] if r["model"] == model]
        summary[model] = {
            "recall_accuracy": converged_summary(recall, "accuracy", higher_is_better=True),
            "story_test_loss": converged_summary(stories, "test_loss", higher_is_better=False),
            "story_answer_accuracy": converged_summary(stories, "answer_accuracy",
                                                       higher_is_better=True)}
        print(model, json.dumps(summary[model]))
    report.pop("long_recall", None)  # the single 8x run this study replaces
    report["converged"] = {
        "rule": {task: {"budget_steps": rule["budget"], **dataclasses.asdict(rule["plateau"])}
                 for task, rule in CONVERGED.items()},
        "definition": "score held-out data (recall: accuracy on 2000 validation queries; "
                      "stories: minus the loss on 64 validation windows) every `every` "
                      "steps; stop once the last `patience` scores do not beat the best "
                      "earlier one by more than `min_delta`, or at the budget; test the "
                      "best-scoring weights",
        "lrs": sorted({r["lr"] for r in runs["recall"]}), "workers": workers,
        "seconds": report.get("converged", {}).get("seconds", 0) + time.perf_counter() - start,
        "curve_chunk": CURVE_CHUNK, "summary": summary, "runs": runs}
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
    if args.converged:
        add_converged(args.converged, args.workers, args.lrs)
        return
    start = time.perf_counter()
    lrs = args.lrs or LRS
    runs = {"recall": [], "stories": []}
    with threads(1):
        for model in MODELS:
            for lr in lrs:
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
              "lrs": lrs, "optimizer": "AdamW", "recall": RECALL, "stories": STORIES,
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
