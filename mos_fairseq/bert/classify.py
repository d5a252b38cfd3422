"""``mos-nas predict-glue``: the labels a fine-tuned GLUE classifier gives a TSV of sentences.

The last stage of the BERT pipeline. ``mos-nas prepare-glue`` writes the binaries, ``finetune.sh``
(stock ``fairseq-train --task sentence_prediction`` from a roberta export) and, beside them, the
export's ``spm.model``; this module loads a checkpoint that script wrote, encodes sentences exactly as
``prepare-glue`` encoded the training data (sentencepiece pieces, the ``input0`` dictionary, ``<s>``
first and ``</s>`` last, cut to the model's positions) and returns one label string per sentence.
With gold labels it scores them: accuracy and Matthews correlation (GLUE's metric for CoLA).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mos_fairseq.base.errors import UserError
from mos_fairseq.core.checkpoints import read_checkpoint
from mos_fairseq.core.safe_load import install_safe_globals

HEAD = "sentence_classification_head"  # the head fairseq's sentence_prediction task trains


@dataclass
class Classifier:
    """A fine-tuned sentence classifier with what it needs to read raw sentences."""

    model: Any  # fairseq RobertaModel
    task: Any  # fairseq SentencePredictionTask (its dictionaries)
    pieces: Any  # sentencepiece.SentencePieceProcessor
    max_positions: int


def load_classifier(checkpoint: str | Path, glue_dir: str | Path) -> Classifier:
    """The ``sentence_prediction`` model in ``checkpoint`` with ``glue_dir``'s dictionaries (a
    ``prepare-glue`` output)."""
    import sentencepiece as spm
    from fairseq import checkpoint_utils

    glue = Path(glue_dir)
    for name in ("spm.model", "input0/dict.txt", "label/dict.txt"):
        if not (glue / name).is_file():
            raise UserError(f"--glue '{glue}' has no {name} (give a mos-nas prepare-glue output)")
    state = read_checkpoint(checkpoint)  # a missing or foreign file fails here in one line
    if state["cfg"]["task"]["_name"] != "sentence_prediction":
        raise UserError(f"'{checkpoint}' is a {state['cfg']['task']['_name']} checkpoint, not a fine-tuned classifier")
    install_safe_globals()
    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(checkpoint)], arg_overrides={"data": str(glue)}
    )
    model = models[0].eval()
    pieces = spm.SentencePieceProcessor(model_file=str(glue / "spm.model"))
    return Classifier(model, task, pieces, int(model.max_positions()))


def encode(classifier: Classifier, sentence: str) -> torch.Tensor:
    """``<s> pieces </s>`` as ``sentence_prediction`` reads its ``input0`` (init token 0)."""
    dictionary = classifier.task.source_dictionary
    line = " ".join(classifier.pieces.encode(sentence, out_type=str))
    ids = dictionary.encode_line(line, append_eos=True, add_if_not_exist=False).long()
    return torch.cat([torch.tensor([dictionary.bos()]), ids])[: classifier.max_positions]


@torch.no_grad()
def predict(classifier: Classifier, sentences: list[str], batch_size: int = 64) -> list[str]:
    """One label (as written in the training TSV) per sentence."""
    dictionary, labels = classifier.task.source_dictionary, classifier.task.label_dictionary
    out: list[str] = []
    for start in range(0, len(sentences), batch_size):
        rows = [encode(classifier, s) for s in sentences[start : start + batch_size]]
        tokens = torch.full((len(rows), max(len(r) for r in rows)), dictionary.pad(), dtype=torch.long)
        for i, row in enumerate(rows):
            tokens[i, : len(row)] = row
        logits, _ = classifier.model(tokens, features_only=True, classification_head_name=HEAD)
        out += [labels[int(k) + labels.nspecial] for k in logits.argmax(-1)]
    return out


def score(predicted: list[str], gold: list[str]) -> dict[str, float]:
    """Accuracy (%) and Matthews correlation of ``predicted`` against ``gold``."""
    from sklearn.metrics import matthews_corrcoef

    if len(predicted) != len(gold):
        raise UserError(f"{len(predicted)} predictions for {len(gold)} gold labels")
    correct = sum(p == g for p, g in zip(predicted, gold))
    return {"accuracy": 100.0 * correct / len(gold), "mcc": float(matthews_corrcoef(gold, predicted)), "n": len(gold)}
