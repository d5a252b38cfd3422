"""Translation export hooks: which fairseq model writes a subnet, its task config, the logit probe.

The subnet is collapsed (:mod:`mos_fairseq.core.collapse`) into a static model. When stock
fairseq's ``transformer`` can express it (uniform FFN width and heads per side, the decoder
attending to the last encoder layer only, embedding widths equal to the supernet's q/k/v width),
the checkpoint uses ``transformer`` and loads without our plugin; otherwise it uses our
registered ``mos_static_transformer`` (``--user-dir user_dir``). The pipeline that writes the
directory is :mod:`mos_fairseq.export`, shared with BERT.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any, cast

import torch
from omegaconf import OmegaConf

from mos_fairseq.core.arch_spec import arch_spec_json
from mos_fairseq.core.export import ExportedModel
from mos_fairseq.modules.elastic import scaled_dropout
from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.static import StaticTransformerConfig, extract_subnet, normalize_before_of

STATIC_MODEL = "mos_static_transformer"
STOCK_MODEL = "transformer"


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


def _stock_args(arch: Architecture, share_all: bool, options: dict[str, Any]) -> argparse.Namespace:
    """fairseq ``transformer`` arguments of ``arch``; ``options``: its dropouts and maximum positions."""
    from fairseq.models.transformer import base_architecture

    args = argparse.Namespace(
        encoder_embed_dim=arch.encoder_embed_dim,
        encoder_ffn_embed_dim=arch.encoder_ffn_dims[0],
        encoder_attention_heads=arch.encoder_heads[0],
        encoder_layers=arch.encoder_layers,
        decoder_embed_dim=arch.decoder_embed_dim,
        decoder_ffn_embed_dim=arch.decoder_ffn_dims[0],
        decoder_attention_heads=arch.decoder_self_heads[0],
        decoder_layers=arch.decoder_layers,
        share_all_embeddings=share_all,
        share_decoder_input_output_embed=True,
        **options,
    )
    base_architecture(args)
    return args


def stock_state(static_state: dict, stock: torch.nn.Module) -> dict:
    """A static model's tensors under stock ``transformer``'s names: its output projection is the shared
    embedding, and its ``*.version`` buffers come along (without them fairseq takes the state for a pre-2019
    one and drops a pre-norm side's last layer norm)."""
    mapped = dict(static_state)
    mapped["decoder.output_projection.weight"] = mapped["decoder.embed_tokens.weight"]
    mapped.update({k: v for k, v in stock.state_dict().items() if k.endswith(".version")})
    return mapped


def probe_logit_diff(reference: torch.nn.Module, exported: torch.nn.Module, task) -> float:
    """Max |logit difference| on a fixed left-padded batch (teacher-forced decoder)."""
    tgt = task.target_dictionary
    vocab, pad, eos = len(tgt), tgt.pad(), tgt.eos()
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


def export_task_cfg(cfg: dict, out_dir: str, task) -> dict:
    """Stock fairseq ``translation`` task options of the export (our supernet options dropped), and
    the stock label-smoothed criterion, so ``fairseq-train``/``generate`` run on it unchanged."""
    from fairseq.tasks.translation import TranslationConfig

    task_cfg = cfg["task"]
    out = {f.name: task_cfg.get(f.name) for f in fields(TranslationConfig) if f.name in task_cfg}
    out.update(_name="translation", data=out_dir, source_lang=task.cfg.source_lang, target_lang=task.cfg.target_lang)
    crit = cfg.get("criterion") or {}
    criterion = {
        "_name": "label_smoothed_cross_entropy",
        "label_smoothing": crit.get("label_smoothing", 0.1),
        "report_accuracy": False,
        "ignore_prefix_size": 0,
        "sentence_avg": crit.get("sentence_avg", False),
    }
    return {**cfg, "task": out, "criterion": criterion}


def export_dictionaries(task) -> dict:
    """``{file name: dictionary}`` the export directory holds."""
    src, tgt = task.cfg.source_lang, task.cfg.target_lang
    return {f"dict.{src}.txt": task.source_dictionary, f"dict.{tgt}.txt": task.target_dictionary}


def build_export(supernet, task, arch: Architecture, force_static: bool = False) -> ExportedModel:
    """``arch`` collapsed into stock ``transformer`` where it fits,
    else into ``mos_static_transformer``. Dropout follows HAT's width rule (supernet dropout x d/d_max).
    """
    model_cfg = supernet.cfg
    d_max = supernet.space.max_encoder_embed_dim
    dropouts: dict[str, Any] = {
        "dropout": scaled_dropout(getattr(model_cfg, "dropout", 0.1), arch.encoder_embed_dim, d_max),
        "attention_dropout": getattr(model_cfg, "attention_dropout", 0.0),
        "activation_dropout": scaled_dropout(
            getattr(model_cfg, "activation_dropout", 0.0), arch.encoder_embed_dim, d_max
        ),
    }
    pre_encoder, pre_decoder = normalize_before_of(model_cfg)
    options = {
        **dropouts,
        "max_source_positions": supernet.encoder.max_positions(),
        "max_target_positions": supernet.decoder.max_positions(),
        "encoder_normalize_before": pre_encoder,
        "decoder_normalize_before": pre_decoder,
    }
    share_all = bool(getattr(model_cfg, "share_all_embeddings", True))
    static = extract_subnet(supernet, arch, **dropouts)
    reason = "forced by --static" if force_static else stock_transformer_mismatch(arch)
    if reason:
        static_cfg = StaticTransformerConfig(arch_spec=arch_spec_json(arch), share_all_embeddings=share_all, **options)
        return ExportedModel(
            static,
            {**cast("dict[str, Any]", OmegaConf.to_container(OmegaConf.structured(static_cfg))), "_name": STATIC_MODEL},
            STATIC_MODEL,
            reason,
        )
    from fairseq.models.transformer import TransformerModel

    args = _stock_args(arch, share_all, options)
    stock = TransformerModel.build_model(args, task)
    mapped = stock_state(static.state_dict(), stock)
    stock.load_state_dict(mapped, strict=True)
    return ExportedModel(stock.eval(), {**vars(args), "_name": STOCK_MODEL, "arch": STOCK_MODEL}, STOCK_MODEL, "")
