"""The one registry of model families, keyed by the fairseq supernet model name, and the lookups
every family-neutral stage uses: a space file, a space dictionary, an architecture file, a
checkpoint's model name or an in-memory space or architecture -> its family; HAT's latency CSVs ->
how to read them. It sits above the families, which it names, and below latency, search, loading,
export and the CLI, which ask it.

Adding a family (for example a decoder-only LM) means writing its folder with a ``family.py`` and
adding it to :data:`FAMILIES`; nothing else asks which family it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from mos_fairseq.base.errors import CheckpointError, SpaceError
from mos_fairseq.bert.family import FAMILY as BERT
from mos_fairseq.core.family import HatLatencyFormat, ModelFamily
from mos_fairseq.core.space_files import read_space_yaml
from mos_fairseq.translation.family import FAMILY as TRANSLATION

FAMILIES: dict[str, ModelFamily] = {
    f.supernet_model: f for f in (BERT, TRANSLATION)
}  # BERT first: it claims by ``kind``


def supernet_models() -> tuple[str, ...]:
    return tuple(FAMILIES)


def family_of_model(model_name: str) -> ModelFamily:
    """The family of a fairseq model name: a supernet, our static model or the stock export target."""
    for family in FAMILIES.values():
        if model_name in (family.supernet_model, family.static_model, family.stock_model):
            return family
    raise CheckpointError(f"model '{model_name}' belongs to no mos-fairseq family (known supernets: {list(FAMILIES)})")


def family_of(space_or_arch: Any) -> ModelFamily:
    """The family of an in-memory space or architecture."""
    for family in FAMILIES.values():
        if isinstance(space_or_arch, (family.space_type, family.arch_type)):
            return family
    raise TypeError(f"{type(space_or_arch).__name__} is not a space or architecture of a registered family")


def hat_latency_format() -> HatLatencyFormat:
    """How HAT's latency CSVs read: the format of the one family whose architectures they describe."""
    return next(f.hat_latency for f in FAMILIES.values() if f.hat_latency is not None)


def family_of_space_data(data: Any) -> ModelFamily:
    return next(f for f in FAMILIES.values() if f.owns_space_data(data))


def space_from_dict(data: Mapping[str, Any], source: str = "space") -> Any:
    """A space of any family from its dictionary form."""
    return family_of_space_data(data).space_type.from_dict(data, source)


def load_space(path_or_name: str | Path) -> tuple[Any, ModelFamily]:
    """``(space, family)`` of a space file or built-in name."""
    _, data = read_space_yaml(path_or_name)
    family = family_of_space_data(data)
    return family.space_type.load(path_or_name), family


def load_arch(path: str | Path, space_arg: str | None = None) -> Any:
    """An architecture file of any family; its space is ``space_arg`` or the one the file names."""
    if space_arg:
        space, family = load_space(space_arg)
        return family.arch_type.load(path, space)
    try:
        data = yaml.safe_load(Path(path).read_text()) if Path(path).is_file() else None
    except yaml.YAMLError:
        data = None
    family = TRANSLATION
    if isinstance(data, Mapping) and isinstance(data.get("space"), str):
        try:
            family = family_of_space_data(read_space_yaml(data["space"])[1])
        except SpaceError:  # the default family's loader reports the unreadable space
            pass
    return family.arch_type.load(path)
