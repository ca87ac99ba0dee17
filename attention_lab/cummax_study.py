"""Chapter 10's learning-quality study: small models trained on two tasks over seeds and
learning rates (to a step budget, or until a held-out score plateaus), the per-epoch loss
drop, and the sensitivity to a single-position spike.

``benchmarks/cummax_quality.py`` runs the full study and stores it as JSON; the
notebook runs a scaled-down version live and reads the stored one.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from attention_lab.data.recall import associative_recall_batch
from attention_lab.data.stories import VOCAB, story_tokens
from attention_lab.models.cummax import MixerLM, RecallNet, make_mixer

QUESTION = VOCAB.index("?")
TEST_SEED, VALIDATION_SEED = 1234, 4321  # recall's held-out queries: one set per role
COMPARED = ("cummax", "softmax (fused)", "in-block softmax")  # the verdict's quality rows


@dataclass(frozen=True)
class Plateau:
    """Early stopping: score held-out data every ``every`` steps, and stop once the last
    ``patience`` scores have not beaten the best earlier one by more than ``min_delta``."""

    every: int
    patience: int
    min_delta: float


def plateaued(scores: Sequence[float], patience: int, min_delta: float) -> bool:
    """True when none of the last ``patience`` scores (higher is better) beats the best score
    before them by more than ``min_delta``; False while there are ``patience`` or fewer."""
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    if len(scores) <= patience:
        return False
    return max(scores[-patience:]) <= max(scores[:-patience]) + min_delta


def train_until_plateau(model: torch.nn.Module, step: Callable[[], float],
                        score: Callable[[], float], steps: int, plateau: Plateau) -> dict:
    """Call ``step()`` (one optimiser step; returns its training loss) at most ``steps`` times,
    scoring every ``plateau.every`` steps with ``score()`` (held-out data, higher is better,
    run without gradient) and stopping at a plateau; then load the best-scoring weights back.

    Returns ``losses`` (per step), ``scores`` (per evaluation), ``steps`` (taken),
    ``best_step``, ``converged`` (False when the budget ran out first) and ``seconds``.
    """
    losses, scores, best, best_step = [], [], None, 0
    start = time.perf_counter()
    while len(losses) < steps and not plateaued(scores, plateau.patience, plateau.min_delta):
        losses += [step() for _ in range(min(plateau.every, steps - len(losses)))]
        with torch.no_grad():
            scores.append(score())
        if scores[-1] > max(scores[:-1], default=-math.inf):
            best, best_step = copy.deepcopy(model.state_dict()), len(losses)
    model.load_state_dict(best)
    return {"losses": losses, "scores": scores, "steps": len(losses), "best_step": best_step,
            "converged": plateaued(scores, plateau.patience, plateau.min_delta),
            "seconds": time.perf_counter() - start}


def recall_accuracy(net: RecallNet, batch: tuple[torch.Tensor, ...]) -> float:
    """Share of ``batch``'s queries (keys, values, targets) that ``net`` answers right."""
    with torch.no_grad():
        return (net(*batch[:2]).argmax(dim=-1) == batch[2]).float().mean().item()


def train_recall(kind: str, lr: float, seed: int, steps: int = 300, batch_size: int = 64,
                 num_pairs: int = 8, num_keys: int = 16, num_values: int = 16,
                 dim_size: int = 64, heads: int = 4, test_size: int = 2000,
                 plateau: Plateau | None = None) -> dict:
    """Train a :class:`RecallNet` with mixer ``kind`` on associative recall (AdamW, ``lr``).

    ``steps`` is the budget; with ``plateau``, training stops early once the
    accuracy on ``test_size`` validation queries plateaus and keeps its best
    weights (:func:`train_until_plateau`, whose entries the result also has).
    Returns ``losses`` (training cross-entropy per step) and ``accuracy`` on
    ``test_size`` held-out queries (a fixed test seed, the same for every run).
    """
    torch.manual_seed(seed)
    net = RecallNet(make_mixer(kind, dim_size, heads), dim_size, num_keys, num_values,
                    num_pairs + 1)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr)
    data = torch.Generator().manual_seed(seed + 1)

    def step() -> float:
        keys, values, targets = associative_recall_batch(batch_size, num_pairs, num_keys,
                                                         num_values, data)
        loss = F.cross_entropy(net(keys, values), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def queries(seed: int) -> tuple[torch.Tensor, ...]:
        return associative_recall_batch(test_size, num_pairs, num_keys, num_values,
                                        torch.Generator().manual_seed(seed))

    if plateau is None:
        run = {"losses": [step() for _ in range(steps)]}
    else:
        validation = queries(VALIDATION_SEED)
        run = train_until_plateau(net, step, lambda: recall_accuracy(net, validation), steps,
                                  plateau)
    return {**run, "accuracy": recall_accuracy(net, queries(TEST_SEED))}


def story_windows(num_windows: int, seq_len: int, seed: int) -> torch.Tensor:
    """``num_windows`` consecutive, non-overlapping windows ``(num_windows, seq_len + 1)`` of the
    story stream with seed ``seed``."""
    return story_tokens(num_windows * (seq_len + 1), seed).reshape(num_windows, seq_len + 1)


def story_loss(model: MixerLM, windows: torch.Tensor) -> tuple[float, float]:
    """Mean next-token cross-entropy of ``model`` on ``windows`` ``(N, T + 1)``, and its
    accuracy on the token after each ``?`` (the city, which needs a lookup)."""
    with torch.no_grad():
        logits = model(windows[:, :-1])  # (N, T, V)
    loss = F.cross_entropy(logits.reshape(-1, len(VOCAB)), windows[:, 1:].reshape(-1)).item()
    asked = windows[:, :-1] == QUESTION  # (N, T)
    return loss, (logits.argmax(-1)[asked] == windows[:, 1:][asked]).float().mean().item()


def train_stories(kind: str, lr: float, seed: int, epochs: int = 6, steps_per_epoch: int = 50,
                  batch_size: int = 16, seq_len: int = 64, dim_size: int = 64, heads: int = 4,
                  layers: int = 2, test_windows: int = 64, plateau: Plateau | None = None) -> dict:
    """Train a :class:`MixerLM` with mixer ``kind`` on the story corpus, ``epochs`` passes.

    The training set is ``steps_per_epoch * batch_size`` windows (the corpus
    with seed 0), shuffled anew each epoch; the test set is ``test_windows``
    windows of another stream (seed 1).  With ``plateau``, training stops
    early once the loss on ``test_windows`` validation windows (seed 2) stops
    falling, and keeps its best weights (:func:`train_until_plateau`, whose
    entries the result also has).  Returns ``losses`` (per step),
    ``epoch_losses`` (mean training loss of each epoch), ``test_loss`` (mean
    next-token cross-entropy on the test set) and ``answer_accuracy`` (the
    token after each ``?``: the city, which needs a lookup).
    """
    torch.manual_seed(seed)
    model = MixerLM(kind, len(VOCAB), dim_size, heads, layers, seq_len)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    train = story_windows(steps_per_epoch * batch_size, seq_len, 0)  # (N, T+1)
    order = torch.Generator().manual_seed(seed + 1)

    def shuffled() -> Iterator[torch.Tensor]:
        while True:
            yield from torch.randperm(len(train), generator=order).reshape(steps_per_epoch, -1)

    batches = shuffled()

    def step() -> float:
        window = train[next(batches)]  # (B, T+1)
        logits = model(window[:, :-1])  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, len(VOCAB)), window[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    budget = epochs * steps_per_epoch
    if plateau is None:
        run = {"losses": [step() for _ in range(budget)]}
    else:
        validation = story_windows(test_windows, seq_len, 2)  # (N, T+1)
        run = train_until_plateau(model, step, lambda: -story_loss(model, validation)[0],
                                  budget, plateau)
    losses = run["losses"]
    epoch_losses = [float(np.mean(losses[i:i + steps_per_epoch]))
                    for i in range(0, len(losses) - steps_per_epoch + 1, steps_per_epoch)]
    test_loss, answer_accuracy = story_loss(model, story_windows(test_windows, seq_len, 1))
    return {**run, "epoch_losses": epoch_losses, "test_loss": test_loss,
            "answer_accuracy": answer_accuracy}


def per_epoch_drop(epoch_losses: Sequence[float]) -> float:
    """Mean fall of the epoch-mean training loss per epoch: ``(first - last) / (epochs - 1)``."""
    if len(epoch_losses) < 2:
        raise ValueError(f"epoch_losses needs >= 2 epochs, got {len(epoch_losses)}")
    return (epoch_losses[0] - epoch_losses[-1]) / (len(epoch_losses) - 1)


def best_learning_rate(runs: Sequence[dict], metric: str, higher_is_better: bool) -> dict:
    """Summary of one model's runs (each a dict with ``lr``, ``seed`` and ``metric``).

    Picks the learning rate whose mean ``metric`` over seeds is best and
    returns ``{"lr", "mean", "std", "min", "max", "seeds", "by_lr"}``
    (``by_lr``: mean per learning rate; ``std`` over seeds, ddof 0).
    """
    by_lr: dict[float, list[float]] = {}
    for run in runs:
        by_lr.setdefault(run["lr"], []).append(run[metric])
    means = {lr: float(np.mean(values)) for lr, values in by_lr.items()}
    best = (max if higher_is_better else min)(means, key=means.get)
    values = by_lr[best]
    return {"lr": best, "mean": means[best], "std": float(np.std(values)),
            "min": float(min(values)), "max": float(max(values)), "seeds": len(values),
            "by_lr": {str(lr): mean for lr, mean in means.items()}}


def converged_summary(runs: list[dict], metric: str, higher_is_better: bool) -> dict:
    """:func:`best_learning_rate` of runs trained with :func:`train_until_plateau`, plus the
    ``steps``, ``best_steps`` and ``seconds`` of each run at that learning rate and how many
    of them ``converged``."""
    best = best_learning_rate(runs, metric, higher_is_better)
    at_best = [r for r in runs if r["lr"] == best["lr"]]
    return {**best, "steps": [r["steps"] for r in at_best],
            "best_steps": [r["best_step"] for r in at_best],
            "seconds": [round(r["seconds"], 1) for r in at_best],
            "converged": sum(r["converged"] for r in at_best)}


def spike_sensitivity(kind: str, seq_len: int = 2048, dim_size: int = 512, heads: int = 8,
                      scale: float = 10.0, positions: Sequence[int] | None = None,
                      seeds: Sequence[int] = (0, 1, 2)) -> float:
    """How much a single-position spike moves the later outputs of a freshly initialised mixer.

    For each seed: a mixer ``kind`` (seeded), an input ``x ~ N(0, 1)`` of shape
    ``(1, seq_len, dim_size)``, and for each spike position ``s`` (default
    ``seq_len`` / 4, / 2 and 3/4) the input with token ``s`` multiplied by
    ``scale``.  The sensitivity is ``mean_t>s ||y'_t - y_t|| / mean_t>s ||y_t||``:
    the relative change of the outputs *after* the spike, averaged over
    positions and seeds.  Forward pass only, no gradient.
    """
    positions = positions or (seq_len // 4, seq_len // 2, 3 * seq_len // 4)
    values = []
    for seed in seeds:
        torch.manual_seed(seed)
        mixer = make_mixer(kind, dim_size, heads)
        x = torch.randn(1, seq_len, dim_size, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            y = mixer(x)  # (1, T, d)
            for s in positions:
                spiked = x.clone()
                spiked[:, s] *= scale
                change = (mixer(spiked) - y)[0, s + 1:].norm(dim=-1).mean()  # over t > s
                values.append((change / y[0, s + 1:].norm(dim=-1).mean()).item())
    result = float(np.mean(values))
    assert math.isfinite(result)
    return result


def paired_ratio(rows: Sequence[dict], kind: str, baseline: str, length: int) -> dict:
    """``kind``'s training-step time over ``baseline``'s, round by round, at ``length``.

    ``rows`` are :func:`~attention_lab.benchmark.benchmark_training_steps` rows; the
    rounds ran every kind once, so round ``r``'s ratio pairs two steps taken
    seconds apart.  Returns ``{"median", "q25", "q75"}`` over rounds.
    """
    times = {r["kind"]: r["times_ms"] for r in rows if r["length"] == length}
    ratios = np.divide(times[kind], times[baseline])
    q25, median, q75 = np.quantile(ratios, [0.25, 0.5, 0.75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75)}


def ratio_verdict(low: float, high: float, claimed: float, smaller_is_better: bool) -> str:
    """``holds`` / ``does not hold`` when the measured range ``low .. high`` lies wholly on one
    side of the ``claimed`` ratio; ``not settled`` when it straddles it."""
    if low > high:
        raise ValueError(f"low must be <= high, got {low} and {high}")
    good, bad = (high <= claimed, low > claimed) if smaller_is_better else (
        low >= claimed, high < claimed)
    return "holds" if good else "does not hold" if bad else "not settled"


def accuracy_row(quality: dict) -> dict:
    """The verdict row "higher accuracy", from the study's runs trained to convergence."""
    converged = quality["converged"]
    s, rule = converged["summary"], converged["rule"]
    acc = {m: s[m]["recall_accuracy"] for m in COMPARED}
    story = {m: s[m]["story_test_loss"] for m in COMPARED}
    stopped = sum(a["converged"] for a in (*acc.values(), *story.values()))
    runs = sum(a["seeds"] for a in (*acc.values(), *story.values()))
    configuration = (
        f"width {quality['recall']['dim_size']}, {len(quality['seeds'])} seeds, best of "
        f"{len(converged['lrs'])} learning rates ({min(converged['lrs']):g}-"
        f"{max(converged['lrs']):g}), each run trained until its held-out score "
        f"stopped improving (recall: accuracy up by at most {rule['recall']['min_delta']:g} in "
        f"{rule['recall']['patience'] * rule['recall']['every']} steps, budget "
        f"{rule['recall']['budget_steps']}; stories: loss down by at most "
        f"{rule['stories']['min_delta']:g} in {rule['stories']['patience']} epochs, budget "
        f"{rule['stories']['budget_steps']} steps); {stopped} of {runs} runs at the best "
        "learning rates stopped at a plateau")
    return {"claim": "higher accuracy", "article": "92.3% vs 91.1%",
            "measured": "recall accuracy " + ", ".join(
                f"{m} {a['mean']:.2f} ± {a['std']:.2f}" for m, a in acc.items())
            + "; story test loss " + ", ".join(
                f"{m} {a['mean']:.3f} ± {a['std']:.3f}" for m, a in story.items()),
            "configuration": configuration,
            "verdict": ("holds" if acc["cummax"]["mean"] >= acc["softmax (fused)"]["mean"]
                        else "does not hold") + " on recall; on the story loss: "
            + ("cummax lower" if story["cummax"]["max"] < story["softmax (fused)"]["min"]
               else "softmax lower" if story["softmax (fused)"]["max"]
               < story["cummax"]["min"] else "seed ranges overlap")}


def verdict_rows(bench: dict, quality: dict, attention: dict) -> list[dict]:
    """Chapter 10's claims against the stored results: one dict per claim.

    ``bench``: ``make bench-cummax``'s JSON (the article's configuration);
    ``quality``: ``benchmarks/cummax_quality.py``'s JSON, with its ``--converged``
    runs; ``attention``: ``make bench``'s JSON (block level, lengths up to 4096).
    Each row has ``claim``, ``article``, ``measured``, ``configuration`` and
    ``verdict``.  Time ratios use the interquartile range of the per-round
    paired ratios, so a verdict is only given where the rounds agree.
    """
    rows, cfg = [], bench["config"]
    n = max(cfg["lengths"])
    where = (f"{cfg['layers']} layers x {cfg['dim_size']} wide, {cfg['heads']} heads, MLPs; "
             f"batch {cfg['batch']}, T={n}; one training step; CPU, {bench['threads']} thread")

    def time_row(claim: str, article: str, claimed: float, throughput: bool) -> dict:
        parts, verdicts = [], []
        for baseline in ("softmax (fused)", "softmax (teaching)", "in-block softmax"):
            r = paired_ratio(bench["rows"], "cummax", baseline, n)
            low, mid, high = r["q25"], r["median"], r["q75"]
            if throughput:  # same tokens per step: tokens/s ratio = 1 / time ratio
                low, mid, high = 1 / high, 1 / mid, 1 / low
            parts.append(f"{mid:.2f}x {baseline} (IQR {low:.2f}-{high:.2f})")
            verdicts.append(f"{ratio_verdict(low, high, claimed, not throughput)} vs {baseline}")
        return {"claim": claim, "article": article, "measured": "; ".join(parts),
                "configuration": where, "verdict": "; ".join(verdicts)}

    # O(N): block-level fwd+bwd time over the longest three lengths of make bench
    def slope(name: str, mode: str) -> float:
        points = sorted((r["length"], r["median_ms"]) for r in attention["rows"]
                        if r["implementation"] == name and r["mode"] == mode
                        and "median_ms" in r)[-3:]
        return float(np.polyfit(*np.log(np.array(points, float)).T, 1)[0])

    cummax_slope, sdpa_slope = slope("cummax block", "forward"), slope("SDPA", "forward")
    rows.append({"claim": "cummax O(N), softmax O(N²)", "article": "O(N) vs O(N²)",
                 "measured": f"forward time slope on log-log axes: cummax {cummax_slope:.2f}, "
                             f"SDPA {sdpa_slope:.2f}",
                 "configuration": f"one block, batch {attention['batch']}, "
                                  f"{attention['heads']} heads x {attention['head_dim']}, "
                                  f"longest three lengths of make bench ({attention['date']})",
                 "verdict": ("holds" if cummax_slope < 1.5 <= sdpa_slope else "does not hold")
                            + " for the work (SDPA's memory is O(N) too)"})
    rows.append(time_row("~30% faster training", "12.3 s vs 17.8 s per epoch (0.69)", 0.69,
                         False))
    peaks = {r["kind"]: r["peak_mb"] for r in bench["rows"] if r["length"] == n}
    mem = {b: peaks["cummax"] / peaks[b]
           for b in ("softmax (fused)", "softmax (teaching)", "in-block softmax")}
    rows.append({"claim": "less memory", "article": "4.2 GB vs 5.1 GB (0.82)",
                 "measured": f"peak {peaks['cummax']:.0f} MiB; "
                             + "; ".join(f"{v:.2f}x {b}" for b, v in mem.items()),
                 "configuration": where,
                 "verdict": "; ".join(f"{'holds' if v <= 0.82 else 'does not hold'} vs {b}"
                                      for b, v in mem.items())})
    rows.append(time_row("higher throughput", "18,500 vs 13,200 tokens/s (1.40)", 1.40, True))
    s = quality["summary"]
    rows.append(accuracy_row(quality))
    drop = {m: s[m]["per_epoch_drop_at_best_lr"] for m in COMPARED}
    ratio = drop["cummax"] / drop["softmax (fused)"]
    rows.append({"claim": "loss falls faster per epoch", "article": "0.85 vs 0.68 (1.25)",
                 "measured": "mean drop per epoch " + ", ".join(
                     f"{m} {v:.3f}" for m, v in drop.items()) + f"; ratio {ratio:.2f}",
                 "configuration": f"story task, {quality['stories']['epochs']} epochs of "
                                  f"{quality['stories']['steps_per_epoch']} steps, best lr, "
                                  f"{len(quality['seeds'])} seeds",
                 "verdict": "holds" if ratio >= 1.25 else "does not hold"})
    spike = quality["sensitivity"]
    ratios = {float(scale): m["cummax"] / m["softmax (fused)"] for scale, m in spike.items()}
    held = [f"x{scale:g}" for scale, r in ratios.items() if r >= 1.42]
    rows.append({"claim": "42% more sensitive to peaks at 2048", "article": "ratio 1.42",
                 "measured": "cummax / softmax sensitivity, spike of height " + ", ".join(
                     f"x{scale:g}: {r:.2f}" for scale, r in ratios.items()),
                 "configuration": f"one fresh block, T={quality['spike']['seq_len']}, width "
                                  f"{quality['spike']['dim_size']}, "
                                  f"{len(quality['spike']['seeds'])} seeds",
                 "verdict": ("does not hold at any spike height" if not held else
                             "holds" if len(held) == len(ratios) else
                             f"holds at {', '.join(held)} only: depends on the spike's height")})
    return rows
