"""Genetic operators on BERT shapes for the evolutionary search (HAT's, on BERT's genes).

Bottleneck spaces: the genes are each layer's hidden size (and heads/FFN where the space has
choices), SuperShaper's mutation resamples each with probability ``prob``. Homogeneous spaces:
the genes are depth, hidden size, heads and FFN ratio. Crossover takes each gene from either parent.
"""

from __future__ import annotations

import random
from fractions import Fraction

from mos_fairseq.bert.architecture import BertArch


def _genes(arch: BertArch) -> dict:
    if arch.space.kind == "homogeneous":
        return {
            "layers": arch.layers,
            "hidden": arch.hidden[0],
            "heads": arch.heads[0],
            "ffn_ratio": Fraction(arch.ffn[0], arch.hidden[0]),
        }
    return {"layers": arch.layers, "hidden": list(arch.hidden), "heads": list(arch.heads), "ffn": list(arch.ffn)}


def _choices(space, name: str):
    return {
        "layers": space.layers,
        "hidden": space.hidden,
        "heads": space.heads,
        "ffn_ratio": space.ffn_ratio,
        "ffn": space.ffn_dim,
    }[name]


def _build(space, genes: dict, rng: random.Random) -> BertArch:
    if space.kind == "homogeneous":
        return BertArch.homogeneous(space, genes["layers"], genes["hidden"], genes["heads"], genes["ffn_ratio"])
    n = genes["layers"]
    per_layer = {
        k: [genes[k][i] if i < len(genes[k]) else rng.choice(_choices(space, k)) for i in range(n)]
        for k in ("hidden", "heads", "ffn")
    }
    return BertArch(space, tuple(per_layer["hidden"]), tuple(per_layer["heads"]), tuple(per_layer["ffn"]))


def mutate(arch: BertArch, prob: float, rng: random.Random) -> BertArch:
    space = arch.space
    pick = lambda name, old: rng.choice(_choices(space, name)) if rng.random() < prob else old  # noqa: E731
    genes = _genes(arch)
    out = {"layers": pick("layers", genes["layers"])}
    for name, value in genes.items():
        if name == "layers":
            continue
        out[name] = [pick(name, v) for v in value] if isinstance(value, list) else pick(name, value)
    return _build(space, out, rng)


def crossover(a: BertArch, b: BertArch, rng: random.Random) -> BertArch:
    two = lambda x, y: x if rng.random() < 0.5 else y  # noqa: E731
    ga, gb = _genes(a), _genes(b)
    out = {}
    for name in ga:
        if isinstance(ga[name], list):
            n = max(len(ga[name]), len(gb[name]))
            out[name] = [
                two(ga[name][i], gb[name][i])
                if i < min(len(ga[name]), len(gb[name]))
                else (ga[name] if len(ga[name]) > i else gb[name])[i]
                for i in range(n)
            ]
        else:
            out[name] = two(ga[name], gb[name])
    return _build(a.space, out, rng)
