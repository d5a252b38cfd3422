"""``mos-nas``: the command line over the library, one module per command group.

User errors (:class:`~mos_fairseq.base.errors.UserError`) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from mos_fairseq.base.errors import UserError
from mos_fairseq.cli import architectures, bert, data, export, latency, search, translation
from mos_fairseq.cli.options import accept_repeated_lists

GROUPS = (architectures, export, latency, search, translation, data, bert)  # the order of `mos-nas --help`


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mos-nas", description="hardware-aware NAS of Transformers on fairseq")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub)
    accept_repeated_lists(parser)  # --estimator a=x --estimator b=y as well as --estimator a=x b=y
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
