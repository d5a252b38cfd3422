"""BERT search spaces and architectures (shapes): the first stop of the BERT side of the pipeline.

Two kinds of space (YAML under ``configs/spaces/``, ``kind:`` says which):

* ``bottleneck`` (SuperShaper): a fixed number of layers, each with its own hidden size behind
  ``model_dim x model_dim`` input/output bottleneck matrices (identity-initialised), fixed heads
  and FFN width. An architecture is the per-layer hidden sizes (its "shape").
* ``homogeneous`` (the MoS paper's AutoDistil-like space): every layer has the same hidden size,
  heads and FFN ratio; the embedding width is the hidden size; the depth may vary.

:class:`BertArch` holds per-layer tuples in both cases, so the supernet, the static model, the
parameter count and export treat them alike. The router encoding is the per-layer hidden sizes
(bottleneck) or ``[layers, hidden, FFN ratio, heads]`` (homogeneous), normalised by the maxima.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

import yaml

from mos_fairseq.errors import ArchError, SpaceError
from mos_fairseq.space import check_space_keys, read_space_yaml, resolve_space_path

KINDS = ("bottleneck", "homogeneous")
SPACE_KEYS = ("name", "description", "kind", "model_dim", "layers", "hidden", "heads", "ffn_dim", "ffn_ratio",
              "vocab_size", "max_positions")


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


def _ratio_text(r: Fraction) -> float | int:
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
    def from_dict(cls, data: Mapping[str, Any], source: str = "space") -> "BertSpace":
        check_space_keys(data, SPACE_KEYS, source)
        kind = data.get("kind")
        if kind not in KINDS:
            raise SpaceError(f"{source}: kind must be one of {list(KINDS)}, got {kind!r}")
        for key in ("name", "layers", "hidden", "heads"):
            if key not in data:
                raise SpaceError(f"{source}: missing key '{key}'")
        space = dict(
            name=str(data["name"]), kind=kind, layers=_ints("layers", data["layers"]),
            hidden=_ints("hidden", data["hidden"]), heads=_ints("heads", data["heads"]),
            vocab_size=int(data.get("vocab_size", 30522)), max_positions=int(data.get("max_positions", 512)),
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
                    raise SpaceError(f"{source}: ffn_ratio {_ratio_text(bad[0])} x hidden {h} is not an integer")
        for h in space["hidden"]:
            bad = [n for n in space["heads"] if h % n]
            if bad:
                raise SpaceError(f"{source}: hidden size {h} is not divisible by {bad[0]} heads")
        if space["vocab_size"] <= 0 or space["max_positions"] <= 0:
            raise SpaceError(f"{source}: vocab_size and max_positions must be positive")
        return cls(**space)

    @classmethod
    def load(cls, path_or_name: str | Path) -> "BertSpace":
        path, data = read_space_yaml(path_or_name)
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "description": self.description, "kind": self.kind,
                               "layers": list(self.layers), "hidden": list(self.hidden), "heads": list(self.heads)}
        if self.kind == "bottleneck":
            out.update(model_dim=self.model_dim, ffn_dim=list(self.ffn_dim))
        else:
            out["ffn_ratio"] = [_ratio_text(r) for r in self.ffn_ratio]
        out.update(vocab_size=self.vocab_size, max_positions=self.max_positions)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "BertSpace":
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
        params = float(BertArch.largest(self).num_params())
        if self.kind == "bottleneck":
            return (float(self.max_hidden),) * self.max_layers + (params,)
        return (float(self.max_layers), float(self.max_hidden), float(max(self.ffn_ratio)), float(max(self.heads)), params)

    def size(self) -> int:
        """Number of architectures in the space."""
        if self.kind == "homogeneous":
            return len(self.layers) * len(self.hidden) * len(self.heads) * len(self.ffn_ratio)
        per_layer = len(self.hidden) * len(self.heads) * len(self.ffn_dim)
        return sum(per_layer**n for n in self.layers)


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
            raise ArchError(f"hidden, heads and ffn need one entry per layer ({n}), got {len(self.heads)} and {len(self.ffn)}")
        for i, (h, a, f) in enumerate(zip(self.hidden, self.heads, self.ffn)):
            if h not in s.hidden:
                raise ArchError(f"hidden[{i}]={h} is not in the space's choices {list(s.hidden)}")
            if a not in s.heads:
                raise ArchError(f"heads[{i}]={a} is not in the space's choices {list(s.heads)}")
            if s.kind == "bottleneck" and f not in s.ffn_dim:
                raise ArchError(f"ffn[{i}]={f} is not in the space's choices {list(s.ffn_dim)}")
            if s.kind == "homogeneous" and Fraction(f, h) not in s.ffn_ratio:
                raise ArchError(f"ffn[{i}]={f} is not hidden x one of {[_ratio_text(r) for r in s.ffn_ratio]}")
        if s.kind == "homogeneous" and (len(set(self.hidden)) > 1 or len(set(self.heads)) > 1 or len(set(self.ffn)) > 1):
            raise ArchError("a homogeneous space's layers must all have the same hidden size, heads and FFN width")

    @property
    def layers(self) -> int:
        return len(self.hidden)

    @property
    def embed_dim(self) -> int:
        """Width of the embeddings and of the stream between layers."""
        return self.space.model_dim if self.space.kind == "bottleneck" else self.hidden[0]

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def homogeneous(cls, space: BertSpace, layers: int, hidden: int, heads: int, ffn_ratio: float) -> "BertArch":
        ffn = Fraction(str(ffn_ratio)) * hidden
        if ffn.denominator != 1:
            raise ArchError(f"ffn_ratio {ffn_ratio} x hidden {hidden} is not an integer")
        return cls(space, (hidden,) * layers, (heads,) * layers, (int(ffn),) * layers)

    @classmethod
    def _pick(cls, space: BertSpace, pick) -> "BertArch":
        n = pick(space.layers)
        if space.kind == "homogeneous":
            h = pick(space.hidden)
            return cls.homogeneous(space, n, h, pick(space.heads), pick(space.ffn_ratio))
        return cls(space, tuple(pick(space.hidden) for _ in range(n)), tuple(pick(space.heads) for _ in range(n)),
                   tuple(pick(space.ffn_dim) for _ in range(n)))

    @classmethod
    def largest(cls, space: BertSpace) -> "BertArch":
        return cls._pick(space, max)

    @classmethod
    def smallest(cls, space: BertSpace) -> "BertArch":
        return cls._pick(space, min)

    @classmethod
    def random(cls, space: BertSpace, rng: random.Random) -> "BertArch":
        return cls._pick(space, lambda choices: rng.choice(list(choices)))

    # ---- (de)serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        if self.space.kind == "homogeneous":
            return {"space": self.space.name, "layers": self.layers, "hidden": self.hidden[0], "heads": self.heads[0],
                    "ffn_ratio": _ratio_text(Fraction(self.ffn[0], self.hidden[0]))}
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
    def from_dict(cls, data: Mapping[str, Any], space: BertSpace) -> "BertArch":
        if not isinstance(data, Mapping):
            raise ArchError(f"a BERT architecture must be a mapping, got {type(data).__name__}")
        named = data.get("space")
        if named is not None and named != space.name:
            raise ArchError(f"architecture is for space '{named}', not '{space.name}'")
        if space.kind == "homogeneous":
            allowed = {"space", "layers", "hidden", "heads", "ffn_ratio"}
            unknown = sorted(set(data) - allowed)
            if unknown:
                raise ArchError(f"unknown architecture key(s) {unknown} (homogeneous: layers, hidden, heads, ffn_ratio)")
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
    def from_json(cls, text: str, space: BertSpace) -> "BertArch":
        return cls.from_dict(json.loads(text), space)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def save(self, path: str | Path) -> None:
        from mos_fairseq.arch import write_text_atomic

        write_text_atomic(Path(path), self.to_yaml())

    @classmethod
    def load(cls, path: str | Path, space: BertSpace | None = None) -> "BertArch":
        path = Path(path)
        if not path.is_file():
            raise ArchError(f"architecture file '{path}' not found")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ArchError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
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
        return [self.layers / s.max_layers, self.hidden[0] / s.max_hidden, float(ratio / max(s.ffn_ratio)),
                self.heads[0] / max(s.heads)]

    def latency_features(self, vocab_size: int | None = None) -> list[float]:
        """Raw values of :attr:`BertSpace.latency_feature_names` (parameters with ``vocab_size`` types)."""
        s, params = self.space, float(self.num_params(vocab_size))
        if s.kind == "bottleneck":
            return [float(h) for h in self.hidden] + [0.0] * (s.max_layers - self.layers) + [params]
        return [float(self.layers), float(self.hidden[0]), float(Fraction(self.ffn[0], self.hidden[0])),
                float(self.heads[0]), params]

    def num_params(self, vocab_size: int | None = None) -> int:
        """Parameters of the static model of this subnet (embeddings, layers, bottlenecks, LM head;
        the output projection is tied to the token embedding)."""
        v = self.space.vocab_size if vocab_size is None else vocab_size
        d = self.embed_dim
        total = v * d + (self.space.max_positions + 2) * d + 2 * d  # tokens, positions (pad offset), LN
        for h, f in zip(self.hidden, self.ffn):
            total += layer_params(h, f)
            if self.space.kind == "bottleneck":
                total += bottleneck_params(d, h)
        return total + d * d + d + 2 * d + v  # LM head: dense, LN, output bias

    def describe(self) -> str:
        if self.space.kind == "homogeneous":
            return (f"{self.layers} layers x hidden {self.hidden[0]}, {self.heads[0]} heads, "
                    f"FFN {self.ffn[0]} (ratio {_ratio_text(Fraction(self.ffn[0], self.hidden[0]))})")
        extra = "" if len(set(self.heads)) == 1 and len(set(self.ffn)) == 1 else f" heads{list(self.heads)} ffn{list(self.ffn)}"
        return f"shape {list(self.hidden)}{extra}"


def layer_params(h: int, f: int) -> int:
    """One transformer layer of hidden size ``h`` and FFN ``f`` (SuperShaper: 4h^2 + 6153h + 3072
    at f = 3072): q/k/v/out ``4(h^2 + h)``, FFN ``2hf + f + h``, two layer norms ``4h``."""
    return 4 * h * h + 4 * h + 2 * h * f + f + h + 4 * h


def bottleneck_params(d: int, h: int) -> int:
    """The input (``d -> h``) and output (``h -> d``) bottleneck matrices with biases."""
    return d * h + h + h * d + d


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


def is_bert_space_file(path_or_name: str | Path) -> bool:
    """Whether a space YAML describes a BERT space (has ``kind``)."""
    try:
        data = yaml.safe_load(resolve_space_path(path_or_name).read_text())
    except (yaml.YAMLError, OSError):
        return False
    return isinstance(data, Mapping) and data.get("kind") in KINDS

def any_space_from_dict(data: Mapping[str, Any], source: str = "space"):
    """An encoder-decoder (HAT) or BERT space from its dictionary form (a BERT space has ``kind``)."""
    from mos_fairseq.space import SearchSpace

    if isinstance(data, Mapping) and "kind" in data:
        return BertSpace.from_dict(data, source)
    return SearchSpace.from_dict(data, source=source)


def load_any_space(path_or_name: str | Path):
    """``(space, architecture type)`` for an encoder-decoder (HAT) or a BERT space file."""
    from mos_fairseq.arch import Architecture
    from mos_fairseq.space import SearchSpace

    if is_bert_space_file(path_or_name):
        return BertSpace.load(path_or_name), BertArch
    return SearchSpace.load(path_or_name), Architecture


def load_any_arch(path: str | Path, space_arg: str | None = None):
    """An architecture file of either kind; its space is ``space_arg`` or the one the file names."""
    from mos_fairseq.arch import Architecture

    if space_arg:
        space, arch_type = load_any_space(space_arg)
        return arch_type.load(path, space)
    try:
        data = yaml.safe_load(Path(path).read_text()) if Path(path).is_file() else None
    except yaml.YAMLError:
        data = None
    if isinstance(data, Mapping) and isinstance(data.get("space"), str) and is_bert_space_file(data["space"]):
        return BertArch.load(path)
    return Architecture.load(path)
