"""Data-parallel scaling of supernet training on this machine: updates/s and tokens/s with one
process (1 and 2 threads) and with two gloo processes (1 thread each, ``--ddp-backend legacy_ddp``),
and peak resident memory per rank. Sandwich (largest + smallest + 1 random) with neuron-wise MoS.

On CPU this only shows that the data-parallel engine works and what it costs; the real engine is
fairseq's DDP over GPUs (the multi-GPU and multi-node commands: docs/training.md, "Data-parallel training").

    python benchmarks/distributed_scaling.py --data runs/gap/bin --arch supertransformer \\
        --space hat_cpu_small --updates 30 --max-tokens 2048 --out benchmarks/results/distributed_scaling.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def worker(out: str, argv: list[str]) -> None:
    """fairseq-train in this process; the wall time of every update and the peak RSS go to ``out``."""
    from fairseq import trainer as trainer_module
    from fairseq_cli import train

    stamps: list[float] = []
    original = trainer_module.Trainer.train_step

    def train_step(self, samples, raise_oom=False):
        result = original(self, samples, raise_oom)
        stamps.append(time.perf_counter())
        return result

    trainer_module.Trainer.train_step = train_step
    sys.argv = ["fairseq-train", *argv]
    train.cli_main()
    Path(out).write_text(
        json.dumps({"stamps": stamps, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(mode: str, args, tmp: Path) -> dict:
    base = [
        args.data,
        "--user-dir",
        str(REPO / "user_dir"),
        "--task",
        "supernet_translation",
        "--arch",
        args.arch,
        "--criterion",
        "supernet_cross_entropy",
        "--label-smoothing",
        "0.1",
        "--supernet-sampling",
        "sandwich",
        "--mos",
        "neuron",
        "--optimizer",
        "adam",
        "--adam-betas",
        "(0.9,0.98)",
        "--lr",
        "1e-3",
        "--lr-scheduler",
        "inverse_sqrt",
        "--warmup-updates",
        "100",
        "--max-tokens",
        str(args.max_tokens),
        "--max-update",
        str(args.updates),
        "--no-save",
        "--disable-validation",
        "--cpu",
        "--num-workers",
        "0",
        "--seed",
        "1",
        "--log-format",
        "simple",
        "--log-interval",
        "1000",
    ]
    if args.space:
        base += ["--search-space", args.space]
    procs, outs = [], []
    ranks = 2 if mode == "2 processes x 1 thread" else 1
    threads = 2 if mode == "1 process x 2 threads" else 1
    port = free_port()
    for rank in range(ranks):
        extra = (
            []
            if ranks == 1
            else [
                "--distributed-world-size",
                "2",
                "--distributed-rank",
                str(rank),
                "--distributed-backend",
                "gloo",
                "--ddp-backend",
                "legacy_ddp",
                "--distributed-init-method",
                f"tcp://127.0.0.1:{port}",
                "--distributed-no-spawn",
            ]
        )
        out = tmp / f"{mode.replace(' ', '_')}_{rank}.json"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--worker", str(out), "--", *base, *extra],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        outs.append(out)
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"{mode}: fairseq-train failed:\n{err[-3000:]}")
    results = [json.loads(o.read_text()) for o in outs]
    stamps = results[0]["stamps"]
    skip = min(args.warmup, len(stamps) - 2)
    ups = (len(stamps) - 1 - skip) / (stamps[-1] - stamps[skip])
    return {
        "mode": mode,
        "ranks": ranks,
        "threads_per_rank": threads,
        "updates_per_s": ups,
        "batches_per_s": ups * ranks,
        "peak_rss_mb_per_rank": [r["peak_rss_mb"] for r in results],
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker(sys.argv[2], sys.argv[4:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="fairseq data directory")
    ap.add_argument("--arch", default="supertransformer_tiny")
    ap.add_argument("--space", help="--search-space for the supernet (default: the arch preset's)")
    ap.add_argument("--updates", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5, help="updates left out of the rate")
    ap.add_argument("--max-tokens", type=int, default=1024, help="per rank and batch")
    ap.add_argument("--out", help="append a Markdown table here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            run(mode, args, Path(tmp))
            for mode in ("1 process x 1 thread", "1 process x 2 threads", "2 processes x 1 thread")
        ]
    one = rows[0]["batches_per_s"]
    lines = [
        f"### {args.arch} {args.space or ''} on {Path(args.data).name}: {args.updates} updates, "
        f"--max-tokens {args.max_tokens} per rank, first {args.warmup} left out",
        "",
        "| mode | updates/s | batches/s | speed-up (batches/s vs 1x1) | peak RSS per rank (MB) |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['updates_per_s']:.3f} | {r['batches_per_s']:.3f} | "
            f"{r['batches_per_s'] / one:.2f}x | {', '.join(f'{m:.0f}' for m in r['peak_rss_mb_per_rank'])} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    print(json.dumps(rows))
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
