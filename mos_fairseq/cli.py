"""``mos-nas``: the command line over the library (one sub-command per pipeline step).

User errors (:class:`~mos_fairseq.errors.UserError`) print one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Callable

from mos_fairseq.arch import Architecture
from mos_fairseq.errors import DataError, UserError
from mos_fairseq.space import SearchSpace


def _vocab_size_of(data_dir: str) -> int:
    dicts = sorted(Path(data_dir).glob("dict.*.txt"))
    if not dicts:
        raise DataError(f"no dict.*.txt in data directory '{data_dir}'")
    from fairseq.data import Dictionary

    return len(Dictionary.load(str(dicts[0])))


def cmd_sample(args: argparse.Namespace) -> None:
    space = SearchSpace.load(args.space)
    if args.n < 0:
        raise UserError(f"--n must be >= 0, got {args.n}")
    rng = random.Random(args.seed)
    archs: list[tuple[str, Architecture]] = []
    if args.largest:
        archs.append(("largest", Architecture.largest(space)))
    if args.smallest:
        archs.append(("smallest", Architecture.smallest(space)))
    archs += [(f"arch_{i:04d}", Architecture.random(space, rng)) for i in range(args.n)]
    if not archs:
        raise UserError("nothing to write: give --n N and/or --largest/--smallest")
    out = Path(args.out)
    for name, arch in archs:
        arch.save(out / f"{name}.yml", hat_format=args.hat_format)
    print(f"wrote {len(archs)} architecture(s) of space '{space.name}' to {out}")


def cmd_info(args: argparse.Namespace) -> None:
    space = SearchSpace.load(args.space) if args.space else None
    arch = Architecture.load(args.arch, space)
    vocab = args.vocab_size or (_vocab_size_of(args.data) if args.data else arch.space.vocab_size)
    params = arch.num_params(vocab, vocab, share_all_embeddings=True)
    features = arch.normalized_features()
    if args.json:
        print(json.dumps({"params": params, "features": features, "vocab_size": vocab, "space": arch.space.name}))
        return
    from mos_fairseq.arch import FEATURE_NAMES

    print(f"space: {arch.space.name}\narchitecture: {arch.describe()}")
    print(f"parameters: {params:,} (vocabulary {vocab}, shared embeddings)")
    print("features (normalised): " + ", ".join(f"{n}={v:.4f}" for n, v in zip(FEATURE_NAMES, features)))


def cmd_make_synthetic(args: argparse.Namespace) -> None:
    from mos_fairseq.data.synthetic import write_corpus

    counts = write_corpus(args.out, args.train, args.valid, args.test, seed=args.seed)
    print(f"wrote synthetic en-de corpus to {args.out}: {counts}")


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

    p = sub.add_parser("info", help="parameter count and features of an architecture")
    p.add_argument("--arch", required=True, help="architecture YAML (ours or HAT's keys)")
    p.add_argument("--space", help="space (default: the one the file names)")
    p.add_argument("--vocab-size", type=int, help="vocabulary size for the embedding count")
    p.add_argument("--data", help="fairseq data directory whose dictionary sets the vocabulary size")
    p.add_argument("--json", action="store_true", help="print JSON with keys params and features")
    p.set_defaults(func=cmd_info)

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
    p.add_argument("--train", required=True, help="prefix of the raw training files (PREFIX.SRC, PREFIX.TGT)")
    p.add_argument("--valid", required=True)
    p.add_argument("--test")
    p.add_argument("--vocab-size", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    p.set_defaults(func=cmd_prepare_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except UserError as exc:
        print(f"mos-nas {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
