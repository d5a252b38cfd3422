"""BERT search spaces and architectures (shapes): the first stop of the BERT side of the pipeline.

Two kinds of space (YAML under ``configs/spaces/``, ``kind:`` says which):

* ``bottleneck`` (SuperShaper): a fixed number of layers, each with its own hidden size behind
  ``model_dim x model_dim`` input/output bottleneck matrices (identity-initialised), fixed heads
  and FFN width. An architecture is the per-layer hidden sizes (its "shape").
* ``homogeneous`` (the MoS paper's AutoDistil-like space): every layer has the same hidden size,
  heads and FFN ratio; the embedding width is the hidden size; the depth may vary.

:class:`~mos_fairseq.bert.architecture.BertArch` holds per-layer tuples in both cases, so the supernet, the static model, the
parameter count and export treat them alike. The router encoding is the per-layer hidden sizes
(bottleneck) or ``[layers, hidden, FFN ratio, heads]`` (homogeneous), normalised by the maxima.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

from mos_fairseq.base.errors import SpaceError
from mos_fairseq.core.space_files import check_space_keys, read_space_yaml

KINDS = ("bottleneck", "homogeneous")
SPACE_KEYS = (
    "name",
    "description",
    "kind",
    "model_dim",
    "layers",
    "hidden",
    "heads",
    "ffn_dim",
    "ffn_ratio",
    "vocab_size",
    "max_positions",
)


def _ints(key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise SpaceError(f"space {key} must be a non-empty list of integers, got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise SpaceError(f"space {key} must hold integers, got {value!r}")
    if any(v <= 0 for v in value):
        raise SpaceError(f"space {key} must hold positive integers, got {value!r}")
    if len(set(value)) != len(value):
        raise SpaceError(f"space {key} has duplicate choices {value!r}")
    return tuple(sorted(value))


def _ratios(value: Any) -> tuple[Fraction, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise SpaceError(f"space ffn_ratio must be a non-empty list of numbers, got {value!r}")
    try:
        out = tuple(sorted(Fraction(str(v)) for v in value))
    except (ValueError, TypeError):
        raise SpaceError(f"space ffn_ratio must hold numbers, got {value!r}") from None
    if any(r <= 0 for r in out) or len(set(out)) != len(out):
        raise SpaceError(f"space ffn_ratio must hold distinct positive numbers, got {value!r}")
    return out


def ratio_text(r: Fraction) -> float | int:
    return int(r) if r.denominator == 1 else float(r)


@dataclass(frozen=True)
class BertSpace:
    """The elastic choices of a BERT supernet (see the module docstring)."""

    name: str
    kind: str
    layers: tuple[int, ...]
    hidden: tuple[int, ...]
    heads: tuple[int, ...]
    ffn_dim: tuple[int, ...] = ()  # bottleneck spaces
    ffn_ratio: tuple[Fraction, ...] = ()  # homogeneous spaces
    model_dim: int = 0  # bottleneck spaces: the width between layers and of the embeddings
    vocab_size: int = 30522
    max_positions: int = 512
    description: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "space") -> BertSpace:
        check_space_keys(data, SPACE_KEYS, source)
        kind = data.get("kind")
        if kind not in KINDS:
            raise SpaceError(f"{source}: kind must be one of {list(KINDS)}, got {kind!r}")
        for key in ("name", "layers", "hidden", "heads"):
            if key not in data:
                raise SpaceError(f"{source}: missing key '{key}'")
        space = dict(
            name=str(data["name"]),
            kind=kind,
            layers=_ints("layers", data["layers"]),
            hidden=_ints("hidden", data["hidden"]),
            heads=_ints("heads", data["heads"]),
            vocab_size=int(data.get("vocab_size", 30522)),
            max_positions=int(data.get("max_positions", 512)),
            description=str(data.get("description", "")),
        )
        if kind == "bottleneck":
            if "ffn_dim" not in data or "model_dim" not in data or "ffn_ratio" in data:
                raise SpaceError(f"{source}: a bottleneck space needs model_dim and ffn_dim (and no ffn_ratio)")
            space.update(ffn_dim=_ints("ffn_dim", data["ffn_dim"]), model_dim=int(data["model_dim"]))
            if space["model_dim"] < max(space["hidden"]):
                raise SpaceError(f"{source}: model_dim {space['model_dim']} is smaller than the largest hidden size")
        else:
            if "ffn_ratio" not in data or "ffn_dim" in data or "model_dim" in data:
                raise SpaceError(f"{source}: a homogeneous space needs ffn_ratio (and no ffn_dim or model_dim)")
            space.update(ffn_ratio=_ratios(data["ffn_ratio"]))
            for h in space["hidden"]:
                bad = [r for r in space["ffn_ratio"] if (r * h).denominator != 1]
                if bad:
                    raise SpaceError(f"{source}: ffn_ratio {ratio_text(bad[0])} x hidden {h} is not an integer")
        for h in space["hidden"]:
            bad = [n for n in space["heads"] if h % n]
            if bad:
                raise SpaceError(f"{source}: hidden size {h} is not divisible by {bad[0]} heads")
        if space["vocab_size"] <= 0 or space["max_positions"] <= 0:
            raise SpaceError(f"{source}: vocab_size and max_positions must be positive")
        return cls(**space)

    @classmethod
    def load(cls, path_or_name: str | Path) -> BertSpace:
        path, data = read_space_yaml(path_or_name)
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "layers": list(self.layers),
            "hidden": list(self.hidden),
            "heads": list(self.heads),
        }
        if self.kind == "bottleneck":
            out.update(model_dim=self.model_dim, ffn_dim=list(self.ffn_dim))
        else:
            out["ffn_ratio"] = [ratio_text(r) for r in self.ffn_ratio]
        out.update(vocab_size=self.vocab_size, max_positions=self.max_positions)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BertSpace:
        return cls.from_dict(json.loads(text), source="checkpoint")

    # ---- the supernet's largest sizes ---------------------------------------------------
    @property
    def max_layers(self) -> int:
        return max(self.layers)

    @property
    def max_hidden(self) -> int:
        return max(self.hidden)

    @property
    def max_embed(self) -> int:
        return self.model_dim if self.kind == "bottleneck" else self.max_hidden

    @property
    def max_ffn(self) -> int:
        if self.kind == "bottleneck":
            return max(self.ffn_dim)
        return int(max(self.ffn_ratio) * self.max_hidden)

    @property
    def encoding_size(self) -> int:
        return self.max_layers if self.kind == "bottleneck" else 4

    @property
    def latency_feature_names(self) -> tuple[str, ...]:
        """The latency estimator's inputs (SuperShaper's latency predictor: the shape plus the
        parameter count): per-layer hidden sizes (0 past the depth), or the homogeneous
        [layers, hidden, FFN ratio, heads]; then ``model_params``."""
        if self.kind == "bottleneck":
            return tuple(f"hidden_{i}" for i in range(1, self.max_layers + 1)) + ("model_params",)
        return ("layers", "hidden", "ffn_ratio", "heads", "model_params")

    @property
    def latency_feature_norm(self) -> tuple[float, ...]:
        """Each latency feature's largest value in the space (the estimator divides by it)."""
        n, h = self.max_layers, self.max_hidden
        d = self.model_dim if self.kind == "bottleneck" else h
        f = max(self.ffn_dim) if self.kind == "bottleneck" else int(max(self.ffn_ratio) * h)
        params = float(shape_params(self, (h,) * n, (f,) * n, d))
        if self.kind == "bottleneck":
            return (float(self.max_hidden),) * self.max_layers + (params,)
        return (
            float(self.max_layers),
            float(self.max_hidden),
            float(max(self.ffn_ratio)),
            float(max(self.heads)),
            params,
        )

    def size(self) -> int:
        """Number of architectures in the space."""
        if self.kind == "homogeneous":
            return len(self.layers) * len(self.hidden) * len(self.heads) * len(self.ffn_ratio)
        per_layer = len(self.hidden) * len(self.heads) * len(self.ffn_dim)
        return sum(per_layer**n for n in self.layers)


def layer_params(h: int, f: int) -> int:
    """One transformer layer of hidden size ``h`` and FFN ``f`` (SuperShaper: 4h^2 + 6153h + 3072
    at f = 3072): q/k/v/out ``4(h^2 + h)``, FFN ``2hf + f + h``, two layer norms ``4h``."""
    return 4 * h * h + 4 * h + 2 * h * f + f + h + 4 * h


def bottleneck_params(d: int, h: int) -> int:
    """The input (``d -> h``) and output (``h -> d``) bottleneck matrices with biases."""
    return d * h + h + h * d + d


def shape_params(
    space: BertSpace, hidden: tuple[int, ...], ffn: tuple[int, ...], d: int, vocab_size: int | None = None
) -> int:
    """Parameters of the static model of a shape (embeddings, layers, bottlenecks, LM head; the
    output projection is tied to the token embedding)."""
    v = space.vocab_size if vocab_size is None else vocab_size
    total = v * d + (space.max_positions + 2) * d + 2 * d  # tokens, positions (pad offset), LN
    for h, f in zip(hidden, ffn):
        total += layer_params(h, f)
        if space.kind == "bottleneck":
            total += bottleneck_params(d, h)
    return total + d * d + d + 2 * d + v  # LM head: dense, LN, output bias


def is_bert_space_data(data: Any) -> bool:
    """Whether a parsed space mapping describes a BERT space (it has ``kind``)."""
    return isinstance(data, Mapping) and "kind" in data
