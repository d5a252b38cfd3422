"""Repeatability of latency measurement: re-measure the first N architectures of a dataset.

Runs ``mos-nas measure-latency`` again with the dataset's own protocol, space and seed (so the
same architectures, in a fresh process) into ``--out``, then compares the two runs per
architecture: Spearman correlation and median relative difference of the total latency (and of
encoder and decoder separately).

    python benchmarks/latency_repeatability.py --data latency_data/hat_wmt14_en_de_cpu_epyc_1thread.csv \
        --n 30 --out /tmp/rerun.csv --result benchmarks/results/latency_repeatability.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from mos_fairseq.latency.dataset import read_latency_csv


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    rel = np.abs(a - b) / a
    return {
        "spearman": float(spearmanr(a, b).statistic),
        "median_rel_diff": float(np.median(rel)),
        "max_rel_diff": float(rel.max()),
        "mean_ratio_second_over_first": float(np.mean(b / a)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--out", required=True, help="CSV of the second run (continued if present)")
    ap.add_argument("--taskset", help="CPU list to pin the measuring process to (e.g. 1)")
    ap.add_argument("--result", default="benchmarks/results/latency_repeatability.md")
    args = ap.parse_args()
    side = json.loads(Path(args.data).with_suffix(".json").read_text())
    p = side["protocol"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    space_file = Path(args.out).with_suffix(".space.yml")
    import yaml

    space_file.write_text(yaml.safe_dump(side["space"], sort_keys=False))
    cmd = [
        str(Path(sys.executable).parent / "mos-nas"),
        "measure-latency",
        "--space",
        str(space_file),
        "--device",
        p["device"],
        "--n-archs",
        str(args.n),
        "--repeats",
        str(p["repeats"]),
        "--warmup",
        str(p["warmup"]),
        "--trim",
        str(p["trim"]),
        "--src-len",
        str(p["src_len"]),
        "--tgt-len",
        str(p["tgt_len"]),
        "--beam",
        str(p["beam"]),
        "--batch-size",
        str(p["batch_size"]),
        "--vocab-size",
        str(p["vocab_size"]),
        "--seed",
        str(side["seed"]),
        "--out",
        args.out,
        "--no-progress",
    ]
    if p["threads"]:
        cmd += ["--threads", str(p["threads"])]
    if args.taskset:
        cmd = ["taskset", "-c", args.taskset] + cmd
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    first, second = read_latency_csv(args.data), read_latency_csv(args.out)
    n = min(args.n, len(first), len(second))
    assert first.archs[:n] == second.archs[:n], "the runs measured different architectures"
    res = {
        "n": n,
        "seconds_second_run": round(seconds, 1),
        "total": compare(first.total_ms[:n], second.total_ms[:n]),
        "encoder": compare(first.encoder_ms[:n], second.encoder_ms[:n]),
        "decoder": compare(first.decoder_ms[:n], second.decoder_ms[:n]),
    }
    lines = [
        "# Latency measurement repeatability",
        "",
        f"Command: `python benchmarks/latency_repeatability.py --data {args.data} --n {args.n} --out {args.out}"
        + (f" --taskset {args.taskset}" if args.taskset else "")
        + "`",
        "",
        f"Second run of the first {n} architectures of `{args.data}` with its protocol "
        f"(repeats {p['repeats']}, warmup {p['warmup']}, beam {p['beam']}, threads {p['threads']}) on "
        f"{side['device']['cpu']}: {seconds:.0f} s.",
        "",
        "| part | Spearman | median rel. diff | max rel. diff | mean ratio run2/run1 |",
        "|---|---|---|---|---|",
    ]
    for part in ("total", "encoder", "decoder"):
        r = res[part]
        lines.append(
            f"| {part} | {r['spearman']:.4f} | {100 * r['median_rel_diff']:.2f}% | "
            f"{100 * r['max_rel_diff']:.2f}% | {r['mean_ratio_second_over_first']:.4f} |"
        )
    Path(args.result).write_text("\n".join(lines) + "\n")
    Path(args.result).with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
