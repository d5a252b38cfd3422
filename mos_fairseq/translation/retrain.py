"""``mos-nas retrain``: train an exported subnet with stock ``fairseq-train``.

After export (:mod:`mos_fairseq.translation.export`) a subnet is an ordinary fairseq checkpoint. Retraining it
*from the inherited supernet weights* (HAT/MoS "additional training") restores those weights and
resets optimizer, schedule, meters and data position; *from scratch* (the standalone baseline)
builds the same architecture with fresh weights. The model options come from the export
(stock ``transformer`` dimensions, or ``mos_static_transformer`` with the exported ``arch.yml``),
the training options from a preset in ``configs/retrain/`` (HAT's SubTransformer recipe, or a
CPU-sized one), and anything after ``--`` is passed to ``fairseq-train`` last (it wins).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mos_fairseq.base.errors import CheckpointError, UserError
from mos_fairseq.base.user_dir import plugin_user_dir

PRESET_DIRS = (
    Path(__file__).resolve().parents[2] / "configs" / "retrain",  # source checkout
    Path(__file__).resolve().parents[1] / "configs" / "retrain",
)  # installed package data
STOCK_DIMS = (
    "encoder_embed_dim",
    "encoder_ffn_embed_dim",
    "encoder_attention_heads",
    "encoder_layers",
    "decoder_embed_dim",
    "decoder_ffn_embed_dim",
    "decoder_attention_heads",
    "decoder_layers",
)


def load_preset(name_or_path: str) -> dict:
    path = Path(name_or_path)
    if not path.is_file():
        found = [d / f"{name_or_path}.yml" for d in PRESET_DIRS if (d / f"{name_or_path}.yml").is_file()]
        if not found:
            names = sorted({p.stem for d in PRESET_DIRS if d.is_dir() for p in d.glob("*.yml")})
            raise UserError(f"unknown retrain preset '{name_or_path}' (built-in: {', '.join(names)})")
        path = found[0]
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a preset is a mapping of fairseq-train options")
    return data


def preset_args(preset: dict) -> list[str]:
    args: list[str] = []
    for key, value in preset.items():
        if value is True:
            args.append(f"--{key}")
        elif value is False or value is None:
            continue
        else:
            args += [f"--{key}", str(value)]
    return args


def without_switched_off(preset: dict, extra: tuple[str, ...]) -> tuple[dict, tuple[str, ...]]:
    """(the preset without each switch that ``extra`` turns off, ``extra`` without those ``--no-KEY``).
    fairseq's switches (``--encoder-normalize-before``) have no off form, so ``--no-KEY`` drops a preset's
    ``KEY: true``; a ``--no-...`` that names no switch of the preset (``--no-epoch-checkpoints``) is kept."""
    off = {a for a in extra if a.startswith("--no-") and preset.get(a[len("--no-") :]) is True}
    kept = {k: v for k, v in preset.items() if f"--no-{k}" not in off}
    return kept, tuple(a for a in extra if a not in off)


def model_args(export_dir: Path) -> list[str]:
    """fairseq-train options that rebuild the exported architecture."""
    from mos_fairseq.core.checkpoints import read_checkpoint

    ckpt = export_dir / "checkpoint.pt"
    state = read_checkpoint(ckpt)
    from omegaconf import DictConfig, OmegaConf

    from mos_fairseq.core.export import exported_metadata

    cfg = state.get("cfg") or {}
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg)
    model = cfg.get("model") if isinstance(cfg, dict) else None

    if not isinstance(model, dict) or "_name" not in model or exported_metadata(state) is None:
        raise CheckpointError(f"'{ckpt}' is not a checkpoint written by mos-nas export")
    share_all = bool(model.get("share_all_embeddings"))
    pre_norm = [
        f"--{side}-normalize-before" for side in ("encoder", "decoder") if model.get(f"{side}_normalize_before")
    ]
    if model["_name"] == "transformer":
        return _model_options(share_all, stock_dims=model) + pre_norm
    if model["_name"] == "mos_static_transformer":
        return _model_options(share_all, arch_file=str(export_dir / "arch.yml")) + pre_norm
    raise CheckpointError(
        f"'{ckpt}' holds a '{model['_name']}' model; retrain handles transformer and mos_static_transformer"
    )


def arch_model_args(arch_path: str, space: str | None = None) -> list[str]:
    """fairseq-train options that build ``arch_path`` with fresh weights (no export needed):
    stock ``transformer`` where it can express the architecture, else ``mos_static_transformer``."""
    from mos_fairseq.translation.architecture import Architecture
    from mos_fairseq.translation.export import stock_transformer_mismatch
    from mos_fairseq.translation.space import SearchSpace

    arch = Architecture.load(arch_path, SearchSpace.load(space) if space else None)
    if not stock_transformer_mismatch(arch):
        values = (
            arch.encoder_embed_dim,
            arch.encoder_ffn_dims[0],
            arch.encoder_heads[0],
            arch.encoder_layers,
            arch.decoder_embed_dim,
            arch.decoder_ffn_dims[0],
            arch.decoder_self_heads[0],
            arch.decoder_layers,
        )
        return _model_options(True, stock_dims=dict(zip(STOCK_DIMS, values)))
    return _model_options(True, arch_file=str(Path(arch_path).resolve()))


def _model_options(share_all: bool, stock_dims: dict[str, Any] | None = None, arch_file: str = "") -> list[str]:
    """``--user-dir`` and the model options: a stock ``transformer`` of ``stock_dims``, or else a
    ``mos_static_transformer`` built from ``arch_file``."""
    share = ["--share-all-embeddings"] if share_all else []
    if stock_dims is not None:
        dims = [x for key in STOCK_DIMS for x in (f"--{key.replace('_', '-')}", str(stock_dims[key]))]
        return ["--user-dir", plugin_user_dir(), "--arch", "transformer", *dims, *share]
    return ["--user-dir", plugin_user_dir(), "--arch", "mos_static_transformer", "--subnet-arch", arch_file, *share]


@dataclass(frozen=True)
class RetrainJob:
    """What ``mos-nas retrain`` trains: an export (``export_dir``: inherited weights, or
    ``from_scratch``) or an architecture YAML (``arch`` in ``space``: always from scratch), on ``data``
    into ``save_dir`` with a preset of ``configs/retrain/`` and ``extra`` fairseq-train arguments."""

    data: str
    save_dir: str
    export_dir: str | None = None
    arch: str | None = None
    space: str | None = None
    from_scratch: bool = False
    preset: str = "cpu_small"
    extra: tuple[str, ...] = ()


def retrain_command(job: RetrainJob) -> list[str]:
    """The fairseq-train command of ``job``."""
    if (job.export_dir is None) == (job.arch is None):
        raise UserError("give exactly one of --export-dir (an export) and --arch (an architecture YAML)")
    if not Path(job.data).is_dir():
        raise UserError(f"--data '{job.data}' is not a directory")
    from_scratch = job.from_scratch
    if job.arch is not None:
        if not Path(job.arch).is_file():
            raise UserError(f"--arch '{job.arch}' is not a file")
        models, from_scratch = arch_model_args(job.arch, job.space), True
    else:
        assert job.export_dir is not None  # exactly one of export_dir and arch
        export = Path(job.export_dir)
        if not (export / "checkpoint.pt").is_file():
            raise UserError(f"--export-dir '{export}' has no checkpoint.pt (run mos-nas export first)")
        models = model_args(export)
    preset, extra = without_switched_off(load_preset(job.preset), job.extra)
    for flag in set(job.extra) - set(extra):
        if flag.replace("--no-", "--", 1) in models:
            raise UserError(f"{flag}: the export's architecture itself has {flag.replace('--no-', '--', 1)}")
    cmd = [
        str(Path(sys.executable).parent / "fairseq-train"),
        job.data,
        "--task",
        "translation",
        *models,
        *preset_args(preset),
        "--save-dir",
        job.save_dir,
    ]
    if not from_scratch:
        cmd += [
            "--restore-file",
            str(export / "checkpoint.pt"),
            "--reset-optimizer",
            "--reset-dataloader",
            "--reset-meters",
            "--reset-lr-scheduler",
        ]
    return cmd + list(extra)


def retrain(job: RetrainJob) -> int:
    """Run ``job``'s fairseq-train; its exit code."""
    cmd = retrain_command(job)
    if Path(job.save_dir, "checkpoint_last.pt").exists() and "--restore-file" in cmd:
        # a re-run continues its own checkpoint_last.pt (fairseq's default), not the export again
        i = cmd.index("--restore-file")
        del cmd[i : i + 6]
    return subprocess.run(cmd).returncode
