"""CPU training throughput: a SuperTransformer update vs stock fairseq ``transformer``.

Each mode runs in its own process (so peak memory is per mode) on the same random batch:
  stock          fairseq's TransformerModel, 512 embed / 2048 FFN / 8 heads, 6+6 layers
  supernet_fixed the HAT WMT'14 supernet (640 max) running that same subnet (SPOS of a fixed arch)
  spos           the supernet with HAT's sampler (a new random subnet each update)
  sandwich       largest + smallest + 1 random per update (MoS' rule)
One update = forward, backward and an Adam step with label-smoothed cross-entropy. Reports the
median over timed repeats of tokens/s and seconds/update, and the peak RSS growth of the update.

    python benchmarks/train_throughput.py [--repeats 7] [--threads 2] [--out benchmarks/results/train_throughput.md]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import random_batch, synthetic_dictionary  # noqa: E402

MODES = ("stock", "supernet_fixed", "spos", "sandwich")


def run_mode(mode: str, repeats: int, threads: int) -> dict:
    import torch
    from fairseq.models.transformer import TransformerModel, base_architecture

    from mos_fairseq.translation.architecture import Architecture
    from mos_fairseq.translation.criterion import SupernetCrossEntropyCriterion
    from mos_fairseq.translation.space import SearchSpace
    from mos_fairseq.translation.supernet import SuperTransformerConfig, SuperTransformerModel
    from mos_fairseq.translation.task import SupernetTranslationConfig, SupernetTranslationTask

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    d = synthetic_dictionary(10000)
    sample = random_batch(len(d), d.eos())
    space = SearchSpace.load("hat_wmt14_en_de")
    fixed = Architecture(
        space=space,
        encoder_embed_dim=512,
        encoder_ffn_dims=(2048,) * 6,
        encoder_heads=(8,) * 6,
        decoder_embed_dim=512,
        decoder_ffn_dims=(2048,) * 6,
        decoder_self_heads=(8,) * 6,
        decoder_cross_heads=(8,) * 6,
        decoder_cross_spans=(1,) * 6,
    )
    dicts = SimpleNamespace(source_dictionary=d, target_dictionary=d)
    method = "sandwich" if mode == "sandwich" else "spos"
    task = SupernetTranslationTask(SupernetTranslationConfig(supernet_sampling=method, seed=1), d, d)
    criterion = SupernetCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    if mode == "stock":
        args = Namespace(
            encoder_embed_dim=512,
            encoder_ffn_embed_dim=2048,
            encoder_attention_heads=8,
            encoder_layers=6,
            decoder_embed_dim=512,
            decoder_ffn_embed_dim=2048,
            decoder_attention_heads=8,
            decoder_layers=6,
            share_all_embeddings=True,
            dropout=0.1,
            attention_dropout=0.1,
            max_source_positions=1024,
            max_target_positions=1024,
        )
        base_architecture(args)
        model = TransformerModel.build_model(args, dicts)
    else:
        model = SuperTransformerModel.build_model(
            SuperTransformerConfig(search_space="hat_wmt14_en_de", dropout=0.1), dicts
        )
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98))

    class _Backward:
        @staticmethod
        def backward(loss):
            loss.backward()

    def update(step: int) -> int:
        opt.zero_grad(set_to_none=True)
        if mode == "stock":
            loss, size, _ = criterion(model, sample)  # a model without bind() is scored as it is
            loss.backward()
            subnets = 1
        elif mode == "supernet_fixed":
            loss, size, _ = criterion(model.bind(fixed), sample)
            loss.backward()
            subnets = 1
        else:
            _, size, log = task.train_step(sample, model, criterion, _Backward, update_num=step)
            subnets = log["subnets"]
        for p in model.parameters():
            if p.grad is not None:
                p.grad.div_(size)
        opt.step()
        return subnets

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for step in range(2):  # warm-up (also allocates Adam state)
        update(step)
    times = []
    for step in range(2, 2 + repeats):
        t0 = time.perf_counter()
        subnets = update(step)
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    med = statistics.median(times)
    return {
        "mode": mode,
        "sec_per_update": med,
        "tokens_per_sec": sample["ntokens"] / med,
        "subnets_per_update": subnets,
        "peak_rss_growth_mb": (peak - rss_before) / 1024,
        "peak_rss_mb": peak / 1024,
        "repeats": repeats,
        "threads": threads,
        "params": sum(p.numel() for p in model.parameters()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=MODES)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_throughput.md"))
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.repeats, args.threads)))
        return
    rows = []
    for mode in MODES:
        proc = subprocess.run(
            [sys.executable, __file__, "--mode", mode, "--repeats", str(args.repeats), "--threads", str(args.threads)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{mode}: {rows[-1]['sec_per_update']:.3f} s/update", flush=True)
    by = {r["mode"]: r for r in rows}
    ratio = by["stock"]["tokens_per_sec"] / by["supernet_fixed"]["tokens_per_sec"]
    lines = [
        "# Training throughput on CPU: supernet vs stock fairseq transformer",
        "",
        f"Command: `python benchmarks/train_throughput.py --repeats {args.repeats} --threads {args.threads}`",
        "",
        "Batch: 32 sentences x 30 source / 30 target tokens (960 target tokens), vocabulary 10,000, shared",
        "embeddings; update = forward + backward + Adam step, label-smoothed CE; median of the timed repeats",
        "after 2 warm-up updates; one process per mode.",
        "",
        "| mode | params | subnets/update | s/update | target tokens/s | peak RSS growth (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['params']:,} | {r['subnets_per_update']} | {r['sec_per_update']:.3f} | "
            f"{r['tokens_per_sec']:.0f} | {r['peak_rss_growth_mb']:.0f} |"
        )
    lines += [
        "",
        f"**Supernet (fixed 512/2048/8-head 6+6 subnet of the 640-wide HAT supernet) vs stock fairseq: "
        f"{ratio:.3f}x the time per token** (target <= 1.10).",
        f"Sandwich vs SPOS: {by['sandwich']['sec_per_update'] / by['spos']['sec_per_update']:.2f}x the time per update, "
        f"{by['sandwich']['peak_rss_growth_mb']:.0f} MB vs {by['spos']['peak_rss_growth_mb']:.0f} MB peak RSS growth.",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
