"""fairseq's label-smoothed cross-entropy computed straight from the logits, in row chunks.

fairseq's ``label_smoothed_cross_entropy`` materialises the fp32 log-probabilities of every
target position over the whole vocabulary, then the fp32 gradients of the gather and of the sum
over the vocabulary, their sum and the log-softmax backward: about seven passes over an
``N x V`` fp32 tensor (4,096 target tokens x 8,008 types: 131 MB each) per update, memory-bound
work that bf16 matmuls do not shorten. :func:`label_smoothed_nll_from_logits` gives the same two
sums (the loss and the nll) from ``logsumexp`` and the sum of each row's logits in one pass over
the logits, which also writes ``d loss / d logits`` (chunk by chunk, in the logits' dtype) for the
backward to hand on. The CPU bf16 mode
(:mod:`mos_fairseq.core.cpu_bf16`) uses it; the values equal fairseq's up to rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

CHUNK_ELEMENTS = 1 << 18  # logits per chunk: 1 MB of fp32 temporaries, which stay in the core's cache


class LabelSmoothedNLL(torch.autograd.Function):
    """``(loss, nll)`` of fairseq's ``label_smoothed_nll_loss(log_softmax(logits), target, eps,
    ignore_index, reduce=True)``, for ``logits [N, V]`` and ``target [N]``.

    One pass over the logits, chunk by chunk: each chunk is cast to fp32 once, its ``logsumexp``
    and row sum give the two sums, and its softmax gives ``d loss / d logits``, written in the
    logits' dtype. The backward scales that gradient by the loss's incoming gradient (fairseq
    gives 1: nothing to do) and adds the nll's only when the nll is differentiated too."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, epsilon: float, ignore_index: int) -> tuple[Tensor, Tensor]:
        n, v = logits.shape
        eps_i = epsilon / (v - 1)
        a, b = 1.0 - epsilon - eps_i, eps_i  # loss = a * nll + b * (sum over the vocabulary of -log p)
        rows = max(1, CHUNK_ELEMENTS // v)
        keep = target.ne(ignore_index)
        lse = torch.empty(n, dtype=torch.float32, device=logits.device)
        total = torch.empty(n, dtype=torch.float32, device=logits.device)
        grad = torch.empty_like(logits)
        minus_a = torch.tensor([[-a]], device=logits.device)
        work = torch.empty(min(rows, n), v, dtype=torch.float32, device=logits.device)  # one buffer for every chunk
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            z = work[: stop - start].copy_(logits[start:stop])  # worked in place
            total[start:stop] = z.sum(dim=-1)
            top = z.amax(dim=-1, keepdim=True)
            z.sub_(top).exp_()
            mass = z.sum(dim=-1, keepdim=True)
            lse[start:stop] = (top + mass.log()).squeeze(-1)
            # d/dz of a * (lse - z_t) + b * (v * lse - sum z) = (a + b v) softmax - a onehot - b
            z.mul_((a + b * v) / mass).sub_(b)
            z.scatter_add_(-1, target[start:stop, None], minus_a.expand(stop - start, 1))
            grad[start:stop] = z
        grad.index_fill_(0, keep.logical_not().nonzero().squeeze(1), 0.0)  # padding rows (few)
        picked = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1).float()
        nll = ((lse - picked) * keep).sum()
        smooth = ((lse * v - total) * keep).sum()
        ctx.save_for_backward(grad, logits, target, lse, keep)
        return a * nll + b * smooth, nll

    @staticmethod
    def backward(ctx, grad_loss: Tensor, grad_nll: Tensor):
        grad, logits, target, lse, keep = ctx.saved_tensors
        if not bool(grad_nll != 0.0):
            return (grad if bool(grad_loss == 1.0) else grad * grad_loss.to(grad.dtype)), None, None, None
        out = grad * grad_loss.to(grad.dtype)  # plus d nll / d z = softmax - onehot, chunk by chunk
        rows, g_nll = max(1, CHUNK_ELEMENTS // logits.size(1)), grad_nll.float()
        for start in range(0, logits.size(0), rows):
            stop = min(start + rows, logits.size(0))
            z = logits[start:stop].to(torch.float32, copy=True)
            z.sub_(lse[start:stop, None]).exp_().mul_(g_nll)
            z.scatter_add_(-1, target[start:stop, None], (-g_nll).expand(stop - start, 1))
            z.masked_fill_(~keep[start:stop, None], 0.0)
            out[start:stop] += z.to(out.dtype)
        return out, None, None, None


def label_smoothed_nll_from_logits(
    logits: Tensor, target: Tensor, epsilon: float, ignore_index: int
) -> tuple[Tensor, Tensor]:
    """fairseq's label-smoothed ``(loss, nll_loss)`` sums over the rows of ``logits [N, V]`` whose
    ``target`` is not ``ignore_index``, in fp32, from logits of any float dtype."""
    loss, nll = LabelSmoothedNLL.apply(logits, target, epsilon, ignore_index)
    return loss, nll
