"""``mos-nas prepare-glue``: GLUE-format TSV -> fairseq ``sentence_prediction`` binaries for an
exported BERT subnet (its ``spm.model`` and ``dict.txt``), plus the fine-tuning command.

Single-sentence tasks: ``SST-2`` (header ``sentence<TAB>label``) and ``CoLA`` (no header; label in
column 2, sentence in column 4), or any TSV with ``--sentence-col``/``--label-col``/``--header``.
Output: ``OUT/input0/{train,valid}.{bin,idx}`` (the export's dictionary), ``OUT/label/...`` and
``OUT/finetune.sh`` (stock ``fairseq-train --task sentence_prediction`` starting from the export;
CoLA selects checkpoints on Matthews correlation, other tasks on accuracy), the export's
``spm.model`` and ``glue.json`` (task, metric), which ``mos-nas predict-glue`` reads.
Written beside ``OUT`` and moved into place at the end.
"""

from __future__ import annotations

import csv
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mos_fairseq.base.errors import DataError, UserError

PRESETS = {"SST-2": (True, 0, 1), "CoLA": (False, 3, 1)}  # header, sentence column, label column
METRICS = {"SST-2": "accuracy", "CoLA": "mcc"}  # GLUE's metric of each task; others: accuracy


def read_tsv(path: Path, header: bool, sentence_col: int, label_col: int | None) -> tuple[list[str], list[str]]:
    """The sentences and labels of a TSV (``label_col`` None: unlabelled, the labels list is empty)."""
    if not path.is_file():
        raise DataError(f"missing GLUE file {path}")
    sentences, labels = [], []
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        for i, row in enumerate(rows, 1):
            if header and i == 1:
                continue
            needed = max(sentence_col, -1 if label_col is None else label_col) + 1
            if len(row) < needed:
                raise DataError(f"{path}: row {i} has {len(row)} columns, needs {needed}")
            sentences.append(row[sentence_col].strip())
            if label_col is not None:
                labels.append(row[label_col].strip())
    if not sentences:
        raise DataError(f"{path}: no examples")
    return sentences, labels


def finetune_command(out: Path, export_dir: Path, num_classes: int, metric: str = "accuracy") -> list[str]:
    record = json.loads((export_dir / "export.json").read_text())
    if record.get("model") != "roberta":
        raise UserError(
            f"'{export_dir}' holds a '{record.get('model')}' export; fine-tuning needs a stock roberta "
            "export (a homogeneous BERT subnet)"
        )
    arch = record["arch"]
    ffn = int(round(arch["hidden"] * float(arch["ffn_ratio"])))
    from mos_fairseq.core.checkpoints import read_checkpoint

    model_cfg = read_checkpoint(export_dir / "checkpoint.pt")["cfg"]["model"]
    # an export stores a dict; fairseq-train's own roberta checkpoints a Namespace (its legacy architectures)
    max_positions = model_cfg["max_positions"] if isinstance(model_cfg, dict) else model_cfg.max_positions
    from mos_fairseq.base.user_dir import plugin_user_dir

    # --user-dir only for the checkpoint allow-list: the model and task are stock fairseq
    return [
        "fairseq-train",
        str(out),
        "--user-dir",
        plugin_user_dir(),
        "--task",
        "sentence_prediction",
        "--arch",
        "roberta",
        "--encoder-layers",
        str(arch["layers"]),
        "--encoder-embed-dim",
        str(arch["hidden"]),
        "--encoder-ffn-embed-dim",
        str(ffn),
        "--encoder-attention-heads",
        str(arch["heads"]),
        "--init-token",
        "0",
        "--separator-token",
        "2",
        "--num-classes",
        str(num_classes),
        "--max-positions",
        str(max_positions),
        "--criterion",
        "sentence_prediction",
        *(["--report-mcc"] if metric == "mcc" else []),
        "--best-checkpoint-metric",
        metric,
        "--maximize-best-checkpoint-metric",
        "--optimizer",
        "adam",
        "--adam-betas",
        "(0.9,0.98)",
        "--lr",
        "2e-5",
        "--lr-scheduler",
        "polynomial_decay",
        "--total-num-update",
        "2000",
        "--warmup-updates",
        "120",
        "--max-update",
        "2000",
        "--batch-size",
        "32",
        "--dropout",
        "0.1",
        "--attention-dropout",
        "0.1",
        "--no-epoch-checkpoints",
    ]


def finetune_script(command: list[str], checkpoint: Path) -> str:
    """``finetune.sh``: the command, starting from ``checkpoint`` through ``--finetune-from-model``
    (fresh optimizer and data order on the first launch; a re-run resumes from the save dir's
    checkpoint_last.pt). ``FINETUNE_FROM=`` (empty) trains the same model from random weights."""
    return (
        "#!/usr/bin/env bash\n"
        "# fine-tune the exported subnet; options after it override (e.g. --cpu --max-update N --save-dir DIR)\n"
        "# FINETUNE_FROM= (empty) starts from random weights instead: the no-pretraining baseline\n"
        f"FROM=${{FINETUNE_FROM-{shlex.quote(str(checkpoint))}}}\n"
        f'exec {shlex.join(command)} ${{FROM:+--finetune-from-model "$FROM"}} "$@"\n'
    )


def prepare_glue(
    train: str,
    dev: str,
    export_dir: str,
    out: str,
    task: str | None = None,
    header: bool = False,
    sentence_col: int = 0,
    label_col: int = 1,
    overwrite: bool = False,
) -> tuple[Path, list[str]]:
    import sentencepiece as spm

    if task is not None:
        if task not in PRESETS:
            raise UserError(f"--task must be one of {list(PRESETS)} (or give the columns), got {task!r}")
        header, sentence_col, label_col = PRESETS[task]
    export, out_path = Path(export_dir).absolute(), Path(out).absolute()
    for name in ("spm.model", "dict.txt", "export.json"):
        if not (export / name).is_file():
            raise UserError(f"--export-dir '{export}' has no {name} (export a BERT subnet with mos-nas export)")
    if out_path.exists() and any(out_path.iterdir()) and not overwrite:
        raise DataError(f"output directory {out_path} is not empty (pass --overwrite to replace it)")
    splits = {
        "train": read_tsv(Path(train), header, sentence_col, label_col),
        "valid": read_tsv(Path(dev), header, sentence_col, label_col),
    }
    num_classes = len(set(splits["train"][1]))
    metric = METRICS.get(task or "", "accuracy")
    command = finetune_command(out_path, export, num_classes, metric)
    sp = spm.SentencePieceProcessor(model_file=str(export / "spm.model"))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.", dir=out_path.parent))
    try:
        for split, (sentences, labels) in splits.items():
            (work / f"{split}.input0").write_text(
                "".join(" ".join(sp.encode(s, out_type=str)) + "\n" for s in sentences)
            )
            (work / f"{split}.label").write_text("".join(label + "\n" for label in labels))
        dest = work / "bin"
        for field, extra in (("input0", ["--srcdict", str(export / "dict.txt")]), ("label", [])):
            cmd = [
                sys.executable,
                "-m",
                "fairseq_cli.preprocess",
                "--only-source",
                "--trainpref",
                str(work / f"train.{field}"),
                "--validpref",
                str(work / f"valid.{field}"),
                "--destdir",
                str(dest / field),
                "--workers",
                "1",
                *extra,
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise DataError(f"fairseq-preprocess ({field}) failed: {tail[0]}")
            (dest / field / "preprocess.log").unlink(missing_ok=True)
        (dest / "finetune.sh").write_text(finetune_script(command, export / "checkpoint.pt"))
        shutil.copy(export / "spm.model", dest / "spm.model")  # what predict-glue encodes sentences with
        record = {"task": task, "metric": metric, "num_classes": num_classes, "export_dir": str(export)}
        (dest / "glue.json").write_text(json.dumps(record, indent=1) + "\n")
        if out_path.exists():
            shutil.rmtree(out_path)
        dest.replace(out_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_path, command
