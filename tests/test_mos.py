"""Mixture-of-Supernets layers: mixing semantics, initialisation, fp32 routers, training signal."""

import random

import pytest
import torch
import torch.nn.functional as F

from mos_fairseq.base.errors import UserError
from mos_fairseq.core.sampling import subnets_for_update
from mos_fairseq.modules.elastic import ElasticLinear
from mos_fairseq.modules.mos import ArchRouter, MoSLinear, MoSSpec, arch_encoding
from mos_fairseq.translation.architecture import Architecture

from .conftest import build_supernet


def test_layer_wise_mixes_whole_sliced_experts_with_one_router_per_layer(dictionary, tiny_space):
    model = build_supernet(dictionary, mos="layer", mos_experts=3).eval()
    arch = Architecture.random(tiny_space, random.Random(3))
    layer = model.encoder.layers[0]
    assert layer.ffn_router is not None and layer.fc1.router is None and layer.fc2.router is None
    enc = arch_encoding(arch)
    alpha = torch.softmax(layer.ffn_router(enc), -1)
    mix1, mix2 = layer.ffn_mixing(enc)
    assert mix1.shape == (3,) and torch.equal(mix1, mix2)
    d, f = arch.encoder_embed_dim, arch.encoder_ffn_dims[0]
    weight, bias = layer.fc1.mixed(d, f, mix1)
    expected = sum(alpha[i] * layer.fc1.experts_weight[i, :f, :d] for i in range(3))
    assert torch.allclose(weight, expected, atol=1e-7)
    assert torch.allclose(bias, sum(alpha[i] * layer.fc1.experts_bias[i, :f] for i in range(3)), atol=1e-7)


def test_neuron_wise_neuron_j_owns_scores_j_times_m_onwards(dictionary, tiny_space):
    model = build_supernet(dictionary, mos="neuron", mos_experts=2).eval()
    layer = model.decoder.layers[1]
    assert layer.ffn_router is None
    fc = layer.fc1
    enc = arch_encoding(Architecture.smallest(tiny_space))
    scores = fc.router(enc)
    assert scores.shape == (2 * fc.out_max,)
    out_dim, in_dim = 48, 24
    weight, bias = fc.mixed(in_dim, out_dim, fc.neuron_mixing(enc))
    for j in (0, 5, out_dim - 1):
        beta = torch.softmax(scores[j * 2 : j * 2 + 2], -1)
        row = beta[0] * fc.experts_weight[0, j, :in_dim] + beta[1] * fc.experts_weight[1, j, :in_dim]
        assert torch.allclose(weight[j], row, atol=1e-7)
        assert torch.allclose(bias[j], beta[0] * fc.experts_bias[0, j] + beta[1] * fc.experts_bias[1, j], atol=1e-7)
    # neuron j's mixture does not depend on how many neurons the subnet keeps
    narrow, _ = fc.mixed(in_dim, 32, fc.neuron_mixing(enc))
    assert torch.equal(narrow, weight[:32])


@pytest.mark.parametrize("kind", ["layer", "neuron"])
def test_copy_init_equals_standard_supernet_and_shares_its_weights(dictionary, batch, kind):
    none = build_supernet(dictionary, seed=5).eval()
    mos = build_supernet(dictionary, seed=5, mos=kind, mos_init="copy").eval()
    ours, theirs = mos.state_dict(), none.state_dict()
    for name, tensor in theirs.items():
        if name in ours:
            assert torch.equal(ours[name], tensor), name
        else:  # fcN.weight / fcN.bias became experts: every expert is a copy
            experts = ours[name.replace(".weight", ".experts_weight").replace(".bias", ".experts_bias")]
            assert all(torch.equal(e, tensor) for e in experts), name
    src, lengths, prev = batch
    rng = random.Random(1)
    for arch in [Architecture.largest(none.space), Architecture.smallest(none.space)] + [
        Architecture.random(none.space, rng) for _ in range(4)
    ]:
        with torch.no_grad():
            a = none(src, lengths, prev, arch=arch)[0]
            b = mos(src, lengths, prev, arch=arch)[0]
        assert (a - b).abs().max() < 1e-5


def test_independent_init_shares_non_moe_weights_but_differs(dictionary, batch):
    none = build_supernet(dictionary, seed=5).eval()
    mos = build_supernet(dictionary, seed=5, mos="neuron").eval()
    assert torch.equal(
        mos.state_dict()["decoder.layers.0.self_attn.q_proj.weight"],
        none.state_dict()["decoder.layers.0.self_attn.q_proj.weight"],
    )
    experts = mos.encoder.layers[0].fc1.experts_weight
    assert not torch.equal(experts[0], experts[1])
    assert torch.equal(experts[0], none.encoder.layers[0].fc1.weight)
    src, lengths, prev = batch
    with torch.no_grad():
        assert (none(src, lengths, prev)[0] - mos(src, lengths, prev)[0]).abs().max() > 1e-3


def test_router_computes_in_fp32_for_half_models(tiny_space):
    router = ArchRouter(4, hidden=16, layers=3, dropout=0.0, generator=torch.Generator().manual_seed(0)).half()
    out = router(arch_encoding(Architecture.largest(tiny_space)))
    assert out.dtype == torch.float32 and out.shape == (4,)
    assert len(router.layers) == 3


def test_mos_layers_draw_from_the_global_generator_exactly_as_elastic_linear():
    torch.manual_seed(0)
    ElasticLinear(4, 6)
    expected = torch.rand(3)
    torch.manual_seed(0)
    MoSLinear(4, 6, MoSSpec(kind="neuron", experts=3), torch.Generator().manual_seed(1))
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(0)
    ArchRouter(6, 8, 2, 0.0, torch.Generator().manual_seed(1))
    untouched = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(3), untouched)


@pytest.mark.parametrize("kind", ["layer", "neuron"])
def test_routers_get_gradient_and_mixing_separates_largest_from_smallest(dictionary, batch, kind):
    model = build_supernet(dictionary, seed=2, mos=kind, dropout=0.0)
    space = model.space
    largest, smallest = Architecture.largest(space), Architecture.smallest(space)
    enc_l, enc_s = arch_encoding(largest), arch_encoding(smallest)
    layer = model.encoder.layers[0]
    before = [m.detach().clone() for m in layer.ffn_mixing(enc_l)]
    routers = [m for m in model.modules() if isinstance(m, ArchRouter)]
    assert routers
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    src, lengths, prev = batch
    target = torch.roll(prev, -1, dims=1)
    for update in range(5):
        optimizer.zero_grad()
        for arch in subnets_for_update(space, 1, update, "sandwich", 1, Architecture):
            logits = model(src, lengths, prev, arch=arch)[0]
            F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1)).backward()
        if update == 0:
            # routers of layers that the sandwich subnets used receive gradient
            used = [r for r in routers if r.layers[-1].weight.grad is not None]
            assert used and all(r.layers[-1].weight.grad.abs().sum() > 0 for r in used)
            assert layer.ffn_mixing(enc_l)[0].requires_grad
        optimizer.step()
    model.eval()
    after_l = layer.ffn_mixing(enc_l)[0].detach()
    after_s = layer.ffn_mixing(enc_s)[0].detach()
    assert (after_l - before[0]).abs().max() > 1e-3  # training moved the routing
    assert (after_l - after_s).abs().max() > 1e-3  # largest and smallest are routed differently
    assert torch.allclose(after_l.sum(-1), torch.ones_like(after_l.sum(-1)))


def test_bad_mos_options_are_refused():
    with pytest.raises(UserError, match="--mos-experts"):
        MoSSpec(kind="layer", experts=0)
    with pytest.raises(UserError, match="--mos must be one of"):
        MoSSpec(kind="expert")
    with pytest.raises(UserError, match="--mos-router-dropout"):
        MoSSpec(kind="neuron", router_dropout=1.5)


@pytest.mark.parametrize("kind", ["layer", "neuron"])
def test_mixing_gradients_equal_the_plain_formula(kind):
    torch.manual_seed(0)
    fc = MoSLinear(6, 8, MoSSpec(kind=kind, experts=3), torch.Generator().manual_seed(1))
    with torch.no_grad():
        fc.experts_bias.normal_()
    enc = torch.rand(10)
    x = torch.randn(5, 4)

    def plain():
        mix = (
            fc.neuron_mixing(enc)[:7]
            if kind == "neuron"
            else torch.softmax(torch.randn(3, generator=torch.Generator().manual_seed(2)), -1)
        )
        per_row = mix.t() if kind == "neuron" else mix[:, None]
        w = (fc.experts_weight[:, :7, :4] * per_row[:, :, None]).sum(0)
        b = (fc.experts_bias[:, :7] * per_row).sum(0)
        return F.linear(x, w, b)

    def ours():
        mix = (
            fc.neuron_mixing(enc)
            if kind == "neuron"
            else torch.softmax(torch.randn(3, generator=torch.Generator().manual_seed(2)), -1)
        )
        return fc(x, 4, 7, mix)

    grads = []
    for fn in (plain, ours):
        fc.zero_grad()
        out = fn()
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in fc.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-6)
    assert len(grads[0][1]) == len(grads[1][1]) == (6 if kind == "neuron" else 2)  # experts, biases (+ 2-layer router)
    for a, b in zip(grads[0][1], grads[1][1]):
        assert torch.allclose(a, b, atol=1e-5)
