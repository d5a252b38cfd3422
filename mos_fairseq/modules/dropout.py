"""Dropout for every block of both families: ``F.dropout``, except under CPU autocast (``--cpu --bf16``
training, :mod:`mos_fairseq.core.cpu_bf16`), where the mask comes from cheaper random numbers.

``F.dropout`` on CPU draws one Bernoulli sample per element (``aten::bernoulli_``, about 8 ns each
on one core): 12% of a bf16 training update of a 256-wide Transformer, as much as in fp32, since
its cost does not depend on the precision. :func:`dropout` under CPU autocast draws 32-bit
integers instead and reads each as two 16-bit uniforms (one draw per two elements, about 3x
cheaper), drops an element where its uniform falls below ``p`` rounded to 1/65,536, and scales the
rest by ``1 / (1 - p)`` for that rounded ``p``, so the expected output stays ``x``. The mask is kept
as booleans for the backward. Both paths draw from torch's default generator, so fairseq's seeding
keeps runs reproducible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LEVELS = 1 << 16  # a 16-bit uniform per element


def keep_mask(shape: torch.Size, p: float, generator: torch.Generator | None = None) -> tuple[Tensor, float]:
    """A boolean mask of ``shape``, True with probability ``1 - p`` (``p`` rounded to 1/65,536), and
    the scale ``1 / (1 - p)`` of that rounded ``p``."""
    n = shape.numel()
    threshold = round(p * LEVELS)
    draws = torch.randint(-(1 << 31), 1 << 31, ((n + 1) // 2,), dtype=torch.int32, generator=generator)
    uniforms = draws.view(torch.int16)[:n].view(shape)
    return uniforms.ge(threshold - LEVELS // 2), LEVELS / (LEVELS - threshold)


class MaskedScale(torch.autograd.Function):
    """``x * mask * scale`` with ``mask`` boolean; the backward applies the same mask and scale."""

    @staticmethod
    def forward(ctx, x: Tensor, mask: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return x.mul(mask).mul_(scale)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (mask,) = ctx.saved_tensors
        return grad.mul(mask).mul_(ctx.scale), None, None


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout(x, p, training)``; under CPU autocast in training, with the mask of :func:`keep_mask`."""
    if not (training and 0.0 < p < 1.0 and x.device.type == "cpu" and torch.is_autocast_enabled("cpu")):
        return F.dropout(x, p, training)
    mask, scale = keep_mask(x.shape, p)
    return MaskedScale.apply(x, mask, scale)
