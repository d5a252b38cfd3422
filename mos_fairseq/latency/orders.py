"""Which architectures a latency campaign measures, and in which order (``measure-latency
--order``): ``uniform``, HAT's seeded random stream of distinct architectures, or ``spread``, an
order whose first few dozen already cover the space. Both are prefixes of themselves for any
length, so a campaign extends and resumes; :mod:`mos_fairseq.latency.measure` and its plans use them.
"""

from __future__ import annotations

import random
from typing import Any

from mos_fairseq.base.errors import UserError
from mos_fairseq.registry import family_of


def sample_architectures(space: Any, n: int, seed: int, fewer_ok: bool = False) -> list:
    """``n`` distinct random architectures; the first k are the same for any n >= k (``fewer_ok``: as
    many as a small space has, instead of an error)."""
    arch_type = family_of(space).arch_type
    rng = random.Random(seed)
    seen: set[str] = set()
    archs: list[Any] = []
    attempts = 0
    while len(archs) < n:
        arch = arch_type.random(space, rng)
        attempts += 1
        key = arch.to_json()
        if key not in seen:
            seen.add(key)
            archs.append(arch)
        elif attempts > 100 * n + 1000:
            if fewer_ok:
                break
            raise UserError(f"space '{space.name}' has fewer than {n} distinct architectures")
    return archs


SPREAD_POOL = 2000  # candidates the spread order picks its first architectures from
ORDERS = ("uniform", "spread")


def _bins(values: Any) -> Any:
    """Per-feature bin of every pool member: the value itself for a feature with at most 8 distinct
    values (depths, widths), else its quartile."""
    import numpy as np

    out = np.empty(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        col = values[:, j]
        uniq = np.unique(col)
        edges = uniq if len(uniq) <= 8 else np.unique(np.quantile(col, [0.25, 0.5, 0.75]))
        out[:, j] = np.searchsorted(edges, col, side="right" if len(uniq) > 8 else "left")
    return out


def spread_architectures(space: Any, n: int, seed: int) -> list:
    """``n`` architectures in an order whose first few dozen already cover the space: from a fixed
    pool of :data:`SPREAD_POOL` random architectures, each next one is the architecture whose latency
    features (each feature's value, or its quartile when it has many) are least represented so far,
    ties broken by distance to those already chosen. Every depth and width shows up early and in
    balance; beyond the pool, the rest of the uniform stream. The order does not depend on ``n``, so a
    longer campaign extends a shorter one and resumes."""
    import numpy as np

    pool = sample_architectures(space, SPREAD_POOL, seed, fewer_ok=True)
    if n > len(pool):
        pool = sample_architectures(space, n, seed)  # the uniform stream extends the fixed pool
    head, tail = pool[:SPREAD_POOL], pool[SPREAD_POOL:]
    feats = np.array([a.latency_features() for a in head], dtype=np.float64)
    bins = _bins(feats)
    scaled = (feats - feats.mean(0)) / np.where(feats.std(0) > 0, feats.std(0), 1.0)
    counts = [dict.fromkeys(np.unique(bins[:, j]).tolist(), 0) for j in range(bins.shape[1])]
    dist = np.full(len(head), np.inf)
    chosen = np.zeros(len(head), dtype=bool)
    order: list[int] = []
    for _ in range(min(n, len(head))):
        rarity = np.array([sum(counts[j][b] for j, b in enumerate(row)) for row in bins], dtype=np.float64)
        rarity[chosen] = np.inf
        best = np.flatnonzero(rarity == rarity.min())
        nxt = int(best[np.argmax(dist[best])]) if order else int(best[0])
        order.append(nxt)
        chosen[nxt] = True
        for j, b in enumerate(bins[nxt]):
            counts[j][b] += 1
        dist = np.minimum(dist, ((scaled - scaled[nxt]) ** 2).sum(1))
    return ([head[i] for i in order] + tail)[:n]


def architectures_in_order(space: Any, n: int, seed: int, order: str = "uniform") -> list:
    if order not in ORDERS:
        raise UserError(f"--order must be one of {ORDERS}, got {order!r}")
    return sample_architectures(space, n, seed) if order == "uniform" else spread_architectures(space, n, seed)
