"""``mos-nas`` commands: BERT only: SuperShaper's shape heuristic."""

from __future__ import annotations

import argparse
import json

from mos_fairseq.base.errors import UserError
from mos_fairseq.cli.options import add_data, add_json, add_space, add_vocab_size, vocab_size_of


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
