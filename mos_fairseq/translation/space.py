"""Search spaces: the sets of choices a SuperTransformer's subnets are drawn from.

First stop of the pipeline: a space (YAML under ``configs/spaces/``) fixes the supernet's
largest dimensions and every elastic choice. :mod:`mos_fairseq.translation.architecture` builds architectures
(subnets) that are validated against a :class:`SearchSpace`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from mos_fairseq.base.errors import SpaceError
from mos_fairseq.core.space_files import check_space_keys, read_space_yaml

ENCODER_KEYS = ("embed_dim", "layers", "ffn_dim", "heads")
DECODER_KEYS = ("embed_dim", "layers", "ffn_dim", "self_heads", "cross_heads", "cross_span")
TOP_KEYS = ("name", "description", "qkv_dim", "vocab_size", "encoder", "decoder", "feature_norm")
HAT_FEATURE_NORM = (640, 6, 2048, 6, 640, 6, 2048, 6, 6, 2)
# HAT's 10 architecture features (latency predictor inputs and the MoS router encoding)
FEATURE_NAMES = (
    "encoder_embed_dim",
    "encoder_layer_num",
    "encoder_ffn_embed_dim_avg",
    "encoder_self_attention_heads_avg",
    "decoder_embed_dim",
    "decoder_layer_num",
    "decoder_ffn_embed_dim_avg",
    "decoder_self_attention_heads_avg",
    "decoder_ende_attention_heads_avg",
    "decoder_arbitrary_ende_attn_avg",
)


def _choices(section: str, key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise SpaceError(f"space {section}.{key} must be a non-empty list of integers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int):
            raise SpaceError(f"space {section}.{key} must hold integers, got {v!r}")
        if v <= 0:
            raise SpaceError(f"space {section}.{key} must hold positive integers, got {v}")
        out.append(v)
    if len(set(out)) != len(out):
        raise SpaceError(f"space {section}.{key} has duplicate choices {value!r}")
    return tuple(sorted(out))


@dataclass(frozen=True)
class SearchSpace:
    """Immutable set of elastic choices of an encoder-decoder SuperTransformer (HAT's space)."""

    name: str
    qkv_dim: int
    encoder: Mapping[str, tuple[int, ...]]
    decoder: Mapping[str, tuple[int, ...]]
    feature_norm: tuple[float, ...] = HAT_FEATURE_NORM
    vocab_size: int = 32768
    description: str = ""

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "space") -> SearchSpace:
        check_space_keys(data, TOP_KEYS, source)
        for key in ("name", "qkv_dim", "encoder", "decoder"):
            if key not in data:
                raise SpaceError(f"{source}: missing key '{key}'")
        sections = {}
        for section, keys in (("encoder", ENCODER_KEYS), ("decoder", DECODER_KEYS)):
            sec = data[section]
            if not isinstance(sec, Mapping):
                raise SpaceError(f"{source}: '{section}' must be a mapping")
            unknown = sorted(set(sec) - set(keys))
            if unknown:
                raise SpaceError(f"{source}: unknown key(s) {section}.{unknown}; allowed: {list(keys)}")
            missing = [k for k in keys if k not in sec]
            if missing:
                raise SpaceError(f"{source}: missing key(s) {section}.{missing}")
            sections[section] = {k: _choices(section, k, sec[k]) for k in keys}
        qkv = data["qkv_dim"]
        if isinstance(qkv, bool) or not isinstance(qkv, int) or qkv <= 0:
            raise SpaceError(f"{source}: qkv_dim must be a positive integer, got {qkv!r}")
        for section, head_keys in (("encoder", ("heads",)), ("decoder", ("self_heads", "cross_heads"))):
            for hk in head_keys:
                bad = [h for h in sections[section][hk] if qkv % h]
                if bad:
                    raise SpaceError(f"{source}: {section}.{hk} {bad} do not divide qkv_dim {qkv}")
        spans = sections["decoder"]["cross_span"]
        if max(spans) > 3 or min(spans) < 1:
            raise SpaceError(f"{source}: decoder.cross_span choices must lie in 1..3, got {list(spans)}")
        if min(spans) > min(sections["encoder"]["layers"]):
            raise SpaceError(f"{source}: decoder.cross_span {list(spans)} exceeds the smallest encoder")
        norm = tuple(float(x) for x in data.get("feature_norm", HAT_FEATURE_NORM))
        if len(norm) != 10 or any(x <= 0 for x in norm):
            raise SpaceError(f"{source}: feature_norm must be 10 positive numbers, got {list(norm)}")
        vocab = data.get("vocab_size", 32768)
        if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab <= 0:
            raise SpaceError(f"{source}: vocab_size must be a positive integer, got {vocab!r}")
        return cls(
            name=str(data["name"]),
            qkv_dim=qkv,
            encoder=sections["encoder"],
            decoder=sections["decoder"],
            feature_norm=norm,
            vocab_size=vocab,
            description=str(data.get("description", "")),
        )

    @classmethod
    def load(cls, path_or_name: str | Path) -> SearchSpace:
        """Load a space from a YAML file, or a built-in space by name (``tiny``)."""
        path, data = read_space_yaml(path_or_name)
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        return cls.from_dict(json.loads(text), source="embedded space")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "qkv_dim": self.qkv_dim,
            "vocab_size": self.vocab_size,
            "encoder": {k: list(v) for k, v in self.encoder.items()},
            "decoder": {k: list(v) for k, v in self.decoder.items()},
            "feature_norm": list(self.feature_norm),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    # ---- supernet dimensions ------------------------------------------------------------
    @property
    def max_encoder_embed_dim(self) -> int:
        return max(self.encoder["embed_dim"])

    @property
    def max_decoder_embed_dim(self) -> int:
        return max(self.decoder["embed_dim"])

    @property
    def max_embed_dim(self) -> int:
        return max(self.max_encoder_embed_dim, self.max_decoder_embed_dim)

    @property
    def max_encoder_layers(self) -> int:
        return max(self.encoder["layers"])

    @property
    def max_decoder_layers(self) -> int:
        return max(self.decoder["layers"])

    @property
    def max_ffn_dim(self) -> int:
        return max(max(self.encoder["ffn_dim"]), max(self.decoder["ffn_dim"]))

    @property
    def latency_feature_names(self) -> tuple[str, ...]:
        """The latency estimator's inputs for this space: HAT's 10 features."""
        return FEATURE_NAMES

    @property
    def latency_feature_norm(self) -> tuple[float, ...]:
        return self.feature_norm

    def __hash__(self) -> int:  # mappings are not hashable; the JSON form identifies a space
        return hash(self.to_json())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_json() == other.to_json()


def check_subspace(space: SearchSpace, supernet_space: SearchSpace) -> None:
    """``space`` may narrow the supernet's choices, never widen them."""
    if space.qkv_dim != supernet_space.qkv_dim:
        raise SpaceError(f"space '{space.name}' has qkv_dim {space.qkv_dim}, the supernet {supernet_space.qkv_dim}")
    for side in ("encoder", "decoder"):
        mine, theirs = getattr(space, side), getattr(supernet_space, side)
        for key, values in mine.items():
            extra = sorted(set(values) - set(theirs[key]))
            if extra:
                raise SpaceError(
                    f"space '{space.name}': {side}.{key} {extra} is outside the supernet's "
                    f"space '{supernet_space.name}' {list(theirs[key])}"
                )
