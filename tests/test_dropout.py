"""The dropout of both families (mos_fairseq.modules.dropout): fairseq's F.dropout outside CPU
autocast, a mask from 16-bit uniforms under it (bf16 training)."""

import pytest
import torch
import torch.nn.functional as F

from mos_fairseq.modules.dropout import LEVELS, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_mask_keeps_one_minus_p_of_the_elements_and_the_scale_keeps_the_mean(p):
    torch.manual_seed(0)
    x = torch.ones(512, 1024)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = dropout(x, p, True)
    kept = out.ne(0)
    threshold = round(p * LEVELS)
    scale = LEVELS / (LEVELS - threshold)
    assert abs(kept.float().mean().item() - (1 - threshold / LEVELS)) < 0.003
    assert torch.equal(out[kept], torch.full_like(out[kept], scale))  # every kept element scaled alike
    assert abs(out.mean().item() - 1.0) < 0.01
    assert abs(kept[:, 0::2].float().mean() - kept[:, 1::2].float().mean()) < 0.005  # both halves of a draw used


def test_backward_applies_the_forward_mask_and_scale():
    torch.manual_seed(1)
    x = torch.randn(64, 300, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = dropout(x, 0.3, True)
    grad = torch.randn_like(out)
    out.backward(grad)
    mask, scale = out.detach().ne(0), LEVELS / (LEVELS - round(0.3 * LEVELS))
    assert torch.allclose(x.grad, grad * mask * scale)
    assert torch.allclose(out, x.detach() * mask * scale)


def test_outside_autocast_and_in_evaluation_it_is_fairseqs_dropout():
    x = torch.randn(32, 50)
    torch.manual_seed(3)
    ours = dropout(x, 0.3, True)
    torch.manual_seed(3)
    assert torch.equal(ours, F.dropout(x, 0.3, True))  # the same draws: fp32 training is unchanged
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert dropout(x, 0.3, False) is x and dropout(x, 0.0, True) is x
        assert torch.equal(dropout(x, 1.0, True), torch.zeros_like(x))


def test_masks_follow_the_seed():
    masks = []
    for _ in range(2):
        torch.manual_seed(7)
        masks.append(keep_mask(torch.Size([9, 13]), 0.3)[0])
    assert torch.equal(*masks) and masks[0].shape == (9, 13) and masks[0].dtype == torch.bool
