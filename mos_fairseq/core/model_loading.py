"""A supernet checkpoint as a model, for any family and below them all: the fairseq task the
checkpoint describes (dictionaries from its data directory, or another), the model built and its
weights loaded, one-line errors for every way that fails.

:func:`mos_fairseq.loading.load_supernet` calls it with every registered family's supernet model
names; a family's own tools (``mos-nas gap``) with their family's. fairseq knows our models because
importing the package registers them (:mod:`mos_fairseq.plugin`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mos_fairseq.base.errors import CheckpointError, DataError
from mos_fairseq.core.checkpoints import read_checkpoint, require_supernet


def load_supernet_model(
    path: str | Path, data: str | None, model_names: tuple[str, ...], state: dict[str, Any] | None = None
) -> tuple[Any, Any, dict[str, Any]]:
    """``(supernet, task, state)`` for a checkpoint of one of ``model_names``, in eval mode on CPU.

    ``data`` replaces the training data directory recorded in the checkpoint (its dictionaries
    must match the checkpoint's embeddings).
    """
    from fairseq import tasks
    from omegaconf import open_dict

    state = state if state is not None else read_checkpoint(path)
    require_supernet(state, path, model_names)
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
