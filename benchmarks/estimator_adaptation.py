"""Adaptation learning curve: an estimator for a new device from n of its measurements, recalibrated
from a known device's estimator (``train-estimator --init-from``) vs trained from scratch on the same
n rows, for n in 10, 25, 50, 100, 300; held-out RMSE / MAPE / Kendall tau, mean of 5 splits.

    python benchmarks/estimator_adaptation.py \\
        --pair "1 thread -> 2 threads" latency_data/A_1thread.csv latency_data/A_2threads.csv \\
        --pair "EPYC CPU -> Titan Xp (HAT)" latency_data/hat_wmt14_en_de_cpu_epyc_1thread.csv \\
              ../shared/data/latency/hat/iwslt14deen_gpu_titanxp_all.csv \\
        --out benchmarks/results/estimator_adaptation.md

The source estimator is trained (our default MLP recipe) on every row of the source file whose
architecture is not among the target's held-out rows; each split holds out a fixed 25% of the
target's rows (at most 400), and draws the n training rows from the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from mos_fairseq.latency.adaptation import adapt
from mos_fairseq.latency.dataset import read_latency_csv
from mos_fairseq.latency.estimator import LEAST_SQUARES, OUR_RECIPE, LatencyEstimator
from mos_fairseq.latency.evaluation import scores
from mos_fairseq.registry import space_from_dict
from mos_fairseq.translation.space import HAT_FEATURE_NORM

SIZES = (10, 25, 50, 100, 300)


def _norm(path: str):
    side = Path(path).with_suffix(".json")
    if side.is_file():
        return tuple(space_from_dict(json.loads(side.read_text())["space"]).latency_feature_norm)
    return HAT_FEATURE_NORM


def run_pair(name: str, source_csv: str, target_csv: str, sizes, seeds) -> dict:
    src, tgt = read_latency_csv(source_csv), read_latency_csv(target_csv)
    norm = _norm(target_csv)
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(tgt.total_ms))
        n_test = min(400, len(order) // 4)
        test, pool = order[:n_test], order[n_test:]
        held = {tgt.archs[i] for i in test} if tgt.archs and src.archs else set()
        keep = [i for i in range(len(src.total_ms)) if not src.archs or src.archs[i] not in held]
        source = LatencyEstimator.fit(src.features[keep], src.total_ms[keep], OUR_RECIPE, _norm(source_csv), seed=seed)
        for n in sizes:
            if n > len(pool):
                continue
            train = pool[:n]
            x, y, xt, yt = tgt.features[train], tgt.total_ms[train], tgt.features[test], tgt.total_ms[test]
            t0 = time.time()
            fitted = {
                "adapted": adapt(source, x, y),
                "scratch_mlp": LatencyEstimator.fit(x, y, OUR_RECIPE, norm, seed=seed),
                "scratch_least_squares": LatencyEstimator.fit(x, y, LEAST_SQUARES, norm, seed=seed),
            }
            for model, est in fitted.items():
                rows.append({"seed": seed, "n": n, "model": model, **scores(yt, est.predict(xt))})
            print(f"{name} seed {seed} n {n}: {time.time() - t0:.1f} s", file=sys.stderr, flush=True)
        rows.append(
            {
                "seed": seed,
                "n": "source as is",
                "model": "source",
                **scores(tgt.total_ms[test], source.predict(tgt.features[test])),
            }
        )
    return {"name": name, "source": source_csv, "target": target_csv, "target_rows": len(tgt.total_ms), "rows": rows}


def table(result: dict, sizes) -> list[str]:
    lines = [
        f"## {result['name']}",
        "",
        f"Source `{result['source']}`, target `{result['target']}` ({result['target_rows']} rows).",
        "",
        "| target rows | model | RMSE ms | MAPE % | within ±10% | Kendall τ |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    rows = result["rows"]
    for n in [*sizes, "source as is"]:
        for model in ("adapted", "scratch_mlp", "scratch_least_squares", "source"):
            sel = [r for r in rows if r["n"] == n and r["model"] == model]
            if sel:
                m = {k: float(np.mean([r[k] for r in sel])) for k in ("rmse", "mape", "within_10pct", "kendall_tau")}
                lines.append(
                    f"| {n} | {model} | {m['rmse']:.3f} | {m['mape']:.2f} | {m['within_10pct']:.1f} | "
                    f"{m['kendall_tau']:.4f} |"
                )
    best300 = min(
        (
            float(np.mean([r["rmse"] for r in rows if r["n"] == 300 and r["model"] == m]))
            for m in ("scratch_mlp", "scratch_least_squares")
            if any(r["n"] == 300 and r["model"] == m for r in rows)
        ),
        default=None,
    )
    a50 = [r["rmse"] for r in rows if r["n"] == 50 and r["model"] == "adapted"]
    if best300 is not None and a50:
        ratio = float(np.mean(a50)) / best300
        lines += [
            "",
            f"**Adapted with 50 rows: RMSE {np.mean(a50):.3f} ms = {ratio:.3f} x the best from-scratch "
            f"estimator with 300 rows ({best300:.3f} ms); target at most 1.10: "
            f"{'met' if ratio <= 1.10 else 'missed'}.**",
        ]
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", nargs=3, action="append", metavar=("NAME", "SOURCE_CSV", "TARGET_CSV"), required=True)
    ap.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    results = [run_pair(name, s, t, args.sizes, args.seeds) for name, s, t in args.pair]
    lines = [
        "# Latency estimator for a new device: adapted vs from scratch",
        "",
        f"Command: `python benchmarks/estimator_adaptation.py {' '.join(chr(34) + p[0] + chr(34) + ' ' + p[1] + ' ' + p[2] for p in args.pair)}` "
        f"(seeds {args.seeds}).",
        "",
        "Adapted = the source device's estimator recalibrated on the target rows (`train-estimator --init-from`: "
        "scale, offset and a ridge correction on the features, ridge by leave-one-out); scratch = our MLP recipe "
        "or least squares fitted on the same rows. Mean over the seeds' splits.",
        "",
    ]
    for r in results:
        lines += table(r, args.sizes)
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
