"""Which subnets train at each update: SPOS (one random) or sandwich (largest + smallest + random).

The list is a pure function of (space, seed, update number, method), so every data-parallel
rank and every resumed run draws the same stream without sharing any state.
"""

from __future__ import annotations

import random
from typing import Any

SAMPLING_METHODS = ("spos", "sandwich")


def update_rng(seed: int, update_num: int) -> random.Random:
    """A generator private to one update (independent of Python's hash seed)."""
    return random.Random(f"mos-fairseq/{seed}/{update_num}")


def subnets_for_update(
    space: Any,
    seed: int,
    update_num: int,
    method: str,
    n_random: int,
    arch_type: Any,
) -> list:
    """The subnets of one update; ``arch_type`` (the family's architecture class) provides
    ``largest``, ``smallest`` and ``random`` for ``space``."""
    if method not in SAMPLING_METHODS:
        raise ValueError(f"unknown supernet sampling '{method}'; choose from {SAMPLING_METHODS}")
    rng = update_rng(seed, update_num)
    if method == "spos":
        return [arch_type.random(space, rng)]
    randoms = [arch_type.random(space, rng) for _ in range(n_random)]
    return [arch_type.largest(space), arch_type.smallest(space), *randoms]
