"""The translation family (HAT's encoder-decoder SuperTransformer) as the registry sees it: its
types, fairseq model names and the hooks of :class:`mos_fairseq.core.family.ModelFamily`, and
HAT's latency CSVs (:data:`HAT_LATENCY`), whose rows are translation architectures.
"""

from __future__ import annotations

import random
from typing import Any, Mapping, Sequence

import torch

from mos_fairseq.core.family import HatLatencyFormat
from mos_fairseq.translation import evolution_ops, export
from mos_fairseq.translation.architecture import (
    FEATURE_NAMES,
    Architecture,
    decoder_layer_params,
    encoder_layer_params,
)
from mos_fairseq.translation.space import HAT_FEATURE_NORM, SearchSpace, check_subspace


def params_from_features(features: Sequence[float], qkv_dim: int, vocab_size: int) -> float:
    """Exact parameter count of a subnet from HAT's 10 features (shared embeddings)."""
    de, n_enc, f_enc, _, dd, n_dec, f_dec = (float(x) for x in features[:7])
    embed = vocab_size * de if de == dd else vocab_size * (de + dd)
    # a layer's count is affine in its FFN width: n * layer(mean width) == sum of the layers
    return (
        embed + n_enc * encoder_layer_params(de, f_enc, qkv_dim) + n_dec * decoder_layer_params(dd, de, f_dec, qkv_dim)
    )


HAT_LATENCY = HatLatencyFormat(FEATURE_NAMES, tuple(float(v) for v in HAT_FEATURE_NORM), params_from_features)


class TranslationFamily:
    name = "translation"
    supernet_model = "supertransformer"
    static_model = export.STATIC_MODEL
    stock_model = export.STOCK_MODEL
    space_type = SearchSpace
    arch_type = Architecture
    encoder_only = False
    hat_latency: HatLatencyFormat | None = HAT_LATENCY

    def owns_space_data(self, data: Mapping[str, Any]) -> bool:
        """Every space file without BERT's ``kind`` (malformed ones get :class:`SearchSpace`'s errors)."""
        return not (isinstance(data, Mapping) and "kind" in data)

    def mutate(self, arch: Architecture, prob: float, rng: random.Random) -> Architecture:
        return evolution_ops.mutate(arch, prob, rng)

    def crossover(self, a: Architecture, b: Architecture, rng: random.Random) -> Architecture:
        return evolution_ops.crossover(a, b, rng)

    def num_params(self, arch: Architecture, vocab_size: int) -> int:
        """The static model's parameters with shared embeddings of ``vocab_size`` types."""
        return arch.num_params(vocab_size, vocab_size, share_all_embeddings=True)

    def arch_info(self, arch: Architecture, vocab_size: int) -> tuple[dict[str, Any], list[str]]:
        params, features = self.num_params(arch, vocab_size), arch.normalized_features()
        record = {"params": params, "features": features, "vocab_size": vocab_size, "space": arch.space.name}
        lines = [
            f"space: {arch.space.name}",
            f"architecture: {arch.describe()}",
            f"parameters: {params:,} (vocabulary {vocab_size}, shared embeddings)",
            "features (normalised): " + ", ".join(f"{n}={v:.4f}" for n, v in zip(FEATURE_NAMES, features)),
        ]
        return record, lines

    def check_latency_protocol(self, space: SearchSpace, src_len: int) -> None:
        return None  # sinusoidal positions: any length

    def narrower_space(self, path_or_name: str, supernet_space: SearchSpace) -> SearchSpace:
        """``search --space``: a space that narrows the supernet's choices, never widens them."""
        space = SearchSpace.load(path_or_name)
        check_subspace(space, supernet_space)
        return space

    def build_static(self, arch: Architecture, dictionary: Any) -> torch.nn.Module:
        from mos_fairseq.translation.static import StaticTransformerModel

        return StaticTransformerModel.from_arch(arch, dictionary, dictionary, share_all_embeddings=True)

    def subnet_bleu(
        self, supernet: Any, task: Any, arch: Architecture, batches: Any, beam: int, lenpen: float, dtype: Any = None
    ) -> float:
        from mos_fairseq.translation.bleu import subnet_bleu

        return subnet_bleu(supernet, task, arch, batches, beam, lenpen, dtype)

    build_export = staticmethod(export.build_export)
    probe_logit_diff = staticmethod(export.probe_logit_diff)
    export_task_cfg = staticmethod(export.export_task_cfg)
    export_dictionaries = staticmethod(export.export_dictionaries)


FAMILY = TranslationFamily()
