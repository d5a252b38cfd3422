"""SuperShaper's heuristic ("cigar") shapes: a good shape for a parameter budget without search.

SuperShaper found that the best shapes under a budget share a profile: a large last layer, a
moderately large first layer, small early layers (2-5 of 12) and moderate later ones (6-11).
:func:`cigar_shape` keeps that profile (small <= moderate <= first <= last, each group at one
or two adjacent choices of the space) and picks the sizes whose exact parameter count is
closest to the target, preferring a strict profile (small < moderate, first < last) whenever
one lies within the tolerance. For ``n`` layers the groups are: layer 1, layers 2..1+n/3, the rest, and
the last layer.
"""

from __future__ import annotations

import itertools

from mos_fairseq.base.errors import UserError
from mos_fairseq.bert.architecture import BertArch
from mos_fairseq.bert.space import BertSpace


def cigar_groups(n: int) -> list[list[int]]:
    """Layer indices of the groups first, small, moderate, last (12 layers: 0 | 1-4 | 5-10 | 11)."""
    if n < 4:
        raise UserError(f"the cigar heuristic needs at least 4 layers, got {n}")
    small_end = 1 + max(1, n // 3)
    return [[0], list(range(1, small_end)), list(range(small_end, n - 1)), [n - 1]]


def _expand(
    space: BertSpace, n: int, groups: list[list[int]], levels: tuple[int, ...], bumps: tuple[int, ...]
) -> tuple[int, ...]:
    """Per-layer hidden sizes: group ``g`` at choice ``levels[g]``, its last ``bumps[g]`` layers one choice up."""
    hidden = [0] * n
    for g, layers in enumerate(groups):
        for j, layer in enumerate(layers):
            up = j >= len(layers) - bumps[g]
            hidden[layer] = space.hidden[min(levels[g] + up, len(space.hidden) - 1)]
    return tuple(hidden)


def _is_cigar(hidden: tuple[int, ...], groups: list[list[int]]) -> bool:
    first, small, moderate, last = ([hidden[i] for i in g] for g in groups)
    return max(small) <= min(moderate) and max(moderate) <= first[0] <= last[0]


def _is_strict(hidden: tuple[int, ...], groups: list[list[int]]) -> bool:
    first, small, moderate, last = ([hidden[i] for i in g] for g in groups)
    return max(small) < min(moderate) and first[0] < last[0]


def cigar_shape(
    space: BertSpace,
    target_params: int,
    vocab_size: int | None = None,
    layers: int | None = None,
    tolerance: float = 0.02,
) -> BertArch:
    """The cigar-profile shape of ``space`` whose parameter count is closest to ``target_params``
    (refused if even the closest is more than ``tolerance`` away)."""
    if space.kind != "bottleneck":
        raise UserError(
            f"space '{space.name}' is homogeneous: the cigar heuristic shapes per-layer (bottleneck) spaces"
        )
    n = layers or space.max_layers
    if n not in space.layers:
        raise UserError(f"layers={n} is not in the space's choices {list(space.layers)}")
    groups = cigar_groups(n)
    heads, ffn = (space.heads[-1],) * n, (space.ffn_dim[-1],) * n
    # the count is fixed parts + one term per layer: price each choice once
    reference = BertArch(space, (space.hidden[0],) * n, heads, ffn)
    per_layer = {
        h: BertArch(space, (h,) + (space.hidden[0],) * (n - 1), heads, ffn).num_params(vocab_size)
        - reference.num_params(vocab_size)
        for h in space.hidden
    }
    fixed = reference.num_params(vocab_size)
    # rank: a strict profile (small < moderate, first < last) within the tolerance first, then the
    # error; so a budget a rectangle would meet exactly still gets a cigar when one is close enough
    best: tuple[bool, float, tuple[int, ...]] | None = None
    for levels in itertools.product(range(len(space.hidden)), repeat=4):
        if not levels[1] <= levels[2] <= levels[0] <= levels[3]:  # small <= moderate <= first <= last
            continue
        for bumps in itertools.product(*(range(len(g)) for g in groups)):
            hidden = _expand(space, n, groups, levels, bumps)
            if not _is_cigar(hidden, groups):
                continue
            err = abs(fixed + sum(per_layer[h] for h in hidden) - target_params)
            key = (not (_is_strict(hidden, groups) and err <= tolerance * target_params), err, hidden)
            if best is None or key < best:
                best = key
    assert best is not None
    arch = BertArch(space, best[2], heads, ffn)
    params = arch.num_params(vocab_size)
    if abs(params - target_params) > tolerance * target_params:
        raise UserError(
            f"no cigar shape of space '{space.name}' within {tolerance:.0%} of {target_params:,} "
            f"parameters (closest: {params:,})"
        )
    return arch


def parse_count(text: str) -> int:
    """``60M``, ``1.5B``, ``45000000`` -> an integer."""
    scale = {"K": 1_000, "M": 1_000_000, "B": 1_000_000_000}
    t = str(text).strip().upper()
    try:
        if t and t[-1] in scale:
            return int(round(float(t[:-1]) * scale[t[-1]]))
        return int(t)
    except ValueError:
        raise UserError(f"cannot read '{text}' as a parameter count (e.g. 60M, 45000000)") from None
