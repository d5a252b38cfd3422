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


def noise_bounds(data, seed: int, holdout: float) -> dict[str, float]:
    """What any architecture-only model can reach on this file, and what measurement order explains.

    ``gbr``: gradient boosting on the features (a flexible non-MLP model); ``mean_by_decoder_layers``:
    the training mean per decoder depth; ``with_measurement_order``: least squares on the features
    plus a cubic in the row index (rows are in measurement order) and its product with the decoder
    depth. The last is not a usable estimator (a new architecture has no row index); it shows how
    much of the residual is drift during the collection run rather than architecture.
    """
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import LinearRegression

    from mos_fairseq.latency.evaluation import holdout_split

    split = holdout_split(len(data), holdout, seed)
    x, y = data.features, data.total_ms
    rmse = lambda p: float(np.sqrt(np.mean((p - y[split.test]) ** 2)))  # noqa: E731
    depth = x[:, 5]
    means = {d: y[split.train][depth[split.train] == d].mean() for d in np.unique(depth[split.train])}
    t = np.arange(len(y)) / len(y)
    order = np.c_[x, t, t ** 2, t ** 3, depth * t, depth * t ** 2, depth * t ** 3]
    return {
        "gbr": rmse(GradientBoostingRegressor(random_state=0).fit(x[split.train], y[split.train]).predict(x[split.test])),
        "mean_by_decoder_layers": rmse(np.array([means.get(d, y[split.train].mean()) for d in depth[split.test]])),
        "with_measurement_order": rmse(LinearRegression().fit(order[split.train], y[split.train]).predict(order[split.test])),
    }


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
             "features; `linear_params` = least squares on the parameter count alone. Reference rows (RMSE only): "
             "`gbr` = gradient boosting on the features, `mean_by_decoder_layers` = training mean per decoder "
             "depth, `with_measurement_order` = least squares on the features plus a cubic in the row index "
             "(rows are in measurement order), which no estimator can use and which shows how much of the "
             "residual is drift during the collection run.", ""]
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
            ev.report["bounds"] = noise_bounds(data, seed, args.holdout)
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
        for name in per_seed[0]["bounds"]:
            lines.append(f"| *reference: {name}* | {np.mean([r['bounds'][name] for r in per_seed]):.3f} | | | |")
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
