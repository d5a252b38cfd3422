"""Pieces shared by the supernet and the static transformer: fairseq's encoder-output format,
its beam reordering, the arbitrary encoder-decoder attention memory (HAT), and a sublayer's residual
connection with its layer norm (post-norm, HAT's; or pre-norm, which trains deep encoders at a high
learning rate).
"""

from typing import Callable, Dict, List

import torch
from torch import Tensor

from mos_fairseq.modules.dropout import dropout

EncoderOut = Dict[str, List[Tensor]]


def encoder_out_dict(states: list[Tensor], pad_mask: Tensor, src_tokens: Tensor, src_lengths) -> EncoderOut:
    """fairseq's encoder-output format (``T x B x C``); ``encoder_states`` holds the outputs of the
    last layers the decoder reads (its largest encoder-decoder span), ``encoder_out`` the last one."""
    return {
        "encoder_out": [states[-1]],
        "encoder_padding_mask": [pad_mask],
        "encoder_embedding": [],
        "encoder_states": states,
        "src_tokens": [],
        "src_lengths": [src_lengths] if src_lengths is not None else [],
    }


def reorder_encoder_out(encoder_out: EncoderOut, new_order: Tensor) -> EncoderOut:
    """The encoder output for ``new_order`` (beam search calls this at every step). The last layer's
    output is both ``encoder_out`` and the last of ``encoder_states``: it is reordered once."""
    states = [t.index_select(1, new_order) for t in encoder_out["encoder_states"]]
    last = encoder_out["encoder_out"]
    shared = bool(states) and len(last) == 1 and last[0] is encoder_out["encoder_states"][-1]
    return {
        "encoder_out": [states[-1]] if shared else [t.index_select(1, new_order) for t in last],
        "encoder_padding_mask": [t.index_select(0, new_order) for t in encoder_out["encoder_padding_mask"]],
        "encoder_embedding": [],
        "encoder_states": states,
        "src_tokens": [],
        "src_lengths": [t.index_select(0, new_order) for t in encoder_out["src_lengths"]],
    }


def cross_attention_memory(
    encoder_out: EncoderOut, span: int, with_memory: bool = True
) -> tuple[Tensor | None, Tensor | None]:
    """Batch-first keys for a span: the last ``span`` encoder layers concatenated along time."""
    pad = encoder_out["encoder_padding_mask"][0] if encoder_out["encoder_padding_mask"] else None
    mask = pad.repeat(1, span) if pad is not None and bool(pad.any()) else None
    if not with_memory:
        return None, mask
    memory = torch.cat([s.transpose(0, 1) for s in encoder_out["encoder_states"][-span:]], dim=1)
    return memory, mask


def residual_block(
    x: Tensor,
    sublayer: Callable[[Tensor], Tensor],
    norm: Callable[[Tensor], Tensor],
    normalize_before: bool,
    p: float,
    training: bool,
) -> Tensor:
    """One sublayer (attention or FFN) with its residual connection: post-norm ``norm(x + drop(f(x)))``, or
    with ``normalize_before`` pre-norm ``x + drop(f(norm(x)))`` (fairseq's ``--*-normalize-before``)."""
    if normalize_before:
        return x + dropout(sublayer(norm(x)), p, training)
    return norm(x + dropout(sublayer(x), p, training))


def embed_inputs(tokens: Tensor, embed, positions, scale: float, incremental_state=None) -> Tensor:
    """``scale * embed(tokens) + positions``; while decoding incrementally, the last step only."""
    pos = positions(tokens, incremental_state=incremental_state)
    if incremental_state is not None:
        tokens, pos = tokens[:, -1:], pos[:, -1:]
    return scale * embed(tokens) + pos


def run_decoder_stack(x: Tensor, layers, spans, encoder_out: EncoderOut, incremental_state, run_layer) -> Tensor:
    """Run decoder layers, giving layer ``i`` the memory of the last ``spans[i]`` encoder layers.

    ``run_layer(i, layer, x, memory, memory_mask)`` runs one layer. Once a layer has cached its
    projected encoder keys (incremental decoding), it gets ``memory=None`` and nothing is
    concatenated again.
    """
    memories: dict = {}  # (span, with keys) -> (memory, mask), built once per call
    for i, (layer, span) in enumerate(zip(layers, spans)):
        with_memory = incremental_state is None or not layer.encoder_attn.has_static_kv(incremental_state)
        key = (span, with_memory)
        if key not in memories:
            memories[key] = cross_attention_memory(encoder_out, span, with_memory)
        memory, memory_mask = memories[key]
        x = run_layer(i, layer, x, memory, memory_mask)
    return x


def run_encoder_stack(
    x: Tensor,
    src_tokens: Tensor,
    padding_idx: int,
    layers,
    run_layer,
    src_lengths,
    keep_states: int | None = None,
    final_norm: Callable[[Tensor], Tensor] | None = None,
) -> EncoderOut:
    """Zero padded positions, run ``run_layer(i, layer, x, pad_mask)`` per layer, keep the outputs
    of the last ``keep_states`` layers (default: every layer) for the encoder-decoder attention, each
    through ``final_norm`` when given (a pre-norm encoder's last layer norm, as fairseq's on its output)."""
    pad_mask = src_tokens.eq(padding_idx)
    has_pads = bool(pad_mask.any())
    if has_pads:
        x = x * (1 - pad_mask.unsqueeze(-1).type_as(x))
    states = []
    for i, layer in enumerate(layers):
        x = run_layer(i, layer, x, pad_mask if has_pads else None)
        if keep_states is None or i >= len(layers) - keep_states:
            states.append(x.transpose(0, 1))
    if final_norm is not None:
        states = [final_norm(s) for s in states]
    return encoder_out_dict(states, pad_mask, src_tokens, src_lengths)
