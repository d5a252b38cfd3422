"""``mos-nas average``: checkpoint averaging, the last step of HAT's (and fairseq's) training recipe.

After ``fairseq-train`` (a standalone model, a retrained or fine-tuned subnet) the parameters of
the last N epoch checkpoints are averaged element-wise into one checkpoint (fairseq's
``scripts/average_checkpoints.py``, which the ve-fairseq wheel does not ship). The result keeps the
newest input's configuration, as plain containers (so stock fairseq loads it under torch's
``weights_only`` default without our plugin), drops the optimizer state, and is written
atomically: a failed or interrupted run never leaves a partial file at ``out``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any, Sequence, cast

import torch

from mos_fairseq.base.errors import CheckpointError, UserError
from mos_fairseq.core.checkpoints import num_updates, read_checkpoint, write_checkpoint

EPOCH_CHECKPOINT = re.compile(r"^checkpoint(\d+)\.pt$")


def last_epoch_checkpoints(directory: str | Path, n: int) -> list[Path]:
    """The ``n`` epoch checkpoints (``checkpointE.pt``) of ``directory`` with the highest epochs, oldest first."""
    directory = Path(directory)
    if n < 1:
        raise UserError(f"--last must be >= 1, got {n}")
    if not directory.is_dir():
        raise UserError(f"--dir '{directory}' is not a directory")
    found = sorted((int(m.group(1)), p) for p in directory.iterdir() if (m := EPOCH_CHECKPOINT.match(p.name)))
    if len(found) < n:
        raise UserError(f"'{directory}' holds {len(found)} epoch checkpoint(s) (checkpointN.pt), fewer than --last {n}")
    return [p for _, p in found[-n:]]


def average_checkpoints(paths: Sequence[str | Path], out: str | Path) -> dict:
    """Average the model parameters of ``paths`` into ``out``; returns a summary (inputs, updates)."""
    from omegaconf import OmegaConf

    ckpts = [Path(p) for p in paths]
    if not ckpts:
        raise UserError("no checkpoints to average")
    out = Path(out)
    if any(p.resolve() == out.resolve() for p in ckpts if out.exists()):
        raise UserError(f"--out '{out}' is one of the inputs; choose another file")
    if not out.parent.is_dir():
        raise UserError(f"--out '{out}': directory '{out.parent}' does not exist")
    total: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    updates = []
    state: dict = {}
    for path in ckpts:
        state = read_checkpoint(path)
        model = state["model"]
        if total and set(model) != set(total):
            raise CheckpointError(
                f"'{path}' holds other parameters than '{ckpts[0]}'; average checkpoints of one model"
            )
        for key, value in model.items():
            if key in total and value.shape != total[key].shape:
                raise CheckpointError(
                    f"'{path}': parameter {key} has shape {tuple(value.shape)}, "
                    f"not {tuple(total[key].shape)} as in '{ckpts[0]}'"
                )
            dtypes.setdefault(key, value.dtype)
            if not value.is_floating_point():  # integer buffers (e.g. step counters): the newest one's
                total[key] = value
            elif key in total:
                total[key] += value.double()
            else:
                total[key] = value.double()
        updates.append(num_updates(state))
    averaged = {k: (v / len(ckpts)).to(dtypes[k]) if v.is_floating_point() else v for k, v in total.items()}
    cfg = state["cfg"]
    cfg = cast("dict[str, Any]", OmegaConf.to_container(cfg, resolve=True)) if OmegaConf.is_config(cfg) else dict(cfg)
    model_cfg = cfg.get("model")
    if isinstance(model_cfg, argparse.Namespace):  # legacy models (stock transformer) keep their args here
        cfg["model"] = {**vars(model_cfg), "_name": getattr(model_cfg, "_name", None) or model_cfg.arch}
    summary = {"averaged": [str(p) for p in ckpts], "num_updates": updates}
    write_checkpoint(out, cfg, averaged, {"averaged_checkpoints": summary})
    return summary
