"""Adaptation learning curve: an estimator for a new device from n of its measurements with
``train-estimator --init-from`` (its cross-validated choice between the known device's estimator
recalibrated, a fit from scratch and blends of the two) vs every from-scratch recipe on the same n
rows, for n in 10, 25, 50, 100, 300; held-out RMSE / MAPE / share within ±10% / Kendall tau, mean
of 5 splits. Every ordered pair of the given latency files is one table.

    python benchmarks/estimator_adaptation.py \\
        --device "Xeon, 1 thread" latency_data/hat_cpu_multi30k_cpu_xeon_1thread.csv \\
        --device "Xeon, 2 threads" latency_data/hat_cpu_multi30k_cpu_xeon_2threads.csv \\
        --out benchmarks/results/estimator_adaptation.md

Pairs are formed between files of the same space only (features of another space lie outside the
source estimator's range); ``--pair NAME SOURCE TARGET`` adds one pair explicitly (e.g. two spaces
of the same family). The source estimator is our default MLP recipe trained on every row of the
source file whose architecture is not among the target's held-out rows; each split holds out a
fixed 25% of the target's rows (at most 400) and draws the n training rows from the rest (a target
with fewer than 300 other rows adds n = all of them). ``--mlp-steps`` shortens the MLP recipe of the
from-scratch fits (for both sides alike) to fit a benchmark into a CPU budget; the report says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mos_fairseq.latency.adaptation import adapt, build_choice, choose, fold_ids
from mos_fairseq.latency.dataset import LatencyDataset, read_latency_csv
from mos_fairseq.latency.estimator import LatencyEstimator
from mos_fairseq.latency.evaluation import out_of_fold
from mos_fairseq.latency.recipes import GBT_RECIPE, LEAST_SQUARES, OUR_RECIPE, TrainRecipe
from mos_fairseq.latency.scores import scores
from mos_fairseq.registry import space_from_dict
from mos_fairseq.translation.space import HAT_FEATURE_NORM

SIZES = (10, 25, 50, 100, 300)
METRICS = ("rmse", "mape", "within_10pct", "kendall_tau")


def _sidecar(path: str) -> dict:
    side = Path(path).with_suffix(".json")
    return json.loads(side.read_text()) if side.is_file() else {}


def _norm(path: str) -> tuple[float, ...]:
    side = _sidecar(path)
    return tuple(space_from_dict(side["space"]).latency_feature_norm) if "space" in side else HAT_FEATURE_NORM


def _space_name(path: str) -> str:
    return _sidecar(path).get("space", {}).get("name", Path(path).stem)


def scratch_recipes(mlp_steps: int | None) -> list[TrainRecipe]:
    mlp = OUR_RECIPE if mlp_steps is None else dataclasses.replace(OUR_RECIPE, steps=mlp_steps)
    return [mlp, LEAST_SQUARES, GBT_RECIPE]


def one_size(source: LatencyEstimator, tgt: LatencyDataset, train, test, seed: int, norm, recipes) -> list[dict]:
    """Every model of one (seed, n): the chosen adaptation, the plain recalibration, each recipe from scratch."""
    x, y, xt, yt = tgt.features[train], tgt.total_ms[train], tgt.features[test], tgt.total_ms[test]
    fold_of = fold_ids(len(y), 5, seed)
    oof = out_of_fold(x, y, recipes, fold_of, seed, norm, tgt.feature_names)
    choice, _ = choose(source, x, y, fold_of, oof)
    scratch = {r.name: LatencyEstimator.fit(x, y, r, norm, seed, None, tgt.feature_names) for r in recipes}
    fitted = {
        "adapted": build_choice(choice, source, scratch.get(choice.recipe or ""), x, y),
        "recalibrated_linear": adapt(source, x, y),
        **{f"scratch_{name}": est for name, est in scratch.items()},
    }
    base = {"seed": seed, "n": len(y)}
    rows = [{**base, "model": m, **scores(yt, est.predict(xt))} for m, est in fitted.items()]
    rows[0]["choice"] = choice.name
    return rows


def run_pair(name: str, source_csv: str, target_csv: str, sizes, seeds, recipes) -> dict:
    src, tgt = read_latency_csv(source_csv), read_latency_csv(target_csv)
    norm = _norm(target_csv)
    rows = []
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(len(tgt.total_ms))
        n_test = min(400, len(order) // 4)
        test, pool = order[:n_test], order[n_test:]
        held = {tgt.archs[i] for i in test} if tgt.archs and src.archs else set()
        keep = [i for i in range(len(src.total_ms)) if not src.archs or src.archs[i] not in held]
        source = LatencyEstimator.fit(src.features[keep], src.total_ms[keep], OUR_RECIPE, _norm(source_csv), seed=seed)
        wanted = sorted({n for n in sizes if n <= len(pool)} | ({len(pool)} if len(pool) < max(sizes) else set()))
        for n in wanted:
            t0 = time.time()
            rows += one_size(source, tgt, pool[:n], test, seed, norm, recipes)
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


def mean_of(rows: list[dict], n, model: str) -> dict[str, float] | None:
    sel = [r for r in rows if r["n"] == n and r["model"] == model]
    return {k: float(np.mean([r[k] for r in sel])) for k in METRICS} if sel else None


def verdict(result: dict) -> dict:
    """At 50 rows: adapted vs the best from-scratch recipe on the same rows, and vs the best from-scratch
    recipe with the most rows (300, or every row the target has beside its hold-out)."""
    rows = result["rows"]
    ns = sorted({r["n"] for r in rows if isinstance(r["n"], int)})
    scratch = sorted({r["model"] for r in rows if r["model"].startswith("scratch_")})

    def best(n):
        return min(((mean_of(rows, n, m) or {"rmse": np.inf})["rmse"], m) for m in scratch)

    a50 = mean_of(rows, 50, "adapted")
    if a50 is None:
        return {}
    (b50, m50), (bmax, mmax) = best(50), best(ns[-1])
    per_seed = {r["seed"]: r["rmse"] for r in rows if r["n"] == 50 and r["model"] == m50}
    diffs = [r["rmse"] - per_seed[r["seed"]] for r in rows if r["n"] == 50 and r["model"] == "adapted"]
    return {
        "diff_50_mean": float(np.mean(diffs)),
        "diff_50_se": float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else float("nan"),
        "adapted_50": a50["rmse"],
        "best_scratch_50": b50,
        "best_scratch_50_recipe": m50,
        "reference_n": ns[-1],
        "best_scratch_max": bmax,
        "best_scratch_max_recipe": mmax,
        "ratio_50_vs_same_rows": a50["rmse"] / b50,
        "ratio_50_vs_max": a50["rmse"] / bmax,
    }


def table(result: dict) -> list[str]:
    rows = result["rows"]
    lines = [
        f"## {result['name']}",
        "",
        f"Source `{result['source']}`, target `{result['target']}` ({result['target_rows']} rows).",
        "",
        "| target rows | model | RMSE ms | MAPE % | within ±10% | Kendall τ | choices over the seeds |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    ns = sorted({r["n"] for r in rows if isinstance(r["n"], int)}, key=int) + ["source as is"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    for n, model in itertools.product(ns, models):
        m = mean_of(rows, n, model)
        if m is None:
            continue
        picks = [r["choice"] for r in rows if r["n"] == n and r["model"] == model and "choice" in r]
        counts = ", ".join(f"{c} {picks.count(c)}" for c in sorted(set(picks)))
        lines.append(
            f"| {n} | {model} | {m['rmse']:.3f} | {m['mape']:.2f} | {m['within_10pct']:.1f} | {m['kendall_tau']:.4f} | {counts} |"
        )
    v = verdict(result)
    if v:
        same = (
            "met" if v["ratio_50_vs_same_rows"] <= 1.0 else f"missed by {100 * (v['ratio_50_vs_same_rows'] - 1):.1f}%"
        )
        noise = f"paired difference {v['diff_50_mean']:+.3f} ± {v['diff_50_se']:.3f} ms, s.e. over seeds"
        if v["ratio_50_vs_same_rows"] > 1.0 and not v["diff_50_mean"] > 2 * v["diff_50_se"]:
            same += ", within noise"
        most = "met" if v["ratio_50_vs_max"] <= 1.10 else "missed"
        lines += [
            "",
            f"**50 rows: adapted RMSE {v['adapted_50']:.3f} ms = {v['ratio_50_vs_same_rows']:.3f} x the best from-scratch "
            f"fit on the same rows ({v['best_scratch_50_recipe']}, {v['best_scratch_50']:.3f} ms, the recipe best on the "
            f"held-out rows; {noise}; at most 1: {same}) and "
            f"{v['ratio_50_vs_max']:.3f} x the best from-scratch fit with {v['reference_n']} rows "
            f"({v['best_scratch_max_recipe']}, {v['best_scratch_max']:.3f} ms; at most 1.10: {most}).**",
        ]
    return lines + [""]


def pairs_of(devices: list[list[str]], explicit: list[list[str]]) -> list[tuple[str, str, str]]:
    """Every ordered pair of same-space device files, then the explicit pairs."""
    out = [
        (f"{a[0]} -> {b[0]}", a[1], b[1])
        for a, b in itertools.permutations(devices, 2)
        if _space_name(a[1]) == _space_name(b[1])
    ]
    return out + [tuple(p) for p in explicit]  # type: ignore[misc]


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "")
    except OSError:
        model = ""
    return model or platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", nargs=2, action="append", default=[], metavar=("NAME", "CSV"))
    ap.add_argument("--pair", nargs=3, action="append", default=[], metavar=("NAME", "SOURCE_CSV", "TARGET_CSV"))
    ap.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    ap.add_argument("--mlp-steps", type=int, help="steps of the from-scratch MLP recipe (default: the recipe's)")
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="instead of computing: one report from the JSON files of earlier runs",
    )
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.merge:  # several runs (e.g. one per core) into one report
        merged = [r for path in args.merge for r in json.loads(Path(path).read_text())]
        return write(merged, args, scratch_recipes(args.mlp_steps))
    pairs = pairs_of(args.device, args.pair)
    if not pairs:
        ap.error("no pair: give two --device files of the same space, or --pair")
    recipes = scratch_recipes(args.mlp_steps)
    results: list[dict] = []
    for name, s, t in pairs:  # the report is rewritten after every pair
        results.append(run_pair(name, s, t, args.sizes, args.seeds, recipes))
        write(results, args, recipes)


def write(results: list[dict], args: argparse.Namespace, recipes: list[TrainRecipe]) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    steps = recipes[0].steps
    lines = [
        "# Latency estimator for a new device: adapted vs from scratch",
        "",
        f"Command: `python benchmarks/estimator_adaptation.py {' '.join(sys.argv[1:])}`; commit {commit}, "
        f"{time.strftime('%Y-%m-%d')}, computed on {machine()} (CPU-only arithmetic; the latencies are the files').",
        "",
        "adapted = `train-estimator --init-from`: out of the known device's estimator recalibrated (linear or log), "
        "each from-scratch recipe and three blends of the best two, the lowest 5-fold CV RMSE on the n new rows "
        "(the 'choices' column counts what it chose over the seeds); recalibrated_linear = the linear recalibration "
        f"alone; scratch_* = each recipe fitted on the same n rows (mlp: {steps} steps). Mean over seeds {args.seeds}.",
        "",
    ]
    for r in results:
        lines += table(r)
    out = Path(args.out)
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps([{**r, "verdict": verdict(r)} for r in results], indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
