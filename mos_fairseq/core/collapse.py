"""Collapse one subnet of a supernet into plain tensors: the first step of export.

For an architecture, every elastic weight reduces to its top-left block and every MoS layer to
its experts mixed with that architecture's router output. :func:`collapsed_supernet_state` gives
the supernet's state with each MoS ``fc1``/``fc2`` replaced by its full-size mixed ``weight`` and
``bias``; :func:`static_state_dict` then slices every tensor a static model needs out of it by
name (the static model's names equal the supernet's).
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor, nn

from mos_fairseq.modules.mos import arch_encoding


@torch.no_grad()
def collapsed_supernet_state(supernet, arch) -> Dict[str, Tensor]:
    """The supernet's state dict with MoS FFNs mixed for ``arch`` (routers in eval mode); any
    supernet with ``mos`` and ``ffn_layers(arch)`` (``[(state prefix, layer)]`` of active layers)."""
    state = dict(supernet.state_dict())
    if not supernet.mos.enabled:
        return state
    was_training = supernet.training
    supernet.eval()
    try:
        device = next(supernet.parameters()).device
        encoding = arch_encoding(arch, device)
        for prefix, layer in supernet.ffn_layers(arch):
            for name, (weight, bias) in layer.collapsed_ffn(encoding).items():
                state[f"{prefix}.{name}.weight"] = weight
                state[f"{prefix}.{name}.bias"] = bias
    finally:
        supernet.train(was_training)
    return state


def static_state_dict(supernet_state: Dict[str, Tensor], static_model: nn.Module) -> Dict[str, Tensor]:
    """Each static tensor is the top-left block of the (collapsed) supernet tensor of the same name."""
    out = {}
    for name, param in static_model.state_dict().items():
        if name not in supernet_state:
            raise KeyError(f"supernet has no tensor '{name}'")
        source = supernet_state[name]
        out[name] = source[tuple(slice(0, n) for n in param.shape)].detach().clone().contiguous()
    return out
