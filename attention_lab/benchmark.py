"""The benchmark harness behind ``make bench`` and chapter 11: every attention implementation,
interleaved rounds, paired ratios to SDPA and to d2l, peak memory; and ``make bench-cummax``'s
whole training steps of chapter 10's models.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

import attention_utils as au
from attention_lab.measure import attention_flops, peak_memory_bytes, timed
from attention_lab.models.cummax import MaxStateSuper

BENCH_IMPLEMENTATIONS = ("teaching path", "fast path", "d2l 1.0.3", "SDPA", "cummax block")


BENCH_MODES = ("forward", "forward+backward")

# the dated results `make bench` and `make bench-cummax` write, beside their scripts
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def save_result(report: dict, path: Path | None, default_name: str) -> Path:
    """Write ``report`` as JSON to ``path`` (None: ``benchmarks/results/<default_name>``),
    making the folder if needed, and print where it went."""
    path = path or RESULTS / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")
    return path


def stored_result(name: str) -> dict:
    """The stored benchmark result ``benchmarks/results/<name>`` (a JSON file), wherever the
    notebook runs from; a FileNotFoundError names the file and the command that makes it."""
    path = RESULTS / name
    if not path.is_file():
        raise FileNotFoundError(f"no stored result {path}: run `make bench` or `make "
                                "bench-cummax` in the repository to make it")
    return json.loads(path.read_text())


def bench_valid_lens(batch: int, length: int) -> torch.Tensor:
    """The benchmark's valid lengths ``(batch,)``: uniform in ``1 .. length``, seeded."""
    return torch.randint(1, length + 1, (batch,), generator=torch.Generator().manual_seed(length))


def _bench_case(name: str, batch: int, heads: int, length: int, head_dim: int,
                device: torch.device) -> tuple[Callable[..., torch.Tensor], list[torch.Tensor]]:
    """One implementation as ``(function, inputs)``; heads folded into batch where d2l does.

    Every softmax path masks the same random valid lengths (:func:`bench_valid_lens`, one
    per batch row, shared by its heads and queries); the cummax block has no mask.
    """
    if name == "cummax block":
        block = MaxStateSuper(heads * head_dim, heads).to(device)
        return block, [torch.randn(batch, length, heads * head_dim, device=device)]
    lengths = bench_valid_lens(batch, length).to(device)  # (B,)
    q, k, v = (torch.randn(batch, heads, length, head_dim, device=device) for _ in range(3))
    if name == "SDPA":
        mask = au.valid_lens_to_mask(lengths, 1, length)[:, None]  # (B, 1, 1, Tk)
        return functools.partial(F.scaled_dot_product_attention, attn_mask=mask), [q, k, v]
    folded = [x.reshape(batch * heads, length, head_dim) for x in (q, k, v)]  # (B*h, T, dh)
    lengths = lengths.repeat_interleave(heads)  # (B*h,)
    if name == "d2l 1.0.3":
        from d2l import torch as d2l

        attention = d2l.DotProductAttention(dropout=0.0).eval()
        return lambda q, k, v: attention(q, k, v, lengths), folded
    attention = au.DotProductAttention().eval()
    need_weights = name != "fast path"
    return lambda q, k, v: attention(q, k, v, lengths, need_weights), folded


def _run_case(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], mode: str) -> None:
    if mode == "forward":
        with torch.no_grad():
            fn(*inputs)
    else:
        out = fn(*inputs)
        out.backward(torch.ones_like(out))  # a dense gradient, as in training (not sum()'s view)


PAIRED = {"x_sdpa": "SDPA", "x_d2l": "d2l 1.0.3"}  # paired time ratios benchmark_attention adds


MAX_ROUNDS = 15  # benchmark_attention's rounds at the cheapest lengths


def benchmark_attention(lengths: Sequence[int], *, batch: int = 8, heads: int = 8,
                        head_dim: int = 64, repeats: int = 3,
                        implementations: Sequence[str] = BENCH_IMPLEMENTATIONS,
                        modes: Sequence[str] = BENCH_MODES, device: torch.device | str = "cpu",
                        max_seconds: float = 10.0, round_seconds: float = 1.0,
                        log: Callable[[str], None] | None = None) -> list[dict]:
    """Time and measure every implementation at every length, interleaved.

    For each length, every round runs each (implementation, mode) once, in an
    order rotated from round to round, so drifts in machine load and the
    after-effects of one case on the next hit all of them alike.  There are
    ``repeats`` rounds after a warm-up round, or more (up to ``MAX_ROUNDS``)
    where they take under ``round_seconds`` together.  The row keeps the
    median and the best time, and ``x_sdpa`` (``x_d2l``), the median over
    rounds of the time divided by SDPA's (d2l's) time *in the same round* (a
    paired ratio: the load of that moment cancels; None where that one did
    not run).  The softmax paths mask random valid lengths
    (:func:`bench_valid_lens`).  A case whose estimate (its time at the
    previous length scaled by the squared length ratio) exceeds
    ``max_seconds`` per call is skipped and says so.  Returns one dict per (implementation, mode,
    length) with ``median_ms``, ``best_ms``, ``x_sdpa``, ``x_d2l``, ``peak_mb``,
    ``gflops`` (softmax paths) or ``skipped``.
    """
    device = torch.device(device)
    rows, previous = [], {}
    for length in lengths:
        cases = []
        for name in implementations:
            for mode in modes:
                last = previous.get((name, mode))
                estimate = None if last is None else last[1] / 1e3 * (length / last[0]) ** 2
                if estimate is not None and estimate > max_seconds:
                    rows.append({"implementation": name, "mode": mode, "length": length,
                                 "skipped": f"estimated {estimate:.0f} s per call "
                                            f"> {max_seconds:.0f} s budget"})
                    continue
                fn, inputs = _bench_case(name, batch, heads, length, head_dim, device)
                if mode != "forward":
                    inputs = [x.requires_grad_() for x in inputs]
                run = functools.partial(_run_case, fn, inputs, mode)
                cases.append({"name": name, "mode": mode, "run": run, "times": []})
        round_, rounds = 0, repeats
        while cases and round_ <= rounds:  # round 0 warms up and is discarded
            for case in cases[round_ % len(cases):] + cases[:round_ % len(cases)]:  # rotated
                case["times"].append(timed(case["run"], device)[1])
            if round_ == 0:  # cheap lengths get more rounds: about round_seconds' worth
                per_round = sum(case["times"][0] for case in cases) / 1e3
                rounds = max(repeats, min(MAX_ROUNDS, math.floor(round_seconds / per_round)))
            round_ += 1
        reference = {(case["name"], case["mode"]): case["times"][1:] for case in cases}
        for case in cases:
            name, mode = case["name"], case["mode"]
            median = float(np.median(case["times"][1:]))
            paired = {key: None if (ref, mode) not in reference else float(np.median(
                np.divide(case["times"][1:], reference[ref, mode])))  # same round: same load
                for key, ref in PAIRED.items()}
            peak = peak_memory_bytes(case["run"], device)
            gflops = None
            if name != "cummax block":
                gflops = attention_flops(batch, heads, length, head_dim, mode) / (median * 1e6)
            rows.append({"implementation": name, "mode": mode, "length": length,
                         "median_ms": median, "best_ms": min(case["times"][1:]),
                         **paired,
                         "peak_mb": None if peak is None else peak / 2**20, "gflops": gflops})
            previous[name, mode] = (length, median)
            if log:
                log(f"T={length:5d} {name:>13s} {mode:>16s} {median:10.1f} ms")
    return rows


def time_scoring_functions(batch: int = 4, num_queries: int = 128, num_kv: int = 128,
                           d: int = 64, device: torch.device | str = "cpu", repeats: int = 5,
                           seed: int = 0) -> dict[str, float]:
    """Best-of-``repeats`` forward time (ms) of the four scoring models on one random batch.

    Additive uses ``num_hiddens = d``; bilinear a ``(d, d)`` matrix.  Weights are
    kept (the teaching path), so every model does the same amount of bookkeeping.
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    queries, keys, values = (torch.randn(batch, n, d, generator=generator).to(device)
                             for n in (num_queries, num_kv, num_kv))  # (B, n, d)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        models = {"additive": au.AdditiveAttention(d, key_size=d, query_size=d),
                  "dot product": au.DotProductAttention(scaled=False),
                  "scaled dot product": au.DotProductAttention(),
                  "bilinear": au.BilinearAttention(d, d)}
    times = {name: math.inf for name in models}
    with torch.no_grad():
        for model in models.values():
            model.to(device).eval()(queries, keys, values)  # warm-up
        for _ in range(repeats):  # round-robin: a busy spell does not hit one model only
            for name, model in models.items():
                ms = timed(lambda m=model: m(queries, keys, values), device)[1]
                times[name] = min(times[name], ms)
    return times



def benchmark_training_steps(make_model: Callable[[str], torch.nn.Module], kinds: Sequence[str],
                             lengths: Sequence[int], *, batch: int, vocab_size: int,
                             repeats: int = 3, reference: str | None = None, seed: int = 0,
                             lr: float = 1e-4,
                             log: Callable[[str], None] | None = None) -> list[dict]:
    """One full training step (forward, backward, AdamW step) of each model, interleaved.

    ``make_model(kind)`` builds the model for ``kind``: a module mapping tokens
    ``(batch, seq)`` to logits ``(batch, seq, vocab_size)``.  For each length
    every model gets a warm-up step (which also allocates its gradients and the
    optimiser's state), then ``repeats`` rounds in which each model takes one
    step, in an order rotated from round to round.  A row per (kind, length)
    keeps ``median_ms``, ``best_ms``, ``tokens_per_s`` (``batch * length`` over
    the median), ``x_reference`` (median over rounds of the step time divided
    by ``reference``'s in the same round; ``x_reference_quartiles``: the 25th
    and 75th percentiles of those per-round ratios), ``peak_mb`` (:func:`peak_memory_bytes`
    of one more step: activations and temporaries above the resident memory of
    the parameters, gradients and optimiser state) and ``parameters``.
    """
    rows = []
    for length in lengths:
        generator = torch.Generator().manual_seed(seed)
        tokens = torch.randint(vocab_size, (batch, length + 1), generator=generator)  # (B, T+1)
        inputs, targets = tokens[:, :-1], tokens[:, 1:]  # 2 x (B, T)
        cases = []
        for kind in kinds:
            torch.manual_seed(seed)
            model = make_model(kind)
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

            def step(model=model, optimizer=optimizer, inputs=inputs, targets=targets) -> None:
                logits = model(inputs)  # (B, T, vocab)
                loss = F.cross_entropy(logits.reshape(-1, vocab_size), targets.reshape(-1))
                optimizer.zero_grad(set_to_none=False)
                loss.backward()
                optimizer.step()

            cases.append({"kind": kind, "step": step, "times": [],
                          "parameters": sum(p.numel() for p in model.parameters())})
        for round_ in range(repeats + 1):  # round 0 warms up and is discarded
            for case in cases[round_ % len(cases):] + cases[:round_ % len(cases)]:  # rotated
                case["times"].append(timed(case["step"])[1])
        ref = next((case["times"][1:] for case in cases if case["kind"] == reference), None)
        for case in cases:
            times = case["times"][1:]
            median = float(np.median(times))
            peak = peak_memory_bytes(case["step"])
            paired = None if ref is None else np.divide(times, ref)  # one ratio per round
            rows.append({"kind": case["kind"], "length": length, "batch": batch,
                         "median_ms": median, "best_ms": min(times), "times_ms": times,
                         "tokens_per_s": batch * length / (median / 1e3),
                         "x_reference": None if ref is None else float(np.median(paired)),
                         "x_reference_quartiles": None if ref is None else
                         [float(q) for q in np.quantile(paired, [0.25, 0.75])],
                         "peak_mb": None if peak is None else peak / 2**20,
                         "parameters": case["parameters"]})
            if log:
                log(f"T={length:5d} {case['kind']:>18s} {median:9.1f} ms/step")
        del cases
    return rows
