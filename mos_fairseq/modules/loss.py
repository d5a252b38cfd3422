"""fairseq's label-smoothed cross-entropy computed straight from the logits, in row chunks.

fairseq's ``label_smoothed_cross_entropy`` materialises the fp32 log-probabilities of every
target position over the whole vocabulary, then the fp32 gradients of the gather and of the sum
over the vocabulary, their sum and the log-softmax backward: about seven passes over an
``N x V`` fp32 tensor (4,096 target tokens x 8,008 types: 131 MB each) per update, memory-bound
work that bf16 matmuls do not shorten. :func:`label_smoothed_nll_from_logits` gives the same two
sums (the loss and the nll) from ``logsumexp`` and the sum of each row's logits, and its backward
writes ``d loss / d logits`` once, chunk by chunk, in the logits' dtype. The CPU bf16 mode
(:mod:`mos_fairseq.core.cpu_bf16`) uses it; the values equal fairseq's up to rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

CHUNK_ELEMENTS = 1 << 18  # logits per chunk: 1 MB of fp32 temporaries, which stay in the core's cache


class LabelSmoothedNLL(torch.autograd.Function):
    """``(loss, nll)`` of fairseq's ``label_smoothed_nll_loss(log_softmax(logits), target, eps,
    ignore_index, reduce=True)``, for ``logits [N, V]`` and ``target [N]``."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, epsilon: float, ignore_index: int) -> tuple[Tensor, Tensor]:
        n, v = logits.shape
        rows = max(1, CHUNK_ELEMENTS // v)
        lse = torch.empty(n, dtype=torch.float32, device=logits.device)
        total = torch.empty(n, dtype=torch.float32, device=logits.device)
        for start in range(0, n, rows):
            z = logits[start : start + rows].float()
            lse[start : start + rows] = torch.logsumexp(z, dim=-1)
            total[start : start + rows] = z.sum(dim=-1)
        keep = target.ne(ignore_index)
        picked = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1).float()
        nll = ((lse - picked) * keep).sum()
        smooth = ((lse * v - total) * keep).sum()
        eps_i = epsilon / (v - 1)
        ctx.save_for_backward(logits, target, lse, keep)
        ctx.weights = (1.0 - epsilon - eps_i, eps_i)
        return (1.0 - epsilon - eps_i) * nll + eps_i * smooth, nll

    @staticmethod
    def backward(ctx, grad_loss: Tensor, grad_nll: Tensor):
        logits, target, lse, keep = ctx.saved_tensors
        a, b = ctx.weights
        n, v = logits.shape
        # d/dz of a * (lse - z_t) + b * (v * lse - sum z): (a + b v) softmax - a onehot - b; the nll adds softmax - onehot
        g_loss, g_nll = grad_loss.float(), grad_nll.float()
        coef_p, coef_t, coef_1 = g_loss * (a + b * v) + g_nll, g_loss * a + g_nll, g_loss * b
        grad = torch.empty_like(logits)
        rows = max(1, CHUNK_ELEMENTS // v)
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            g = logits[start:stop].to(torch.float32, copy=True)  # a copy also of fp32 logits: worked in place
            g.sub_(lse[start:stop, None]).exp_().mul_(coef_p).sub_(coef_1)
            g.scatter_add_(-1, target[start:stop, None], (-coef_t).expand(stop - start, 1))
            g[~keep[start:stop]] = 0.0  # padding rows (few)
            grad[start:stop] = g
        return grad, None, None, None


def label_smoothed_nll_from_logits(
    logits: Tensor, target: Tensor, epsilon: float, ignore_index: int
) -> tuple[Tensor, Tensor]:
    """fairseq's label-smoothed ``(loss, nll_loss)`` sums over the rows of ``logits [N, V]`` whose
    ``target`` is not ``ignore_index``, in fp32, from logits of any float dtype."""
    loss, nll = LabelSmoothedNLL.apply(logits, target, epsilon, ignore_index)
    return loss, nll
