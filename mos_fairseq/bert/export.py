"""BERT export hooks: bottlenecks and MoS collapsed into a static model, and which fairseq model writes it.

A homogeneous subnet is written as stock fairseq ``roberta`` (loads without our plugin; fairseq's
``sentence_prediction`` fine-tunes it); other shapes as ``mos_static_bert`` (needs
``--user-dir``). The pipeline (:mod:`mos_fairseq.export`, shared with translation) checks the
written model's MLM logits against the supernet subnet's before anything is written.
"""

from __future__ import annotations

import argparse
from typing import Any, cast

import torch
from omegaconf import OmegaConf

from mos_fairseq.base.errors import CheckpointError
from mos_fairseq.bert.architecture import BertArch
from mos_fairseq.bert.static import StaticBertModel, extract_subnet
from mos_fairseq.core.export import ExportedModel

ROBERTA = "roberta"
STATIC_BERT = "mos_static_bert"


def roberta_name(name: str) -> str:
    """Our static BERT parameter name -> fairseq ``roberta``'s."""
    if name.startswith("lm_head_dense."):
        return "encoder.lm_head.dense." + name.split(".", 1)[1]
    if name.startswith("lm_head_layer_norm."):
        return "encoder.lm_head.layer_norm." + name.split(".", 1)[1]
    if name == "lm_head_bias":
        return "encoder.lm_head.bias"
    return "encoder.sentence_encoder." + name


def roberta_args(arch: BertArch, cfg, max_positions: int) -> argparse.Namespace:
    from fairseq.models.roberta.model import base_architecture

    args = argparse.Namespace(
        encoder_layers=arch.layers,
        encoder_embed_dim=arch.hidden[0],
        encoder_ffn_embed_dim=arch.ffn[0],
        encoder_attention_heads=arch.heads[0],
        dropout=cfg.dropout,
        attention_dropout=cfg.attention_dropout,
        activation_dropout=cfg.activation_dropout,
        max_positions=max_positions,
        activation_fn="gelu",
    )
    base_architecture(args)
    return args


def to_roberta(static: StaticBertModel, task, cfg) -> tuple[torch.nn.Module, dict]:
    from fairseq.models.roberta import RobertaModel

    args = roberta_args(static.arch, cfg, static.max_positions())
    model = RobertaModel.build_model(args, task)
    state = dict(model.state_dict())
    for name, tensor in static.state_dict().items():
        target = roberta_name(name)
        if target not in state or state[target].shape != tensor.shape:
            raise CheckpointError(f"cannot map '{name}' onto roberta's '{target}'")
        state[target] = tensor
    state["encoder.lm_head.weight"] = state["encoder.sentence_encoder.embed_tokens.weight"]
    model.load_state_dict(state, strict=True)
    return model.eval(), {**vars(args), "_name": ROBERTA, "arch": ROBERTA}


def probe_logit_diff(reference: torch.nn.Module, exported: torch.nn.Module, task) -> float:
    """Max |MLM logit difference| over the real tokens of a fixed right-padded batch."""
    vocab, pad = len(task.source_dictionary), task.source_dictionary.pad()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(pad + 3, vocab, (3, 13), generator=g)
    tokens[0, -4:] = pad  # right padding, as fairseq's masked-LM batches are
    keep = tokens.ne(pad)
    with torch.no_grad():
        a = reference(tokens)[0]
        b = exported(tokens)[0]
    return float((a - b)[keep].abs().max())


def build_export(supernet, task, arch: BertArch, force_static: bool = False) -> ExportedModel:
    """Stock ``roberta`` for homogeneous subnets, else ``mos_static_bert``."""
    static = extract_subnet(supernet, arch)
    if arch.space.kind == "homogeneous" and not force_static:
        model, model_cfg = to_roberta(static, task, supernet.cfg)
        return ExportedModel(model, model_cfg, ROBERTA, "")
    static_cfg = {
        **cast("dict[str, Any]", OmegaConf.to_container(OmegaConf.structured(static.cfg))),
        "_name": STATIC_BERT,
    }
    return ExportedModel(static, static_cfg, STATIC_BERT, "forced by --static" if force_static else "per-layer shapes")


def export_task_cfg(cfg: dict, out_dir: str, task) -> dict:
    """Stock fairseq ``masked_lm`` task options (our supernet options dropped); criterion kept."""
    from dataclasses import fields

    from fairseq.tasks.masked_lm import MaskedLMConfig

    task_cfg = cfg["task"]
    out = {f.name: task_cfg.get(f.name) for f in fields(MaskedLMConfig) if f.name in task_cfg}
    out.update(_name="masked_lm", data=out_dir)
    return {**cfg, "task": out}


def export_dictionaries(task) -> dict:
    return {"dict.txt": task.source_dictionary}
