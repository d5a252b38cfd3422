"""The BERT family (masked-LM supernets: SuperShaper's bottleneck space and a homogeneous space) as
the registry sees it: its types, fairseq model names and the hooks of
:class:`mos_fairseq.core.family.ModelFamily`.
"""

from __future__ import annotations

import random
from typing import Any, Mapping

import torch

from mos_fairseq.base.errors import UserError
from mos_fairseq.bert import evolution_ops, export
from mos_fairseq.bert.architecture import BertArch
from mos_fairseq.bert.space import BertSpace, is_bert_space_data
from mos_fairseq.core.family import HatLatencyFormat


class BertFamily:
    name = "bert"
    supernet_model = "bert_supernet"
    static_model = export.STATIC_BERT
    stock_model = export.ROBERTA
    space_type = BertSpace
    arch_type = BertArch
    encoder_only = True
    hat_latency: HatLatencyFormat | None = None  # HAT's latency files describe translation architectures

    def owns_space_data(self, data: Mapping[str, Any]) -> bool:
        return is_bert_space_data(data)

    def mutate(self, arch: BertArch, prob: float, rng: random.Random) -> BertArch:
        return evolution_ops.mutate(arch, prob, rng)

    def crossover(self, a: BertArch, b: BertArch, rng: random.Random) -> BertArch:
        return evolution_ops.crossover(a, b, rng)

    def num_params(self, arch: BertArch, vocab_size: int) -> int:
        return arch.num_params(vocab_size)

    def arch_info(self, arch: BertArch, vocab_size: int) -> tuple[dict[str, Any], list[str]]:
        params = arch.num_params(vocab_size)
        record = {
            "params": params,
            "features": arch.normalized_features(),
            "vocab_size": vocab_size,
            "space": arch.space.name,
            "shape": list(arch.hidden),
        }
        lines = [
            f"space: {arch.space.name} ({arch.space.kind})",
            f"architecture: {arch.describe()}",
            f"parameters: {params:,} (vocabulary {vocab_size}, tied output projection)",
        ]
        return record, lines

    def check_latency_protocol(self, space: BertSpace, src_len: int) -> None:
        if src_len > space.max_positions:
            raise UserError(f"--seq-len {src_len} exceeds space '{space.name}''s max_positions {space.max_positions}")

    def narrower_space(self, path_or_name: str, supernet_space: BertSpace) -> BertSpace:
        raise UserError("--space (a narrower space) is for translation supernets; a BERT search uses the supernet's")

    def build_static(self, arch: BertArch, dictionary: Any) -> torch.nn.Module:
        from mos_fairseq.bert.static import StaticBertConfig, StaticBertModel

        return StaticBertModel(arch, dictionary, StaticBertConfig(max_positions=arch.space.max_positions))

    def subnet_bleu(
        self, supernet: Any, task: Any, arch: BertArch, batches: Any, beam: int, lenpen: float, dtype: Any = None
    ) -> None:
        return None  # a masked LM translates nothing: searched and evaluated on its loss (perplexity) only

    build_export = staticmethod(export.build_export)
    probe_logit_diff = staticmethod(export.probe_logit_diff)
    export_task_cfg = staticmethod(export.export_task_cfg)
    export_dictionaries = staticmethod(export.export_dictionaries)


FAMILY = BertFamily()
