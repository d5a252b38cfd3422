"""A reference point for the BERT study (benchmarks/bert_glue.sh): what a bag-of-n-grams logistic regression
scores on each dev split, so that a fine-tuned Transformer's accuracy can be read against a model that only
counts words. Unigrams and bigrams (binary), scikit-learn's LogisticRegression at its default C = 1 (nothing
tuned on the dev rows), on three splits of one task:

- ``carved``: trained on the training split, scored on the dev split as given;
- ``unseen``: the same model, scored on the dev rows whose sentence lies inside no training line;
- ``clean``: trained on the training rows that lie inside no such sentence, scored on those sentences
  (benchmarks/glue_unseen.py --train-out).

    python benchmarks/glue_bow_baseline.py --task SST-2 --train train.tsv --dev dev.tsv \\
        --unseen SST-2.dev_unseen.tsv --clean-train SST-2.train_clean.tsv --header --out bow_SST-2.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import write_atomic


def read(path: Path, header: bool, sentence_col: int, label_col: int) -> tuple[list[str], list[int]]:
    rows = [line.split("\t") for line in path.read_text().splitlines()[1 if header else 0 :] if line.strip()]
    return [r[sentence_col].strip() for r in rows], [int(r[label_col]) for r in rows]


def score(train: tuple[list[str], list[int]], tests: dict[str, tuple[list[str], list[int]]]) -> dict[str, float]:
    """Accuracy (%) on each test set of one bag-of-n-grams logistic regression fitted to ``train``."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = CountVectorizer(ngram_range=(1, 2), binary=True)
    model = LogisticRegression(C=1.0, max_iter=3000).fit(vectorizer.fit_transform(train[0]), train[1])
    return {name: 100 * model.score(vectorizer.transform(x), y) for name, (x, y) in tests.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", required=True)
    for name in ("train", "dev", "unseen", "clean-train"):
        p.add_argument(f"--{name}", type=Path, required=True)
    p.add_argument("--header", action="store_true", help="the files start with a header row")
    p.add_argument("--sentence-col", type=int, default=0)
    p.add_argument("--label-col", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    cols = (args.header, args.sentence_col, args.label_col)
    try:
        train, dev, unseen, clean = (read(f, *cols) for f in (args.train, args.dev, args.unseen, args.clean_train))
    except (OSError, IndexError, ValueError) as exc:
        print(f"glue_bow_baseline: cannot read the rows ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    carved = score(train, {"carved": dev, "unseen": unseen})
    doc = {
        "task": args.task,
        "model": "binary unigram+bigram counts, LogisticRegression(C=1.0), scikit-learn",
        "accuracy": {**carved, "clean": score(clean, {"clean": unseen})["clean"]},
        "rows": {"train": len(train[0]), "dev": len(dev[0]), "unseen": len(unseen[0]), "clean_train": len(clean[0])},
    }
    write_atomic(args.out, json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["accuracy"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
