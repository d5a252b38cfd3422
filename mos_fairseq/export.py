"""``mos-nas export``: one subnet of a trained supernet, of any family, as an ordinary fairseq checkpoint.

The one export pipeline: read the checkpoint, find its family in the registry, load the
architecture against the checkpoint's space (refusing one outside it), collapse the subnet
(the family's ``build_export`` chooses the stock model where it can express the subnet, else our
static model), check the written model's logits against the supernet subnet's (the family's
probe), and write the directory atomically (:mod:`mos_fairseq.core.export`): ``checkpoint.pt``,
the dictionaries, the sentencepiece model, ``arch.yml`` and ``export.json``. A failed export
leaves nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from omegaconf import OmegaConf

from mos_fairseq.base.errors import CheckpointError
from mos_fairseq.core.checkpoints import model_type, num_updates, read_checkpoint, require_supernet
from mos_fairseq.core.export import MAX_LOGIT_DIFF, ExportResult, distinct_params, prepare_out_dir, write_export
from mos_fairseq.core.space_files import space_from_config
from mos_fairseq.loading import load_supernet
from mos_fairseq.modules.mos import MoSSpec
from mos_fairseq.registry import family_of_model, supernet_models


def export_subnet(
    checkpoint: str | Path,
    arch_path: str | Path,
    out: str | Path,
    data: str | None = None,
    overwrite: bool = False,
    force_static: bool = False,
) -> ExportResult:
    """Collapse the architecture in ``arch_path`` out of the supernet ``checkpoint`` into ``out``."""
    checkpoint, out = Path(checkpoint), Path(out).absolute()
    state = read_checkpoint(checkpoint)
    require_supernet(state, checkpoint, supernet_models())
    family = family_of_model(model_type(state))
    space = space_from_config(state["cfg"].model, family.space_type)
    arch = family.arch_type.load(arch_path, space)  # refuses architectures outside the checkpoint's space
    prepare_out_dir(out, overwrite)

    supernet, task, state = load_supernet(checkpoint, data, state)
    exported = family.build_export(supernet, task, arch, force_static)
    exported.model.eval()
    diff = family.probe_logit_diff(supernet.bind(arch).eval(), exported.model, task)
    if diff > MAX_LOGIT_DIFF:
        raise CheckpointError(
            f"collapsed subnet differs from the supernet's (max |logit diff| {diff:.3g}); nothing written"
        )
    cfg = cast("dict[str, Any]", OmegaConf.to_container(state["cfg"], resolve=True))
    cfg = family.export_task_cfg({**cfg, "model": exported.model_cfg}, str(out), task)
    result = ExportResult(
        out_dir=str(out),
        checkpoint=str(out / "checkpoint.pt"),
        model=exported.name,
        needs_user_dir=bool(exported.stock_reason),
        stock_reason=exported.stock_reason,
        params=distinct_params(exported.model),
        size_bytes=0,
        max_logit_diff=diff,
        source_checkpoint=str(checkpoint.absolute()),
        source_updates=num_updates(state),
        mos=MoSSpec.from_config(state["cfg"].model).kind,
        arch=arch.to_dict(),
    )
    write_export(out, cfg, exported.model, result, family.export_dictionaries(task), task.cfg.data, arch)
    return result
