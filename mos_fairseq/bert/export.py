"""Export of a BERT supernet subnet: bottlenecks and MoS collapsed into a static model.

A homogeneous subnet is written as stock fairseq ``roberta`` (loads without our plugin; fairseq's
``sentence_prediction`` fine-tunes it); other shapes as ``mos_static_bert`` (needs
``--user-dir``). Like MT export, the written model's MLM logits are checked against the supernet
subnet's before anything is written, and the output directory is swapped in atomically.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf

from mos_fairseq.bert.space import BertArch, BertSpace
from mos_fairseq.bert.static import StaticBertConfig, StaticBertModel, bert_arch_spec
from mos_fairseq.checkpoints import (
    BERT_SUPERNET_MODEL,
    load_supernet,
    num_updates,
    read_checkpoint,
    require_supernet,
)
from mos_fairseq.errors import CheckpointError
from mos_fairseq.export import MAX_LOGIT_DIFF, ExportResult, _prepare_out_dir, write_export
from mos_fairseq.models.collapse import collapsed_supernet_state, static_state_dict
from mos_fairseq.models.supertransformer import space_from_config
from mos_fairseq.modules.mos import MoSSpec

ROBERTA = "roberta"
STATIC_BERT = "mos_static_bert"


def extract_bert_subnet(supernet, arch: BertArch) -> StaticBertModel:
    """A static model holding ``arch``'s collapsed weights (eval mode)."""
    cfg = supernet.cfg
    static_cfg = StaticBertConfig(arch_spec=bert_arch_spec(arch), dropout=cfg.dropout,
                                  attention_dropout=cfg.attention_dropout, activation_dropout=cfg.activation_dropout,
                                  max_positions=supernet.max_positions())
    model = StaticBertModel(arch, supernet.dictionary, static_cfg)
    model.load_state_dict(static_state_dict(collapsed_supernet_state(supernet, arch), model))
    return model.eval()


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
        encoder_layers=arch.layers, encoder_embed_dim=arch.hidden[0], encoder_ffn_embed_dim=arch.ffn[0],
        encoder_attention_heads=arch.heads[0], dropout=cfg.dropout, attention_dropout=cfg.attention_dropout,
        activation_dropout=cfg.activation_dropout, max_positions=max_positions, activation_fn="gelu",
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


def probe_logit_diff(reference, exported, vocab: int, pad: int) -> float:
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(pad + 3, vocab, (3, 13), generator=g)
    tokens[0, -4:] = pad  # right padding, as fairseq's masked-LM batches are
    keep = tokens.ne(pad)
    with torch.no_grad():
        a = reference(tokens)[0]
        b = exported(tokens)[0]
    return float((a - b)[keep].abs().max())


def build_bert_export(supernet, task, arch: BertArch, force_static: bool = False):
    """``(model, model_cfg, kind)``: stock ``roberta`` for homogeneous subnets, else static."""
    static = extract_bert_subnet(supernet, arch)
    if arch.space.kind == "homogeneous" and not force_static:
        model, model_cfg = to_roberta(static, task, supernet.cfg)
        return model, model_cfg, ROBERTA
    static_cfg = {**OmegaConf.to_container(OmegaConf.structured(static.cfg)), "_name": STATIC_BERT}
    return static, static_cfg, STATIC_BERT


def export_bert_subnet(checkpoint: str | Path, arch_path: str | Path, out: str | Path, data: str | None = None,
                       overwrite: bool = False, force_static: bool = False) -> ExportResult:
    """Collapse ``arch`` out of the BERT supernet ``checkpoint`` into the directory ``out``."""
    checkpoint, out = Path(checkpoint), Path(out).absolute()
    state = read_checkpoint(checkpoint)
    require_supernet(state, checkpoint, (BERT_SUPERNET_MODEL,))
    space = space_from_config(state["cfg"].model, BertSpace)
    arch = BertArch.load(arch_path, space)
    _prepare_out_dir(out, overwrite)
    supernet, task, state = load_supernet(checkpoint, data, state)
    exported, model_cfg, kind = build_bert_export(supernet, task, arch, force_static)
    dictionary = task.source_dictionary
    diff = probe_logit_diff(supernet.bind(arch).eval(), exported, len(dictionary), dictionary.pad())
    if diff > MAX_LOGIT_DIFF:
        raise CheckpointError(f"collapsed subnet differs from the supernet's (max |logit diff| {diff:.3g}); nothing written")
    cfg = OmegaConf.to_container(state["cfg"], resolve=True)
    cfg["model"] = model_cfg
    cfg["task"] = masked_lm_task_cfg(cfg["task"], str(out))
    result = ExportResult(
        out_dir=str(out), checkpoint=str(out / "checkpoint.pt"), model=kind, needs_user_dir=kind != ROBERTA,
        stock_reason="" if kind == ROBERTA else ("forced by --static" if force_static else "per-layer shapes"),
        params=exported_params(exported), size_bytes=0, max_logit_diff=diff, source_checkpoint=str(checkpoint.absolute()),
        source_updates=num_updates(state), mos=MoSSpec.from_config(state["cfg"].model).kind, arch=arch.to_dict(),
    )
    write_export(out, cfg, exported, result, {"dict.txt": dictionary}, task.cfg.data, arch)
    return result


def masked_lm_task_cfg(task_cfg: dict, data_dir: str) -> dict:
    """Stock fairseq ``masked_lm`` task options (our supernet options dropped)."""
    from dataclasses import fields

    from fairseq.tasks.masked_lm import MaskedLMConfig

    out = {f.name: task_cfg.get(f.name) for f in fields(MaskedLMConfig) if f.name in task_cfg}
    out.update(_name="masked_lm", data=data_dir)
    return out


def exported_params(model: torch.nn.Module) -> int:
    """Distinct parameters (a tied output projection counts once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total
