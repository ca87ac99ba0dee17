"""`make bench-cummax`: chapter 10's claims at the article's scale, one training step at a time.

The article's configuration (hidden 512, 8 heads, 6 layers each with an MLP) as
a decoder-only language model (:class:`MixerLM`), once per token mixer: the
cumulative-max block, causal softmax attention through PyTorch's fused SDPA
and through the teaching path, and the article's own in-block softmax
variant.  In one run and in interleaved, rotated rounds it measures a full
training step (forward, backward, AdamW step on next-token cross-entropy over
random tokens): time, tokens/s, paired time ratio to SDPA and peak memory.
Prints a table and writes JSON (default benchmarks/results/<date>-cpu-<n>core-cummax.json).

    python benchmarks/bench_cummax.py [--lengths 256 1024] [--batch 2] [--threads 1]
"""

import argparse
import datetime
import os
import pathlib
import platform
import time

import torch

import attention_utils as au
from attention_lab.benchmark import benchmark_training_steps, save_result
from attention_lab.checkpoints import threads
from attention_lab.measure import matmul_peak_gflops
from attention_lab.models.cummax import MIXERS, MixerLM

REFERENCE = "softmax (fused)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: the machine is shared; the ratios are the point)")
    parser.add_argument("--out", type=pathlib.Path, default=None)
    return parser.parse_args()


def table(rows: list[dict]) -> list[str]:
    """Rows as text: time per step, tokens/s, paired ratio to SDPA, peak memory and its ratio."""
    ref = {r["length"]: r for r in rows if r["kind"] == REFERENCE}
    lines = [f"{'T':>5} {'mixer':>18} {'ms/step':>9} {'tokens/s':>9} {'x SDPA':>7} {'IQR':>11} "
             f"{'peak MiB':>9} {'x SDPA':>7} {'params':>7}"]
    for r in rows:
        mem = r["peak_mb"]
        base = ref.get(r["length"], {}).get("peak_mb")
        mem_ratio = f"{mem / base:7.2f}" if mem is not None and base else "    n/a"
        mem_text = f"{mem:9.0f}" if mem is not None else "      n/a"
        low, high = r["x_reference_quartiles"]
        lines.append(f"{r['length']:>5} {r['kind']:>18} {r['median_ms']:9.0f} "
                     f"{r['tokens_per_s']:9.0f} {r['x_reference']:7.2f} "
                     f"{low:5.2f}-{high:<5.2f} {mem_text} "
                     f"{mem_ratio} {r['parameters'] / 1e6:6.1f}M")
    return lines


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    with threads(args.threads):
        au.set_seed(0)
        peak = matmul_peak_gflops()
        print(f"device: cpu, torch {torch.__version__}, {torch.get_num_threads()} thread(s) "
              f"of {os.cpu_count()} cores; float32 matmul {peak:.0f} GFLOP/s")
        rows = benchmark_training_steps(
            lambda kind: MixerLM(kind, args.vocab, args.dim, args.heads, args.layers,
                                 max(args.lengths)),
            MIXERS, args.lengths, batch=args.batch, vocab_size=args.vocab,
            repeats=args.repeats, reference=REFERENCE, log=print)
    print("\n".join(table(rows)))
    print("ms/step: median over rounds of forward + backward + AdamW step; x SDPA (time): "
          "median over rounds of the step time over SDPA's in the same round (IQR: its "
          "quartiles over rounds); peak MiB: "
          "resident high-water mark of one step above the memory in use before it.")
    seconds = time.perf_counter() - start
    print(f"total {seconds:.0f} s")
    today = datetime.date.today().isoformat()
    report = {"date": today, "device": "cpu", "cores": os.cpu_count(),
              "threads": args.threads, "torch": torch.__version__,
              "python": platform.python_version(), "matmul_peak_gflops": peak,
              "config": {"dim_size": args.dim, "heads": args.heads, "layers": args.layers,
                         "mlp": "dim -> 4 dim -> dim, GELU", "vocab_size": args.vocab,
                         "batch": args.batch, "lengths": args.lengths,
                         "repeats": args.repeats, "optimizer": "AdamW",
                         "step": "forward + backward + optimizer step, next-token "
                                 "cross-entropy, random tokens"},
              "reference": REFERENCE, "seconds": seconds, "rows": rows}
    save_result(report, args.out, f"{today}-cpu-{os.cpu_count()}core-cummax.json")


if __name__ == "__main__":
    main()
