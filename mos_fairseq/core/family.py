"""The family interface: what search, latency, export, ``info`` and the CLI need of a model family
(translation, BERT, ...), so that none of them asks which family it holds.

A family is a module-level object satisfying :class:`ModelFamily`; :mod:`mos_fairseq.registry`
keys the families by their fairseq supernet model name. An architecture satisfies :class:`Arch`.
The family-neutral stages above the families (latency, search, loading, export) reach a family's
specifics only through these: its features and their normalisation (``Arch``, the space's
``latency_feature_names``/``latency_feature_norm``, :class:`HatLatencyFormat`), its evaluation
(``subnet_bleu``) and its models (``build_static``, the export hooks).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import torch


@runtime_checkable
class Arch(Protocol):
    """One subnet of a space: a frozen value that travels explicitly (never module state)."""

    @property
    def space(self) -> Any: ...  # read-only: architectures are frozen dataclasses

    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...
    def to_yaml(self) -> str: ...
    def save(self, path: str | Path, hat_format: bool = False) -> None: ...
    def normalized_features(self) -> list[float]: ...  # the MoS router encoding
    def latency_features(self, vocab_size: int | None = None) -> list[float]: ...
    def describe(self) -> str: ...


@dataclass(frozen=True)
class HatLatencyFormat:
    """HAT's latency CSVs (features and latencies, nothing else) as the family they describe reads
    them: the feature columns, the features' normalisation and a row's exact parameter count."""

    feature_names: tuple[str, ...]
    feature_norm: tuple[float, ...]
    params: Callable[[Sequence[float], int, int], float]  # (features, qkv_dim, vocab_size) -> parameters


class ModelFamily(Protocol):
    """A model family: its space and architecture types, fairseq model names and the hooks the
    family-neutral stages call."""

    name: str  # "translation", "bert"
    supernet_model: str  # fairseq model name of the supernet (the registry key)
    static_model: str  # our static export model
    stock_model: str  # stock fairseq model a uniform subnet exports to
    space_type: Any  # class with load / from_dict / from_json / to_json
    arch_type: Any  # class with largest / smallest / random / load / from_dict / from_json
    encoder_only: bool  # latency: one encoder pass (no decoder, target length and beam 1)
    hat_latency: HatLatencyFormat | None  # the family HAT's latency CSVs describe (translation), else None

    def owns_space_data(self, data: Mapping[str, Any]) -> bool: ...
    def mutate(self, arch: Any, prob: float, rng: random.Random) -> Any: ...
    def crossover(self, a: Any, b: Any, rng: random.Random) -> Any: ...
    def num_params(self, arch: Any, vocab_size: int) -> int: ...
    def arch_info(self, arch: Any, vocab_size: int) -> tuple[dict[str, Any], list[str]]: ...
    def check_latency_protocol(self, space: Any, src_len: int) -> None: ...
    def narrower_space(self, path_or_name: str, supernet_space: Any) -> Any: ...  # search --space
    def build_static(self, arch: Any, dictionary: Any) -> torch.nn.Module: ...
    # evaluation beside the validation loss: BLEU of a subnet over validation batches (None: no BLEU),
    # its static model in ``dtype`` (None: as extracted, fp32)
    def subnet_bleu(
        self, supernet: Any, task: Any, arch: Any, batches: Any, beam: int, lenpen: float, dtype: Any = None
    ) -> float | None: ...
    # export hooks (the pipeline is mos_fairseq.export)
    def build_export(self, supernet: Any, task: Any, arch: Any, force_static: bool = False) -> Any: ...
    def probe_logit_diff(self, reference: torch.nn.Module, exported: torch.nn.Module, task: Any) -> float: ...
    def export_task_cfg(self, cfg: dict, out_dir: str, task: Any) -> dict: ...
    def export_dictionaries(self, task: Any) -> dict: ...
