"""The model ``mos-nas retrain --arch`` would train, built here with fresh weights.

Latency does not depend on the weights, so an architecture can be timed as it is deployed (the stock
``transformer`` where that expresses it, else ``mos_static_transformer``: the classes retraining builds,
:func:`mos_fairseq.translation.retrain.arch_model_args`) without training it or keeping a checkpoint.
``mos-nas measure-latency --arch`` times such models together with the same protocol as checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from mos_fairseq.base.errors import UserError
from mos_fairseq.translation.retrain import arch_model_args


def fresh_translation_model(
    arch_path: str | Path, data: str | Path, space: str | None = None, extra: Sequence[str] = ()
) -> torch.nn.Module:
    """``arch_path`` built by fairseq as ``fairseq-train DATA --task translation`` with retraining's model
    options (and ``extra`` model options, e.g. ``--encoder-normalize-before``), random weights, eval mode."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    if not Path(arch_path).is_file():
        raise UserError(f"--arch '{arch_path}' is not a file")
    if not (Path(data) / "dict.en.txt").is_file() and not any(Path(data).glob("dict.*.txt")):
        raise UserError(f"--data '{data}' holds no fairseq dictionaries (dict.LANG.txt)")
    argv = [str(data), "--task", "translation", *arch_model_args(str(arch_path), space), "--cpu", *extra]
    parser = options.get_training_parser()
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(parser, input_args=argv))
    task = tasks.setup_task(cfg.task)
    return task.build_model(cfg.model).eval()
