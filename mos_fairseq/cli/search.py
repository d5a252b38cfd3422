"""``mos-nas`` commands: evolutionary search, loss predictor, subnet evaluation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mos_fairseq.base.errors import UserError
from mos_fairseq.cli.options import (
    add_data,
    add_device,
    add_json,
    add_out,
    add_seed,
    add_space,
    config_from_args,
    field_default,
)
from mos_fairseq.search.evolution import EvolutionConfig


def _estimators(values: list[str] | None) -> tuple[str | None, dict[str, str]]:
    """``--estimator FILE`` (one, unnamed) or ``--estimator NAME=FILE ...`` (one per device)."""
    values = values or []
    named = [v for v in values if "=" in v]
    if not named:
        if len(values) > 1:
            raise UserError("several --estimator files need names: --estimator cpu=a.safetensors gpu=b.safetensors")
        return (values[0] if values else None), {}
    if len(named) != len(values):
        raise UserError("--estimator: name every file (NAME=FILE) when giving several")
    out: dict[str, str] = {}
    for v in named:
        name, _, path = v.partition("=")
        if not name.isidentifier():
            raise UserError(f"--estimator {v}: the device name must be a word (letters, digits, _), e.g. cpu=FILE")
        if name in out:
            raise UserError(f"--estimator: device '{name}' is named twice")
        out[name] = path
    return None, out


def cmd_search(args: argparse.Namespace) -> None:
    from mos_fairseq.search.constraints import parse_constraints
    from mos_fairseq.search.evolution import EvolutionConfig
    from mos_fairseq.search.runner import SearchInputs, run_search

    estimator, estimators = _estimators(args.estimator)
    constraints = parse_constraints(args.latency_constraint, args.param_constraint, list(estimators))
    config = config_from_args(EvolutionConfig, args)
    summary = run_search(
        SearchInputs(
            checkpoint=args.checkpoint,
            data=args.data,
            constraints=constraints,
            config=config,
            out=args.out,
            space=args.space,
            estimator=estimator,
            valid_subset=args.valid_subset,
            valid_max_sentences=args.valid_max_sentences,
            resume=args.resume,
            verify_latency=args.verify_latency,
            progress=not args.no_progress,
            device=args.device,
            predictor=args.predictor,
            estimators=estimators,
        )
    )
    for c, entry in zip(constraints, summary):
        lat = entry.get("predicted_latency_ms")
        head = (
            c.describe()
            if isinstance(entry["constraint"], dict) or c.parts[0].device
            else (f"{entry['kind']} <= {entry['constraint']:g}")
        )
        line = f"{head}: {entry['arch']} loss {entry['valid_loss']:.4f}, {entry['params']:,} params"
        line += f", {lat:.2f} ms predicted" if lat is not None else ""
        line += "".join(f", {entry['predicted_latency_ms_' + d]:.2f} ms predicted on {d}" for d in estimators)
        if "measured_latency_ms" in entry:
            line += f", {entry['measured_latency_ms']:.2f} ms measured"
        line += "".join(
            f", {entry['measured_latency_ms_' + d]:.2f} ms measured on {d}"
            for d in estimators
            if "measured_latency_ms_" + d in entry
        )
        if entry.get("within_constraint") is False:
            line += " OVER THE CONSTRAINT"
        print(line)
        if entry.get("verify_note"):
            print(f"  verify-latency: {entry['verify_note']}")
    print(f"outputs in {args.out}: summary.json, candidates.csv, pareto.csv, pareto.png, best_*.yml")


def cmd_train_predictor(args: argparse.Namespace) -> None:
    from mos_fairseq.core.validation import ValidationBatches
    from mos_fairseq.loading import load_supernet
    from mos_fairseq.search.predictor import LossPredictor, holdout_report, sample_scored_subnets
    from mos_fairseq.search.runner import resolve_device

    if args.n < 10:
        raise UserError(f"--n must be >= 10, got {args.n}")
    supernet, task, _ = load_supernet(args.checkpoint, args.data)
    batches = ValidationBatches.from_task(task, args.valid_subset, args.valid_max_sentences)
    archs, losses = sample_scored_subnets(supernet, batches, args.n, args.seed, resolve_device(args.device))
    import numpy as np

    x = np.array([a.normalized_features() for a in archs])
    report = holdout_report(x, losses, args.holdout, args.seed)
    info = {
        "space": supernet.space.name,
        "checkpoint": str(Path(args.checkpoint).resolve()),
        "n": len(archs),
        "valid_subset": args.valid_subset,
        "valid_max_sentences": args.valid_max_sentences,
        "holdout": report,
    }
    LossPredictor.fit(x, losses, args.kind, args.seed, info).save(args.out)
    if args.report:
        from mos_fairseq.base.files import write_text_atomic

        write_text_atomic(Path(args.report), json.dumps(report, indent=2) + "\n")
    print(
        f"{len(archs)} subnets scored (loss {losses.min():.3f}-{losses.max():.3f} bits); held-out "
        f"{report['n_test']}: "
        + "; ".join(
            f"{k} RMSE {v['rmse']:.4f} R2 {v['r2']:.3f} tau {v['kendall_tau']:.3f}" for k, v in report["models"].items()
        )
    )
    print(f"wrote {args.kind} predictor (trained on all {len(archs)}) to {args.out}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from mos_fairseq.search.runner import evaluate_subnet

    res = evaluate_subnet(
        args.checkpoint,
        args.data,
        args.arch,
        valid_subset=args.valid_subset,
        max_sentences=args.valid_max_sentences,
        bleu=not args.no_bleu,
        beam=args.beam,
        lenpen=args.lenpen,
        device=args.device,
        bf16=args.bf16,
    )
    if args.json:
        print(json.dumps(res))
        return
    line = f"{args.arch}: valid loss {res['valid_loss']:.4f} bits/token (ppl {res['valid_ppl']:.2f}) on {res['sentences']} sentences"
    if "bleu" in res:
        line += f", BLEU {res['bleu']:.2f} (beam {args.beam})"
    print(line + f", {res['params']:,} params")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search", help="evolutionary search under latency/parameter constraints (one run, all constraints)"
    )
    p.add_argument("--checkpoint", required=True, help="supernet checkpoint")
    add_data(p, "data directory (default: the checkpoint's)")
    add_space(p, "search a narrower space than the supernet's")
    p.add_argument(
        "--estimator",
        nargs="+",
        metavar="[NAME=]FILE",
        help="latency estimator (.safetensors) for latency constraints; several devices at once: "
        "cpu=a.safetensors gpu=b.safetensors",
    )
    p.add_argument(
        "--latency-constraint",
        nargs="+",
        metavar="MS",
        help="e.g. 100 150 200; with named estimators DEVICE:MS, joined with commas for several devices "
        "at once: cpu:150 gpu:40 cpu:100,gpu:30",
    )
    p.add_argument("--param-constraint", nargs="+", metavar="N", help="e.g. 30M 45000000")
    p.add_argument("--iterations", type=int, default=field_default(EvolutionConfig, "iterations"))
    p.add_argument("--population", type=int, default=field_default(EvolutionConfig, "population"))
    p.add_argument("--parents", type=int, default=field_default(EvolutionConfig, "parents"))
    p.add_argument("--mutation", type=int, default=field_default(EvolutionConfig, "mutation"))
    p.add_argument("--mutation-prob", type=float, default=field_default(EvolutionConfig, "mutation_prob"))
    p.add_argument("--crossover", type=int, default=field_default(EvolutionConfig, "crossover"))
    p.add_argument("--valid-subset", default="valid")
    p.add_argument("--valid-max-sentences", type=int, help="first N validation sentences (default: all)")
    add_seed(p)
    add_out(p)
    p.add_argument("--resume", action="store_true", help="continue the search in --out")
    p.add_argument(
        "--verify-latency",
        action="store_true",
        help="measure the picks on this device; a pick over its "
        "latency constraint is flagged and the next-best admitted candidates are measured (at most 5 per "
        "constraint) until one fits",
    )
    p.add_argument(
        "--predictor",
        help="rank candidates with a loss predictor (mos-nas train-predictor) instead of "
        "scoring each inside the supernet; the picks are scored for real",
    )
    add_device(p, "where candidates are scored")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("train-predictor", help="loss/perplexity predictor from sampled subnets (SuperShaper)")
    p.add_argument("--checkpoint", required=True, help="supernet checkpoint")
    add_data(p, "data directory (default: the checkpoint's)")
    p.add_argument("--n", type=int, default=200, help="subnets to score (largest and smallest included)")
    p.add_argument("--kind", choices=("gbt", "mlp"), default="gbt", help="gradient-boosted trees or an MLP")
    p.add_argument("--valid-subset", default="valid")
    p.add_argument("--valid-max-sentences", type=int)
    p.add_argument("--holdout", type=float, default=0.2, help="fraction held out for the accuracy report")
    add_seed(p)
    add_device(p)
    add_out(p, "predictor file (JSON)")
    p.add_argument("--report", help="write the held-out scores as JSON here")
    p.set_defaults(func=cmd_train_predictor)

    p = sub.add_parser("evaluate", help="validation loss and BLEU of one subnet inside a supernet")
    p.add_argument("--checkpoint", required=True)
    add_data(p)
    p.add_argument("--arch", required=True)
    p.add_argument("--valid-subset", default="valid")
    p.add_argument("--valid-max-sentences", type=int)
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--lenpen", type=float, default=0.6)
    p.add_argument("--no-bleu", action="store_true")
    p.add_argument(
        "--bf16", action="store_true", help="score the subnet with bf16 weights on CPU (avx512_bf16 or amx_bf16)"
    )
    add_device(p)
    add_json(p)
    p.set_defaults(func=cmd_evaluate)
