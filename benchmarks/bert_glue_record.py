"""One JSON per run of benchmarks/bert_glue.sh: what a pretraining or fine-tuning run was and what it
scored, written under benchmarks/results/bert_glue/runs/ (small, committed; the checkpoints are not).

``sweep``: a point of the recipe sweep (a supernet pretrained on a small budget: its text, learning rate,
validation perplexity of the largest and smallest subnet at every checkpoint, seconds per update) and
the dev score of its exported subnet fine-tuned on a task (SST-2 or CoLA), exported from the last
checkpoint or from one kept on the way (``--at-updates``); ``random`` stands for the same architecture
fine-tuned from random weights. ``supernet`` / ``pretrained``: a supernet of the study or a pick
pretrained alone (perplexity curve, wall time); ``finetune``: one start x task x seed of a pick (dev
scores; its blind labels copied beside the others); ``pick``: a pick of the search (constraint,
architecture, parameters, predicted latency, loss inside the supernet); ``index``: the blind labels' index.json, rebuilt
from the fine-tuning JSONs. Rerunning rewrites the same file from the same logs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from common import lscpu_fields
from fairseq_logs import seconds_per_update, train_progress, training_dtype


def commit_of(root: Path) -> str | None:
    proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or None


def pretraining(dir_: Path) -> dict:
    """Validation perplexity (2^masked-token loss in bits) at every validation, of the largest and
    smallest subnet for a supernet and of the model for one pretrained alone, and the training speed,
    from the run's train.log."""
    log = dir_ / "train.log"
    progress = train_progress(log)
    curve = [
        {
            "updates": int(v["num_updates"]),
            "ppl_largest": 2 ** v["loss_largest"],
            "ppl_smallest": 2 ** v["loss_smallest"],
        }
        if "loss_largest" in v
        else {"updates": int(v["num_updates"]), "ppl": 2 ** v["loss"]}
        for v in progress["valid"]
        if ("loss_largest" in v or "loss" in v) and "num_updates" in v
    ]
    return {
        "updates": progress["updates"],
        "dtype": training_dtype(log),
        "train_wall_s": progress["train_wall_s"],
        "s_per_update": seconds_per_update(log),
        "valid": curve,
        "final": curve[-1] if curve else None,
    }


def finetuning(dir_: Path) -> dict:
    """The dev score of the final checkpoint (predict-glue's JSON; SST-2 also on its dev rows unseen in
    training) and the run's speed."""
    dev = json.loads((dir_ / "dev.json").read_text())
    unseen = json.loads((dir_ / "dev_unseen.json").read_text()) if (dir_ / "dev_unseen.json").is_file() else None
    progress = train_progress(dir_ / "train.log")
    return {
        "dev_unseen_accuracy": unseen["accuracy"] if unseen else None,
        "dev_unseen_sentences": unseen["n"] if unseen else None,
        "dev_accuracy": dev["accuracy"],
        "dev_mcc": dev["mcc"],
        "dev_sentences": dev["n"],
        "updates": progress["updates"],
        "dtype": training_dtype(dir_ / "train.log"),
        "train_wall_s": progress["train_wall_s"],
        "blind": str(dir_ / "blind.txt") if (dir_ / "blind.txt").is_file() else None,
    }


def machine() -> dict:
    text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    fields = lscpu_fields(text, "lscpu when the run was recorded (the machine that ran it)")
    fields["cpu_flags"] = [f for f in fields["cpu_flags"] if "bf16" in f or f.startswith("avx512") or f == "amx_tile"]
    return fields


def suffix(args: argparse.Namespace) -> str:
    """What a run's names carry for its split: nothing for the carved split, ``_clean`` for the clean one."""
    return "" if args.split == "carved" else f"_{args.split}"


def record_sweep(args: argparse.Namespace) -> Path:
    work = Path(args.work)
    start = "random" if args.name == "random" else "export"
    ft_name = "sweep_arch" if start == "random" else f"sweep_{args.name}"
    point = args.point or args.name
    doc = {
        "kind": "sweep",
        "name": args.name,
        "text": None if args.text == "-" else args.text,
        "lr": None if args.lr == "-" else float(args.lr),
        "extra": args.extra,
        "pretraining": None if start == "random" else pretraining(work / "sweep" / point),
        "pretraining_budget_updates": None if start == "random" else int(args.updates),
        "exported_at_updates": None if start == "random" else int(args.at_updates or args.updates),
        "arch": (work / "sweep" / "arch.yml").read_text().strip(),
        "finetune": {
            "task": args.task,
            "start": start,
            "seed": 1,
            "lr": float(args.ft_lr),
            "budget_updates": args.ft_updates,
            "split": args.split,
            **finetuning(work / "finetune" / f"{ft_name}.{start}.lr{args.ft_lr}.seed1.{args.task}{suffix(args)}"),
        },
        "machine": machine(),
        "commit": args.commit or commit_of(Path(__file__).resolve().parent.parent),
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
    }
    if args.pred_dir:  # the blind labels, beside the study's (index.json lists them too)
        ft_dir = work / "finetune" / f"{ft_name}.{start}.lr{args.ft_lr}.seed1.{args.task}{suffix(args)}"
        pred = Path(args.pred_dir) / f"sweep_{args.name}{suffix(args)}.seed1.{args.task}.txt"
        pred.parent.mkdir(parents=True, exist_ok=True)
        pred.write_text((ft_dir / "blind.txt").read_text())
        doc["finetune"]["blind"] = pred.name
    out = Path(args.out) / f"sweep_{args.name}.{args.task}{suffix(args)}.ft_lr{args.ft_lr}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(out)
    return out


def write_json(doc: dict, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(out)
    return out


def run_header(kind: str, name: str, commit: str | None = None) -> dict:
    """What every run file starts with; ``commit``: the commit that ran it (default: this checkout's)."""
    return {
        "kind": kind,
        "name": name,
        "machine": machine(),
        "commit": commit or commit_of(Path(__file__).resolve().parent.parent),
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
    }


def record_pretrained(args: argparse.Namespace) -> Path:
    """A supernet of the study (``supernet``) or a pick pretrained alone (``pretrained``): text, recipe,
    perplexity curve, wall time."""
    doc = run_header(args.kind, args.name, args.commit)
    doc.update(
        text=args.text,
        lr=float(args.lr),
        budget_updates=int(args.updates) if args.updates else None,
        budget_hours=float(args.hours) if args.hours else None,
        pretraining=pretraining(Path(args.dir)),
    )
    return write_json(doc, Path(args.out) / f"{args.kind}_{args.name}.json")


def record_finetune(args: argparse.Namespace) -> Path:
    """One fine-tuning run of the study (a start x task x seed): its dev scores and its blind labels,
    copied to ``--pred-dir`` as NAME.seedK.TASK.txt."""
    dir_ = Path(args.dir)
    name = args.name + suffix(args)  # a run of the clean split: NAME_clean (the blind labels' index tells them apart)
    doc = run_header("finetune", name)
    ft = finetuning(dir_)
    pred = Path(args.pred_dir) / f"{name}.seed{args.seed}.{args.task}.txt"
    pred.parent.mkdir(parents=True, exist_ok=True)
    pred.write_text((dir_ / "blind.txt").read_text())
    ft["blind"] = pred.name  # in --pred-dir
    export = json.loads(Path(args.arch).read_text())
    doc.update(
        start=args.start,
        pick=args.pick or args.name.removeprefix(f"{args.start}_"),
        variant=args.variant or None,
        task=args.task,
        split=args.split,
        seed=int(args.seed),
        arch=export["arch"],
        params=export["params"],
        lr=float(args.ft_lr),
        **ft,
    )
    return write_json(doc, Path(args.out) / f"finetune_{name}.seed{args.seed}.{args.task}.json")


def search_spread(search: Path) -> dict:
    """How far the supernet told its candidates apart: the range of their validation losses and Kendall's tau
    between parameters and loss (negative: larger subnets score better), from the search's candidates.csv."""
    from scipy.stats import kendalltau

    with (search / "candidates.csv").open() as f:
        rows = [(int(r["params"]), float(r["valid_loss"])) for r in csv.DictReader(f)]
    if len(rows) < 2:
        raise ValueError(f"{search}/candidates.csv holds {len(rows)} candidate(s)")
    losses = [loss for _, loss in rows]
    tau = kendalltau([p for p, _ in rows], losses).statistic
    return {"candidates": len(rows), "loss_min": min(losses), "loss_max": max(losses), "tau_params_loss": float(tau)}


def record_pick(args: argparse.Namespace) -> Path:
    """A pick of the study's search: its constraint, architecture, parameters, predicted latency and
    validation loss inside the supernet (the search's summary.json entry for ``--arch-file``)."""
    search = Path(args.search)
    summary = json.loads((search / "summary.json").read_text())
    entry = next((e for e in summary if e["arch"] == Path(args.arch_file).name), None)
    if entry is None:
        raise ValueError(f"{search}/summary.json has no pick {Path(args.arch_file).name}")
    doc = run_header("pick", args.name, args.commit)
    arch_spec = yaml.safe_load((search / entry["arch"]).read_text())
    doc.update(supernet=args.supernet, constraint_kind=entry.pop("kind"), **entry, arch_spec=arch_spec)
    doc["search"] = search_spread(search)
    return write_json(doc, Path(args.out) / f"pick_{args.name}.json")


def record_index(args: argparse.Namespace) -> Path:
    """``--pred-dir``/index.json, rebuilt from every fine-tuning run's JSON: [{name, start, task, seed, path}]."""
    pred_dir = Path(args.pred_dir)
    rows = []
    for path in sorted(Path(args.out).glob("finetune_*.json")) + sorted(Path(args.out).glob("sweep_*.json")):
        run = json.loads(path.read_text())
        if run.get("kind") == "sweep":  # a sweep point's fine-tuning (seed 1), if its blind labels were kept
            if "blind" not in run["finetune"]:
                continue
            run = {"name": f"sweep_{run['name']}", **run["finetune"]}
        pred = pred_dir / Path(run["blind"]).name
        if not pred.is_file():
            raise ValueError(f"{path}: its blind labels {pred.name} are not in {pred_dir}")
        rows.append(
            {"name": run["name"], "start": run["start"], "task": run["task"], "seed": run["seed"], "path": pred.name}
        )
    return write_json(rows, pred_dir / "index.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    p = sub.add_parser("sweep")
    p.add_argument("--work", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--lr", required=True)
    p.add_argument("--extra", default="")
    p.add_argument("--updates", required=True, help="the pretraining budget (- for the random start)")
    p.add_argument("--ft-updates", type=int, required=True)
    p.add_argument("--ft-lr", required=True)
    p.add_argument("--task", default="SST-2")
    p.add_argument("--point", default=None, help="the pretraining run's name (default: --name)")
    p.add_argument("--at-updates", default=None, help="the pretraining checkpoint exported (default: the last)")
    p.add_argument("--pred-dir", default=None, help="copy the fine-tuned model's blind labels here")
    p.add_argument("--commit", default=None, help="the commit that ran the point (default: this checkout's)")
    p.add_argument(
        "--split", choices=("carved", "clean"), default="carved", help="the dev split (bert_glue.sh BG_SPLIT)"
    )
    p.add_argument("--out", required=True)
    for kind in ("supernet", "pretrained"):
        p = sub.add_parser(kind)
        p.add_argument("--work", required=True)
        p.add_argument("--name", required=True)
        p.add_argument("--dir", required=True, help="the run's save dir (its train.log)")
        p.add_argument("--text", required=True)
        p.add_argument("--lr", required=True)
        p.add_argument("--updates", default=None)
        p.add_argument("--hours", default=None)
        p.add_argument("--commit", default=None, help="the commit that trained it (default: this checkout's)")
        p.add_argument("--out", required=True)
    p = sub.add_parser("finetune")
    p.add_argument("--work", required=True)
    p.add_argument("--name", required=True, help="START_PICK, e.g. export_neuron_params_1.2M")
    p.add_argument("--start", choices=("export", "random", "alone"), required=True)
    p.add_argument("--pick", help="the pick whose architecture this is (default: --name without START_)")
    p.add_argument(
        "--variant", help="how this start differs from the study's (e.g. 'lr 1e-3': pretrained at that rate)"
    )
    p.add_argument(
        "--split", choices=("carved", "clean"), default="carved", help="the dev split (bert_glue.sh BG_SPLIT)"
    )
    p.add_argument("--task", required=True)
    p.add_argument("--seed", required=True)
    p.add_argument("--dir", required=True, help="the fine-tuning save dir (train.log, dev.json, blind.txt)")
    p.add_argument("--arch", required=True, help="the export's export.json")
    p.add_argument("--ft-lr", default=os.environ.get("FT_LR", "1e-3"))
    p.add_argument("--pred-dir", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("pick")
    p.add_argument("--work", required=True)
    p.add_argument("--name", required=True, help="SUPERNET_CONSTRAINT, e.g. neuron_params_1.8M")
    p.add_argument("--supernet", required=True)
    p.add_argument("--search", required=True, help="the search's output directory (summary.json)")
    p.add_argument("--arch-file", required=True, help="the pick's best_*.yml")
    p.add_argument("--commit", default=None, help="the commit that ran the search (default: this checkout's)")
    p.add_argument("--out", required=True)
    p = sub.add_parser("index")
    p.add_argument("--work", required=True)
    p.add_argument("--pred-dir", required=True)
    p.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    record = {
        "sweep": record_sweep,
        "supernet": record_pretrained,
        "pretrained": record_pretrained,
        "finetune": record_finetune,
        "pick": record_pick,
        "index": record_index,
    }[args.kind]
    try:
        out = record(args)
    except (OSError, KeyError, ValueError) as exc:
        print(f"bert_glue_record: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
