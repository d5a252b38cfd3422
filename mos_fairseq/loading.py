"""Supernet checkpoints as models and as descriptions: :func:`load_supernet` (the task and model a
checkpoint describes, in eval mode) and :func:`describe_checkpoint` (``mos-nas info --checkpoint``),
for any registered family. Reading a checkpoint itself is :mod:`mos_fairseq.core.checkpoints`,
which imports no model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mos_fairseq.core.checkpoints import counted_once, model_type, num_updates, read_checkpoint, require_supernet
from mos_fairseq.core.errors import CheckpointError, DataError
from mos_fairseq.core.space_files import space_from_config
from mos_fairseq.modules.mos import MoSSpec
from mos_fairseq.plugin import register
from mos_fairseq.registry import family_of_model, supernet_models

_KIND_NAMES = {
    "supertransformer": "supernet",
    "mos_static_transformer": "static subnet",
    "transformer": "static transformer",
    "bert_supernet": "BERT supernet",
    "mos_static_bert": "static BERT subnet",
    "roberta": "static roberta",
}


def load_supernet(path: str | Path, data: str | None = None, state: dict[str, Any] | None = None):
    """``(supernet, task, state)`` for a supernet checkpoint, in eval mode on CPU.

    ``data`` replaces the training data directory recorded in the checkpoint (its dictionaries
    must match the checkpoint's embeddings).
    """
    from fairseq import tasks
    from omegaconf import open_dict

    register()

    state = state if state is not None else read_checkpoint(path)
    require_supernet(state, path, supernet_models())
    cfg = state["cfg"]
    data_dir = data or cfg.task.data
    if not data_dir or not any(Path(d).is_dir() for d in str(data_dir).split(":")):
        raise DataError(
            f"data directory '{data_dir}' (for the dictionaries) not found; pass --data DIR with dict.*.txt"
        )
    with open_dict(cfg.task):
        cfg.task.data = str(data_dir)
    try:
        task = tasks.setup_task(cfg.task)
    except FileNotFoundError as exc:
        raise DataError(f"cannot load the dictionaries from '{data_dir}': {exc}") from None
    model = task.build_model(cfg.model)
    try:
        model.load_state_dict(state["model"], strict=True, model_cfg=cfg.model)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = next((line.strip() for line in first if "size mismatch" in line or "Missing" in line), first[0])
        raise CheckpointError(
            f"'{path}' does not fit the model it describes or the dictionaries in '{data_dir}' ({detail[:200]})"
        ) from None
    return model.eval(), task, state


def describe_checkpoint(path: str | Path) -> dict[str, Any]:
    """What a checkpoint is: kind, model, MoS, space, updates, best validation losses, export record."""
    state = read_checkpoint(path)
    cfg = state["cfg"]
    kind = model_type(state)
    extra = state.get("extra_state") or {}
    info: dict[str, Any] = {
        "path": str(path),
        "model": kind,
        "kind": _KIND_NAMES.get(kind, "other fairseq model"),
        "updates": num_updates(state),
        "task": cfg.task.get("_name") if cfg.get("task") is not None else None,
        "data": cfg.task.get("data") if cfg.get("task") is not None else None,
        "params": sum(v.numel() for k, v in state["model"].items() if torch.is_tensor(v) and counted_once(k, state)),
        "val_loss": extra.get("val_loss"),
        "best_loss": extra.get("best"),
    }
    task_state = state.get("task_state") or {}
    if task_state.get("valid_losses"):
        info["valid_losses"] = dict(task_state["valid_losses"])
        info["best_valid_losses"] = dict(task_state.get("best_valid_losses") or {})
    if kind in supernet_models():
        info["space"] = space_from_config(cfg.model, family_of_model(kind).space_type).name
        info["mos"] = MoSSpec.from_config(cfg.model).describe()
    export = extra.get("mos_fairseq_export")
    if export is not None:
        info["exported_from"] = export.get("source_checkpoint")
        info["exported_at_update"] = export.get("source_updates")
        info["mos"] = f"{export.get('mos')} (collapsed)"
        info["arch"] = export.get("arch")
    return info
