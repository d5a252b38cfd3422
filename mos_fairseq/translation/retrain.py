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
from pathlib import Path

import yaml

from mos_fairseq.core.errors import CheckpointError, UserError
from mos_fairseq.plugin import plugin_user_dir

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
    share = ["--share-all-embeddings"] if model.get("share_all_embeddings") else []
    if model["_name"] == "transformer":
        dims = []
        for key in STOCK_DIMS:
            dims += [f"--{key.replace('_', '-')}", str(model[key])]
        return ["--user-dir", plugin_user_dir(), "--arch", "transformer", *dims, *share]
    if model["_name"] == "mos_static_transformer":
        return [
            "--user-dir",
            plugin_user_dir(),
            "--arch",
            "mos_static_transformer",
            "--subnet-arch",
            str(export_dir / "arch.yml"),
            *share,
        ]
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
        dims = [x for key, value in zip(STOCK_DIMS, values) for x in (f"--{key.replace('_', '-')}", str(value))]
        return ["--user-dir", plugin_user_dir(), "--arch", "transformer", *dims, "--share-all-embeddings"]
    return [
        "--user-dir",
        plugin_user_dir(),
        "--arch",
        "mos_static_transformer",
        "--subnet-arch",
        str(Path(arch_path).resolve()),
        "--share-all-embeddings",
    ]


def retrain_command(
    export_dir: str | None,
    data: str,
    save_dir: str,
    from_scratch: bool = False,
    preset: str = "cpu_small",
    extra: list[str] | None = None,
    arch: str | None = None,
    space: str | None = None,
) -> list[str]:
    """The fairseq-train command: an export (inherited weights, or ``from_scratch``), or an
    architecture YAML ``arch`` (always from scratch)."""
    if (export_dir is None) == (arch is None):
        raise UserError("give exactly one of --export-dir (an export) and --arch (an architecture YAML)")
    if not Path(data).is_dir():
        raise UserError(f"--data '{data}' is not a directory")
    if arch is not None:
        if not Path(arch).is_file():
            raise UserError(f"--arch '{arch}' is not a file")
        models, from_scratch = arch_model_args(arch, space), True
    else:
        assert export_dir is not None  # exactly one of export_dir and arch
        export = Path(export_dir)
        if not (export / "checkpoint.pt").is_file():
            raise UserError(f"--export-dir '{export}' has no checkpoint.pt (run mos-nas export first)")
        models = model_args(export)
    cmd = [
        str(Path(sys.executable).parent / "fairseq-train"),
        data,
        "--task",
        "translation",
        *models,
        *preset_args(load_preset(preset)),
        "--save-dir",
        save_dir,
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
    return cmd + list(extra or [])


def retrain(
    export_dir: str | None,
    data: str,
    save_dir: str,
    from_scratch: bool = False,
    preset: str = "cpu_small",
    extra: list[str] | None = None,
    arch: str | None = None,
    space: str | None = None,
) -> int:
    cmd = retrain_command(export_dir, data, save_dir, from_scratch, preset, extra, arch, space)
    if Path(save_dir, "checkpoint_last.pt").exists() and "--restore-file" in cmd:
        # a re-run continues its own checkpoint_last.pt (fairseq's default), not the export again
        i = cmd.index("--restore-file")
        del cmd[i : i + 6]
    return subprocess.run(cmd).returncode
