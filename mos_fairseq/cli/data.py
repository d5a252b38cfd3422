"""``mos-nas`` commands: corpora: synthetic, parallel, masked-LM and GLUE binaries."""

from __future__ import annotations

import argparse

from mos_fairseq.cli.options import add_out, add_seed, vocab_size_of


def cmd_make_synthetic(args: argparse.Namespace) -> None:
    from mos_fairseq.data.synthetic import write_corpus

    counts = write_corpus(args.out, args.train, args.valid, args.test, seed=args.seed)
    print(f"wrote synthetic en-de corpus to {args.out}: {counts}")


def _add_prepare_args(p: argparse.ArgumentParser, train_help: str, monolingual: bool = False) -> None:
    p.add_argument("--train", required=True, nargs="+" if monolingual else None, help=train_help)
    p.add_argument("--valid", required=True)
    if monolingual:
        p.add_argument("--test")
        p.add_argument("--vocab-size", type=int, help="train a sentencepiece vocabulary of this size on the text")
        p.add_argument(
            "--vocabulary-from",
            metavar="BIN",
            help="reuse the spm.model and dict.txt of an earlier prepare-mlm output instead of training them",
        )
    else:
        p.add_argument("--test", nargs="+", help="test set(s); the second and later become subsets test1, test2, ...")
        p.add_argument("--vocab-size", type=int, required=True)
    add_out(p)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")


def cmd_prepare_mlm(args: argparse.Namespace) -> None:
    from mos_fairseq.data.prepare import prepare_mlm

    out = prepare_mlm(
        args.train,
        args.valid,
        args.test,
        args.vocab_size,
        args.out,
        workers=args.workers,
        overwrite=args.overwrite,
        vocabulary_from=args.vocabulary_from,
    )
    print(f"wrote masked-LM binaries, dict.txt ({vocab_size_of(str(out))} types) and spm.model to {out}")


def cmd_prepare_glue(args: argparse.Namespace) -> None:
    import shlex

    from mos_fairseq.data.prepare_glue import prepare_glue

    out, command = prepare_glue(
        args.train,
        args.dev,
        args.export_dir,
        args.out,
        args.task,
        args.header,
        args.sentence_col,
        args.label_col,
        args.overwrite,
    )
    print(f"wrote sentence_prediction binaries to {out}; fine-tune with {out}/finetune.sh [extra options]:")
    print(shlex.join(command))


def cmd_prepare_data(args: argparse.Namespace) -> None:
    from mos_fairseq.data.prepare import prepare_parallel

    out = prepare_parallel(
        args.src,
        args.tgt,
        args.train,
        args.valid,
        args.test,
        args.vocab_size,
        args.out,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    print(f"wrote fairseq binaries, joined dictionary ({vocab_size_of(str(out))} types) and spm.model to {out}")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-synthetic", help="write the built-in synthetic en-de corpus")
    add_out(p)
    p.add_argument("--train", type=int, default=20000)
    p.add_argument("--valid", type=int, default=400)
    p.add_argument("--test", type=int, default=400)
    add_seed(p)
    p.set_defaults(func=cmd_make_synthetic)

    p = sub.add_parser("prepare-data", help="joint sentencepiece + fairseq binaries from raw parallel text")
    p.add_argument("--src", required=True)
    p.add_argument("--tgt", required=True)
    _add_prepare_args(p, "prefix of the raw training files (PREFIX.SRC, PREFIX.TGT)")
    p.set_defaults(func=cmd_prepare_data)

    p = sub.add_parser("prepare-mlm", help="sentencepiece + fairseq binaries for masked-LM pretraining (BERT)")
    _add_prepare_args(
        p, "raw training text, one or more files read in order (one sentence/paragraph per line)", monolingual=True
    )
    p.set_defaults(func=cmd_prepare_mlm)

    p = sub.add_parser("prepare-glue", help="GLUE-format TSV -> sentence_prediction binaries for a BERT export")
    p.add_argument("--train", required=True, help="training TSV")
    p.add_argument("--dev", required=True, help="development TSV")
    p.add_argument("--export-dir", required=True, help="a roberta export (mos-nas export of a homogeneous subnet)")
    add_out(p)
    p.add_argument("--task", choices=("SST-2", "CoLA"), help="column layout of a GLUE task")
    p.add_argument("--header", action="store_true", help="without --task: the TSV has a header row")
    p.add_argument("--sentence-col", type=int, default=0, help="without --task: sentence column (0-based)")
    p.add_argument("--label-col", type=int, default=1, help="without --task: label column (0-based)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_prepare_glue)
