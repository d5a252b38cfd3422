"""``mos-nas`` commands: translation only: BLEU, retraining, the supernet-standalone gap."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mos_fairseq.base.errors import DataError, UserError
from mos_fairseq.cli.options import add_data, add_json, add_out, add_space, config_from_args


def cmd_bleu(args: argparse.Namespace) -> None:
    from mos_fairseq.base.files import write_text_atomic
    from mos_fairseq.translation.bleu import generate, parse_generate_output, score, target_lang_of

    if args.hyps:
        if not args.refs or args.path:
            raise UserError("give --hyps and --refs (score files), or --path and --data (translate, then score)")
        if args.bf16:
            raise UserError("--bf16 translates with --path; --hyps and --refs are scored as they are")
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
                raise DataError(
                    f"--refs '{args.refs}' has {len(raw_refs)} lines but subset '{args.subset}' has {n} sentences"
                )
        hyps, refs = parse_generate_output(
            generate(args.path, args.data, args.subset, args.batch_size, output=args.output, bf16=args.bf16)
        )
        if raw_refs is not None:  # score against the raw text, not the references read back from the binaries
            if len(raw_refs) != len(refs):
                raise DataError(
                    f"--refs '{args.refs}' has {len(raw_refs)} lines but subset '{args.subset}' "
                    f"has {len(refs)} sentences"
                )
            refs = raw_refs
        lang = args.target_lang or target_lang_of(args.path, args.data)
        if args.save_hyps:
            write_text_atomic(Path(args.save_hyps), "".join(h + "\n" for h in hyps))
    result = score(hyps, refs, lang)
    if args.json:
        print(
            json.dumps(
                {
                    "bleu": result.sacrebleu,
                    "signature": result.signature,
                    "tokenized_bleu": result.tokenized_bleu,
                    "sentences": result.sentences,
                }
            )
        )
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


def cmd_retrain(args: argparse.Namespace) -> None:
    from mos_fairseq.translation.retrain import RetrainJob, retrain, retrain_command

    extra = list(args.fairseq_args or [])
    if extra[:1] == ["--"]:
        extra = extra[1:]
    job = config_from_args(RetrainJob, args, extra=tuple(extra))
    if args.dry_run:
        print(" ".join(retrain_command(job)))
        return
    code = retrain(job)
    if code != 0:
        raise UserError(f"fairseq-train exited with code {code} (its log is above)")


def cmd_gap(args: argparse.Namespace) -> None:
    from mos_fairseq.translation.gap import gap_table, run_gap

    result = run_gap(
        args.supernet,
        args.archs,
        args.standalone,
        args.data,
        args.out,
        args.bleu_subset,
        args.loss_subset,
        args.max_sentences,
    )
    print(gap_table(result))
    print(f"details: {args.out}/gap.json, plot: {args.out}/gap.png")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bleu", help="sacreBLEU (and HAT-comparable tokenised BLEU) of a checkpoint or of files")
    p.add_argument("--path", help="checkpoint to translate with fairseq-generate (beam 4, lenpen 0.6)")
    add_data(p, "fairseq data directory")
    p.add_argument("--subset", default="test")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--output", help="keep fairseq-generate's output here")
    p.add_argument("--hyps", help="score this file of detokenised hypotheses (one per line) ...")
    p.add_argument(
        "--refs",
        help="... against this file of references (with --path: score against this raw "
        "reference file, one line per sentence of the subset, instead of the binarised references)",
    )
    p.add_argument("--save-hyps", help="with --path: write the detokenised hypotheses here, one per source line")
    p.add_argument("--target-lang", help="target language (compound splitting for 'de'; default: the checkpoint's)")
    p.add_argument(
        "--bf16", action="store_true", help="translate on CPU with bf16 weights (a CPU with avx512_bf16 or amx_bf16)"
    )
    add_json(p)
    p.set_defaults(func=cmd_bleu)

    p = sub.add_parser(
        "retrain", help="train an exported subnet with fairseq-train (inherited weights or from scratch)"
    )
    p.add_argument("--export-dir", help="a directory written by mos-nas export")
    p.add_argument("--arch", help="instead of --export-dir: an architecture YAML, trained from scratch")
    add_space(p, "the space of --arch (default: the one the file names)")
    add_data(p, "fairseq data directory (train/valid)", required=True)
    p.add_argument("--save-dir", required=True)
    p.add_argument("--from-scratch", action="store_true", help="fresh weights (standalone baseline)")
    p.add_argument("--preset", default="cpu_small", help="configs/retrain/NAME.yml or a YAML file (hat_wmt: HAT's)")
    p.add_argument("--dry-run", action="store_true", help="print the fairseq-train command only")
    p.add_argument("fairseq_args", nargs=argparse.REMAINDER, help="-- then extra fairseq-train options")
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("gap", help="supernet vs standalone: MAE and Kendall tau of BLEU and loss (MoS Table 4)")
    p.add_argument("--supernet", nargs="+", required=True, help="supernet checkpoint(s)")
    p.add_argument("--archs", required=True, help="directory of architecture YAMLs (NAME.yml)")
    p.add_argument("--standalone", required=True, help="directory with NAME/checkpoint_best.pt per architecture")
    add_data(p, required=True)
    p.add_argument("--bleu-subset", default="test")
    p.add_argument("--loss-subset", default="valid")
    p.add_argument(
        "--max-sentences", type=int, default=None, help="only the first N sentences of each subset (default: all)"
    )
    add_out(p)
    p.set_defaults(func=cmd_gap)
