"""Reading, classifying and writing fairseq checkpoints (supernets, exported subnets, others).

Every stage that consumes a checkpoint (export, search, latency of a trained subnet, ``mos-nas
info``) goes through :func:`read_checkpoint`, which turns a missing, corrupt or foreign file into
a one-line :class:`~mos_fairseq.base.errors.CheckpointError`, and imports no model (rebuilding a supernet
is :func:`mos_fairseq.loading.load_supernet`). :func:`write_checkpoint` writes checkpoints whose
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

from mos_fairseq.base.errors import CheckpointError
from mos_fairseq.base.files import current_umask
from mos_fairseq.core.safe_load import install_safe_globals


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A fairseq checkpoint as fairseq loads it (``cfg`` as an omegaconf config); imports no model."""
    install_safe_globals()
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


def require_supernet(state: dict[str, Any], path: str | Path, kinds: tuple[str, ...]) -> None:
    kind = model_type(state)
    if kind not in kinds:
        wanted = "' or '".join(kinds)
        raise CheckpointError(f"'{path}' is not a supernet checkpoint (its model is '{kind}', not '{wanted}')")


def write_checkpoint(
    path: Path, cfg: dict[str, Any], model_state: dict[str, torch.Tensor], extra: dict[str, Any]
) -> None:
    """Write a fairseq checkpoint atomically; ``cfg`` and ``extra`` must be plain containers."""
    state = {
        "args": None,
        "cfg": cfg,
        "model": {k: v.detach().cpu().contiguous() for k, v in model_state.items()},
        "criterion": {},
        "optimizer_history": [
            {
                "criterion_name": "LabelSmoothedCrossEntropyCriterion",
                "optimizer_name": "none",
                "lr_scheduler_state": {},
                "num_updates": 0,
            }
        ],
        "task_state": {},
        "extra_state": {
            "train_iterator": {"epoch": 1, "iterations_in_epoch": 0, "shuffle": True, "version": 2},
            **extra,
        },
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


def counted_once(name: str, state: dict[str, Any]) -> bool:
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
