"""The elastic feed-forward block shared by every supernet layer (MT encoder/decoder, BERT).

:class:`ElasticFFNLayer` is a base class for transformer layers: it owns ``fc1``/``fc2`` (plain
:class:`~mos_fairseq.modules.elastic.ElasticLinear` for the standard supernet, or
:class:`~mos_fairseq.modules.mos.MoSLinear`) and, for layer-wise MoS, the layer's router
``ffn_router``. The parameter names stay ``fc1``/``fc2`` as in fairseq's transformer layers, so
collapsing a subnet maps names one to one.
"""

from __future__ import annotations

from typing import Callable, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mos_fairseq.modules.dropout import dropout
from mos_fairseq.modules.elastic import ElasticLinear
from mos_fairseq.modules.mos import ArchRouter, MoSLinear, MoSSpec

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
}  # HAT/fairseq transformer; BERT/RoBERTa


class ElasticFFNLayer(nn.Module):
    """Base class: ``act(x W1^T + b1) W2^T + b2`` at active widths, optionally MoS-routed."""

    fc1: ElasticLinear | MoSLinear
    fc2: ElasticLinear | MoSLinear
    ffn_router: ArchRouter | None

    def build_ffn(
        self, dim_max: int, ffn_max: int, mos: MoSSpec, generator: torch.Generator | None, activation: str = "relu"
    ) -> None:
        self.mos = mos
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown FFN activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
        self.activation = ACTIVATIONS[activation]
        if not mos.enabled:
            self.fc1, self.fc2, self.ffn_router = ElasticLinear(dim_max, ffn_max), ElasticLinear(ffn_max, dim_max), None
            return
        if generator is None:
            raise ValueError("MoS layers need a generator for their expert and router initialisation")
        self.fc1 = MoSLinear(dim_max, ffn_max, mos, generator)
        self.fc2 = MoSLinear(ffn_max, dim_max, mos, generator)
        self.ffn_router = (
            ArchRouter(
                mos.experts, mos.router_hidden, mos.router_layers, mos.router_dropout, generator, mos.encoding_size
            )
            if mos.kind == "layer"
            else None
        )

    def ffn_mixing(self, encoding: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """Mixing weights for fc1 and fc2 (``None`` for the standard supernet)."""
        if not self.mos.enabled:
            return None, None
        if encoding is None:
            raise ValueError("a MoS layer needs the architecture encoding")
        if self.ffn_router is not None:
            alpha = torch.softmax(self.ffn_router(encoding), dim=-1)
            return alpha, alpha
        fc1, fc2 = cast(MoSLinear, self.fc1), cast(MoSLinear, self.fc2)  # mos.enabled: MoS layers
        return fc1.neuron_mixing(encoding), fc2.neuron_mixing(encoding)

    def ffn(self, x: Tensor, dim: int, ffn_dim: int, encoding: Tensor | None, activation_dropout: float) -> Tensor:
        mix1, mix2 = self.ffn_mixing(encoding)
        if mix1 is None:
            h = self.activation(self.fc1(x, dim, ffn_dim))
            h = dropout(h, activation_dropout, self.training)
            return self.fc2(h, ffn_dim, dim)
        h = self.activation(self.fc1(x, dim, ffn_dim, mix1))
        h = dropout(h, activation_dropout, self.training)
        return self.fc2(h, ffn_dim, dim, mix2)

    def collapsed_ffn(self, encoding: Tensor | None) -> dict[str, tuple[Tensor, Tensor]]:
        """Full-size ``{"fc1": (weight, bias), "fc2": ...}`` of the architecture with this encoding.

        Slicing these to the active sizes gives exactly the weights :meth:`ffn` computes with.
        """
        mix1, mix2 = self.ffn_mixing(encoding)
        if mix1 is None:  # the standard supernet: ElasticLinear layers, with biases
            el1, el2 = cast(ElasticLinear, self.fc1), cast(ElasticLinear, self.fc2)
            assert el1.bias is not None and el2.bias is not None
            return {"fc1": (el1.weight, el1.bias), "fc2": (el2.weight, el2.bias)}
        assert mix2 is not None  # ffn_mixing gives both or neither
        mos1, mos2 = cast(MoSLinear, self.fc1), cast(MoSLinear, self.fc2)
        return {
            "fc1": mos1.mixed(mos1.in_max, mos1.out_max, mix1),
            "fc2": mos2.mixed(mos2.in_max, mos2.out_max, mix2),
        }
