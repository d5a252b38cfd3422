"""Estimator accuracy on held-out architectures: our recipe vs HAT's recipe vs two linear baselines.

For each latency file and each split seed, every model is fitted on the same 80% and scored on
the same 20% (:func:`mos_fairseq.latency.evaluation.evaluate`). Writes a markdown table (mean
over seeds, and per seed) and the raw JSON.

    python benchmarks/latency_estimator.py \
        --data latency_data/hat_wmt14_en_de_cpu_epyc_1thread.csv \
               ../shared/data/latency/hat/iwslt14deen_gpu_titanxp_all.csv \
        --seeds 1 2 3 --out benchmarks/results/latency_estimator.md
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mos_fairseq.latency.dataset import read_latency_csv
from mos_fairseq.latency.estimator import OUR_RECIPE
from mos_fairseq.latency.evaluation import evaluate
from mos_fairseq.space import SearchSpace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--holdout", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/latency_estimator.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    lines = ["# Latency estimator: held-out accuracy", "",
             f"Command: `python benchmarks/latency_estimator.py --data {' '.join(args.data)} --seeds "
             f"{' '.join(map(str, args.seeds))}` ({args.threads} thread(s), torch {torch.__version__}).", "",
             f"Each model is fitted on the same {1 - args.holdout:.0%} and scored on the same {args.holdout:.0%} "
             "(per seed); target = encoder + decoder mean latency (ms). `mlp` = our default recipe "
             "(linear term + 3x400 MLP on its residual, Adam(W) 1e-3 cosine, 5000 steps max, early stopping on 10% "
             "of the training rows); `hat_recipe` = HAT's (3x400 MLP, Adam lr 1e-5, 5000 steps, batch 128, "
             "features / HAT norm, latency / max); `linear_features` = least squares on the 10 normalised "
             "features; `linear_params` = least squares on the parameter count alone.", ""]
    for path in args.data:
        sidecar = Path(path).with_suffix(".json")
        space = None
        if sidecar.is_file():
            space = SearchSpace.from_dict(json.loads(sidecar.read_text())["space"])
        data = read_latency_csv(path, qkv_dim=space.qkv_dim if space else 512,
                                vocab_size=space.vocab_size if space else 32768)
        per_seed = []
        for seed in args.seeds:
            t0 = time.perf_counter()
            kwargs = {"feature_norm": space.feature_norm} if space else {}
            ev = evaluate(data, OUR_RECIPE, args.holdout, seed, space=space.to_dict() if space else None, **kwargs)
            ev.report["seconds"] = round(time.perf_counter() - t0, 1)
            per_seed.append(ev.report)
        results[path] = per_seed
        models = list(per_seed[0]["models"])
        lines += [f"## `{path}`", "", f"{len(data)} architectures, latency "
                  f"{data.total_ms.min():.1f}-{data.total_ms.max():.1f} ms "
                  f"(median {np.median(data.total_ms):.1f}).", "",
                  "| model | RMSE ms | MAE ms | R² | Kendall τ |", "|---|---|---|---|---|"]
        for m in models:
            mean = {k: float(np.mean([r["models"][m][k] for r in per_seed])) for k in ("rmse", "mae", "r2", "kendall_tau")}
            lines.append(f"| {m} | {mean['rmse']:.3f} | {mean['mae']:.3f} | {mean['r2']:.4f} | {mean['kendall_tau']:.4f} |")
        ours = np.mean([r["models"]["mlp"]["rmse"] for r in per_seed])
        hat = np.mean([r["models"]["hat_recipe"]["rmse"] for r in per_seed])
        rel = [100 * (r["models"]["mlp"]["rmse"] / r["models"]["hat_recipe"]["rmse"] - 1) for r in per_seed]
        lines += ["", f"Mean over seeds {args.seeds}. Our RMSE vs HAT recipe: {100 * (ours / hat - 1):+.1f}% "
                  f"(per seed: {', '.join(f'{v:+.1f}%' for v in rel)}).", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
