"""Where the time of one candidate evaluation goes, and the collapsed path vs the supernet path.

For ``--n`` random architectures of a supernet's space: collapse (MoS experts mixed for the
architecture), static model construction, weight loading, forward over the fixed validation
batches; versus running the supernet itself (slicing and mixing on every batch).

    python benchmarks/search_profile.py --checkpoint demo_out/supernet/checkpoint_best.pt \
        --valid-max-sentences 200 --n 30
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import torch

from mos_fairseq.core.collapse import collapsed_supernet_state, static_state_dict
from mos_fairseq.core.validation import SubnetEvaluator, ValidationBatches, batches_loss
from mos_fairseq.loading import load_supernet
from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.static import StaticTransformerModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data")
    ap.add_argument("--valid-max-sentences", type=int)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--result", default="benchmarks/results/search_profile.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    supernet, task, _ = load_supernet(args.checkpoint, args.data)
    batches = ValidationBatches.from_task(task, "valid", args.valid_max_sentences)
    evaluator = SubnetEvaluator(supernet, batches)
    rng = random.Random(0)
    archs = [Architecture.random(supernet.space, rng) for _ in range(args.n)]
    parts = {"collapse (MoS mix)": 0.0, "static model build": 0.0, "slice + load weights": 0.0, "forward + loss": 0.0}
    total_fast = total_slow = 0.0
    diffs = []
    with torch.inference_mode():
        for arch in archs:
            t0 = time.perf_counter()
            state = collapsed_supernet_state(supernet, arch)
            t1 = time.perf_counter()
            model = StaticTransformerModel.from_arch(
                arch,
                supernet.encoder.dictionary,
                supernet.decoder.dictionary,
                share_all_embeddings=supernet.cfg.share_all_embeddings,
            )
            t2 = time.perf_counter()
            model.load_state_dict(static_state_dict(state, model))
            model.eval()
            t3 = time.perf_counter()
            evaluator_model_loss = batches_loss(model, batches, evaluator.pad)
            t4 = time.perf_counter()
            for k, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                parts[k] += dt
            total_fast += t4 - t0
            t5 = time.perf_counter()
            slow = evaluator.compute(arch, collapse=False)
            total_slow += time.perf_counter() - t5
            diffs.append(abs(slow - evaluator_model_loss))
    n = len(archs)
    lines = [
        "# Search: time per candidate evaluation",
        "",
        "Command: `python " + " ".join(sys.argv) + "`",
        "",
        f"{n} random architectures of space '{supernet.space.name}' (MoS: {supernet.mos.kind}), "
        f"{batches.sentences} validation sentences in {len(batches.samples)} batches ({batches.tokens} tokens), "
        f"{args.threads} thread(s).",
        "",
        "| part (collapsed path, what search runs) | ms per candidate | share |",
        "|---|---|---|",
    ]
    for k, v in parts.items():
        lines.append(f"| {k} | {1000 * v / n:.1f} | {100 * v / total_fast:.1f}% |")
    lines += [
        f"| **total, collapsed** | **{1000 * total_fast / n:.1f}** | |",
        f"| supernet path (slice + mix on every batch) | {1000 * total_slow / n:.1f} | |",
        "",
        f"Collapsed path is {total_slow / total_fast:.2f}x faster; max |loss difference| between the paths "
        f"{max(diffs):.2e} bits.",
    ]
    Path(args.result).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
