"""The translation family (HAT's encoder-decoder SuperTransformer) as the registry sees it: its
types, fairseq model names and the hooks of :class:`mos_fairseq.core.family.ModelFamily`.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

import torch

from mos_fairseq.translation import evolution_ops, export
from mos_fairseq.translation.architecture import FEATURE_NAMES, Architecture
from mos_fairseq.translation.space import SearchSpace, check_subspace


class TranslationFamily:
    name = "translation"
    supernet_model = "supertransformer"
    static_model = export.STATIC_MODEL
    stock_model = export.STOCK_MODEL
    space_type = SearchSpace
    arch_type = Architecture
    supports_bleu = True
    encoder_only = False

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

    build_export = staticmethod(export.build_export)
    probe_logit_diff = staticmethod(export.probe_logit_diff)
    export_task_cfg = staticmethod(export.export_task_cfg)
    export_dictionaries = staticmethod(export.export_dictionaries)


FAMILY = TranslationFamily()
