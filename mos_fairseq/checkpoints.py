"""Reading, classifying and writing fairseq checkpoints (supernets, exported subnets, others).

Every stage that consumes a checkpoint (export, search, latency of a trained subnet, ``mos-nas
info``) goes through :func:`read_checkpoint`, which turns a missing, corrupt or foreign file into
a one-line :class:`~mos_fairseq.errors.CheckpointError`. :func:`load_supernet` rebuilds a trained
supernet with its task and dictionaries. :func:`write_checkpoint` writes checkpoints whose
metadata are plain Python containers only, so torch's ``weights_only`` loader (the default since
torch 2.6) reads them in any fairseq, with or without our plugin.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from mos_fairseq.errors import CheckpointError, DataError
from mos_fairseq.fairseq_plugin import register

SUPERNET_MODEL = "supertransformer"
STATIC_MODEL = "mos_static_transformer"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A fairseq checkpoint as fairseq loads it (``cfg`` as an omegaconf config)."""
    register()
    from fairseq import checkpoint_utils

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' not found")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(str(path))
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(
            f"'{path}' is not a readable fairseq checkpoint ({type(exc).__name__}: {reason[:200]})"
        ) from None
    if not isinstance(state, dict) or "model" not in state or state.get("cfg") is None:
        raise CheckpointError(f"'{path}' is not a fairseq checkpoint (no 'model' and 'cfg' entries)")
    return state


def model_type(state: dict[str, Any]) -> str:
    """The registered model name (``supertransformer``, ``transformer``, ...) of a checkpoint."""
    register()
    from fairseq.models import ARCH_MODEL_NAME_REGISTRY, MODEL_REGISTRY

    model_cfg = state["cfg"]["model"]
    name = model_cfg.get("_name") if hasattr(model_cfg, "get") else getattr(model_cfg, "_name", None)
    name = name or getattr(model_cfg, "arch", None) or "unknown"
    if name in MODEL_REGISTRY:
        return name
    return ARCH_MODEL_NAME_REGISTRY.get(name, name)


def num_updates(state: dict[str, Any]) -> int:
    history = state.get("optimizer_history") or [{}]
    return int(history[-1].get("num_updates", 0) or 0)


BERT_SUPERNET_MODEL = "bert_supernet"


def require_supernet(state: dict[str, Any], path: str | Path, kinds: tuple[str, ...] = (SUPERNET_MODEL,)) -> None:
    kind = model_type(state)
    if kind not in kinds:
        wanted = "' or '".join(kinds)
        raise CheckpointError(f"'{path}' is not a supernet checkpoint (its model is '{kind}', not '{wanted}')")


def load_supernet(path: str | Path, data: str | None = None, state: dict[str, Any] | None = None):
    """``(supernet, task, state)`` for a supernet checkpoint, in eval mode on CPU.

    ``data`` replaces the training data directory recorded in the checkpoint (its dictionaries
    must match the checkpoint's embeddings).
    """
    from fairseq import tasks
    from omegaconf import open_dict

    state = state if state is not None else read_checkpoint(path)
    require_supernet(state, path, (SUPERNET_MODEL, BERT_SUPERNET_MODEL))
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


def write_checkpoint(path: Path, cfg: dict[str, Any], model_state: dict[str, torch.Tensor], extra: dict[str, Any]) -> None:
    """Write a fairseq checkpoint atomically; ``cfg`` and ``extra`` must be plain containers."""
    state = {
        "args": None,
        "cfg": cfg,
        "model": {k: v.detach().cpu().contiguous() for k, v in model_state.items()},
        "criterion": {},
        "optimizer_history": [
            {"criterion_name": "LabelSmoothedCrossEntropyCriterion", "optimizer_name": "none",
             "lr_scheduler_state": {}, "num_updates": 0}
        ],
        "task_state": {},
        "extra_state": {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0, "shuffle": True, "version": 2},
                        **extra},
        "last_optimizer_state": None,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600; a checkpoint is an ordinary file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def describe_checkpoint(path: str | Path) -> dict[str, Any]:
    """What a checkpoint is: kind, model, MoS, space, updates, best validation losses, export record."""
    from mos_fairseq.modules.mos import MoSSpec

    state = read_checkpoint(path)
    cfg = state["cfg"]
    kind = model_type(state)
    extra = state.get("extra_state") or {}
    info: dict[str, Any] = {
        "path": str(path),
        "model": kind,
        "kind": {SUPERNET_MODEL: "supernet", STATIC_MODEL: "static subnet", "transformer": "static transformer",
                 BERT_SUPERNET_MODEL: "BERT supernet", "mos_static_bert": "static BERT subnet",
                 "roberta": "static roberta"}.get(kind, "other fairseq model"),
        "updates": num_updates(state),
        "task": cfg.task.get("_name") if cfg.get("task") is not None else None,
        "data": cfg.task.get("data") if cfg.get("task") is not None else None,
        "params": sum(v.numel() for k, v in state["model"].items() if torch.is_tensor(v) and _counted(k, state)),
        "val_loss": extra.get("val_loss"),
        "best_loss": extra.get("best"),
    }
    task_state = state.get("task_state") or {}
    if task_state.get("valid_losses"):
        info["valid_losses"] = dict(task_state["valid_losses"])
        info["best_valid_losses"] = dict(task_state.get("best_valid_losses") or {})
    if kind in (SUPERNET_MODEL, BERT_SUPERNET_MODEL):
        from mos_fairseq.bert.space import BertSpace
        from mos_fairseq.models.supertransformer import space_from_config
        from mos_fairseq.space import SearchSpace

        info["space"] = space_from_config(cfg.model, SearchSpace if kind == SUPERNET_MODEL else BertSpace).name
        info["mos"] = MoSSpec.from_config(cfg.model).describe()
    export = extra.get("mos_fairseq_export")
    if export is not None:
        info["exported_from"] = export.get("source_checkpoint")
        info["exported_at_update"] = export.get("source_updates")
        info["mos"] = f"{export.get('mos')} (collapsed)"
        info["arch"] = export.get("arch")
    return info


def _counted(name: str, state: dict[str, Any]) -> bool:
    """Count tied tensors once: fairseq stores shared embeddings under several names."""
    if name.endswith(("_float_tensor", ".version")):
        return False
    model = state["model"]
    tensor = model[name]
    for other, value in model.items():
        if other == name:
            return True
        if torch.is_tensor(value) and value.data_ptr() == tensor.data_ptr() and value.shape == tensor.shape:
            return False
    return True


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
