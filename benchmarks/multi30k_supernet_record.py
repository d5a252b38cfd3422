"""Stage ``record_supernets`` of benchmarks/multi30k.sh: each finished supernet of a runs directory
(``WORK/supernets/NAME``: commit, train.log, checkpoint_last.pt, .done) becomes a committed run,
``RESULTS/supernets/NAME[SUFFIX][_bf16].json``: the supernet's recipe as its checkpoint holds it, the
commit, machine, ranks, training precision (``_bf16`` is appended to the name of a bf16 run), updates,
training wall-clock, seconds per update, and every epoch's validation loss and nll (bits per token) of
each validation subnet (``--valid-archs``: the space's baselines, the largest and the smallest).

Checkpoints are not committed; these files are what the reports read (benchmarks/cpu_bf16_quality.py
compares a supernet trained in fp32 with its bf16 twin at equal updates). Idempotent: a run already
recorded from the same checkpoint is skipped; a committed file of that name from another checkpoint, or an
unfinished supernet, is a one-line error, checked before anything is written.

    python benchmarks/multi30k_supernet_record.py --work WORK --results benchmarks/results/multi30k \\
        --preset multi30k [--suffix _5ep] [--only neuron]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from common import write_atomic
from fairseq_logs import seconds_per_update, train_progress, training_dtype
from multi30k_record import RecordError, checkpoint_facts, machine_of, sha256

SCHEMA = "multi30k-supernet/1"
# the options that tell the supernets apart, recorded beside the recipe's
SUPERNET_OPTIONS = ("search-space", "supernet-sampling", "sandwich-random", "mos", "max-epoch", "update-freq")


def valid_per_epoch(log: Path) -> list[dict]:
    """Every epoch's validation: loss and nll (bits) of each validation subnet, from fairseq's
    ``loss_NAME`` / ``nll_loss_NAME`` fields; a resumed run's repeated epoch keeps its last line."""
    per_epoch: dict[int, dict] = {}
    for v in train_progress(log)["valid"]:
        names = [k.removeprefix("nll_loss_") for k in v if k.startswith("nll_loss_")]
        if "epoch" not in v or not names:
            continue
        per_epoch[int(v["epoch"])] = {
            "epoch": int(v["epoch"]),
            "num_updates": int(v["num_updates"]) if "num_updates" in v else None,
            "loss": {n: v[f"loss_{n}"] for n in names if f"loss_{n}" in v},
            "nll_loss": {n: v[f"nll_loss_{n}"] for n in names},
        }
    return [per_epoch[e] for e in sorted(per_epoch)]


def run_document(dir_: Path, name: str, digest: str, preset: dict) -> dict:
    log = dir_ / "train.log"
    keys = {k: v for k, v in preset.items() if k != "criterion"} | {k: None for k in SUPERNET_OPTIONS}
    options, ranks = checkpoint_facts(dir_ / "checkpoint_last.pt", keys)
    progress = train_progress(log)
    valid = valid_per_epoch(log)
    done = dt.datetime.fromtimestamp((dir_ / "checkpoint_last.pt").stat().st_mtime, dt.UTC)
    return {
        "schema": SCHEMA,
        "name": name,
        "supernet": dir_.name,
        "recipe": {"options": options, "criterion": "supernet_cross_entropy"},
        "commit": (dir_ / "commit").read_text().strip(),
        "machine": machine_of(dir_, dir_.parent.parent),
        "threads": 1,
        "ranks": ranks,
        "dtype": {"training": training_dtype(log)},
        "epochs": valid[-1]["epoch"] if valid else 0,
        "updates": progress["updates"],
        "train_wall_s": progress["train_wall_s"],
        "s_per_update": seconds_per_update(log),
        "valid": valid,
        "valid_unit": "bits per token (fairseq loss / nll_loss, base 2), validation set, end of each epoch",
        "checkpoint_sha256": digest,
        "trained_at": done.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "recorded_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": f"benchmarks/multi30k.sh record_supernets: supernets/{dir_.name} of the runs directory",
    }


def planned(args: argparse.Namespace) -> list[tuple[Path, str, str]]:
    """(supernet directory, run name, checkpoint digest) of every selected supernet, checked first."""
    root = args.work / "supernets"
    dirs = sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    if args.only:
        missing = [n for n in args.only if not (root / n).is_dir()]
        if missing:
            raise RecordError(f"no supernet {', '.join(missing)} in {root}")
        dirs = [root / n for n in args.only]
    if not dirs:
        raise RecordError(f"no supernet in {root}")
    plan = []
    for d in dirs:
        absent = [f for f in (".done", "commit", "train.log", "checkpoint_last.pt") if not (d / f).is_file()]
        if absent:
            raise RecordError(f"supernet {d.name} is not finished ({', '.join(absent)} missing in {d})")
        bf16 = training_dtype(d / "train.log") == "bf16"
        name = f"{d.name}{args.suffix}{'_bf16' if bf16 else ''}"
        digest = sha256(d / "checkpoint_last.pt")
        out = args.results / "supernets" / f"{name}.json"
        if out.is_file() and json.loads(out.read_text()).get("checkpoint_sha256") != digest:
            raise RecordError(f"{out} holds another checkpoint's run: choose another --suffix")
        plan.append((d, name, digest))
    return plan


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, required=True, help="the runs directory (WORK/supernets/NAME)")
    p.add_argument("--results", type=Path, required=True, help="ROOT/benchmarks/results/multi30k")
    p.add_argument("--preset", default="multi30k", help="the recipe the supernets were trained with")
    p.add_argument("--suffix", default="", help="appended to each supernet's name (e.g. _5ep)")
    p.add_argument("--only", nargs="*", default=[], help="these supernets of WORK/supernets (default: every one)")
    args = p.parse_args(argv)
    from mos_fairseq.base.errors import UserError
    from mos_fairseq.translation.retrain import load_preset

    try:
        preset = load_preset(args.preset)
        for dir_, name, digest in planned(args):
            out = args.results / "supernets" / f"{name}.json"
            if out.is_file():
                print(f"{name}: recorded already")
                continue
            write_atomic(out, json.dumps(run_document(dir_, name, digest, preset), indent=1) + "\n")
            print(f"{name}: wrote {out}")
    except (RecordError, UserError) as e:
        print(f"multi30k_supernet_record: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
