"""The architecture (subnet) value type: one member of a :class:`~mos_fairseq.translation.space.SearchSpace`.

Every stage passes an :class:`Architecture` explicitly: the supernet's forward, sampling in
training, latency measurement, search and export. It is immutable, validated on construction,
round-trips through YAML/JSON (ours and HAT's SubTransformer keys), counts its parameters and
gives HAT's 10 normalised features (the latency-estimator input and the MoS router encoding).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence, TypeVar

import yaml

from mos_fairseq.base.errors import ArchError, UserError
from mos_fairseq.base.files import read_arch_file, write_text_atomic
from mos_fairseq.translation.space import FEATURE_NAMES, SearchSpace

HAT_KEYS = {
    "encoder-embed-dim-subtransformer": ("encoder", "embed_dim"),
    "encoder-layer-num-subtransformer": ("encoder", "layers"),
    "encoder-ffn-embed-dim-all-subtransformer": ("encoder", "ffn_dim"),
    "encoder-self-attention-heads-all-subtransformer": ("encoder", "heads"),
    "decoder-embed-dim-subtransformer": ("decoder", "embed_dim"),
    "decoder-layer-num-subtransformer": ("decoder", "layers"),
    "decoder-ffn-embed-dim-all-subtransformer": ("decoder", "ffn_dim"),
    "decoder-self-attention-heads-all-subtransformer": ("decoder", "self_heads"),
    "decoder-ende-attention-heads-all-subtransformer": ("decoder", "cross_heads"),
    "decoder-arbitrary-ende-attn-all-subtransformer": ("decoder", "cross_span"),
}
# HAT encodes "attend to the last k encoder layers" as -1 (k=1), 1 (k=2), 2 (k=3).
HAT_SPAN_TO_K = {-1: 1, 1: 2, 2: 3}
K_TO_HAT_SPAN = {v: k for k, v in HAT_SPAN_TO_K.items()}
ENCODER_LAYER_KEYS = ("ffn_dim", "heads")
DECODER_LAYER_KEYS = ("ffn_dim", "self_heads", "cross_heads", "cross_span")


def _int(field_name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ArchError(f"{field_name} must be an integer, got {value!r}")
    return int(value)


def _check(field_name: str, value: int, allowed: Sequence[int]) -> None:
    if value not in allowed:
        raise ArchError(f"{field_name}={value} is not in the space's choices {list(allowed)}")


class EncoderLayerSizes(NamedTuple):
    """What one encoder layer of a subnet runs at: the embedding width, FFN width and heads."""

    d: int
    ffn: int
    heads: int


class DecoderLayerSizes(NamedTuple):
    """What one decoder layer of a subnet runs at; ``span``: the last encoder layers it attends to."""

    d: int
    d_enc: int
    ffn: int
    self_heads: int
    cross_heads: int
    span: int


@dataclass(frozen=True)
class Architecture:
    """One encoder-decoder subnet. Per-layer tuples hold exactly one entry per active layer."""

    space: SearchSpace = field(compare=False, repr=False)
    encoder_embed_dim: int
    encoder_ffn_dims: tuple[int, ...]
    encoder_heads: tuple[int, ...]
    decoder_embed_dim: int
    decoder_ffn_dims: tuple[int, ...]
    decoder_self_heads: tuple[int, ...]
    decoder_cross_heads: tuple[int, ...]
    decoder_cross_spans: tuple[int, ...]

    def __post_init__(self) -> None:
        sp = self.space
        _check("encoder.embed_dim", self.encoder_embed_dim, sp.encoder["embed_dim"])
        _check("decoder.embed_dim", self.decoder_embed_dim, sp.decoder["embed_dim"])
        _check("encoder.layers", len(self.encoder_ffn_dims), sp.encoder["layers"])
        _check("decoder.layers", len(self.decoder_ffn_dims), sp.decoder["layers"])
        for name, values, allowed, n in (
            ("encoder.ffn_dim", self.encoder_ffn_dims, sp.encoder["ffn_dim"], self.encoder_layers),
            ("encoder.heads", self.encoder_heads, sp.encoder["heads"], self.encoder_layers),
            ("decoder.ffn_dim", self.decoder_ffn_dims, sp.decoder["ffn_dim"], self.decoder_layers),
            ("decoder.self_heads", self.decoder_self_heads, sp.decoder["self_heads"], self.decoder_layers),
            ("decoder.cross_heads", self.decoder_cross_heads, sp.decoder["cross_heads"], self.decoder_layers),
            ("decoder.cross_span", self.decoder_cross_spans, sp.decoder["cross_span"], self.decoder_layers),
        ):
            if len(values) != n:
                raise ArchError(f"{name} has {len(values)} entries but the side has {n} layers")
            for i, v in enumerate(values):
                _check(f"{name}[{i}]", v, allowed)
        for i, k in enumerate(self.decoder_cross_spans):
            if k > self.encoder_layers:
                raise ArchError(f"decoder.cross_span[{i}]={k} exceeds the encoder's {self.encoder_layers} layers")

    # ---- shape ------------------------------------------------------------------------
    def encoder_layer_sizes(self) -> list[EncoderLayerSizes]:
        return [
            EncoderLayerSizes(self.encoder_embed_dim, f, h) for f, h in zip(self.encoder_ffn_dims, self.encoder_heads)
        ]

    def decoder_layer_sizes(self) -> list[DecoderLayerSizes]:
        return [
            DecoderLayerSizes(self.decoder_embed_dim, self.encoder_embed_dim, f, hs, hc, s)
            for f, hs, hc, s in zip(
                self.decoder_ffn_dims, self.decoder_self_heads, self.decoder_cross_heads, self.decoder_cross_spans
            )
        ]

    @property
    def encoder_layers(self) -> int:
        return len(self.encoder_ffn_dims)

    @property
    def decoder_layers(self) -> int:
        return len(self.decoder_ffn_dims)

    @property
    def qkv_dim(self) -> int:
        return self.space.qkv_dim

    # ---- canonical members of a space ---------------------------------------------------
    @classmethod
    def largest(cls, space: SearchSpace) -> Architecture:
        return cls._uniform(space, max)

    @classmethod
    def smallest(cls, space: SearchSpace) -> Architecture:
        return cls._uniform(space, min)

    @classmethod
    def _uniform(cls, space: SearchSpace, pick) -> Architecture:
        e, d = space.encoder, space.decoder
        ne, nd = pick(e["layers"]), pick(d["layers"])
        span = pick([k for k in d["cross_span"] if k <= ne])
        return cls(
            space=space,
            encoder_embed_dim=pick(e["embed_dim"]),
            encoder_ffn_dims=(pick(e["ffn_dim"]),) * ne,
            encoder_heads=(pick(e["heads"]),) * ne,
            decoder_embed_dim=pick(d["embed_dim"]),
            decoder_ffn_dims=(pick(d["ffn_dim"]),) * nd,
            decoder_self_heads=(pick(d["self_heads"]),) * nd,
            decoder_cross_heads=(pick(d["cross_heads"]),) * nd,
            decoder_cross_spans=(span,) * nd,
        )

    @classmethod
    def random(cls, space: SearchSpace, rng: random.Random) -> Architecture:
        """A uniformly sampled subnet (HAT's sampler: every choice drawn independently)."""
        e, d = space.encoder, space.decoder
        enc_embed = rng.choice(e["embed_dim"])
        dec_embed = rng.choice(d["embed_dim"])
        ne = rng.choice(e["layers"])
        nd = rng.choice(d["layers"])
        spans = [k for k in d["cross_span"] if k <= ne]
        return cls(
            space=space,
            encoder_embed_dim=enc_embed,
            encoder_ffn_dims=tuple(rng.choice(e["ffn_dim"]) for _ in range(ne)),
            encoder_heads=tuple(rng.choice(e["heads"]) for _ in range(ne)),
            decoder_embed_dim=dec_embed,
            decoder_ffn_dims=tuple(rng.choice(d["ffn_dim"]) for _ in range(nd)),
            decoder_self_heads=tuple(rng.choice(d["self_heads"]) for _ in range(nd)),
            decoder_cross_heads=tuple(rng.choice(d["cross_heads"]) for _ in range(nd)),
            decoder_cross_spans=tuple(rng.choice(spans) for _ in range(nd)),
        )

    # ---- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "space": self.space.name,
            "encoder": {
                "embed_dim": self.encoder_embed_dim,
                "layers": self.encoder_layers,
                "ffn_dim": list(self.encoder_ffn_dims),
                "heads": list(self.encoder_heads),
            },
            "decoder": {
                "embed_dim": self.decoder_embed_dim,
                "layers": self.decoder_layers,
                "ffn_dim": list(self.decoder_ffn_dims),
                "self_heads": list(self.decoder_self_heads),
                "cross_heads": list(self.decoder_cross_heads),
                "cross_span": list(self.decoder_cross_spans),
            },
        }

    def to_hat_dict(self) -> dict[str, Any]:
        """HAT's SubTransformer YAML keys; per-layer lists padded to the space's maximum depth."""

        def pad(values: Sequence[int], n: int) -> list[int]:
            return list(values) + [values[-1]] * (n - len(values))

        ne, nd = self.space.max_encoder_layers, self.space.max_decoder_layers
        return {
            "encoder-embed-dim-subtransformer": self.encoder_embed_dim,
            "decoder-embed-dim-subtransformer": self.decoder_embed_dim,
            "encoder-ffn-embed-dim-all-subtransformer": pad(self.encoder_ffn_dims, ne),
            "decoder-ffn-embed-dim-all-subtransformer": pad(self.decoder_ffn_dims, nd),
            "encoder-layer-num-subtransformer": self.encoder_layers,
            "decoder-layer-num-subtransformer": self.decoder_layers,
            "encoder-self-attention-heads-all-subtransformer": pad(self.encoder_heads, ne),
            "decoder-self-attention-heads-all-subtransformer": pad(self.decoder_self_heads, nd),
            "decoder-ende-attention-heads-all-subtransformer": pad(self.decoder_cross_heads, nd),
            "decoder-arbitrary-ende-attn-all-subtransformer": pad(
                [K_TO_HAT_SPAN[k] for k in self.decoder_cross_spans], nd
            ),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def save(self, path: str | Path, hat_format: bool = False) -> None:
        data = self.to_hat_dict() if hat_format else self.to_dict()
        write_text_atomic(Path(path), yaml.safe_dump(data, sort_keys=False, default_flow_style=None))

    @staticmethod
    def is_single_arch_dict(data: Mapping[str, Any]) -> bool:
        """Whether a YAML mapping is one architecture (ours or HAT's keys), not {name: arch}."""
        return any(k in data for k in ("encoder", "decoder")) or any("subtransformer" in str(k) for k in data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], space: SearchSpace) -> Architecture:
        """Build from our format or HAT's SubTransformer keys (detected automatically)."""
        if not isinstance(data, Mapping):
            raise ArchError(f"an architecture must be a mapping, got {type(data).__name__}")
        if any(k in HAT_KEYS for k in data):
            data = _from_hat(data)
        unknown = sorted(set(data) - {"space", "encoder", "decoder"})
        if unknown:
            raise ArchError(f"unknown architecture key(s) {unknown}; expected 'encoder' and 'decoder'")
        if "space" in data and data["space"] != space.name:
            raise ArchError(f"architecture is for space '{data['space']}', not '{space.name}'")
        sides = {}
        for side, layer_keys in (("encoder", ENCODER_LAYER_KEYS), ("decoder", DECODER_LAYER_KEYS)):
            sec = data.get(side)
            if not isinstance(sec, Mapping):
                raise ArchError(f"architecture is missing the '{side}' mapping")
            allowed = {"embed_dim", "layers", *layer_keys}
            unknown = sorted(set(sec) - allowed)
            if unknown:
                raise ArchError(f"unknown key(s) {side}.{unknown}; allowed: {sorted(allowed)}")
            missing = sorted(k for k in ("embed_dim", *layer_keys) if k not in sec)
            if missing:
                raise ArchError(f"architecture is missing {side}.{missing}")
            lists = {}
            for key in layer_keys:
                val = sec[key]
                if not isinstance(val, (list, tuple)) or not val:
                    raise ArchError(f"{side}.{key} must be a non-empty list, got {val!r}")
                lists[key] = tuple(_int(f"{side}.{key}[{i}]", v) for i, v in enumerate(val))
            n = _int(f"{side}.layers", sec["layers"]) if "layers" in sec else len(lists["ffn_dim"])
            _check(f"{side}.layers", n, getattr(space, side)["layers"])
            for key, val in lists.items():
                if len(val) < n:
                    raise ArchError(f"{side}.{key} has {len(val)} entries, fewer than {side}.layers={n}")
                lists[key] = val[:n]
            sides[side] = (_int(f"{side}.embed_dim", sec["embed_dim"]), lists)
        (ee, el), (de, dl) = sides["encoder"], sides["decoder"]
        return cls(
            space=space,
            encoder_embed_dim=ee,
            encoder_ffn_dims=el["ffn_dim"],
            encoder_heads=el["heads"],
            decoder_embed_dim=de,
            decoder_ffn_dims=dl["ffn_dim"],
            decoder_self_heads=dl["self_heads"],
            decoder_cross_heads=dl["cross_heads"],
            decoder_cross_spans=dl["cross_span"],
        )

    @classmethod
    def from_json(cls, text: str, space: SearchSpace) -> Architecture:
        return cls.from_dict(json.loads(text), space)

    @classmethod
    def load(cls, path: str | Path, space: SearchSpace | None = None) -> Architecture:
        """Read an architecture YAML/JSON file; the space defaults to the built-in one it names."""
        path = Path(path)
        data = read_arch_file(path)
        if space is None:
            name = data.get("space") if isinstance(data, Mapping) else None
            if not name:
                raise ArchError(f"{path}: names no 'space'; pass the search space explicitly (--space)")
            space = SearchSpace.load(name)
        try:
            return cls.from_dict(data, space)
        except ArchError as exc:
            raise ArchError(f"{path}: {exc}") from None

    # ---- measures -----------------------------------------------------------------------
    def features(self) -> list[float]:
        """HAT's 10 raw features (see :data:`FEATURE_NAMES`)."""
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        return [
            float(self.encoder_embed_dim),
            float(self.encoder_layers),
            mean(self.encoder_ffn_dims),
            mean(self.encoder_heads),
            float(self.decoder_embed_dim),
            float(self.decoder_layers),
            mean(self.decoder_ffn_dims),
            mean(self.decoder_self_heads),
            mean(self.decoder_cross_heads),
            mean(self.decoder_cross_spans),
        ]

    def latency_features(self, vocab_size: int | None = None) -> list[float]:
        """What the latency estimator reads: HAT's 10 features (``vocab_size`` is not one of them)."""
        return self.features()

    def normalized_features(self) -> list[float]:
        """The 10 features divided by the space's ``feature_norm`` (HAT: [640, 6, 2048, ...])."""
        return [f / n for f, n in zip(self.features(), self.space.feature_norm)]

    def num_params(
        self,
        src_vocab: int | None = None,
        tgt_vocab: int | None = None,
        share_all_embeddings: bool = True,
    ) -> int:
        """Exact parameter count of the subnet as a static model (embeddings included).

        With shared embeddings and equal encoder/decoder widths the one matrix counts once; with
        unequal widths the static model needs two. The decoder output projection is always tied
        to the decoder's input embedding. Sinusoidal positions have no parameters.
        """
        src_vocab = src_vocab or self.space.vocab_size
        tgt_vocab = tgt_vocab or src_vocab
        de, dd, q = self.encoder_embed_dim, self.decoder_embed_dim, self.qkv_dim
        if share_all_embeddings and de == dd:
            embed = src_vocab * de
        else:
            embed = src_vocab * de + tgt_vocab * dd
        enc = sum(encoder_layer_params(de, f, q) for f in self.encoder_ffn_dims)
        dec = sum(decoder_layer_params(dd, de, f, q) for f in self.decoder_ffn_dims)
        return embed + enc + dec

    def describe(self) -> str:
        return (
            f"enc {self.encoder_embed_dim}x{self.encoder_layers} ffn{list(self.encoder_ffn_dims)} "
            f"h{list(self.encoder_heads)} | dec {self.decoder_embed_dim}x{self.decoder_layers} "
            f"ffn{list(self.decoder_ffn_dims)} h{list(self.decoder_self_heads)} "
            f"x{list(self.decoder_cross_heads)} span{list(self.decoder_cross_spans)}"
        )


# Parameter counts are polynomials in the sizes: exact for integer sizes, and for mean widths (floats;
# see mos_fairseq.latency.dataset.params_from_features) the mean count.
Size = TypeVar("Size", int, float)


def attention_params(q_in: Size, kv_in: Size, out: Size, qkv: Size) -> Size:
    """q/k/v projections to ``qkv`` plus the output projection, all with biases."""
    return (q_in * qkv + qkv) + 2 * (kv_in * qkv + qkv) + (qkv * out + out)


def ffn_params(d: Size, f: Size) -> Size:
    return (d * f + f) + (f * d + d)


def encoder_layer_params(d: Size, f: Size, qkv: Size) -> Size:
    return attention_params(d, d, d, qkv) + ffn_params(d, f) + 2 * (2 * d)


def decoder_layer_params(d: Size, d_enc: Size, f: Size, qkv: Size) -> Size:
    return attention_params(d, d, d, qkv) + attention_params(d, d_enc, d, qkv) + ffn_params(d, f) + 3 * (2 * d)


def _from_hat(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {"encoder": {}, "decoder": {}}
    for key, value in data.items():
        if key not in HAT_KEYS:
            raise ArchError(f"unknown HAT SubTransformer key '{key}'")
        side, name = HAT_KEYS[key]
        out[side][name] = value
    spans = out["decoder"].get("cross_span")
    if isinstance(spans, (list, tuple)):
        try:
            out["decoder"]["cross_span"] = [HAT_SPAN_TO_K[v] for v in spans]
        except (KeyError, TypeError):
            raise ArchError(
                f"decoder-arbitrary-ende-attn-all-subtransformer values must be -1, 1 or 2, got {spans}"
            ) from None
    return out


__all__ = ["Architecture", "FEATURE_NAMES", "UserError"]
