"""Supernet checkpoints as models and as descriptions: :func:`load_supernet` (the task and model a
checkpoint describes, in eval mode) and :func:`describe_checkpoint` (``mos-nas info --checkpoint``),
for any registered family: the layer above the registry and below latency, search and export.
Reading a checkpoint itself is :mod:`mos_fairseq.core.checkpoints`, which imports no model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mos_fairseq.core.checkpoints import counted_once, model_type, num_updates, read_checkpoint
from mos_fairseq.core.model_loading import load_supernet_model
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
    """``(supernet, task, state)`` for a supernet checkpoint of any registered family, in eval mode on
    CPU (:func:`mos_fairseq.core.model_loading.load_supernet_model`).

    ``data`` replaces the training data directory recorded in the checkpoint (its dictionaries
    must match the checkpoint's embeddings).
    """
    register()
    return load_supernet_model(path, data, supernet_models(), state)


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
