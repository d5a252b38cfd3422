"""What every export shares, whichever family: the export record, the output directory (checked,
filled in a temporary directory, swapped in atomically), the written checkpoint and the summary.

:mod:`mos_fairseq.export` runs the pipeline; each family's ``export`` module supplies the hooks
(which fairseq model expresses the subnet, its task config, the logit probe).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from mos_fairseq.base.errors import UserError
from mos_fairseq.base.files import current_umask
from mos_fairseq.core.checkpoints import write_checkpoint

MAX_LOGIT_DIFF = 1e-4  # export refuses to write a model that does not reproduce the subnet


@dataclass
class ExportResult:
    out_dir: str
    checkpoint: str
    model: str  # the fairseq model written (stock, or our static model)
    needs_user_dir: bool
    stock_reason: str  # why the stock model could not be used ("" when it was)
    params: int
    size_bytes: int
    max_logit_diff: float
    source_checkpoint: str
    source_updates: int
    mos: str
    arch: dict


@dataclass
class ExportedModel:
    """A family's answer to "write this subnet": the model, its plain-dict fairseq model config,
    the fairseq model name, and why the family's stock model was not used ("" when it was)."""

    model: torch.nn.Module
    model_cfg: dict
    name: str
    stock_reason: str


def prepare_out_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"--out '{out}' is not empty (use --overwrite to replace it)")
    if not out.parent.is_dir():
        raise UserError(f"parent directory of --out '{out}' does not exist")


def copy_spm_model(data: str, dest: Path) -> None:
    """Copy the sentencepiece model of the (first) data directory that has one, if any."""
    spm = next((Path(d) / "spm.model" for d in str(data).split(":") if (Path(d) / "spm.model").is_file()), None)
    if spm is not None:
        shutil.copyfile(spm, dest / "spm.model")


def write_export(out: Path, cfg: dict, exported, result: ExportResult, dictionaries: dict, data: str, arch) -> None:
    """The export directory: checkpoint (with ``result`` as its export record), dictionaries,
    sentencepiece model, ``arch.yml`` and ``export.json``, swapped in atomically."""
    meta = {k: v for k, v in asdict(result).items() if k not in ("size_bytes", "out_dir", "checkpoint")}

    def write_files(tmp: Path) -> None:
        write_checkpoint(tmp / "checkpoint.pt", cfg, exported.state_dict(), {"mos_fairseq_export": meta})
        for name, dictionary in dictionaries.items():
            dictionary.save(str(tmp / name))
        copy_spm_model(data, tmp)
        arch.save(tmp / "arch.yml")
        result.size_bytes = (tmp / "checkpoint.pt").stat().st_size
        (tmp / "export.json").write_text(json.dumps(asdict(result), indent=2, sort_keys=True) + "\n")

    write_export_dir(out, write_files)


def write_export_dir(out: Path, write_files: Callable[[Path], None]) -> None:
    """Fill a fresh directory with ``write_files(tmp)`` and swap it in for ``out`` at the end:
    a failure leaves ``out`` as it was (or absent)."""
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.export-"))
    try:
        write_files(tmp)
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp creates 0700
        if out.exists():
            trash = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            out.rename(trash / out.name)
            tmp.rename(out)
            shutil.rmtree(trash)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def export_summary(result: ExportResult) -> str:
    kind = (
        f"stock fairseq `{result.model}` (loads without --user-dir)"
        if not result.needs_user_dir
        else f"`{result.model}` (needs --user-dir user_dir: {result.stock_reason})"
    )
    return "\n".join(
        [
            f"wrote {result.checkpoint}",
            f"  model: {kind}",
            f"  parameters: {result.params:,}; size on disk: {result.size_bytes / 2**20:.2f} MiB",
            f"  max |logit difference| vs the supernet subnet: {result.max_logit_diff:.2e}",
            f"  from: {result.source_checkpoint} ({result.source_updates} updates, MoS {result.mos})",
        ]
    )


def exported_metadata(state: dict[str, Any]) -> dict | None:
    """The export record kept in an exported checkpoint (``None`` for other checkpoints)."""
    meta = (state.get("extra_state") or {}).get("mos_fairseq_export")
    return dict(meta) if meta is not None else None


def distinct_params(model: torch.nn.Module) -> int:
    """Parameters of a model, a tied tensor counted once."""
    return sum(p.numel() for p in model.parameters())  # parameters() yields each tensor once
