"""SuperShaper's Table 6 on our supernets: templated shapes (lower/upper triangle, rectangle, diamond,
inverted diamond, bottle, inverted bottle), the cigar heuristic (`mos-nas shape`) and random shapes,
all at one parameter count, scored by validation perplexity inside each supernet (SuperShaper's
G_direct: no retraining).

The parameter targets are the rectangles (one hidden size in every layer) at the given widths; every
other shape is the one of its template closest to the target (all 7^L shapes of a bottleneck space
are enumerated), random shapes are drawn uniformly among the shapes within --tolerance of it.

    python benchmarks/bert_shapes.py --data runs/bert/bin --space bert_cpu_bottleneck \\
        --supernet standard=runs/bert/supernets/bottleneck_none/checkpoint_last.pt \\
        --supernet neuron=runs/bert/supernets/bottleneck_neuron/checkpoint_last.pt --out runs/bert/shapes
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from pathlib import Path
from typing import Callable

from mos_fairseq.bert.architecture import BertArch
from mos_fairseq.bert.shape import cigar_shape
from mos_fairseq.bert.space import BertSpace

Shape = tuple[int, ...]


def _nondecreasing(h: Shape) -> bool:
    return all(a <= b for a, b in zip(h, h[1:]))


def _nonincreasing(h: Shape) -> bool:
    return all(a >= b for a, b in zip(h, h[1:]))


def _peak(h: Shape, sign: int) -> bool:
    """Diamond (sign 1: up to a middle peak, then down) or inverted diamond (sign -1)."""
    n = len(h)
    for top in range(n // 2 - 1, n // 2 + 1):
        s = [sign * x for x in h]
        if _nondecreasing(s[: top + 1]) and _nonincreasing(s[top:]) and s[top] > max(s[0], s[-1]):
            return True
    return False


def _bottle(h: Shape) -> bool:
    half = len(h) // 2
    return len(set(h[:half])) == 1 and len(set(h[half:-1])) == 1 and h[0] < h[half] <= h[-1]


def _inverted_bottle(h: Shape) -> bool:
    half = len(h) // 2
    return len(set(h[1:half])) == 1 and len(set(h[half:])) == 1 and h[0] >= h[1] > h[half]


TEMPLATES: dict[str, Callable[[Shape], bool]] = {
    "lower triangle": lambda h: _nondecreasing(h) and h[0] < h[-1],
    "upper triangle": lambda h: _nonincreasing(h) and h[0] > h[-1],
    "rectangle": lambda h: len(set(h)) == 1,
    "diamond": lambda h: _peak(h, 1),
    "inverted diamond": lambda h: _peak(h, -1),
    "bottle": _bottle,
    "inverted bottle": _inverted_bottle,
}


def shape_table(space: BertSpace, vocab: int) -> dict[Shape, int]:
    """Every shape of the (single depth) bottleneck space with its exact parameter count."""
    n = space.max_layers
    heads, ffn = (space.heads[-1],) * n, (space.ffn_dim[-1],) * n
    base = BertArch(space, (space.hidden[0],) * n, heads, ffn).num_params(vocab)
    price = {
        h: BertArch(space, (h,) + (space.hidden[0],) * (n - 1), heads, ffn).num_params(vocab) - base
        for h in space.hidden
    }
    return {s: base + sum(price[h] for h in s) for s in itertools.product(space.hidden, repeat=n)}


def pick_shapes(
    space: BertSpace, vocab: int, width: int, n_random: int, tolerance: float, rng: random.Random
) -> list[dict]:
    table = shape_table(space, vocab)
    target = table[(width,) * space.max_layers]
    picks = []
    for name, holds in TEMPLATES.items():
        best = min((s for s in table if holds(s)), key=lambda s: (abs(table[s] - target), s))
        picks.append({"template": name, "hidden": list(best)})
    picks.append({"template": "cigar (heuristic)", "hidden": list(cigar_shape(space, target, vocab).hidden)})
    near = sorted(s for s, p in table.items() if abs(p - target) <= tolerance * target)
    for s in rng.sample(near, min(n_random, len(near))):
        picks.append({"template": "random", "hidden": list(s)})
    for p in picks:
        p["params"] = table[tuple(p["hidden"])]
        p["target"] = target
    return picks


def main() -> None:
    from mos_fairseq.core.validation import SubnetEvaluator, ValidationBatches
    from mos_fairseq.loading import load_supernet

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--space", default="bert_cpu_bottleneck")
    ap.add_argument("--supernet", action="append", required=True, help="NAME=CHECKPOINT (repeatable)")
    ap.add_argument("--widths", type=int, nargs="+", default=[60, 92], help="rectangle widths that set the targets")
    ap.add_argument("--random", type=int, default=10)
    ap.add_argument("--tolerance", type=float, default=0.02)
    ap.add_argument("--subset", default="valid")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    space = BertSpace.load(args.space)
    if space.kind != "bottleneck" or len(space.layers) != 1:
        raise SystemExit(f"{args.space}: shapes need a bottleneck space of one depth")
    rng = random.Random(args.seed)
    evaluators = {}
    vocab = None
    for item in args.supernet:
        name, ckpt = item.split("=", 1)
        supernet, task, _ = load_supernet(ckpt, args.data)
        if supernet.space.to_dict() != space.to_dict():
            raise SystemExit(f"{ckpt}: a supernet of space '{supernet.space.name}', not '{space.name}'")
        vocab = len(supernet.dictionary)
        evaluators[name] = SubnetEvaluator(supernet, ValidationBatches.from_task(task, args.subset))
    rows = []
    for width in args.widths:
        for pick in pick_shapes(space, vocab, width, args.random, args.tolerance, rng):
            arch = BertArch(
                space,
                tuple(pick["hidden"]),
                (space.heads[-1],) * space.max_layers,
                (space.ffn_dim[-1],) * space.max_layers,
            )
            assert arch.num_params(vocab) == pick["params"]
            pick["ppl"] = {name: 2 ** ev.loss(arch) for name, ev in evaluators.items()}
            rows.append(pick)
            print(
                f"{pick['target']:>9,} {pick['template']:<18} {pick['hidden']} {pick['params']:,} "
                + " ".join(f"{k} {v:.2f}" for k, v in pick["ppl"].items()),
                flush=True,
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "space": space.name,
        "vocab": vocab,
        "subset": args.subset,
        "widths": args.widths,
        "tolerance": args.tolerance,
        "random": args.random,
        "seed": args.seed,
        "supernets": dict(item.split("=", 1) for item in args.supernet),
        "sentences": next(iter(evaluators.values())).batches.sentences,
    }
    tmp = out / "shapes.json.tmp"
    tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    tmp.replace(out / "shapes.json")


if __name__ == "__main__":
    main()
