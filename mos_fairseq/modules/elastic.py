"""Elastic layers: a supernet layer holds its largest weights and computes with a prefix slice.

The active sizes come from the caller on every call (they travel with the architecture), so a
module never stores a "current subnet". ``sliced_*`` return the exact tensors a static model of
that size needs, which is how export collapses a subnet.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SlicedLinear(torch.autograd.Function):
    """``F.linear(x, weight[:out, :in], bias[:out])`` whose backward writes the full-size weight
    gradient once: the block the subnet used gets ``grad_out^T x``, only the rest is zero-filled.
    Autograd through the two slices would zero-fill a full-size tensor per sliced dimension and copy
    the block in each time. Forward and gradients equal the plain expression exactly.

    Under autocast it computes as autocast's own ``linear`` would: ``x`` and the weight block cast
    to the autocast dtype (and saved so for backward, which runs outside autocast in their dtype);
    the gradients of the fp32 parameters are fp32 (the bias gradient summed in fp32)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, out_dim: int, in_dim: int) -> Tensor:
        block = weight[:out_dim, :in_dim]
        b = bias[:out_dim] if bias is not None else None
        device = x.device.type
        if torch.is_autocast_enabled(device):
            dtype = torch.get_autocast_dtype(device)
            x, block, b = x.to(dtype), block.to(dtype), b.to(dtype) if b is not None else None
        ctx.save_for_backward(x, block)
        ctx.weight_shape, ctx.weight_dtype = weight.shape, weight.dtype
        ctx.dims = (out_dim, in_dim)
        ctx.has_bias = bias is not None
        with torch.autocast(device, enabled=False):
            return F.linear(x, block, b)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, block = ctx.saved_tensors
        out_dim, in_dim = ctx.dims
        grad_x = grad_weight = grad_bias = None
        grad_out = grad_out.to(block.dtype)
        if ctx.needs_input_grad[0]:
            grad_x = grad_out.matmul(block)
        g2 = grad_out.reshape(-1, out_dim)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_out.new_empty(ctx.weight_shape, dtype=ctx.weight_dtype)
            grad_weight[out_dim:].zero_()
            grad_weight[:out_dim, in_dim:].zero_()
            grad_weight[:out_dim, :in_dim].copy_(g2.t().mm(x.reshape(-1, in_dim)))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_out.new_zeros(ctx.weight_shape[0], dtype=ctx.weight_dtype)
            grad_bias[:out_dim] = g2.sum(0, dtype=ctx.weight_dtype)
        return grad_x, grad_weight, grad_bias, None, None


class ElasticLinear(nn.Module):
    """``nn.Linear(in_max, out_max)`` that runs as its top-left ``out x in`` block."""

    def __init__(self, in_max: int, out_max: int, bias: bool = True, init_gain: float = 1.0) -> None:
        super().__init__()
        self.in_max, self.out_max = in_max, out_max
        self.weight = nn.Parameter(torch.empty(out_max, in_max))
        self.bias = nn.Parameter(torch.zeros(out_max)) if bias else None
        nn.init.xavier_uniform_(self.weight, gain=init_gain)

    def sliced(self, in_dim: int, out_dim: int) -> tuple[Tensor, Tensor | None]:
        # at full size, the parameters themselves: a slice's backward would fill a full-size zero
        # gradient and copy into it, for nothing
        weight = self.weight if (out_dim, in_dim) == (self.out_max, self.in_max) else self.weight[:out_dim, :in_dim]
        bias = self.bias if self.bias is None or out_dim == self.out_max else self.bias[:out_dim]
        return weight, bias

    def forward(self, x: Tensor, in_dim: int, out_dim: int) -> Tensor:
        if (out_dim, in_dim) == (self.out_max, self.in_max) or not torch.is_grad_enabled():
            weight, bias = self.sliced(in_dim, out_dim)
            return F.linear(x, weight, bias)
        return SlicedLinear.apply(x, self.weight, self.bias, out_dim, in_dim)

    def extra_repr(self) -> str:
        return f"in_max={self.in_max}, out_max={self.out_max}, bias={self.bias is not None}"


class ElasticLayerNorm(nn.Module):
    """``nn.LayerNorm(max_dim)`` that normalises over the first ``dim`` features."""

    def __init__(self, max_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.max_dim, self.eps = max_dim, eps
        self.weight = nn.Parameter(torch.ones(max_dim))
        self.bias = nn.Parameter(torch.zeros(max_dim))

    def sliced(self, dim: int) -> tuple[Tensor, Tensor]:
        if dim == self.max_dim:
            return self.weight, self.bias
        return self.weight[:dim], self.bias[:dim]

    def forward(self, x: Tensor, dim: int) -> Tensor:
        weight, bias = self.sliced(dim)
        return F.layer_norm(x, (dim,), weight, bias, self.eps)


class ElasticEmbedding(nn.Module):
    """Token embedding ``[num_embeddings, max_dim]`` used as its first ``dim`` columns."""

    def __init__(self, num_embeddings: int, max_dim: int, padding_idx: int) -> None:
        super().__init__()
        self.num_embeddings, self.max_dim, self.padding_idx = num_embeddings, max_dim, padding_idx
        self.weight = nn.Parameter(torch.empty(num_embeddings, max_dim))
        # fairseq's transformer initialisation: N(0, d^-1/2) with a zero padding row
        nn.init.normal_(self.weight, mean=0.0, std=max_dim**-0.5)
        with torch.no_grad():
            self.weight[padding_idx].zero_()

    def sliced(self, dim: int) -> Tensor:
        return self.weight if dim == self.max_dim else self.weight[:, :dim]

    def forward(self, tokens: Tensor, dim: int) -> Tensor:
        return F.embedding(tokens, self.sliced(dim), self.padding_idx)

    def project_out(self, x: Tensor, dim: int) -> Tensor:
        """Tied output projection: logits over the vocabulary from ``dim`` features."""
        return F.linear(x, self.sliced(dim))


def scaled_dropout(p: float, active_dim: int, max_dim: int) -> float:
    """HAT's rule: a narrower subnet uses proportionally less dropout."""
    return p * active_dim / max_dim


def embed_scale(dim: int) -> float:
    return math.sqrt(dim)
