"""Mixture-of-Supernets (Jawahar et al.): architecture-routed expert weights for linear layers.

A :class:`MoSLinear` holds ``m`` expert matrices ``E_i`` of the largest size. For an architecture
``a`` its weight is a mixture of the experts' top-left blocks:

* layer-wise: ``W_a = sum_i alpha_i E_i[:out, :in]`` with ``alpha = softmax(router(enc(a)))`` of
  size ``m``; one router per transformer layer, shared by fc1 and fc2 (it lives in
  :class:`~mos_fairseq.modules.ffn.ElasticFFNLayer`);
* neuron-wise: the linear layer's own router emits ``m * out_max`` scores; output neuron ``j`` owns
  scores ``j*m .. j*m+m-1`` and gets ``W_a[j] = sum_i beta_ji E_i[j, :in]`` with a softmax per
  neuron; the first ``out_a`` neurons are used.

Biases are mixed with the same weights. The router input is the architecture's normalised
10-feature encoding (:func:`arch_encoding`), the same for every layer, and routers compute in
fp32 even when the model runs in half precision. Because mixing commutes with taking the
top-left block, :meth:`MoSLinear.mixed` with the full sizes gives the tensor that export slices.

Initialisation: expert 0 takes the same random draw as :class:`ElasticLinear`'s weight would
(from the global generator, at the same point), while the other experts and the routers draw
from a separate ``generator``; so one seed builds the same shared weights with or without MoS,
and ``init="copy"`` (every expert a copy of expert 0) starts exactly as the standard supernet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Protocol, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mos_fairseq.base.errors import UserError

MOS_KINDS = ("none", "layer", "neuron")
MOS_INITS = ("independent", "copy")
ENCODING_SIZE = 10  # HAT's features; see Architecture.normalized_features


@dataclass(frozen=True)
class MoSSpec:
    """The MoS hyperparameters of a supernet (stored in its checkpoint's model config)."""

    kind: str = "none"
    experts: int = 2
    router_hidden: int = 128
    router_layers: int = 2
    router_dropout: float = 0.0
    init: str = "independent"
    encoding_size: int = ENCODING_SIZE  # router input: HAT's 10 features, or a BERT space's encoding

    def __post_init__(self) -> None:
        if self.kind not in MOS_KINDS:
            raise UserError(f"--mos must be one of {list(MOS_KINDS)}, got {self.kind!r}")
        if self.init not in MOS_INITS:
            raise UserError(f"--mos-init must be one of {list(MOS_INITS)}, got {self.init!r}")
        if self.experts < 1:
            raise UserError(f"--mos-experts must be >= 1, got {self.experts}")
        if self.router_hidden < 1 or self.router_layers < 1:
            raise UserError(
                f"--mos-router-hidden and --mos-router-layers must be >= 1, got {self.router_hidden}, {self.router_layers}"
            )
        if not 0.0 <= self.router_dropout < 1.0:
            raise UserError(f"--mos-router-dropout must be in [0, 1), got {self.router_dropout}")

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    @classmethod
    def from_config(cls, cfg: Any) -> MoSSpec:
        """Read ``mos``, ``mos_experts``, ... from a fairseq model config (defaults if absent)."""
        return cls(
            kind=str(getattr(cfg, "mos", "none") or "none"),
            experts=int(getattr(cfg, "mos_experts", 2)),
            router_hidden=int(getattr(cfg, "mos_router_hidden", 128)),
            router_layers=int(getattr(cfg, "mos_router_layers", 2)),
            router_dropout=float(getattr(cfg, "mos_router_dropout", 0.0)),
            init=str(getattr(cfg, "mos_init", "independent") or "independent"),
        )

    def describe(self) -> str:
        if not self.enabled:
            return "none (standard weight sharing)"
        return (
            f"{self.kind}-wise, {self.experts} experts, router {self.router_layers} layers x {self.router_hidden} "
            f"hidden, dropout {self.router_dropout}, init {self.init}"
        )


class Encodable(Protocol):
    """What the router reads of an architecture (any family's: :class:`mos_fairseq.core.family.Arch`)."""

    def normalized_features(self) -> list[float]: ...


def arch_encoding(arch: Encodable, device: torch.device | str | None = None) -> Tensor:
    """The router input: the architecture's normalised features as an fp32 vector (HAT's 10 for
    encoder-decoder architectures; any architecture type with ``normalized_features``)."""
    return torch.tensor(arch.normalized_features(), dtype=torch.float32, device=device)


def mos_generator(salt: int = 0) -> torch.Generator:
    """A CPU generator for MoS-only parameters, derived from the global seed without consuming it."""
    return torch.Generator().manual_seed((torch.initial_seed() * 1_000_003 + 7919 + salt) % (2**63))


def _uniform(tensor: Tensor, bound: float, generator: torch.Generator) -> None:
    values = torch.empty(tensor.shape, dtype=tensor.dtype).uniform_(-bound, bound, generator=generator)
    with torch.no_grad():
        tensor.copy_(values)


class ArchRouter(nn.Module):
    """MLP ``enc(a) -> scores`` (Linear-ReLU-...-Linear), always computed in fp32."""

    def __init__(
        self,
        out_features: int,
        hidden: int,
        layers: int,
        dropout: float,
        generator: torch.Generator,
        in_features: int = ENCODING_SIZE,
    ):
        super().__init__()
        sizes = [in_features] + [hidden] * (layers - 1) + [out_features]
        self.dropout = dropout
        self.layers = nn.ModuleList(nn.Linear(a, b, device="meta") for a, b in zip(sizes[:-1], sizes[1:])).to_empty(
            device="cpu"
        )
        # nn.Linear's default init, drawn from the MoS generator
        for linear in cast("Iterable[nn.Linear]", self.layers):
            bound = 1.0 / math.sqrt(linear.in_features)
            _uniform(linear.weight, bound, generator)
            _uniform(linear.bias, bound, generator)

    def forward(self, encoding: Tensor) -> Tensor:
        device_type = encoding.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            x = encoding.float()
            for i, linear in enumerate(cast("Iterable[nn.Linear]", self.layers)):
                if i > 0:
                    x = F.dropout(F.relu(x), self.dropout, self.training)
                x = F.linear(x, linear.weight.float(), linear.bias.float())
        return x


class MixExperts(torch.autograd.Function):
    """``W = sum_k per_row[k] * E[k, :out, :in]`` (and the biases), in as few memory passes as we can.

    ``per_row`` is ``[m, 1]`` (layer-wise: one weight per expert) or ``[m, out]`` (neuron-wise).
    Autograd through broadcast-multiply-and-sum would materialise ``m x out x in`` temporaries in
    both directions; here the forward accumulates in place and the backward writes each expert's
    gradient slice once. The result equals the plain formula exactly (same operations per element).
    """

    @staticmethod
    def forward(ctx, experts: Tensor, biases: Tensor, per_row: Tensor, out_dim: int, in_dim: int):
        weight = experts[0, :out_dim, :in_dim] * per_row[0, :, None]
        bias = biases[0, :out_dim] * per_row[0]
        for k in range(1, experts.shape[0]):
            weight.addcmul_(experts[k, :out_dim, :in_dim], per_row[k, :, None])
            bias.addcmul_(biases[k, :out_dim], per_row[k])
        ctx.save_for_backward(experts, biases, per_row)
        ctx.dims = (out_dim, in_dim)
        return weight, bias

    @staticmethod
    def backward(ctx, grad_weight: Tensor, grad_bias: Tensor):
        experts, biases, per_row = ctx.saved_tensors
        out_dim, in_dim = ctx.dims
        m = experts.shape[0]
        grad_experts = grad_biases = grad_per_row = None
        full = (out_dim, in_dim) == tuple(experts.shape[1:])
        if ctx.needs_input_grad[0]:  # zero-filled only where the subnet leaves part of the experts unused
            grad_experts = experts.new_empty(experts.shape) if full else experts.new_zeros(experts.shape)
            for k in range(m):
                torch.mul(grad_weight, per_row[k, :, None], out=grad_experts[k, :out_dim, :in_dim])
        if ctx.needs_input_grad[1]:
            grad_biases = (
                biases.new_empty(biases.shape) if out_dim == biases.shape[1] else biases.new_zeros(biases.shape)
            )
            for k in range(m):
                torch.mul(grad_bias, per_row[k], out=grad_biases[k, :out_dim])
        if ctx.needs_input_grad[2]:
            # d/d per_row[k, j] = sum_i gW[j, i] E_k[j, i] + gb[j] b_k[j], without an out x in temporary
            rows = torch.einsum("oi,koi->ko", grad_weight, experts[:, :out_dim, :in_dim])
            grad_per_row = rows + grad_bias[None] * biases[:, :out_dim]
            if per_row.shape[1] == 1:
                grad_per_row = grad_per_row.sum(-1, keepdim=True)
        return grad_experts, grad_biases, grad_per_row, None, None


class MoSLinear(nn.Module):
    """A mixture of ``m`` elastic ``out_max x in_max`` linear layers (see the module docstring).

    ``router`` is given for neuron-wise MoS (``m * out_max`` outputs); layer-wise layers get their
    mixing weights from outside.
    """

    def __init__(self, in_max: int, out_max: int, spec: MoSSpec, generator: torch.Generator):
        super().__init__()
        self.in_max, self.out_max, self.num_experts, self.kind = in_max, out_max, spec.experts, spec.kind
        self.experts_weight = nn.Parameter(torch.empty(spec.experts, out_max, in_max))
        self.experts_bias = nn.Parameter(torch.zeros(spec.experts, out_max))
        nn.init.xavier_uniform_(self.experts_weight[0])  # the draw ElasticLinear would make
        with torch.no_grad():
            for i in range(1, spec.experts):
                if spec.init == "copy":
                    self.experts_weight[i].copy_(self.experts_weight[0])
                else:
                    nn.init.xavier_uniform_(self.experts_weight[i], generator=generator)
        self.router = (
            ArchRouter(
                spec.experts * out_max,
                spec.router_hidden,
                spec.router_layers,
                spec.router_dropout,
                generator,
                spec.encoding_size,
            )
            if spec.kind == "neuron"
            else None
        )

    def neuron_mixing(self, encoding: Tensor) -> Tensor:
        """Neuron-wise mixing weights ``[out_max, m]`` (rows sum to 1) for an encoding."""
        if self.router is None:
            raise RuntimeError("layer-wise MoSLinear has no router of its own")
        scores = self.router(encoding).view(self.out_max, self.num_experts)
        return torch.softmax(scores, dim=-1)

    def mixed(self, in_dim: int, out_dim: int, mix: Tensor) -> tuple[Tensor, Tensor]:
        """The architecture-specific ``(weight, bias)`` of size ``out_dim x in_dim``.

        ``mix`` is ``[m]`` (layer-wise) or ``[out_max, m]`` (neuron-wise).
        """
        per_row = mix[:, None] if mix.dim() == 1 else mix[:out_dim].t()  # [m, 1] or [m, out]
        per_row = per_row.to(self.experts_weight.dtype)
        weight, bias = MixExperts.apply(self.experts_weight, self.experts_bias, per_row, out_dim, in_dim)
        return weight, bias

    def forward(self, x: Tensor, in_dim: int, out_dim: int, mix: Tensor) -> Tensor:
        weight, bias = self.mixed(in_dim, out_dim, mix)
        return F.linear(x, weight, bias)

    def extra_repr(self) -> str:
        return f"in_max={self.in_max}, out_max={self.out_max}, experts={self.num_experts}, kind={self.kind}"
