"""The dev rows whose sentence does not occur inside any training line, for the BERT study
(benchmarks/bert_glue.sh): GLUE's SST-2 training set holds every phrase of its parsed sentences, so a dev
split carved from it shares most of its phrases with the training rows (89% of a 300-row sample of ours
lie inside a training line), and a model from random weights scores well by memorising them. The rows left
are the held-out sentences on which pretraining can show what it adds.

Those sentences still leak: their own phrases are training rows (GLUE's SST-2 parsed every sentence of its
training set, and our dev split took whole sentences but not their phrases). ``--train-out`` also writes the
training rows that lie inside no held-out sentence: trained on those and scored on the held-out sentences
(the "clean" split), a model has seen no labelled piece of what it is scored on.

    python benchmarks/glue_unseen.py --train train.tsv --dev dev.tsv --sentence-col 0 [--header] --out unseen.tsv \
        [--train-out train_clean.tsv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def read_rows(path: Path, header: bool) -> tuple[str | None, list[str]]:
    lines = path.read_text().splitlines()
    return (lines[0], lines[1:]) if header else (None, lines)


def unseen_rows(train: list[str], dev: list[str], col: int) -> list[str]:
    """Dev rows whose sentence (column ``col``, stripped) is not a substring of any training sentence."""
    corpus = "\n".join(row.split("\t")[col].strip() for row in train)
    return [row for row in dev if row.split("\t")[col].strip() not in corpus]


def train_rows_outside(train: list[str], held_out: list[str], col: int) -> list[str]:
    """Training rows whose sentence (stripped) lies inside no held-out sentence, on word boundaries."""
    corpus = "\n".join(f" {row.split(chr(9))[col].strip()} " for row in held_out)
    return [row for row in train if f" {row.split(chr(9))[col].strip()} " not in corpus]


def write_rows(path: Path, head: str | None, rows: list[str]) -> None:
    tmp = path.with_name(f".{path.name}")
    tmp.write_text("\n".join(([head] if head is not None else []) + rows) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=Path, required=True)
    p.add_argument("--dev", type=Path, required=True)
    p.add_argument("--sentence-col", type=int, default=0)
    p.add_argument("--header", action="store_true", help="both files start with a header row (kept)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train-out", type=Path, help="also the training rows that lie inside no held-out sentence")
    args = p.parse_args(argv)
    try:
        _, train = read_rows(args.train, args.header)
        head, dev = read_rows(args.dev, args.header)
        rows = unseen_rows(train, dev, args.sentence_col)
    except (OSError, IndexError) as exc:
        print(f"glue_unseen: cannot read the rows ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    if not rows:
        print(f"glue_unseen: every dev sentence of {args.dev} lies inside a training line", file=sys.stderr)
        return 1
    if args.train_out is not None:
        train_head, _ = read_rows(args.train, args.header)
        kept = train_rows_outside(train, rows, args.sentence_col)
        write_rows(args.train_out, train_head, kept)
        print(f"wrote {args.train_out}: {len(kept)} of {len(train)} training rows inside no held-out sentence")
    write_rows(args.out, head, rows)
    print(f"wrote {args.out}: {len(rows)} of {len(dev)} dev rows unseen in training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
