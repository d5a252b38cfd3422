"""A supernet subnet computes exactly what a static model of its dimensions computes (post-norm, HAT's, and
pre-norm layers alike), and where stock fairseq can express it, what its transformer computes."""

import random
from argparse import Namespace
from types import SimpleNamespace

import pytest
import torch
from fairseq.models.transformer import TransformerModel, base_architecture
from fairseq.sequence_generator import SequenceGenerator

from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.export import stock_state
from mos_fairseq.translation.static import extract_subnet

from .conftest import build_supernet

PRE_NORM = {"encoder_normalize_before": True, "decoder_normalize_before": True}


def _randomise_norms(model):
    # layer norms start as (1, 0): perturb them so a wrong slice would show
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(torch.randn_like(p) * 0.1)


@pytest.mark.parametrize("pre_norm", [False, True])
def test_twenty_random_subnets_equal_static_reference(supernet, batch, dictionary, pre_norm):
    if pre_norm:
        supernet = build_supernet(dictionary, **PRE_NORM).eval()
        assert supernet.encoder.layer_norm is not None and supernet.decoder.layer_norm is not None
    _randomise_norms(supernet)
    src, lengths, prev = batch
    rng = random.Random(2024)
    archs = [Architecture.random(supernet.space, rng) for _ in range(20)]
    assert len(set(archs)) == 20
    for arch in archs:
        static = extract_subnet(supernet, arch)
        assert not any("Elastic" in type(m).__name__ for m in static.modules())
        with torch.no_grad():
            sub = supernet(src, lengths, prev, arch=arch)[0]
            ref = static(src, lengths, prev)[0]
        assert sub.shape == ref.shape == (3, 7, len(supernet.decoder.dictionary))
        torch.testing.assert_close(sub, ref, atol=1e-5, rtol=0)
        # the exact parameter count is the reference model's numel
        assert sum(p.numel() for p in static.parameters()) == supernet.num_params(arch)


def test_subnets_differ_from_each_other(supernet, batch):
    src, lengths, prev = batch
    with torch.no_grad():
        big = supernet(src, lengths, prev, arch=Architecture.largest(supernet.space))[0]
        small = supernet(src, lengths, prev, arch=Architecture.smallest(supernet.space))[0]
    assert (big - small).abs().max() > 1e-2


def _stock_transformer(dictionary, arch: Architecture, pre_norm: bool = False):
    args = Namespace(
        encoder_embed_dim=arch.encoder_embed_dim,
        encoder_ffn_embed_dim=arch.encoder_ffn_dims[0],
        encoder_attention_heads=arch.encoder_heads[0],
        encoder_layers=arch.encoder_layers,
        decoder_embed_dim=arch.decoder_embed_dim,
        decoder_ffn_embed_dim=arch.decoder_ffn_dims[0],
        decoder_attention_heads=arch.decoder_self_heads[0],
        decoder_layers=arch.decoder_layers,
        share_all_embeddings=True,
        dropout=0.0,
        attention_dropout=0.0,
        max_source_positions=1024,
        max_target_positions=1024,
        encoder_normalize_before=pre_norm,
        decoder_normalize_before=pre_norm,
    )
    base_architecture(args)
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return TransformerModel.build_model(args, task).eval()


@pytest.mark.parametrize("heads,pre_norm", [(2, False), (4, False), (4, True)])
def test_matches_stock_fairseq_transformer(supernet, batch, dictionary, heads, pre_norm):
    """Where stock fairseq can express a subnet, its transformer computes the same thing."""
    if pre_norm:
        supernet = build_supernet(dictionary, **PRE_NORM).eval()
    _randomise_norms(supernet)
    sp = supernet.space
    arch = Architecture(
        space=sp,
        encoder_embed_dim=32,
        encoder_ffn_dims=(48,) * 3,
        encoder_heads=(heads,) * 3,
        decoder_embed_dim=32,
        decoder_ffn_dims=(64,) * 2,
        decoder_self_heads=(heads,) * 2,
        decoder_cross_heads=(heads,) * 2,
        decoder_cross_spans=(1, 1),
    )
    stock = _stock_transformer(dictionary, arch, pre_norm)
    stock.load_state_dict(stock_state(extract_subnet(supernet, arch).state_dict(), stock), strict=True)
    assert (stock.encoder.layer_norm is not None) == (stock.decoder.layer_norm is not None) == pre_norm
    src, lengths, prev = batch
    with torch.no_grad():
        ours = supernet(src, lengths, prev, arch=arch)[0]
        theirs = stock(src, lengths, prev)[0]
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    sample = {"net_input": {"src_tokens": src, "src_lengths": lengths}}
    hyps_ours = SequenceGenerator([supernet.bind(arch)], dictionary, beam_size=3, max_len_b=10).generate(
        [supernet.bind(arch)], sample
    )
    hyps_stock = SequenceGenerator([stock], dictionary, beam_size=3, max_len_b=10).generate([stock], sample)
    for a, b in zip(hyps_ours, hyps_stock):
        assert a[0]["tokens"].tolist() == b[0]["tokens"].tolist()


def test_incremental_decoding_equals_full_forward(supernet, batch):
    """Step-by-step decoding (cached keys, arbitrary encoder attention) equals one full pass."""
    src, lengths, prev = batch
    prev = prev[:2, :5]  # no target padding
    rng = random.Random(5)
    for _ in range(5):
        arch = Architecture.random(supernet.space, rng)
        with torch.no_grad():
            enc = supernet.encoder(src[:2], lengths[:2], arch=arch)
            full = supernet.decoder(prev, enc, arch=arch)[0]
            state: dict = {}
            steps = [supernet.decoder(prev[:, : t + 1], enc, state, arch=arch)[0] for t in range(prev.size(1))]
        torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=0)


def test_arbitrary_attention_span_changes_output(supernet, batch):
    src, lengths, prev = batch
    base = Architecture.largest(supernet.space).to_dict()
    outs = []
    for span in (1, 2, 3):
        base["decoder"]["cross_span"] = [span] * 3
        arch = Architecture.from_dict(base, supernet.space)
        with torch.no_grad():
            outs.append(supernet(src, lengths, prev, arch=arch)[0])
    assert (outs[0] - outs[1]).abs().max() > 1e-4 and (outs[1] - outs[2]).abs().max() > 1e-4
