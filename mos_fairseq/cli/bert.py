"""``mos-nas`` commands: BERT only: SuperShaper's shape heuristic, predictions of a fine-tuned classifier."""

from __future__ import annotations

import argparse
import json

from mos_fairseq.base.errors import UserError
from mos_fairseq.cli.options import add_data, add_json, add_out, add_space, add_vocab_size, vocab_size_of


def cmd_shape(args: argparse.Namespace) -> None:
    from mos_fairseq.bert.shape import cigar_shape, parse_count
    from mos_fairseq.registry import load_space

    space, family = load_space(args.space)
    if family.name != "bert":  # SuperShaper's heuristic is a BERT command
        raise UserError(f"--space '{args.space}' is not a BERT space")
    target = parse_count(args.params)
    vocab = args.vocab_size or (vocab_size_of(args.data) if args.data else space.vocab_size)
    arch = cigar_shape(space, target, vocab, args.layers)
    params = arch.num_params(vocab)
    if args.out:
        arch.save(args.out)
    if args.json:
        print(
            json.dumps(
                {
                    "params": params,
                    "shape": list(arch.hidden),
                    "target": target,
                    "relative_error": (params - target) / target,
                    "space": space.name,
                    "vocab_size": vocab,
                }
            )
        )
        return
    print(f"cigar shape for {target:,} parameters in '{space.name}': {list(arch.hidden)}")
    print(f"parameters: {params:,} ({(params - target) / target:+.2%}; vocabulary {vocab})")


def cmd_predict_glue(args: argparse.Namespace) -> None:
    from pathlib import Path

    from mos_fairseq.base.files import write_text_atomic
    from mos_fairseq.bert.classify import load_classifier, predict, score
    from mos_fairseq.data.prepare_glue import PRESETS, read_tsv

    header, sentence_col, label_col = PRESETS[args.task] if args.task else (args.header, args.sentence_col, None)
    if args.label_col is not None:
        label_col = args.label_col
    if args.unlabelled:
        label_col = None
    sentences, gold = read_tsv(Path(args.input), header, sentence_col, label_col)
    labels = predict(load_classifier(args.checkpoint, args.glue), sentences)
    if args.out:
        write_text_atomic(Path(args.out), "".join(label + "\n" for label in labels))
    result = {"input": args.input, "sentences": len(labels), **(score(labels, gold) if gold else {})}
    if args.json:
        print(json.dumps(result))
    elif gold:
        print(f"{len(labels)} sentences: accuracy {result['accuracy']:.2f}%, Matthews correlation {result['mcc']:.4f}")
    else:
        print(f"{len(labels)} sentences labelled" + (f" into {args.out}" if args.out else ""))


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("shape", help="SuperShaper's heuristic (cigar) shape for a parameter budget")
    add_space(p, "a bottleneck BERT space (e.g. supershaper)", required=True)
    p.add_argument("--params", required=True, help="target parameter count, e.g. 60M")
    p.add_argument("--layers", type=int, help="depth (default: the space's largest)")
    add_vocab_size(p, "vocabulary for the count (default: the space's)")
    add_data(p, "fairseq data directory whose dictionary sets the vocabulary")
    p.add_argument("--out", help="write the shape as an architecture YAML here")
    add_json(p, "print {params, shape, ...} as JSON")
    p.set_defaults(func=cmd_shape)

    p = sub.add_parser("predict-glue", help="labels of a fine-tuned GLUE classifier for a TSV (and its score)")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by prepare-glue's finetune.sh")
    p.add_argument("--glue", required=True, help="the prepare-glue output it was fine-tuned on")
    p.add_argument("--input", required=True, help="TSV of sentences (with labels: scored)")
    p.add_argument("--task", choices=("SST-2", "CoLA"), help="the GLUE task's labelled column layout")
    p.add_argument("--header", action="store_true", help="without --task: the TSV has a header row")
    p.add_argument("--sentence-col", type=int, default=0, help="without --task: sentence column (0-based)")
    p.add_argument("--label-col", type=int, help="gold label column (0-based) to score against")
    p.add_argument("--unlabelled", action="store_true", help="with --task: the TSV has no labels to score")
    add_out(p, "write one predicted label per sentence here", required=False)
    add_json(p, "print {sentences, accuracy, mcc} as JSON")
    p.set_defaults(func=cmd_predict_glue)
