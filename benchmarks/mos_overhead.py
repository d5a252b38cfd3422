"""CPU cost of Mixture-of-Supernets: sandwich training with ``--mos none|layer|neuron``.

Each variant runs in its own process (peak memory is per variant) on the HAT WMT'14 En-De space
(640 max embed, 3072 max FFN, 6+6 layers, m=2 experts, router 2 x 128), the same random batch and
the same architecture stream (the task's sandwich sampler with one seed: largest + smallest + one
random subnet per update). One update = forward and backward of each subnet, an Adam step.
The machine is noisy and the random subnet changes every update, so each variant runs the same
``--repeats`` updates (after 2 warm-up updates) in ``--rounds`` separate processes, interleaved
(none, layer, neuron, none, ...); the reported time is the smallest total over the rounds divided
by the number of updates, and the optimizer's share is timed separately. Also reported: the peak
RSS growth during training and the supernet parameter count (also at WMT'14's 32,768-type joint
vocabulary).

    python benchmarks/mos_overhead.py [--repeats 8] [--rounds 2] [--threads 2] [--out benchmarks/results/mos_overhead.md]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import random_batch, synthetic_dictionary  # noqa: E402

VARIANTS = ("none", "layer", "neuron")
PAPER_OVERHEAD = {"layer": 5.6, "neuron": 7.3}  # MoS paper, Table 13 (V100 hours, WMT'14 En-De)


def _build(variant: str, dictionary):
    from mos_fairseq.models.supertransformer import SuperTransformerConfig, SuperTransformerModel

    cfg = SuperTransformerConfig(search_space="hat_wmt14_en_de", dropout=0.1, mos=variant)
    return SuperTransformerModel.build_model(cfg, SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary))


def run_variant(variant: str, repeats: int, threads: int, bsz: int, length: int) -> dict:
    import torch

    from mos_fairseq.criterions.supernet_cross_entropy import SupernetCrossEntropyCriterion
    from mos_fairseq.tasks.supernet_translation import SupernetTranslationConfig, SupernetTranslationTask

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    d = synthetic_dictionary(10000)
    sample = random_batch(len(d), d.eos(), bsz, length)
    task = SupernetTranslationTask(SupernetTranslationConfig(supernet_sampling="sandwich", seed=1), d, d)
    criterion = SupernetCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    model = _build(variant, d).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98))

    class _Backward:
        @staticmethod
        def backward(loss):
            loss.backward()

    opt_times = []

    def update(step: int) -> list:
        opt.zero_grad(set_to_none=True)
        _, size, _ = task.train_step(sample, model, criterion, _Backward, update_num=step)
        t0 = time.perf_counter()
        for p in model.parameters():
            if p.grad is not None:
                p.grad.div_(size)
        opt.step()
        opt_times.append(time.perf_counter() - t0)
        return [a.to_dict() for a in task.subnets_for_update(model, step)]

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stream = []
    for step in range(2):
        stream.append(update(step))
    times = []
    for step in range(2, 2 + repeats):
        t0 = time.perf_counter()
        stream.append(update(step))
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    params = sum(p.numel() for p in model.parameters())
    params_wmt = params + (32768 - len(d)) * model.space.max_embed_dim  # shared embedding at WMT'14 vocabulary
    return {"variant": variant, "total": sum(times), "times": times, "opt_per_update": statistics.mean(opt_times[2:]),
            "peak_rss_growth_mb": (peak - rss_before) / 1024, "params": params, "params_wmt": params_wmt,
            "stream": json.dumps(stream, sort_keys=True), "repeats": repeats, "threads": threads,
            "tokens": sample["ntokens"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=VARIANTS)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bsz", type=int, default=32)
    ap.add_argument("--length", type=int, default=30)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "mos_overhead.md"))
    args = ap.parse_args()
    common = ["--repeats", str(args.repeats), "--threads", str(args.threads), "--bsz", str(args.bsz),
              "--length", str(args.length)]
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.repeats, args.threads, args.bsz, args.length)))
        return
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for round_ in range(args.rounds):
        for variant in VARIANTS:
            proc = subprocess.run([sys.executable, __file__, "--variant", variant, *common],
                                  capture_output=True, text=True, check=True)
            runs[variant].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"round {round_} {variant}: {runs[variant][-1]['total']:.2f} s for {args.repeats} updates", flush=True)
    rows = []
    for variant in VARIANTS:
        best = min(runs[variant], key=lambda r: r["total"])
        rows.append({**best, "sec_per_update": best["total"] / args.repeats,
                     "peak_rss_growth_mb": max(r["peak_rss_growth_mb"] for r in runs[variant]),
                     "totals": [r["total"] for r in runs[variant]]})
    base = rows[0]
    same_stream = all(r["stream"] == base["stream"] for rs in runs.values() for r in rs)
    lines = [
        "# Mixture-of-Supernets training cost on CPU (HAT WMT'14 En-De space, sandwich)",
        "",
        f"Command: `python benchmarks/mos_overhead.py {' '.join(common)} --rounds {args.rounds}`",
        "",
        f"Batch: {args.bsz} sentences x {args.length} source / {args.length} target tokens ({base['tokens']} target"
        " tokens), vocabulary 10,000, shared embeddings; update = largest + smallest + 1 random subnet, a forward and",
        f"backward each, one Adam step (torch.optim.Adam, default foreach). Each variant ran the same {args.repeats} updates",
        f"(after 2 warm-up updates) in {args.rounds} separate processes, interleaved; time = best total / updates;",
        f"{args.threads} threads. Identical architecture stream in all variants and rounds: {same_stream}.",
        "",
        "| --mos | params (vocab 10k) | params (vocab 32,768) | s/update | overhead vs none | of which optimizer (s/update) | paper (V100) | peak RSS growth (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        overhead = 100 * (r["sec_per_update"] / base["sec_per_update"] - 1)
        paper = f"+{PAPER_OVERHEAD[r['variant']]}%" if r["variant"] in PAPER_OVERHEAD else "-"
        lines.append(
            f"| {r['variant']} | {r['params']:,} | {r['params_wmt']:,} | {r['sec_per_update']:.3f} | "
            f"{overhead:+.1f}% | {r['opt_per_update']:.3f} | {paper} | {r['peak_rss_growth_mb']:.0f} |"
        )
    lines += ["", "Totals per round (s): " + "; ".join(
        f"{r['variant']} " + ", ".join(f"{t:.1f}" for t in r["totals"]) for r in rows)]
    lines += ["Per-update times of the best round (s): " + "; ".join(
        f"{r['variant']} " + ", ".join(f"{t:.2f}" for t in r["times"]) for r in rows)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
