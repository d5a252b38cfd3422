"""``mos-nas`` commands: measure latency, train and apply the latency estimator."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mos_fairseq.base.errors import DataError, UserError
from mos_fairseq.cli.options import (
    add_data,
    add_device,
    add_json,
    add_out,
    add_seed,
    add_space,
    add_vocab_size,
    field_default,
    vocab_size_of,
)
from mos_fairseq.latency.protocol import DTYPES, Protocol
from mos_fairseq.latency.recipes import FORMER_RECIPE_NAMES, OUR_RECIPE


def _id_list(text: str) -> list[int]:
    """``3,7,10-12`` -> [3, 7, 10, 11, 12]."""
    ids: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            ids += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise UserError(f"--remeasure: cannot read {text!r} (e.g. 3,7,10-12)") from None
    return ids


def cmd_measure_latency(args: argparse.Namespace) -> None:
    from mos_fairseq.latency.measure import measure_space
    from mos_fairseq.registry import load_space

    if args.checkpoint and args.arch:
        raise UserError("give --checkpoint (trained models) or --arch (architecture files), not both")
    if args.checkpoint:
        return _measure_checkpoint_latency(args)
    if args.arch:
        return _measure_arch_latency(args)
    if args.rounds is not None:
        raise UserError("--rounds times models together; give --checkpoint CKPT [CKPT ...] or --arch YAML [YAML ...]")
    if args.model_options:
        raise UserError("--model-options builds --arch files; give --arch YAML [YAML ...]")
    if not args.space or args.n_archs is None:
        raise UserError("give --space and --n-archs (sample and measure a space), or --checkpoint CKPT [CKPT ...]")
    space, family = load_space(args.space)
    encoder_only = family.encoder_only
    # a masked-LM task adds <mask> to the data's dictionary
    vocab = args.vocab_size or (vocab_size_of(args.data) + encoder_only if args.data else space.vocab_size)
    # an encoder-only family: one encoder pass over --seq-len tokens (no decoder: target length and beam are 1)
    lengths = (args.seq_len, 1, 1) if encoder_only else (args.src_len, args.tgt_len, args.beam)
    protocol = _protocol(args, vocab, *lengths)
    if args.plan:
        from mos_fairseq.latency.measure import write_plan

        n = write_plan(space, protocol, args.n_archs, args.seed, args.plan, args.order)
        print(
            f"wrote the plan of {n} architecture(s) to {args.plan}: on the device, "
            f"python torch_latency.py --plan {Path(args.plan).name} --out DEVICE.csv"
        )
        return None
    if not args.out:
        raise UserError("give --out CSV (or --plan JSON to measure elsewhere)")
    try:
        measured = measure_space(
            space,
            protocol,
            args.n_archs,
            args.seed,
            args.out,
            progress=not args.no_progress,
            remeasure=_id_list(args.remeasure) if args.remeasure else (),
            order=args.order,
        )
    except KeyboardInterrupt:
        print(f"interrupted; the rows in {args.out} are complete: re-run the same command to continue", file=sys.stderr)
        raise SystemExit(130) from None
    print(
        f"measured {measured} architecture(s) now; {args.out} holds {args.n_archs} (sidecar "
        f"{Path(args.out).with_suffix('.json').name})"
    )


def _protocol(args: argparse.Namespace, vocab_size: int, src_len: int, tgt_len: int, beam: int) -> Protocol:
    """The timing protocol the options give, for these sequence lengths and vocabulary."""
    return Protocol(
        device=args.device,
        threads=args.threads,
        src_len=src_len,
        tgt_len=tgt_len,
        beam=beam,
        batch_size=args.batch_size,
        repeats=args.repeats,
        warmup=args.warmup,
        trim=args.trim,
        vocab_size=vocab_size,
        dtype=args.dtype,
    )


def _measure_checkpoint_latency(args: argparse.Namespace) -> None:
    from mos_fairseq.latency.checkpoint_latency import measure_checkpoints

    if args.space or args.n_archs is not None:
        raise UserError("--checkpoint measures trained models; it takes no --space or --n-archs")
    if args.model_options:
        raise UserError("--model-options builds --arch files; a checkpoint holds its own")
    if args.rounds is None:
        args.rounds = 1
    protocol = _protocol(args, 1, args.src_len, args.tgt_len, args.beam)  # the vocabulary is each model's own
    data = measure_checkpoints(args.checkpoint, protocol, args.out, rounds=args.rounds)
    _print_models(args, args.checkpoint, data)


def _measure_arch_latency(args: argparse.Namespace) -> None:
    """``--arch``: architecture files built with fresh weights as retraining builds them, timed like checkpoints."""
    import shlex

    from mos_fairseq.latency.checkpoint_latency import measure_checkpoints
    from mos_fairseq.translation.fresh_model import fresh_translation_model

    if args.n_archs is not None or not args.data:
        raise UserError("--arch times architecture files: give --data (the dictionaries) and no --n-archs")
    if not args.out:
        raise UserError("give --out JSON")
    extra = shlex.split(args.model_options or "")
    if args.rounds is None:
        args.rounds = 1
    protocol = _protocol(args, 1, args.src_len, args.tgt_len, args.beam)  # the vocabulary is --data's
    data = measure_checkpoints(
        args.arch,
        protocol,
        args.out,
        rounds=args.rounds,
        loader=lambda path: fresh_translation_model(path, args.data, args.space, extra),
        what="arch",
        model_options=extra,
    )
    _print_models(args, args.arch, data)


def _print_models(args: argparse.Namespace, paths: list[str], data: dict) -> None:
    for path in paths:
        entry = data["models"][str(Path(path).resolve())]
        spread = f", rounds {min(entry['rounds_ms']):.2f}-{max(entry['rounds_ms']):.2f}" if "rounds_ms" in entry else ""
        print(
            f"{path}: {entry['latency_ms']:.2f} ms (encoder {entry['encoder_ms']:.2f} + decoder "
            f"{entry['decoder_ms']:.2f}{spread}), {entry['params']:,} parameters"
        )
    print(
        f"wrote {args.out} ({data['device']['cpu'] if args.device == 'cpu' else data['device'].get('gpu')}, "
        f"{data['device']['torch_threads']} thread(s))"
    )


def cmd_train_estimator(args: argparse.Namespace) -> None:
    import dataclasses

    from mos_fairseq.latency.dataset import read_latency_csv
    from mos_fairseq.latency.estimator import LatencyEstimator
    from mos_fairseq.latency.evaluation import evaluate, format_report, scatter_plot, write_report
    from mos_fairseq.latency.recipes import HAT_RECIPE, candidate_recipes
    from mos_fairseq.registry import load_space, space_from_dict

    space = load_space(args.space)[0] if args.space else None
    sidecar = Path(args.data).with_suffix(".json")
    if space is None and args.format != "hat" and sidecar.is_file():
        try:
            space = space_from_dict(json.loads(sidecar.read_text())["space"], source=str(sidecar))
        except (KeyError, json.JSONDecodeError):
            raise DataError(f"{sidecar}: unreadable sidecar (no 'space')") from None
    qkv = getattr(space, "qkv_dim", 512)
    vocab = args.vocab_size or (space.vocab_size if space else 32768)
    data = read_latency_csv(args.data, args.format, qkv_dim=qkv, vocab_size=vocab)
    if space is not None and data.feature_names != tuple(space.latency_feature_names):
        raise DataError(
            f"{args.data}: feature columns {list(data.feature_names)} are not those of space "
            f"'{space.name}' ({list(space.latency_feature_names)})"
        )
    mlp = dataclasses.replace(OUR_RECIPE, hidden=args.hidden, layers=args.layers, steps=args.steps, lr=args.lr)
    pool = candidate_recipes(mlp, hat=not args.no_hat_recipe)
    if args.recipe != "auto" and args.recipe not in {r.name for r in pool}:
        raise UserError(f"--recipe {args.recipe} with --no-hat-recipe: nothing to fit")
    recipe = None if args.recipe == "auto" else next(r for r in pool if r.name == args.recipe)
    norm = space.latency_feature_norm if space else None
    kwargs = {"feature_norm": norm} if norm else {}
    ev = evaluate(
        data,
        recipe,
        args.holdout,
        args.seed,
        space=space.to_dict() if space else None,
        hat_recipe=None if args.no_hat_recipe else HAT_RECIPE,
        candidates=pool,
        folds=args.cv_folds,
        **kwargs,
    )
    if args.init_from:  # a known device's estimator recalibrated on these rows, beside the from-scratch fit
        from mos_fairseq.latency.evaluation import add_adapted

        add_adapted(ev, data, LatencyEstimator.load(args.init_from), args.init_from)
    if sidecar.is_file() and args.format != "hat":
        side = json.loads(sidecar.read_text())
        ev.estimator.info.update(measured=side.get("device"), protocol=side.get("protocol"))
    ev.estimator.save(args.out)
    print(format_report(ev.report))
    if args.report:
        write_report(ev.report, args.report)
    plot = args.plot or str(Path(args.out).with_suffix(".png"))
    scatter_plot(ev, plot, title=f"{Path(args.data).name}: held-out {ev.report['n_test']} architectures")
    print(f"estimator -> {args.out}; plot -> {plot}" + (f"; report -> {args.report}" if args.report else ""))


def cmd_predict_latency(args: argparse.Namespace) -> None:
    from mos_fairseq.latency.estimator import LatencyEstimator
    from mos_fairseq.registry import family_of, load_arch, load_space, space_from_dict

    if bool(args.arch) == bool(args.data):
        raise UserError("give --arch ARCH.yml [...] (predict) or --data CSV (check against measurements)")
    estimator = LatencyEstimator.load(args.estimator)
    if args.data:
        return _check_estimator(args, estimator)
    space = (
        space_from_dict(estimator.space)
        if estimator.space and not args.space
        else (load_space(args.space)[0] if args.space else None)
    )
    for path in args.arch:
        arch = family_of(space).arch_type.load(path, space) if space is not None else load_arch(path)
        ms = estimator.predict_arch(arch)
        print(json.dumps({"arch": path, "latency_ms": round(ms, 3)}) if args.json else f"{path}: {ms:.2f} ms")


def _check_estimator(args: argparse.Namespace, estimator) -> None:
    from mos_fairseq.latency.dataset import read_latency_csv
    from mos_fairseq.latency.evaluation import check_estimator

    space = estimator.space or {}
    vocab = (estimator.info.get("protocol") or {}).get("vocab_size") or space.get("vocab_size") or 32768
    data = read_latency_csv(args.data, args.format, qkv_dim=space.get("qkv_dim", 512), vocab_size=vocab)
    result = check_estimator(estimator, data)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.data}: {result['rows']} measured architectures vs {args.estimator}")
    print(
        f"  RMSE {result['rmse']:.3f} ms, MAE {result['mae']:.3f} ms, MAPE {result['mape']:.2f}%, "
        f"within +-10%: {result['within_10pct']:.1f}%, R2 {result['r2']:.4f}, Kendall tau {result['kendall_tau']:.4f}"
    )


def add_commands(sub: argparse._SubParsersAction) -> None:
    _add_measure_latency(sub)
    _add_train_estimator(sub)
    _add_predict_latency(sub)


def _add_measure_latency(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("measure-latency", help="measure sampled subnets (as exported static models) on this device")
    add_space(p, "space YAML or built-in name")
    p.add_argument(
        "--checkpoint",
        nargs="+",
        help="instead of --space: time these trained translation checkpoints "
        "(stock transformer, export, retrained) with the same protocol; --out is then a JSON file",
    )
    p.add_argument(
        "--arch",
        nargs="+",
        help="instead of --space: time these architecture YAMLs as mos-nas retrain --arch builds them (fresh "
        "weights: latency does not depend on them; --data gives the dictionaries, --space checks them), "
        "like --checkpoint",
    )
    p.add_argument(
        "--model-options",
        help="with --arch: fairseq model options the models were trained with, as one value, e.g. "
        '--model-options="--encoder-normalize-before --decoder-normalize-before"',
    )
    add_device(p, auto=False)
    p.add_argument(
        "--dtype",
        choices=DTYPES,
        default="fp32",
        help="the models' weights: fp32, or bf16 (a bf16 deployment on a CPU with avx512_bf16 or amx_bf16: "
        "a device of its own, recorded in the sidecar and never mixed with fp32 rows)",
    )
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--n-archs", type=int, help="architectures in the finished file (with --space)")
    p.add_argument(
        "--repeats", type=int, default=field_default(Protocol, "repeats"), help="timed runs per architecture (HAT: 300)"
    )
    p.add_argument("--warmup", type=int, default=field_default(Protocol, "warmup"), help="untimed runs before timing")
    p.add_argument(
        "--trim",
        type=float,
        default=field_default(Protocol, "trim"),
        help="fraction dropped at each end before averaging",
    )
    p.add_argument("--src-len", type=int, default=field_default(Protocol, "src_len"))
    p.add_argument("--tgt-len", type=int, default=field_default(Protocol, "tgt_len"))
    p.add_argument("--beam", type=int, default=field_default(Protocol, "beam"))
    p.add_argument(
        "--seq-len",
        type=int,
        default=128,
        help="BERT spaces: tokens per sequence (instead of --src-len/--tgt-len/--beam)",
    )
    p.add_argument("--batch-size", type=int, default=field_default(Protocol, "batch_size"))
    add_vocab_size(p, "vocabulary size (default: the space's, or --data's)")
    add_data(p, "fairseq data directory whose dictionary sets the vocabulary size")
    add_seed(p)
    add_out(p, "CSV to write or continue, e.g. latency_data/NAME.csv", required=False)
    p.add_argument(
        "--plan",
        help="instead of measuring here: write the architectures and protocol as a plan JSON for "
        "scripts/torch_latency.py, which times them on a device with only PyTorch",
    )
    p.add_argument(
        "--order",
        choices=("uniform", "spread"),
        default="uniform",
        help="uniform (HAT's random stream, default) or spread: the first few dozen architectures already "
        "cover the space (each next one the least represented feature values, ties by distance), for a short "
        "campaign on a new device",
    )
    p.add_argument("--remeasure", help="row ids to measure again and replace, e.g. 47-54 (rows a disturbance spoiled)")
    p.add_argument(
        "--rounds",
        type=int,
        help="with --checkpoint or --arch: time all the given models together, interleaved over this many rounds "
        "(median per model; re-measures them all), so that a host whose speed drifts cannot favour one of them",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_measure_latency)


def _add_train_estimator(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-estimator",
        help="fit the latency estimator (recipe chosen by cross-validation); report it against baselines",
    )
    add_data(p, "latency CSV (ours, or HAT's with --format hat)", required=True)
    p.add_argument("--format", choices=("auto", "ours", "hat"), default="auto")
    add_space(p, "space of the data (default: the CSV's sidecar; HAT files: none)")
    add_vocab_size(p, "vocabulary for HAT files' parameter counts (default 32768)")
    add_out(p, "estimator file (.safetensors)")
    p.add_argument("--hidden", type=int, default=OUR_RECIPE.hidden)
    p.add_argument("--layers", type=int, default=OUR_RECIPE.layers)
    p.add_argument("--steps", type=int, default=OUR_RECIPE.steps)
    p.add_argument("--lr", type=float, default=OUR_RECIPE.lr)
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of rows held out for the report")
    add_seed(p)
    p.add_argument("--report", help="write the held-out scores as JSON here")
    p.add_argument("--plot", help="scatter plot PNG (default: next to --out)")
    p.add_argument("--no-hat-recipe", action="store_true", help="skip the HAT-recipe comparison")
    p.add_argument(
        "--recipe",
        choices=("auto", "mlp", "hat_recipe", "least_squares", "gbt", "ensemble"),
        type=lambda name: FORMER_RECIPE_NAMES.get(name, name),  # linear_features: least_squares' former name
        default="auto",
        help="auto (default): the recipe with the lowest k-fold CV RMSE on the training rows",
    )
    p.add_argument("--cv-folds", type=int, default=5, help="folds of the recipe choice (default 5)")
    p.add_argument(
        "--init-from",
        metavar="ESTIMATOR",
        help="a new device from a few measurements: recalibrate this "
        "estimator of another device (same features) on --data's training rows; the report compares it "
        "with training from scratch on the same rows, and the adapted estimator is written",
    )
    p.set_defaults(func=cmd_train_estimator)


def _add_predict_latency(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict-latency", help="predicted latency (ms) of architectures, or an estimator checked against a latency CSV"
    )
    p.add_argument("--estimator", required=True)
    p.add_argument("--arch", nargs="+", help="architecture YAML file(s)")
    p.add_argument(
        "--data",
        help="instead of --arch: a latency CSV (ours or HAT's) to score the estimator on: RMSE, "
        "MAPE, share within +-10%%, Kendall tau (--json: also one prediction per row, in row order)",
    )
    p.add_argument("--format", choices=("auto", "ours", "hat"), default="auto", help="with --data: the CSV's format")
    add_space(p, "space (default: the estimator's)")
    add_json(p)
    p.set_defaults(func=cmd_predict_latency)
