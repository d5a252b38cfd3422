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
    and row sum give the two sums, and (when the logits need a gradient) its softmax gives
    ``d loss / d logits``, written in the logits' dtype: into a new tensor, or with ``overwrite``
    into the logits themselves (no fresh 65 MB to page in per update; for callers that read the
    logits no more). The backward scales that gradient by the loss's incoming gradient (fairseq
    gives 1: nothing to do); when the nll is differentiated too, it adds ``softmax - onehot``,
    the softmax recovered from the saved gradient."""

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, epsilon: float, ignore_index: int, overwrite: bool):
        n, v = logits.shape
        eps_i = epsilon / (v - 1)
        a, b = 1.0 - epsilon - eps_i, eps_i  # loss = a * nll + b * (sum over the vocabulary of -log p)
        rows, needs_grad = max(1, CHUNK_ELEMENTS // v), ctx.needs_input_grad[0]
        keep = target.ne(ignore_index)
        picked = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1).float()
        lse = torch.empty(n, dtype=torch.float32, device=logits.device)
        total = torch.empty(n, dtype=torch.float32, device=logits.device)
        in_place = overwrite and logits.is_contiguous()
        grad = (logits if in_place else torch.empty_like(logits)) if needs_grad else None
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
            if grad is not None:
                # d/dz of a * (lse - z_t) + b * (v * lse - sum z) = (a + b v) softmax - a onehot - b
                z.mul_((a + b * v) / mass).sub_(b)
                z.scatter_add_(-1, target[start:stop, None], minus_a.expand(stop - start, 1))
                grad[start:stop] = z
        nll = ((lse - picked) * keep).sum()
        smooth = ((lse * v - total) * keep).sum()
        if grad is not None:
            grad.index_fill_(0, keep.logical_not().nonzero().squeeze(1), 0.0)  # padding rows (few)
            ctx.save_for_backward(grad, target, keep)
            ctx.weights = (a, b, v)
        return a * nll + b * smooth, nll

    @staticmethod
    def backward(ctx, grad_loss: Tensor, grad_nll: Tensor):
        grad, target, keep = ctx.saved_tensors
        if not bool(grad_nll != 0.0):
            return (grad if bool(grad_loss == 1.0) else grad * grad_loss.to(grad.dtype)), None, None, None, None
        a, b, v = ctx.weights
        out = grad * grad_loss.to(grad.dtype)  # plus g_nll * (softmax - onehot) on the rows that count:
        # softmax = (grad + b + a onehot) / (a + b v), so softmax - onehot = (grad + b - b v onehot) / (a + b v)
        nll_part = grad.to(torch.float32, copy=True).add_(b)
        nll_part.scatter_add_(-1, target[:, None], torch.full_like(nll_part[:, :1], -b * v))
        nll_part.mul_(grad_nll.float() / (a + b * v)).mul_(keep[:, None])
        return out.add_(nll_part.to(out.dtype)), None, None, None, None


def label_smoothed_nll_from_logits(
    logits: Tensor, target: Tensor, epsilon: float, ignore_index: int, overwrite: bool = False
) -> tuple[Tensor, Tensor]:
    """fairseq's label-smoothed ``(loss, nll_loss)`` sums over the rows of ``logits [N, V]`` whose
    ``target`` is not ``ignore_index``, in fp32, from logits of any float dtype. With ``overwrite``
    the logits' memory receives their gradient (contiguous logits only): the caller must not read
    them after this call."""
    loss, nll = LabelSmoothedNLL.apply(logits, target, epsilon, ignore_index, overwrite)
    return loss, nll
