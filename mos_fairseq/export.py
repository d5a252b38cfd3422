"""Export: one subnet of a trained supernet as an ordinary fairseq checkpoint.

The subnet is collapsed (:mod:`mos_fairseq.models.collapse`) into a static model. When stock
fairseq's ``transformer`` can express it (uniform FFN width and heads per side, the decoder
attending to the last encoder layer only, embedding widths equal to the supernet's q/k/v width),
the checkpoint uses ``transformer`` and loads without our plugin; otherwise it uses our
registered ``mos_static_transformer`` (``--user-dir user_dir``). The output directory holds
``checkpoint.pt``, the dictionaries, the sentencepiece model, ``arch.yml`` and ``export.json``;
it is built in a temporary directory and renamed into place, so a failed export leaves nothing.
Before writing, the exported model's logits are checked against the supernet subnet's.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from mos_fairseq.arch import Architecture
from mos_fairseq.checkpoints import (
    STATIC_MODEL,
    current_umask,
    load_supernet,
    num_updates,
    read_checkpoint,
    require_supernet,
    write_checkpoint,
)
from mos_fairseq.errors import CheckpointError, UserError
from mos_fairseq.models.collapse import extract_subnet
from mos_fairseq.models.static_transformer import StaticTransformerConfig, arch_spec_json
from mos_fairseq.models.supertransformer import space_from_config
from mos_fairseq.modules.elastic import scaled_dropout
from mos_fairseq.modules.mos import MoSSpec

STOCK_MODEL = "transformer"
MAX_LOGIT_DIFF = 1e-4  # export refuses to write a model that does not reproduce the subnet


@dataclass
class ExportResult:
    out_dir: str
    checkpoint: str
    model: str  # "transformer" or "mos_static_transformer"
    needs_user_dir: bool
    stock_reason: str  # why stock transformer could not be used ("" when it was)
    params: int
    size_bytes: int
    max_logit_diff: float
    source_checkpoint: str
    source_updates: int
    mos: str
    arch: dict


def stock_transformer_mismatch(arch: Architecture) -> str:
    """Why stock fairseq ``transformer`` cannot express ``arch`` ("" if it can)."""
    reasons = []
    if len(set(arch.encoder_ffn_dims)) > 1 or len(set(arch.encoder_heads)) > 1:
        reasons.append("encoder layers differ in FFN width or heads")
    if len(set(arch.decoder_ffn_dims)) > 1:
        reasons.append("decoder layers differ in FFN width")
    if len(set(arch.decoder_self_heads) | set(arch.decoder_cross_heads)) > 1:
        reasons.append("decoder self- and cross-attention heads are not all equal")
    if any(span != 1 for span in arch.decoder_cross_spans):
        reasons.append("a decoder layer attends to more than the last encoder layer")
    if not arch.encoder_embed_dim == arch.decoder_embed_dim == arch.qkv_dim:
        reasons.append(
            f"embedding widths ({arch.encoder_embed_dim}, {arch.decoder_embed_dim}) differ from the q/k/v width {arch.qkv_dim}"
        )
    return "; ".join(reasons)


def _stock_args(arch: Architecture, share_all: bool, dropouts: tuple[float, float, float], max_positions) -> argparse.Namespace:
    from fairseq.models.transformer import base_architecture

    args = argparse.Namespace(
        encoder_embed_dim=arch.encoder_embed_dim, encoder_ffn_embed_dim=arch.encoder_ffn_dims[0],
        encoder_attention_heads=arch.encoder_heads[0], encoder_layers=arch.encoder_layers,
        decoder_embed_dim=arch.decoder_embed_dim, decoder_ffn_embed_dim=arch.decoder_ffn_dims[0],
        decoder_attention_heads=arch.decoder_self_heads[0], decoder_layers=arch.decoder_layers,
        share_all_embeddings=share_all, share_decoder_input_output_embed=True,
        dropout=dropouts[0], attention_dropout=dropouts[1], activation_dropout=dropouts[2],
        max_source_positions=max_positions[0], max_target_positions=max_positions[1],
    )
    base_architecture(args)
    return args


def _probe_logit_diff(reference, exported, vocab: int, pad: int, eos: int) -> float:
    g = torch.Generator().manual_seed(0)
    src = torch.randint(pad + 1 + 2, vocab, (3, 11), generator=g)
    src[0, :4] = pad  # left padding, as fairseq batches sources
    lengths = torch.tensor([7, 11, 11])
    prev = torch.randint(pad + 1 + 2, vocab, (3, 9), generator=g)
    prev[:, 0] = eos
    with torch.no_grad():
        a = reference(src, lengths, prev)[0]
        b = exported(src, lengths, prev)[0]
    return float((a - b).abs().max())


def _translation_task_cfg(task_cfg: dict, data_dir: str, src: str, tgt: str) -> dict:
    from fairseq.tasks.translation import TranslationConfig

    out = {f.name: task_cfg.get(f.name) for f in fields(TranslationConfig) if f.name in task_cfg}
    out.update(_name="translation", data=data_dir, source_lang=src, target_lang=tgt)
    return out


def build_exported_model(supernet, task, arch: Architecture, force_static: bool = False):
    """``(model, model_cfg, reason)``: ``arch`` collapsed into stock ``transformer`` where it fits
    (``reason`` empty), else into ``mos_static_transformer``; ``model_cfg`` is the plain-dict model
    config its checkpoint carries. Dropout follows HAT's width rule (supernet dropout x d/d_max).
    """
    model_cfg = supernet.cfg
    d_max = supernet.space.max_encoder_embed_dim
    dropouts = (
        scaled_dropout(getattr(model_cfg, "dropout", 0.1), arch.encoder_embed_dim, d_max),
        getattr(model_cfg, "attention_dropout", 0.0),
        scaled_dropout(getattr(model_cfg, "activation_dropout", 0.0), arch.encoder_embed_dim, d_max),
    )
    max_positions = (supernet.encoder.max_positions(), supernet.decoder.max_positions())
    share_all = bool(getattr(model_cfg, "share_all_embeddings", True))
    static = extract_subnet(supernet, arch, dropout=dropouts[0], attention_dropout=dropouts[1],
                            activation_dropout=dropouts[2])
    reason = "forced by --static" if force_static else stock_transformer_mismatch(arch)
    if reason:
        static_cfg = StaticTransformerConfig(
            arch_spec=arch_spec_json(arch), share_all_embeddings=share_all, dropout=dropouts[0],
            attention_dropout=dropouts[1], activation_dropout=dropouts[2],
            max_source_positions=max_positions[0], max_target_positions=max_positions[1],
        )
        return static, {**OmegaConf.to_container(OmegaConf.structured(static_cfg)), "_name": STATIC_MODEL}, reason
    from fairseq.models.transformer import TransformerModel

    args = _stock_args(arch, share_all, dropouts, max_positions)
    stock = TransformerModel.build_model(args, task)
    mapped = dict(static.state_dict())
    mapped["decoder.output_projection.weight"] = mapped["decoder.embed_tokens.weight"]
    stock.load_state_dict(mapped, strict=True)
    return stock.eval(), {**vars(args), "_name": STOCK_MODEL, "arch": STOCK_MODEL}, ""


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"--out '{out}' is not empty (use --overwrite to replace it)")
    if not out.parent.is_dir():
        raise UserError(f"parent directory of --out '{out}' does not exist")


def export_subnet(
    checkpoint: str | Path, arch_path: str | Path, out: str | Path, data: str | None = None,
    overwrite: bool = False, force_static: bool = False,
) -> ExportResult:
    """Collapse ``arch`` out of the supernet ``checkpoint`` into the directory ``out``."""
    checkpoint, out = Path(checkpoint), Path(out).absolute()
    state = read_checkpoint(checkpoint)
    require_supernet(state, checkpoint)
    space = space_from_config(state["cfg"].model)
    arch = Architecture.load(arch_path, space)  # refuses architectures outside the checkpoint's space
    _prepare_out_dir(out, overwrite)

    supernet, task, state = load_supernet(checkpoint, data, state)
    cfg = OmegaConf.to_container(state["cfg"], resolve=True)
    exported, new_model_cfg, reason = build_exported_model(supernet, task, arch, force_static)
    reference = supernet.bind(arch).eval()
    exported.eval()
    src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
    diff = _probe_logit_diff(reference, exported, len(tgt_dict), tgt_dict.pad(), tgt_dict.eos())
    if diff > MAX_LOGIT_DIFF:
        raise CheckpointError(f"collapsed subnet differs from the supernet's (max |logit diff| {diff:.3g}); nothing written")

    src, tgt = task.cfg.source_lang, task.cfg.target_lang
    cfg["model"] = new_model_cfg
    cfg["task"] = _translation_task_cfg(cfg["task"], str(out), src, tgt)
    crit = cfg.get("criterion") or {}
    cfg["criterion"] = {"_name": "label_smoothed_cross_entropy", "label_smoothing": crit.get("label_smoothing", 0.1),
                        "report_accuracy": False, "ignore_prefix_size": 0,
                        "sentence_avg": crit.get("sentence_avg", False)}
    params = sum(p.numel() for p in exported.parameters())
    mos = MoSSpec.from_config(state["cfg"].model)
    result = ExportResult(
        out_dir=str(out), checkpoint=str(out / "checkpoint.pt"),
        model=STOCK_MODEL if not reason else STATIC_MODEL, needs_user_dir=bool(reason), stock_reason=reason,
        params=params, size_bytes=0, max_logit_diff=diff, source_checkpoint=str(checkpoint.absolute()),
        source_updates=num_updates(state), mos=mos.kind, arch=arch.to_dict(),
    )
    write_export(out, cfg, exported, result, {f"dict.{src}.txt": src_dict, f"dict.{tgt}.txt": tgt_dict},
                 task.cfg.data, arch)
    return result


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


def write_export_dir(out: Path, write_files) -> None:
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
        f"stock fairseq `{result.model}` (loads without --user-dir)" if not result.needs_user_dir
        else f"`{result.model}` (needs --user-dir user_dir: {result.stock_reason})"
    )
    return "\n".join([
        f"wrote {result.checkpoint}",
        f"  model: {kind}",
        f"  parameters: {result.params:,}; size on disk: {result.size_bytes / 2**20:.2f} MiB",
        f"  max |logit difference| vs the supernet subnet: {result.max_logit_diff:.2e}",
        f"  from: {result.source_checkpoint} ({result.source_updates} updates, MoS {result.mos})",
    ])


def exported_metadata(state: dict[str, Any]) -> dict | None:
    """The export record kept in an exported checkpoint (``None`` for other checkpoints)."""
    meta = (state.get("extra_state") or {}).get("mos_fairseq_export")
    return dict(meta) if meta is not None else None
