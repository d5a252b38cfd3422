"""BERT architectures (shapes): one subnet of a :class:`~mos_fairseq.bert.space.BertSpace`, per-layer
hidden sizes, heads and FFN widths; YAML/JSON I/O, largest/smallest/random, the router encoding, the
latency features and the exact parameter count.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import yaml

from mos_fairseq.base.errors import ArchError
from mos_fairseq.base.files import read_arch_file, write_text_atomic
from mos_fairseq.bert.space import BertSpace, ratio_text, shape_params


class BertLayerSizes(NamedTuple):
    """What one layer of a BERT subnet runs at: the stream width ``d`` (embedding / bottleneck input),
    the layer's hidden size, heads and FFN width."""

    d: int
    hidden: int
    heads: int
    ffn: int


@dataclass(frozen=True)
class BertArch:
    """One BERT subnet: per-layer hidden sizes, heads and FFN widths (``len`` = depth)."""

    space: BertSpace = field(compare=False, repr=False)
    hidden: tuple[int, ...]
    heads: tuple[int, ...]
    ffn: tuple[int, ...]

    def __post_init__(self) -> None:
        s = self.space
        n = len(self.hidden)
        if n not in s.layers:
            raise ArchError(f"layers={n} is not in the space's choices {list(s.layers)}")
        if len(self.heads) != n or len(self.ffn) != n:
            raise ArchError(
                f"hidden, heads and ffn need one entry per layer ({n}), got {len(self.heads)} and {len(self.ffn)}"
            )
        for i, (h, a, f) in enumerate(zip(self.hidden, self.heads, self.ffn)):
            if h not in s.hidden:
                raise ArchError(f"hidden[{i}]={h} is not in the space's choices {list(s.hidden)}")
            if a not in s.heads:
                raise ArchError(f"heads[{i}]={a} is not in the space's choices {list(s.heads)}")
            if s.kind == "bottleneck" and f not in s.ffn_dim:
                raise ArchError(f"ffn[{i}]={f} is not in the space's choices {list(s.ffn_dim)}")
            if s.kind == "homogeneous" and Fraction(f, h) not in s.ffn_ratio:
                raise ArchError(f"ffn[{i}]={f} is not hidden x one of {[ratio_text(r) for r in s.ffn_ratio]}")
        if s.kind == "homogeneous" and (
            len(set(self.hidden)) > 1 or len(set(self.heads)) > 1 or len(set(self.ffn)) > 1
        ):
            raise ArchError("a homogeneous space's layers must all have the same hidden size, heads and FFN width")

    def layer_sizes(self) -> list[BertLayerSizes]:
        return [BertLayerSizes(self.embed_dim, h, a, f) for h, a, f in zip(self.hidden, self.heads, self.ffn)]

    @property
    def layers(self) -> int:
        return len(self.hidden)

    @property
    def embed_dim(self) -> int:
        """Width of the embeddings and of the stream between layers."""
        return self.space.model_dim if self.space.kind == "bottleneck" else self.hidden[0]

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def homogeneous(cls, space: BertSpace, layers: int, hidden: int, heads: int, ffn_ratio: float) -> BertArch:
        ffn = Fraction(str(ffn_ratio)) * hidden
        if ffn.denominator != 1:
            raise ArchError(f"ffn_ratio {ffn_ratio} x hidden {hidden} is not an integer")
        return cls(space, (hidden,) * layers, (heads,) * layers, (int(ffn),) * layers)

    @classmethod
    def _pick(cls, space: BertSpace, pick) -> BertArch:
        n = pick(space.layers)
        if space.kind == "homogeneous":
            h = pick(space.hidden)
            return cls.homogeneous(space, n, h, pick(space.heads), pick(space.ffn_ratio))
        return cls(
            space,
            tuple(pick(space.hidden) for _ in range(n)),
            tuple(pick(space.heads) for _ in range(n)),
            tuple(pick(space.ffn_dim) for _ in range(n)),
        )

    @classmethod
    def largest(cls, space: BertSpace) -> BertArch:
        return cls._pick(space, max)

    @classmethod
    def smallest(cls, space: BertSpace) -> BertArch:
        return cls._pick(space, min)

    @classmethod
    def random(cls, space: BertSpace, rng: random.Random) -> BertArch:
        return cls._pick(space, lambda choices: rng.choice(list(choices)))

    # ---- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        if self.space.kind == "homogeneous":
            return {
                "space": self.space.name,
                "layers": self.layers,
                "hidden": self.hidden[0],
                "heads": self.heads[0],
                "ffn_ratio": ratio_text(Fraction(self.ffn[0], self.hidden[0])),
            }
        out: dict[str, Any] = {"space": self.space.name, "hidden": list(self.hidden)}
        if len(self.space.heads) > 1:
            out["heads"] = list(self.heads)
        if len(self.space.ffn_dim) > 1:
            out["ffn_dim"] = list(self.ffn)
        return out

    @staticmethod
    def is_single_arch_dict(data: Mapping[str, Any]) -> bool:
        return "hidden" in data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], space: BertSpace) -> BertArch:
        if not isinstance(data, Mapping):
            raise ArchError(f"a BERT architecture must be a mapping, got {type(data).__name__}")
        named = data.get("space")
        if named is not None and named != space.name:
            raise ArchError(f"architecture is for space '{named}', not '{space.name}'")
        if space.kind == "homogeneous":
            allowed = {"space", "layers", "hidden", "heads", "ffn_ratio"}
            unknown = sorted(set(data) - allowed)
            if unknown:
                raise ArchError(
                    f"unknown architecture key(s) {unknown} (homogeneous: layers, hidden, heads, ffn_ratio)"
                )
            missing = [k for k in ("layers", "hidden", "heads", "ffn_ratio") if k not in data]
            if missing:
                raise ArchError(f"architecture is missing {missing}")
            ints = {k: _arch_int(k, data[k]) for k in ("layers", "hidden", "heads")}
            if not isinstance(data["ffn_ratio"], (int, float)) or isinstance(data["ffn_ratio"], bool):
                raise ArchError(f"ffn_ratio must be a number, got {data['ffn_ratio']!r}")
            if ints["layers"] not in space.layers:
                raise ArchError(f"layers={ints['layers']} is not in the space's choices {list(space.layers)}")
            return cls.homogeneous(space, ints["layers"], ints["hidden"], ints["heads"], data["ffn_ratio"])
        unknown = sorted(set(data) - {"space", "hidden", "heads", "ffn_dim"})
        if unknown:
            raise ArchError(f"unknown architecture key(s) {unknown} (bottleneck: hidden, heads, ffn_dim)")
        if "hidden" not in data:
            raise ArchError("architecture is missing 'hidden' (one hidden size per layer)")
        hidden = _arch_ints("hidden", data["hidden"])
        n = len(hidden)
        heads = _arch_ints("heads", data["heads"]) if "heads" in data else (space.heads[-1],) * n
        ffn = _arch_ints("ffn_dim", data["ffn_dim"]) if "ffn_dim" in data else (space.ffn_dim[-1],) * n
        if len(space.heads) > 1 and "heads" not in data or len(space.ffn_dim) > 1 and "ffn_dim" not in data:
            raise ArchError("this space has several heads/ffn_dim choices: give them per layer")
        return cls(space, hidden, heads, ffn)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, space: BertSpace) -> BertArch:
        return cls.from_dict(json.loads(text), space)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def save(self, path: str | Path, hat_format: bool = False) -> None:
        if hat_format:
            raise ArchError("--hat-format is for HAT's encoder-decoder spaces, not BERT spaces")
        write_text_atomic(Path(path), self.to_yaml())

    @classmethod
    def load(cls, path: str | Path, space: BertSpace | None = None) -> BertArch:
        path = Path(path)
        data = read_arch_file(path)
        if space is None:
            if not isinstance(data, Mapping) or "space" not in data:
                raise ArchError(f"{path}: no 'space' key; pass the space explicitly")
            space = BertSpace.load(data["space"])
        try:
            return cls.from_dict(data, space)
        except ArchError as exc:
            raise ArchError(f"{path}: {exc}") from None

    # ---- encoding, size ---------------------------------------------------------------------
    def normalized_features(self) -> list[float]:
        """The MoS router input (see the module docstring)."""
        s = self.space
        if s.kind == "bottleneck":
            return [h / s.max_hidden for h in self.hidden] + [0.0] * (s.max_layers - self.layers)
        ratio = Fraction(self.ffn[0], self.hidden[0])
        return [
            self.layers / s.max_layers,
            self.hidden[0] / s.max_hidden,
            float(ratio / max(s.ffn_ratio)),
            self.heads[0] / max(s.heads),
        ]

    def latency_features(self, vocab_size: int | None = None) -> list[float]:
        """Raw values of :attr:`BertSpace.latency_feature_names` (parameters with ``vocab_size`` types)."""
        s, params = self.space, float(self.num_params(vocab_size))
        if s.kind == "bottleneck":
            return [float(h) for h in self.hidden] + [0.0] * (s.max_layers - self.layers) + [params]
        return [
            float(self.layers),
            float(self.hidden[0]),
            float(Fraction(self.ffn[0], self.hidden[0])),
            float(self.heads[0]),
            params,
        ]

    def num_params(self, vocab_size: int | None = None) -> int:
        """Parameters of the static model of this subnet (:func:`~mos_fairseq.bert.space.shape_params`)."""
        return shape_params(self.space, self.hidden, self.ffn, self.embed_dim, vocab_size)

    def describe(self) -> str:
        if self.space.kind == "homogeneous":
            return (
                f"{self.layers} layers x hidden {self.hidden[0]}, {self.heads[0]} heads, "
                f"FFN {self.ffn[0]} (ratio {ratio_text(Fraction(self.ffn[0], self.hidden[0]))})"
            )
        extra = (
            ""
            if len(set(self.heads)) == 1 and len(set(self.ffn)) == 1
            else f" heads{list(self.heads)} ffn{list(self.ffn)}"
        )
        return f"shape {list(self.hidden)}{extra}"


def _arch_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchError(f"{key} must be an integer, got {value!r}")
    if value <= 0:
        raise ArchError(f"{key}={value} must be positive")
    return value


def _arch_ints(key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ArchError(f"{key} must be a non-empty list (one entry per layer), got {value!r}")
    return tuple(_arch_int(f"{key}[{i}]", v) for i, v in enumerate(value))
