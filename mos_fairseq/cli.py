"""``mos-nas``: the command line over the library (one sub-command per pipeline step).

User errors (:class:`~mos_fairseq.errors.UserError`) print one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path
from typing import Callable

from mos_fairseq.arch import Architecture
from mos_fairseq.errors import DataError, UserError
from mos_fairseq.space import SearchSpace


def _vocab_size_of(data_dir: str) -> int:
    dicts = sorted(Path(data_dir).glob("dict.*.txt")) or sorted(Path(data_dir).glob("dict.txt"))
    if not dicts:
        raise DataError(f"no dict.*.txt or dict.txt in data directory '{data_dir}'")
    from fairseq.data import Dictionary

    return len(Dictionary.load(str(dicts[0])))


def cmd_sample(args: argparse.Namespace) -> None:
    from mos_fairseq.bert.space import BertArch, load_any_space

    space, arch_type = load_any_space(args.space)
    if args.n < 0:
        raise UserError(f"--n must be >= 0, got {args.n}")
    if args.hat_format and arch_type is BertArch:
        raise UserError("--hat-format is for HAT's encoder-decoder spaces, not BERT spaces")
    rng = random.Random(args.seed)
    archs: list[tuple[str, object]] = []
    if args.largest:
        archs.append(("largest", arch_type.largest(space)))
    if args.smallest:
        archs.append(("smallest", arch_type.smallest(space)))
    archs += [(f"arch_{i:04d}", arch_type.random(space, rng)) for i in range(args.n)]
    if not archs:
        raise UserError("nothing to write: give --n N and/or --largest/--smallest")
    out = Path(args.out)
    for name, arch in archs:
        arch.save(out / f"{name}.yml", **({"hat_format": True} if args.hat_format else {}))
    print(f"wrote {len(archs)} architecture(s) of space '{space.name}' to {out}")


def cmd_info(args: argparse.Namespace) -> None:
    if args.checkpoint:
        if args.arch:
            raise UserError("give --arch or --checkpoint, not both")
        _checkpoint_info(args.checkpoint, args.json)
        return
    if not args.arch:
        raise UserError("give --arch ARCH.yml or --checkpoint CKPT.pt")
    from mos_fairseq.bert.space import BertArch, load_any_arch

    arch = load_any_arch(args.arch, args.space)
    vocab = args.vocab_size or (_vocab_size_of(args.data) if args.data else arch.space.vocab_size)
    if isinstance(arch, BertArch):
        params = arch.num_params(vocab)
        if args.json:
            print(json.dumps({"params": params, "features": arch.normalized_features(), "vocab_size": vocab,
                              "space": arch.space.name, "shape": list(arch.hidden)}))
            return
        print(f"space: {arch.space.name} ({arch.space.kind})\narchitecture: {arch.describe()}")
        print(f"parameters: {params:,} (vocabulary {vocab}, tied output projection)")
        return
    params = arch.num_params(vocab, vocab, share_all_embeddings=True)
    features = arch.normalized_features()
    if args.json:
        print(json.dumps({"params": params, "features": features, "vocab_size": vocab, "space": arch.space.name}))
        return
    from mos_fairseq.arch import FEATURE_NAMES

    print(f"space: {arch.space.name}\narchitecture: {arch.describe()}")
    print(f"parameters: {params:,} (vocabulary {vocab}, shared embeddings)")
    print("features (normalised): " + ", ".join(f"{n}={v:.4f}" for n, v in zip(FEATURE_NAMES, features)))


def _checkpoint_info(path: str, as_json: bool) -> None:
    from mos_fairseq.checkpoints import describe_checkpoint

    info = describe_checkpoint(path)
    if as_json:
        print(json.dumps(info, sort_keys=True, default=str))
        return
    lines = [f"checkpoint: {info['path']}", f"kind: {info['kind']} (model '{info['model']}')"]
    if "space" in info:
        lines.append(f"space: {info['space']}")
    if "mos" in info:
        lines.append(f"MoS: {info['mos']}")
    if info.get("arch"):
        lines.append(f"architecture: {_arch_of_record(info['arch']).describe()}")
    if info.get("exported_from"):
        lines.append(f"exported from: {info['exported_from']} (update {info['exported_at_update']})")
    lines.append(f"training updates: {info['updates']}")
    lines.append(f"parameters: {info['params']:,}")
    if info.get("best_valid_losses"):
        losses = ", ".join(f"{k} {v:.3f}" for k, v in sorted(info["best_valid_losses"].items()))
        lines.append(f"best validation loss (base 2) per subnet: {losses}")
    elif info.get("best_loss") is not None:
        lines.append(f"best validation loss: {info['best_loss']}")
    if info.get("val_loss") is not None:
        lines.append(f"last validation loss: {info['val_loss']}")
    lines.append(f"task: {info['task']} (data {info['data']})")
    print("\n".join(lines))


def _arch_of_record(arch: dict):
    from mos_fairseq.bert.space import load_any_space

    space, arch_type = load_any_space(arch.get("space", "hat_wmt14_en_de"))
    return arch_type.from_dict(arch, space)


def cmd_export(args: argparse.Namespace) -> None:
    from mos_fairseq.checkpoints import BERT_SUPERNET_MODEL, model_type, read_checkpoint
    from mos_fairseq.export import export_subnet, export_summary

    if model_type(read_checkpoint(args.checkpoint)) == BERT_SUPERNET_MODEL:
        from mos_fairseq.bert.export import export_bert_subnet

        result = export_bert_subnet(args.checkpoint, args.arch, args.out, data=args.data, overwrite=args.overwrite,
                                    force_static=args.static)
    else:
        result = export_subnet(args.checkpoint, args.arch, args.out, data=args.data, overwrite=args.overwrite,
                               force_static=args.static)
    print(export_summary(result))


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
    from mos_fairseq.latency.protocol import Protocol

    from mos_fairseq.bert.space import load_any_space
    from mos_fairseq.latency.measure import is_bert

    if args.checkpoint:
        return _measure_checkpoint_latency(args)
    if not args.space or args.n_archs is None:
        raise UserError("give --space and --n-archs (sample and measure a space), or --checkpoint CKPT [CKPT ...]")
    space, _ = load_any_space(args.space)
    bert = is_bert(space)
    # a masked-LM task adds <mask> to the data's dictionary
    vocab = args.vocab_size or (_vocab_size_of(args.data) + bert if args.data else space.vocab_size)
    # BERT: one encoder pass over --seq-len tokens (no decoder: target length and beam are 1)
    lengths = dict(src_len=args.seq_len, tgt_len=1, beam=1) if bert else dict(src_len=args.src_len,
                                                                              tgt_len=args.tgt_len, beam=args.beam)
    protocol = Protocol(device=args.device, threads=args.threads, **lengths, batch_size=args.batch_size,
                        repeats=args.repeats, warmup=args.warmup, trim=args.trim, vocab_size=vocab)
    try:
        measured = measure_space(space, protocol, args.n_archs, args.seed, args.out, progress=not args.no_progress,
                                 remeasure=_id_list(args.remeasure) if args.remeasure else ())
    except KeyboardInterrupt:
        print(f"interrupted; the rows in {args.out} are complete: re-run the same command to continue",
              file=sys.stderr)
        raise SystemExit(130) from None
    print(f"measured {measured} architecture(s) now; {args.out} holds {args.n_archs} (sidecar "
          f"{Path(args.out).with_suffix('.json').name})")


def _measure_checkpoint_latency(args: argparse.Namespace) -> None:
    from mos_fairseq.latency.checkpoint_latency import measure_checkpoints
    from mos_fairseq.latency.protocol import Protocol

    if args.space or args.n_archs is not None:
        raise UserError("--checkpoint measures trained models; it takes no --space or --n-archs")
    protocol = Protocol(device=args.device, threads=args.threads, src_len=args.src_len, tgt_len=args.tgt_len,
                        beam=args.beam, batch_size=args.batch_size, repeats=args.repeats, warmup=args.warmup,
                        trim=args.trim, vocab_size=1)  # the vocabulary is each model's own
    data = measure_checkpoints(args.checkpoint, protocol, args.out)
    for path in args.checkpoint:
        entry = data["models"][str(Path(path).resolve())]
        print(f"{path}: {entry['latency_ms']:.2f} ms (encoder {entry['encoder_ms']:.2f} + decoder "
              f"{entry['decoder_ms']:.2f}), {entry['params']:,} parameters")
    print(f"wrote {args.out} ({data['device']['cpu'] if args.device == 'cpu' else data['device'].get('gpu')}, "
          f"{data['device']['torch_threads']} thread(s))")


def cmd_train_estimator(args: argparse.Namespace) -> None:
    import dataclasses

    from mos_fairseq.latency.dataset import read_latency_csv
    from mos_fairseq.latency.estimator import HAT_RECIPE, OUR_RECIPE, candidate_recipes
    from mos_fairseq.latency.evaluation import evaluate, format_report, scatter_plot, write_report

    from mos_fairseq.bert.space import any_space_from_dict, load_any_space

    space = load_any_space(args.space)[0] if args.space else None
    sidecar = Path(args.data).with_suffix(".json")
    if space is None and args.format != "hat" and sidecar.is_file():
        try:
            space = any_space_from_dict(json.loads(sidecar.read_text())["space"], source=str(sidecar))
        except (KeyError, json.JSONDecodeError):
            raise DataError(f"{sidecar}: unreadable sidecar (no 'space')") from None
    qkv = getattr(space, "qkv_dim", 512)
    vocab = args.vocab_size or (space.vocab_size if space else 32768)
    data = read_latency_csv(args.data, args.format, qkv_dim=qkv, vocab_size=vocab)
    if space is not None and data.feature_names != tuple(space.latency_feature_names):
        raise DataError(f"{args.data}: feature columns {list(data.feature_names)} are not those of space "
                        f"'{space.name}' ({list(space.latency_feature_names)})")
    mlp = dataclasses.replace(OUR_RECIPE, hidden=args.hidden, layers=args.layers, steps=args.steps, lr=args.lr)
    pool = candidate_recipes(mlp, hat=not args.no_hat_recipe)
    if args.recipe != "auto" and args.recipe not in {r.name for r in pool}:
        raise UserError(f"--recipe {args.recipe} with --no-hat-recipe: nothing to fit")
    recipe = None if args.recipe == "auto" else next(r for r in pool if r.name == args.recipe)
    norm = space.latency_feature_norm if space else None
    kwargs = {"feature_norm": norm} if norm else {}
    ev = evaluate(data, recipe, args.holdout, args.seed, space=space.to_dict() if space else None,
                  hat_recipe=None if args.no_hat_recipe else HAT_RECIPE, candidates=pool, folds=args.cv_folds, **kwargs)
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

    from mos_fairseq.bert.space import any_space_from_dict, load_any_space
    from mos_fairseq.latency.measure import arch_type_of

    estimator = LatencyEstimator.load(args.estimator)
    space = any_space_from_dict(estimator.space) if estimator.space and not args.space else (
        load_any_space(args.space)[0] if args.space else None)
    for path in args.arch:
        arch = arch_type_of(space).load(path, space) if space is not None else Architecture.load(path)
        ms = estimator.predict_arch(arch)
        print(json.dumps({"arch": path, "latency_ms": round(ms, 3)}) if args.json else f"{path}: {ms:.2f} ms")


def cmd_search(args: argparse.Namespace) -> None:
    from mos_fairseq.search.constraints import parse_constraints
    from mos_fairseq.search.evolution import EvolutionConfig
    from mos_fairseq.search.runner import SearchInputs, run_search

    constraints = parse_constraints(args.latency_constraint, args.param_constraint)
    config = EvolutionConfig(args.iterations, args.population, args.parents, args.mutation, args.mutation_prob,
                             args.crossover, args.seed)
    summary = run_search(SearchInputs(
        args.checkpoint, args.data, constraints, config, args.out, args.space, args.estimator, args.valid_subset,
        args.valid_max_sentences, args.resume, args.verify_latency, progress=not args.no_progress,
        device=args.device, predictor=args.predictor))
    for entry in summary:
        lat = entry["predicted_latency_ms"]
        line = (f"{entry['kind']} <= {entry['constraint']:g}: {entry['arch']} loss {entry['valid_loss']:.4f}, "
                f"{entry['params']:,} params" + (f", {lat:.2f} ms predicted" if lat is not None else ""))
        if "measured_latency_ms" in entry:
            line += f", {entry['measured_latency_ms']:.2f} ms measured"
            if entry.get("within_constraint") is False:
                line += " OVER THE CONSTRAINT"
        print(line)
        if entry.get("verify_note"):
            print(f"  verify-latency: {entry['verify_note']}")
    print(f"outputs in {args.out}: summary.json, candidates.csv, pareto.csv, pareto.png, best_*.yml")


def cmd_train_predictor(args: argparse.Namespace) -> None:
    from mos_fairseq.checkpoints import load_supernet
    from mos_fairseq.search.fitness import ValidationBatches
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
    info = {"space": supernet.space.name, "checkpoint": str(Path(args.checkpoint).resolve()), "n": len(archs),
            "valid_subset": args.valid_subset, "valid_max_sentences": args.valid_max_sentences, "holdout": report}
    LossPredictor.fit(x, losses, args.kind, args.seed, info).save(args.out)
    if args.report:
        from mos_fairseq.arch import write_text_atomic

        write_text_atomic(Path(args.report), json.dumps(report, indent=2) + "\n")
    print(f"{len(archs)} subnets scored (loss {losses.min():.3f}-{losses.max():.3f} bits); held-out "
          f"{report['n_test']}: " + "; ".join(f"{k} RMSE {v['rmse']:.4f} R2 {v['r2']:.3f} tau {v['kendall_tau']:.3f}"
                                              for k, v in report["models"].items()))
    print(f"wrote {args.kind} predictor (trained on all {len(archs)}) to {args.out}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from mos_fairseq.search.runner import evaluate_subnet

    res = evaluate_subnet(args.checkpoint, args.data, args.arch, args.valid_subset, args.valid_max_sentences,
                          bleu=not args.no_bleu, beam=args.beam, lenpen=args.lenpen, device=args.device)
    if args.json:
        print(json.dumps(res))
        return
    line = f"{args.arch}: valid loss {res['valid_loss']:.4f} bits/token (ppl {res['valid_ppl']:.2f}) on {res['sentences']} sentences"
    if "bleu" in res:
        line += f", BLEU {res['bleu']:.2f} (beam {args.beam})"
    print(line + f", {res['params']:,} params")


def cmd_bleu(args: argparse.Namespace) -> None:
    from mos_fairseq.arch import write_text_atomic
    from mos_fairseq.bleu import generate, parse_generate_output, score, target_lang_of

    if args.hyps:
        if not args.refs or args.path:
            raise UserError("give --hyps and --refs (score files), or --path and --data (translate, then score)")
        hyps = _read_lines(args.hyps)
        refs = _read_lines(args.refs)
        lang = args.target_lang or "de"
    else:
        if not (args.path and args.data):
            raise UserError("give --path CHECKPOINT and --data BIN_DIR, or --hyps FILE --refs FILE")
        raw_refs = _read_lines(args.refs) if args.refs else None
        if raw_refs is not None:  # refuse before translating, not after
            n = _subset_size(args.data, args.subset)
            if n is not None and n != len(raw_refs):
                raise DataError(f"--refs '{args.refs}' has {len(raw_refs)} lines but subset '{args.subset}' "
                                f"has {n} sentences")
        hyps, refs = parse_generate_output(generate(args.path, args.data, args.subset, args.batch_size,
                                                    output=args.output))
        if raw_refs is not None:  # score against the raw text, not the references read back from the binaries
            if len(raw_refs) != len(refs):
                raise DataError(f"--refs '{args.refs}' has {len(raw_refs)} lines but subset '{args.subset}' "
                                f"has {len(refs)} sentences")
            refs = raw_refs
        lang = args.target_lang or target_lang_of(args.path)
        if args.save_hyps:
            write_text_atomic(Path(args.save_hyps), "".join(h + "\n" for h in hyps))
    result = score(hyps, refs, lang)
    if args.json:
        print(json.dumps({"bleu": result.sacrebleu, "signature": result.signature,
                          "tokenized_bleu": result.tokenized_bleu, "sentences": result.sentences}))
    else:
        print(result.describe())


def _subset_size(data: str, subset: str) -> int | None:
    """Sentences of a binarised subset (``SUBSET.SRC-TGT.LANG.idx``), or None if there is no such file."""
    from fairseq.data import data_utils

    found = sorted(Path(data).glob(f"{subset}.*-*.*.idx"))
    if not found:
        return None
    dataset = data_utils.load_indexed_dataset(str(found[0])[: -len(".idx")], None)
    return len(dataset) if dataset is not None else None


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError as exc:
        raise DataError(f"cannot read '{path}': {exc.strerror}") from None


def cmd_average(args: argparse.Namespace) -> None:
    from mos_fairseq.average import average_checkpoints, last_epoch_checkpoints

    if bool(args.inputs) == bool(args.dir):
        raise UserError("give --inputs CKPT [CKPT ...] or --dir DIR --last N")
    paths = args.inputs or last_epoch_checkpoints(args.dir, args.last)
    summary = average_checkpoints(paths, args.out)
    names = ", ".join(Path(p).name for p in summary["averaged"])
    print(f"wrote {args.out}: the average of {len(summary['averaged'])} checkpoints ({names})")


def cmd_retrain(args: argparse.Namespace) -> None:
    from mos_fairseq.retrain import retrain, retrain_command

    extra = list(args.fairseq_args or [])
    if extra[:1] == ["--"]:
        extra = extra[1:]
    if args.dry_run:
        print(" ".join(retrain_command(args.export_dir, args.data, args.save_dir, args.from_scratch, args.preset, extra,
                                       args.arch, args.space)))
        return
    code = retrain(args.export_dir, args.data, args.save_dir, args.from_scratch, args.preset, extra, args.arch, args.space)
    if code != 0:
        raise UserError(f"fairseq-train exited with code {code} (its log is above)")


def cmd_gap(args: argparse.Namespace) -> None:
    from mos_fairseq.gap import gap_table, run_gap

    result = run_gap(args.supernet, args.archs, args.standalone, args.data, args.out, args.bleu_subset, args.loss_subset,
                     args.max_sentences)
    print(gap_table(result))
    print(f"details: {args.out}/gap.json, plot: {args.out}/gap.png")


def cmd_make_synthetic(args: argparse.Namespace) -> None:
    from mos_fairseq.data.synthetic import write_corpus

    counts = write_corpus(args.out, args.train, args.valid, args.test, seed=args.seed)
    print(f"wrote synthetic en-de corpus to {args.out}: {counts}")


def _add_prepare_args(p: argparse.ArgumentParser, train_help: str, several_tests: bool = False) -> None:
    p.add_argument("--train", required=True, help=train_help)
    p.add_argument("--valid", required=True)
    if several_tests:
        p.add_argument("--test", nargs="+", help="test set(s); the second and later become subsets test1, test2, ...")
    else:
        p.add_argument("--test")
    p.add_argument("--vocab-size", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")


def cmd_prepare_mlm(args: argparse.Namespace) -> None:
    from mos_fairseq.data.prepare import prepare_mlm

    out = prepare_mlm(args.train, args.valid, args.test, args.vocab_size, args.out, workers=args.workers,
                      overwrite=args.overwrite)
    print(f"wrote masked-LM binaries, dict.txt ({_vocab_size_of(str(out))} types) and spm.model to {out}")


def cmd_shape(args: argparse.Namespace) -> None:
    from mos_fairseq.bert.shape import cigar_shape, parse_count
    from mos_fairseq.bert.space import BertSpace, is_bert_space_file

    if not is_bert_space_file(args.space):
        raise UserError(f"--space '{args.space}' is not a BERT space")
    space = BertSpace.load(args.space)
    target = parse_count(args.params)
    vocab = args.vocab_size or (_vocab_size_of(args.data) if args.data else space.vocab_size)
    arch = cigar_shape(space, target, vocab, args.layers)
    params = arch.num_params(vocab)
    if args.out:
        arch.save(args.out)
    if args.json:
        print(json.dumps({"params": params, "shape": list(arch.hidden), "target": target,
                          "relative_error": (params - target) / target, "space": space.name, "vocab_size": vocab}))
        return
    print(f"cigar shape for {target:,} parameters in '{space.name}': {list(arch.hidden)}")
    print(f"parameters: {params:,} ({(params - target) / target:+.2%}; vocabulary {vocab})")


def cmd_prepare_glue(args: argparse.Namespace) -> None:
    import shlex

    from mos_fairseq.data.prepare_glue import prepare_glue

    out, command = prepare_glue(args.train, args.dev, args.export_dir, args.out, args.task, args.header,
                                args.sentence_col, args.label_col, args.overwrite)
    print(f"wrote sentence_prediction binaries to {out}; fine-tune with {out}/finetune.sh [extra options]:")
    print(shlex.join(command))


def cmd_prepare_data(args: argparse.Namespace) -> None:
    from mos_fairseq.data.prepare import prepare_parallel

    out = prepare_parallel(
        args.src, args.tgt, args.train, args.valid, args.test, args.vocab_size, args.out,
        workers=args.workers, overwrite=args.overwrite,
    )
    print(f"wrote fairseq binaries, joined dictionary ({_vocab_size_of(str(out))} types) and spm.model to {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mos-nas", description="hardware-aware NAS of Transformers on fairseq")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample", help="write random (or largest/smallest) architectures of a space as YAML")
    p.add_argument("--space", required=True, help="space YAML or built-in name")
    p.add_argument("--n", type=int, default=0, help="number of random architectures")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--largest", action="store_true", help="also write the largest subnet")
    p.add_argument("--smallest", action="store_true", help="also write the smallest subnet")
    p.add_argument("--hat-format", action="store_true", help="write HAT's SubTransformer keys")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("info", help="an architecture's parameters and features, or what a checkpoint is")
    p.add_argument("--arch", help="architecture YAML (ours or HAT's keys)")
    p.add_argument("--checkpoint", help="a checkpoint: supernet or exported subnet, MoS, space, updates, losses")
    p.add_argument("--space", help="space (default: the one the file names)")
    p.add_argument("--vocab-size", type=int, help="vocabulary size for the embedding count")
    p.add_argument("--data", help="fairseq data directory whose dictionary sets the vocabulary size")
    p.add_argument("--json", action="store_true", help="print JSON (keys params and features for --arch)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("export", help="collapse one subnet of a supernet checkpoint into a plain fairseq checkpoint")
    p.add_argument("--checkpoint", required=True, help="supernet checkpoint (.pt)")
    p.add_argument("--arch", required=True, help="architecture YAML inside the checkpoint's space")
    p.add_argument("--out", required=True, help="output directory (checkpoint.pt, dictionaries, spm.model, arch.yml)")
    p.add_argument("--data", help="data directory with the dictionaries (default: the one the checkpoint names)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    p.add_argument("--static", action="store_true", help="write mos_static_transformer even if stock transformer fits")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("measure-latency", help="measure sampled subnets (as exported static models) on this device")
    p.add_argument("--space", help="space YAML or built-in name")
    p.add_argument("--checkpoint", nargs="+", help="instead of --space: time these trained translation checkpoints "
                   "(stock transformer, export, retrained) with the same protocol; --out is then a JSON file")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--n-archs", type=int, help="architectures in the finished file (with --space)")
    p.add_argument("--repeats", type=int, default=300, help="timed runs per architecture (HAT: 300)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs before timing")
    p.add_argument("--trim", type=float, default=0.1, help="fraction dropped at each end before averaging")
    p.add_argument("--src-len", type=int, default=30)
    p.add_argument("--tgt-len", type=int, default=30)
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=128, help="BERT spaces: tokens per sequence (instead of "
                   "--src-len/--tgt-len/--beam)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--vocab-size", type=int, help="vocabulary size (default: the space's, or --data's)")
    p.add_argument("--data", help="fairseq data directory whose dictionary sets the vocabulary size")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True, help="CSV to write or continue, e.g. latency_data/NAME.csv")
    p.add_argument("--remeasure", help="row ids to measure again and replace, e.g. 47-54 (rows a disturbance spoiled)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_measure_latency)

    p = sub.add_parser("train-estimator", help="fit the MLP latency estimator; report it against baselines")
    p.add_argument("--data", required=True, help="latency CSV (ours, or HAT's with --format hat)")
    p.add_argument("--format", choices=("auto", "ours", "hat"), default="auto")
    p.add_argument("--space", help="space of the data (default: the CSV's sidecar; HAT files: none)")
    p.add_argument("--vocab-size", type=int, help="vocabulary for HAT files' parameter counts (default 32768)")
    p.add_argument("--out", required=True, help="estimator file (.safetensors)")
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of rows held out for the report")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--report", help="write the held-out scores as JSON here")
    p.add_argument("--plot", help="scatter plot PNG (default: next to --out)")
    p.add_argument("--no-hat-recipe", action="store_true", help="skip the HAT-recipe comparison")
    p.add_argument("--recipe", choices=("auto", "mlp", "hat_recipe", "linear_features", "gbt", "ensemble"),
                   default="auto", help="auto (default): the recipe with the lowest k-fold CV RMSE on the training rows")
    p.add_argument("--cv-folds", type=int, default=5, help="folds of the recipe choice (default 5)")
    p.set_defaults(func=cmd_train_estimator)

    p = sub.add_parser("predict-latency", help="predicted latency (ms) of architectures")
    p.add_argument("--estimator", required=True)
    p.add_argument("--arch", required=True, nargs="+", help="architecture YAML file(s)")
    p.add_argument("--space", help="space (default: the estimator's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict_latency)

    p = sub.add_parser("search", help="evolutionary search under latency/parameter constraints (one run, all constraints)")
    p.add_argument("--checkpoint", required=True, help="supernet checkpoint")
    p.add_argument("--data", help="data directory (default: the checkpoint's)")
    p.add_argument("--space", help="search a narrower space than the supernet's")
    p.add_argument("--estimator", help="latency estimator (.safetensors) for latency constraints")
    p.add_argument("--latency-constraint", nargs="+", metavar="MS", help="e.g. 100 150 200")
    p.add_argument("--param-constraint", nargs="+", metavar="N", help="e.g. 30M 45000000")
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--population", type=int, default=125)
    p.add_argument("--parents", type=int, default=25)
    p.add_argument("--mutation", type=int, default=50)
    p.add_argument("--mutation-prob", type=float, default=0.3)
    p.add_argument("--crossover", type=int, default=50)
    p.add_argument("--valid-subset", default="valid")
    p.add_argument("--valid-max-sentences", type=int, help="first N validation sentences (default: all)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true", help="continue the search in --out")
    p.add_argument("--verify-latency", action="store_true", help="measure the picks on this device; a pick over its "
                   "latency constraint is flagged and the next-best admitted candidates are measured (at most 5 per "
                   "constraint) until one fits")
    p.add_argument("--predictor", help="rank candidates with a loss predictor (mos-nas train-predictor) instead of "
                                       "scoring each inside the supernet; the picks are scored for real")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where candidates are scored")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("train-predictor", help="loss/perplexity predictor from sampled subnets (SuperShaper)")
    p.add_argument("--checkpoint", required=True, help="supernet checkpoint")
    p.add_argument("--data", help="data directory (default: the checkpoint's)")
    p.add_argument("--n", type=int, default=200, help="subnets to score (largest and smallest included)")
    p.add_argument("--kind", choices=("gbt", "mlp"), default="gbt", help="gradient-boosted trees or an MLP")
    p.add_argument("--valid-subset", default="valid")
    p.add_argument("--valid-max-sentences", type=int)
    p.add_argument("--holdout", type=float, default=0.2, help="fraction held out for the accuracy report")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--out", required=True, help="predictor file (JSON)")
    p.add_argument("--report", help="write the held-out scores as JSON here")
    p.set_defaults(func=cmd_train_predictor)

    p = sub.add_parser("evaluate", help="validation loss and BLEU of one subnet inside a supernet")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data")
    p.add_argument("--arch", required=True)
    p.add_argument("--valid-subset", default="valid")
    p.add_argument("--valid-max-sentences", type=int)
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--lenpen", type=float, default=0.6)
    p.add_argument("--no-bleu", action="store_true")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bleu", help="sacreBLEU (and HAT-comparable tokenised BLEU) of a checkpoint or of files")
    p.add_argument("--path", help="checkpoint to translate with fairseq-generate (beam 4, lenpen 0.6)")
    p.add_argument("--data", help="fairseq data directory")
    p.add_argument("--subset", default="test")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--output", help="keep fairseq-generate's output here")
    p.add_argument("--hyps", help="score this file of detokenised hypotheses (one per line) ...")
    p.add_argument("--refs", help="... against this file of references (with --path: score against this raw "
                   "reference file, one line per sentence of the subset, instead of the binarised references)")
    p.add_argument("--save-hyps", help="with --path: write the detokenised hypotheses here, one per source line")
    p.add_argument("--target-lang", help="target language (compound splitting for 'de'; default: the checkpoint's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bleu)

    p = sub.add_parser("retrain", help="train an exported subnet with fairseq-train (inherited weights or from scratch)")
    p.add_argument("--export-dir", help="a directory written by mos-nas export")
    p.add_argument("--arch", help="instead of --export-dir: an architecture YAML, trained from scratch")
    p.add_argument("--space", help="the space of --arch (default: the one the file names)")
    p.add_argument("--data", required=True, help="fairseq data directory (train/valid)")
    p.add_argument("--save-dir", required=True)
    p.add_argument("--from-scratch", action="store_true", help="fresh weights (standalone baseline)")
    p.add_argument("--preset", default="cpu_small", help="configs/retrain/NAME.yml or a YAML file (hat_wmt: HAT's)")
    p.add_argument("--dry-run", action="store_true", help="print the fairseq-train command only")
    p.add_argument("fairseq_args", nargs=argparse.REMAINDER, help="-- then extra fairseq-train options")
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("average", help="average the parameters of checkpoints (fairseq's average_checkpoints.py)")
    p.add_argument("--inputs", nargs="+", help="checkpoints to average")
    p.add_argument("--dir", help="instead of --inputs: a save directory whose last --last epoch checkpoints to average")
    p.add_argument("--last", type=int, default=5, help="with --dir: how many epoch checkpoints (default 5)")
    p.add_argument("--out", required=True, help="averaged checkpoint to write")
    p.set_defaults(func=cmd_average)

    p = sub.add_parser("gap", help="supernet vs standalone: MAE and Kendall tau of BLEU and loss (MoS Table 4)")
    p.add_argument("--supernet", nargs="+", required=True, help="supernet checkpoint(s)")
    p.add_argument("--archs", required=True, help="directory of architecture YAMLs (NAME.yml)")
    p.add_argument("--standalone", required=True, help="directory with NAME/checkpoint_best.pt per architecture")
    p.add_argument("--data", required=True)
    p.add_argument("--bleu-subset", default="test")
    p.add_argument("--loss-subset", default="valid")
    p.add_argument("--max-sentences", type=int, default=None,
                   help="only the first N sentences of each subset (default: all)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_gap)

    p = sub.add_parser("make-synthetic", help="write the built-in synthetic en-de corpus")
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=20000)
    p.add_argument("--valid", type=int, default=400)
    p.add_argument("--test", type=int, default=400)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_make_synthetic)

    p = sub.add_parser("prepare-data", help="joint sentencepiece + fairseq binaries from raw parallel text")
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    _add_prepare_args(p, "prefix of the raw training files (PREFIX.SRC, PREFIX.TGT)", several_tests=True)
    p.set_defaults(func=cmd_prepare_data)

    p = sub.add_parser("prepare-mlm", help="sentencepiece + fairseq binaries for masked-LM pretraining (BERT)")
    _add_prepare_args(p, "raw training text (one sentence/paragraph per line)")
    p.set_defaults(func=cmd_prepare_mlm)

    p = sub.add_parser("prepare-glue", help="GLUE-format TSV -> sentence_prediction binaries for a BERT export")
    p.add_argument("--train", required=True, help="training TSV")
    p.add_argument("--dev", required=True, help="development TSV")
    p.add_argument("--export-dir", required=True, help="a roberta export (mos-nas export of a homogeneous subnet)")
    p.add_argument("--out", required=True)
    p.add_argument("--task", choices=("SST-2", "CoLA"), help="column layout of a GLUE task")
    p.add_argument("--header", action="store_true", help="without --task: the TSV has a header row")
    p.add_argument("--sentence-col", type=int, default=0, help="without --task: sentence column (0-based)")
    p.add_argument("--label-col", type=int, default=1, help="without --task: label column (0-based)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_prepare_glue)

    p = sub.add_parser("shape", help="SuperShaper's heuristic (cigar) shape for a parameter budget")
    p.add_argument("--space", required=True, help="a bottleneck BERT space (e.g. supershaper)")
    p.add_argument("--params", required=True, help="target parameter count, e.g. 60M")
    p.add_argument("--layers", type=int, help="depth (default: the space's largest)")
    p.add_argument("--vocab-size", type=int, help="vocabulary for the count (default: the space's)")
    p.add_argument("--data", help="fairseq data directory whose dictionary sets the vocabulary")
    p.add_argument("--out", help="write the shape as an architecture YAML here")
    p.add_argument("--json", action="store_true", help="print {params, shape, ...} as JSON")
    p.set_defaults(func=cmd_shape)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.getLogger("fairseq").setLevel(logging.WARNING)  # keep fairseq's INFO lines out of our output
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except UserError as exc:
        print(f"mos-nas {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
