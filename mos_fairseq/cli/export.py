"""``mos-nas`` commands: export a subnet; average checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path

from mos_fairseq.base.errors import UserError
from mos_fairseq.cli.options import add_data, add_out


def cmd_export(args: argparse.Namespace) -> None:
    from mos_fairseq.core.export import export_summary
    from mos_fairseq.export import export_subnet

    result = export_subnet(
        args.checkpoint, args.arch, args.out, data=args.data, overwrite=args.overwrite, force_static=args.static
    )
    print(export_summary(result))


def cmd_average(args: argparse.Namespace) -> None:
    from mos_fairseq.core.average import average_checkpoints, last_epoch_checkpoints

    if bool(args.inputs) == bool(args.dir):
        raise UserError("give --inputs CKPT [CKPT ...] or --dir DIR --last N")
    paths = args.inputs or last_epoch_checkpoints(args.dir, args.last)
    summary = average_checkpoints(paths, args.out)
    names = ", ".join(Path(p).name for p in summary["averaged"])
    print(f"wrote {args.out}: the average of {len(summary['averaged'])} checkpoints ({names})")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="collapse one subnet of a supernet checkpoint into a plain fairseq checkpoint")
    p.add_argument("--checkpoint", required=True, help="supernet checkpoint (.pt)")
    p.add_argument("--arch", required=True, help="architecture YAML inside the checkpoint's space")
    add_out(p, "output directory (checkpoint.pt, dictionaries, spm.model, arch.yml)")
    add_data(p, "data directory with the dictionaries (default: the one the checkpoint names)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    p.add_argument("--static", action="store_true", help="write mos_static_transformer even if stock transformer fits")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("average", help="average the parameters of checkpoints (fairseq's average_checkpoints.py)")
    p.add_argument("--inputs", nargs="+", help="checkpoints to average")
    p.add_argument("--dir", help="instead of --inputs: a save directory whose last --last epoch checkpoints to average")
    p.add_argument("--last", type=int, default=5, help="with --dir: how many epoch checkpoints (default 5)")
    add_out(p, "averaged checkpoint to write")
    p.set_defaults(func=cmd_average)
