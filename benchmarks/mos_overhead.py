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
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import random_batch, synthetic_dictionary  # noqa: E402

VARIANTS = ("none", "layer", "neuron")
PAPER_OVERHEAD = {"layer": 5.6, "neuron": 7.3}  # MoS paper, Table 13 (V100 hours, WMT'14 En-De)


def _build(variant: str, dictionary, space: str):
    from mos_fairseq.translation.supernet import SuperTransformerConfig, SuperTransformerModel

    cfg = SuperTransformerConfig(search_space=space, dropout=0.1, mos=variant)
    return SuperTransformerModel.build_model(
        cfg, SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    )


def run_variant(
    variant: str,
    repeats: int,
    threads: int,
    bsz: int,
    length: int,
    space: str = "hat_wmt14_en_de",
    vocab: int = 10000,
    warmup: int = 2,
) -> dict:
    """``repeats`` sandwich updates as fairseq-train does them (fairseq's Adam, gradients scaled by
    1/sample size, gradient norm computed), timed per phase: forward, backward, optimizer."""
    import torch
    from fairseq.optim.adam import Adam

    from mos_fairseq.core.task_mixin import subnet_for_training
    from mos_fairseq.translation.criterion import SupernetCrossEntropyCriterion
    from mos_fairseq.translation.task import SupernetTranslationConfig, SupernetTranslationTask

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    d = synthetic_dictionary(vocab)
    sample = random_batch(len(d), d.eos(), bsz, length)
    task = SupernetTranslationTask(SupernetTranslationConfig(supernet_sampling="sandwich", seed=1), d, d)
    criterion = SupernetCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    model = _build(variant, d, space).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = Adam(params, lr=1e-4, betas=(0.9, 0.98))
    phases = {"forward": [], "backward": [], "optimizer": []}

    def update(step: int) -> list:
        for p in params:  # fairseq's FairseqOptimizer.zero_grad
            p.grad = None
        archs = task.subnets_for_update(model, step)
        size = 0
        fwd = bwd = 0.0
        for arch in archs:
            t0 = time.perf_counter()
            loss, sample_size, _ = criterion(subnet_for_training(model, arch), sample)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            fwd, bwd, size = fwd + t1 - t0, bwd + t2 - t1, size + sample_size
        t0 = time.perf_counter()
        grads = [p.grad for p in params if p.grad is not None]
        torch._foreach_mul_(grads, 1.0 / size)  # fairseq: optimizer.multiply_grads(1 / sample_size)
        torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))  # gnorm (clip 0)
        opt.step()
        phases["forward"].append(fwd)
        phases["backward"].append(bwd)
        phases["optimizer"].append(time.perf_counter() - t0)
        return [a.to_dict() for a in archs]

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stream = []
    for step in range(warmup):
        stream.append(update(step))
    for values in phases.values():
        values.clear()
    times = []
    for step in range(warmup, warmup + repeats):
        t0 = time.perf_counter()
        stream.append(update(step))
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n_params = sum(p.numel() for p in model.parameters())
    return {
        "variant": variant,
        "total": sum(times),
        "times": times,
        **{f"{k}_total": sum(v) for k, v in phases.items()},
        "peak_rss_growth_mb": (peak - rss_before) / 1024,
        "params": n_params,
        "stream": json.dumps(stream, sort_keys=True),
        "repeats": repeats,
        "threads": threads,
        "tokens": sample["ntokens"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=VARIANTS)
    ap.add_argument("--space", default="hat_wmt14_en_de")
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bsz", type=int, default=32)
    ap.add_argument("--length", type=int, default=30)
    ap.add_argument("--label", default="", help="a note for the report's heading (e.g. the commit)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "mos_overhead.md"))
    args = ap.parse_args()
    common = [
        "--space",
        args.space,
        "--vocab",
        str(args.vocab),
        "--repeats",
        str(args.repeats),
        "--warmup",
        str(args.warmup),
        "--threads",
        str(args.threads),
        "--bsz",
        str(args.bsz),
        "--length",
        str(args.length),
    ]
    if args.variant:
        print(
            json.dumps(
                run_variant(
                    args.variant, args.repeats, args.threads, args.bsz, args.length, args.space, args.vocab, args.warmup
                )
            )
        )
        return
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for round_ in range(args.rounds):
        for variant in VARIANTS:
            proc = subprocess.run(
                [sys.executable, __file__, "--variant", variant, *common], capture_output=True, text=True, check=True
            )
            runs[variant].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(
                f"round {round_} {variant}: {runs[variant][-1]['total']:.2f} s for {args.repeats} updates", flush=True
            )
    rows = []
    for variant in VARIANTS:
        best = min(runs[variant], key=lambda r: r["total"])
        rows.append(
            {
                **best,
                "sec_per_update": best["total"] / args.repeats,
                "peak_rss_growth_mb": max(r["peak_rss_growth_mb"] for r in runs[variant]),
                "totals": [r["total"] for r in runs[variant]],
            }
        )
    base = rows[0]
    same_stream = all(r["stream"] == base["stream"] for rs in runs.values() for r in rs)
    lines = [
        f"## {args.space}, {base['tokens']} target tokens per update{' (' + args.label + ')' if args.label else ''}",
        "",
        f"Command: `python benchmarks/mos_overhead.py {' '.join(common)} --rounds {args.rounds}`",
        "",
        f"Batch: {args.bsz} sentences x {args.length} source / {args.length} target tokens ({base['tokens']} target"
        f" tokens), vocabulary {args.vocab:,}, shared embeddings; update = largest + smallest + 1 random subnet, a "
        "forward and backward each, then what fairseq-train's optimizer step does (gradients x 1/sample size, "
        "gradient norm, fairseq's Adam). Each variant ran the same "
        f"{args.repeats} updates (after {args.warmup} warm-up updates) in {args.rounds} separate processes, interleaved; time = "
        f"best total / updates, split by phase; {args.threads} thread(s). Identical architecture stream in all variants "
        f"and rounds: {same_stream}.",
        "",
        "| --mos | params | s/update | overhead vs none | forward | backward | optimizer | paper (V100) | peak RSS growth (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        overhead = 100 * (r["sec_per_update"] / base["sec_per_update"] - 1)
        paper = f"+{PAPER_OVERHEAD[r['variant']]}%" if r["variant"] in PAPER_OVERHEAD else "-"
        split = " | ".join(f"{r[k + '_total'] / args.repeats:.3f}" for k in ("forward", "backward", "optimizer"))
        lines.append(
            f"| {r['variant']} | {r['params']:,} | {r['sec_per_update']:.3f} | {overhead:+.1f}% | {split} | "
            f"{paper} | {r['peak_rss_growth_mb']:.0f} |"
        )
    lines += [
        "",
        "Totals per round (s): "
        + "; ".join(f"{r['variant']} " + ", ".join(f"{t:.1f}" for t in r["totals"]) for r in rows),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out != "-":
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
