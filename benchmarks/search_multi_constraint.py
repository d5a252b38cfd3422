"""One search for three latency constraints versus three single-constraint searches.

Runs ``mos-nas search`` once with all constraints and once per constraint (same seed, same
settings), and reports wall time, evaluations (cache misses), the cache hit rate and the best
validation loss found per constraint, so the saving is shown next to the quality.

    python benchmarks/search_multi_constraint.py --checkpoint demo_out/supernet/checkpoint_best.pt \
        --estimator demo_out/latency/tiny_cpu.safetensors --latency-constraints L1 L2 L3 \
        --valid-max-sentences 200 --work /tmp/search_bench
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path


def run(args, constraints: list[str], out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        str(Path(sys.executable).parent / "mos-nas"),
        "search",
        "--checkpoint",
        args.checkpoint,
        "--estimator",
        args.estimator,
        "--latency-constraint",
        *constraints,
        "--iterations",
        str(args.iterations),
        "--population",
        str(args.population),
        "--parents",
        str(args.parents),
        "--mutation",
        str(args.mutation),
        "--crossover",
        str(args.crossover),
        "--seed",
        str(args.seed),
        "--out",
        str(out),
        "--no-progress",
    ]
    if args.valid_max_sentences:
        cmd += ["--valid-max-sentences", str(args.valid_max_sentences)]
    if args.data:
        cmd += ["--data", args.data]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    stats = json.loads((out / "search_stats.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    return {"seconds": seconds, "stats": stats, "best": {f"{s['constraint']:g}": s["valid_loss"] for s in summary}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--estimator", required=True)
    ap.add_argument("--data")
    ap.add_argument("--latency-constraints", nargs="+", required=True)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--population", type=int, default=125)
    ap.add_argument("--parents", type=int, default=25)
    ap.add_argument("--mutation", type=int, default=50)
    ap.add_argument("--crossover", type=int, default=50)
    ap.add_argument("--valid-max-sentences", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default="/tmp/search_bench")
    ap.add_argument("--result", default="benchmarks/results/search_multi_constraint.md")
    args = ap.parse_args()
    work = Path(args.work)
    joint = run(args, args.latency_constraints, work / "joint")
    separate = {c: run(args, [c], work / f"single_{c}") for c in args.latency_constraints}
    sep_seconds = sum(r["seconds"] for r in separate.values())
    sep_evals = sum(r["stats"]["evaluations"] for r in separate.values())
    lines = [
        "# One search for several constraints vs one search per constraint",
        "",
        "Command: `python " + " ".join(sys.argv) + "`",
        "",
        f"{args.iterations} iterations, population {args.population}, parents {args.parents}, mutation "
        f"{args.mutation}, crossover {args.crossover}, seed {args.seed}; fitness on "
        f"{joint['stats']['validation_sentences']} validation sentences "
        f"({joint['stats']['validation_tokens']} tokens).",
        "",
        "| run | wall s | evaluations | cache hit rate | candidates | s per evaluation |",
        "|---|---|---|---|---|---|",
        f"| joint ({' '.join(args.latency_constraints)} ms) | {joint['seconds']:.1f} | {joint['stats']['evaluations']} | "
        f"{100 * joint['stats']['cache_hit_rate']:.1f}% | {joint['stats']['candidates']} | "
        f"{joint['stats']['evaluation_seconds'] / max(1, joint['stats']['evaluations']):.3f} |",
    ]
    for c, r in separate.items():
        lines.append(
            f"| single {c} ms | {r['seconds']:.1f} | {r['stats']['evaluations']} | "
            f"{100 * r['stats']['cache_hit_rate']:.1f}% | {r['stats']['candidates']} | "
            f"{r['stats']['evaluation_seconds'] / max(1, r['stats']['evaluations']):.3f} |"
        )
    lines += [
        "",
        f"**Wall-time ratio joint / separate: {joint['seconds'] / sep_seconds:.3f}** "
        f"({joint['seconds']:.1f} s vs {sep_seconds:.1f} s); evaluations {joint['stats']['evaluations']} vs {sep_evals} "
        f"(ratio {joint['stats']['evaluations'] / sep_evals:.3f}).",
        "",
        "| constraint (ms) | best loss, joint | best loss, single |",
        "|---|---|---|",
    ]
    for c, r in separate.items():
        key = f"{float(c):g}"
        lines.append(f"| {c} | {joint['best'][key]:.4f} | {r['best'][key]:.4f} |")
    Path(args.result).write_text("\n".join(lines) + "\n")
    Path(args.result).with_suffix(".json").write_text(
        json.dumps({"joint": joint, "separate": separate}, indent=2) + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
