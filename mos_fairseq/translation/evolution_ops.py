"""HAT's genetic operators on translation architectures: mutation and crossover of per-layer genes
(FFN width, heads, encoder-decoder span), with encoder depth repair of the spans. The search
(:mod:`mos_fairseq.search.evolution`) gets them through the family.
"""

from __future__ import annotations

import random

from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.space import SearchSpace


def _layer_genes(arch: Architecture) -> dict[str, list[int]]:
    return {
        "enc_ffn": list(arch.encoder_ffn_dims),
        "enc_heads": list(arch.encoder_heads),
        "dec_ffn": list(arch.decoder_ffn_dims),
        "dec_self": list(arch.decoder_self_heads),
        "dec_cross": list(arch.decoder_cross_heads),
        "dec_span": list(arch.decoder_cross_spans),
    }


_CHOICES = {
    "enc_ffn": ("encoder", "ffn_dim"),
    "enc_heads": ("encoder", "heads"),
    "dec_ffn": ("decoder", "ffn_dim"),
    "dec_self": ("decoder", "self_heads"),
    "dec_cross": ("decoder", "cross_heads"),
    "dec_span": ("decoder", "cross_span"),
}


def _build(
    space: SearchSpace, enc_embed: int, dec_embed: int, genes: dict[str, list[int]], rng: random.Random
) -> Architecture:
    n_enc = len(genes["enc_ffn"])
    valid_spans = [k for k in space.decoder["cross_span"] if k <= n_enc]
    spans = [k if k <= n_enc else rng.choice(valid_spans) for k in genes["dec_span"]]  # repair
    return Architecture(
        space=space,
        encoder_embed_dim=enc_embed,
        encoder_ffn_dims=tuple(genes["enc_ffn"]),
        encoder_heads=tuple(genes["enc_heads"]),
        decoder_embed_dim=dec_embed,
        decoder_ffn_dims=tuple(genes["dec_ffn"]),
        decoder_self_heads=tuple(genes["dec_self"]),
        decoder_cross_heads=tuple(genes["dec_cross"]),
        decoder_cross_spans=tuple(spans),
    )


def mutate(arch: Architecture, prob: float, rng: random.Random) -> Architecture:
    """Every gene (embed widths, layer counts, each layer's values) resampled with ``prob``;
    layers a larger depth adds get random values (HAT's hidden genes are random too)."""
    sp = arch.space
    pick = lambda side, key, old: rng.choice(getattr(sp, side)[key]) if rng.random() < prob else old  # noqa: E731
    enc_embed = pick("encoder", "embed_dim", arch.encoder_embed_dim)
    dec_embed = pick("decoder", "embed_dim", arch.decoder_embed_dim)
    n_enc = pick("encoder", "layers", arch.encoder_layers)
    n_dec = pick("decoder", "layers", arch.decoder_layers)
    old = _layer_genes(arch)
    genes = {}
    for name, (side, key) in _CHOICES.items():
        n = n_enc if name.startswith("enc") else n_dec
        values = [old[name][i] if i < len(old[name]) else rng.choice(getattr(sp, side)[key]) for i in range(n)]
        genes[name] = [pick(side, key, v) for v in values]
    return _build(sp, enc_embed, dec_embed, genes, rng)


def crossover(a: Architecture, b: Architecture, rng: random.Random) -> Architecture:
    """Each gene from ``a`` or ``b`` with equal probability (a layer only one parent has comes from it)."""
    sp = a.space
    two = lambda x, y: x if rng.random() < 0.5 else y  # noqa: E731
    enc_embed = two(a.encoder_embed_dim, b.encoder_embed_dim)
    dec_embed = two(a.decoder_embed_dim, b.decoder_embed_dim)
    n_enc = two(a.encoder_layers, b.encoder_layers)
    n_dec = two(a.decoder_layers, b.decoder_layers)
    ga, gb = _layer_genes(a), _layer_genes(b)
    genes = {}
    for name in _CHOICES:
        n = n_enc if name.startswith("enc") else n_dec
        values = []
        for i in range(n):
            have = [g[name][i] for g in (ga, gb) if i < len(g[name])]
            values.append(two(have[0], have[1]) if len(have) == 2 else have[0])
        genes[name] = values
    return _build(sp, enc_embed, dec_embed, genes, rng)
