"""The family interface: what search, latency, export, ``info`` and the CLI need of a model family
(translation, BERT, ...), so that none of them asks which family it holds.

A family is a module-level object satisfying :class:`ModelFamily`; :mod:`mos_fairseq.registry`
keys the families by their fairseq supernet model name. An architecture satisfies :class:`Arch`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

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


class ModelFamily(Protocol):
    """A model family: its space and architecture types, fairseq model names and the hooks the
    family-neutral stages call."""

    name: str  # "translation", "bert"
    supernet_model: str  # fairseq model name of the supernet (the registry key)
    static_model: str  # our static export model
    stock_model: str  # stock fairseq model a uniform subnet exports to
    space_type: Any  # class with load / from_dict / from_json / to_json
    arch_type: Any  # class with largest / smallest / random / load / from_dict / from_json
    supports_bleu: bool  # searched and evaluated on BLEU as well as loss
    encoder_only: bool  # latency: one encoder pass (no decoder, target length and beam 1)

    def owns_space_data(self, data: Mapping[str, Any]) -> bool: ...
    def mutate(self, arch: Any, prob: float, rng: random.Random) -> Any: ...
    def crossover(self, a: Any, b: Any, rng: random.Random) -> Any: ...
    def num_params(self, arch: Any, vocab_size: int) -> int: ...
    def arch_info(self, arch: Any, vocab_size: int) -> tuple[dict[str, Any], list[str]]: ...
    def check_latency_protocol(self, space: Any, src_len: int) -> None: ...
    def narrower_space(self, path_or_name: str, supernet_space: Any) -> Any: ...  # search --space
    def build_static(self, arch: Any, dictionary: Any) -> torch.nn.Module: ...
    # export hooks (the pipeline is mos_fairseq.export)
    def build_export(self, supernet: Any, task: Any, arch: Any, force_static: bool = False) -> Any: ...
    def probe_logit_diff(self, reference: torch.nn.Module, exported: torch.nn.Module, task: Any) -> float: ...
    def export_task_cfg(self, cfg: dict, out_dir: str, task: Any) -> dict: ...
    def export_dictionaries(self, task: Any) -> dict: ...
