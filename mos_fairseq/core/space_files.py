"""Space files: finding a space YAML by path or built-in name, reading it, checking its keys, and
the copy of its space a supernet's config embeds. Each family parses its own space type from these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from omegaconf import open_dict

from mos_fairseq.base.errors import SpaceError

_PACKAGE = Path(__file__).resolve().parents[1]
BUILTIN_SPACE_DIRS = (
    _PACKAGE.parent / "configs" / "spaces",  # source checkout
    _PACKAGE / "configs" / "spaces",  # installed package data
)


def read_space_yaml(path_or_name: str | Path) -> tuple[Path, Any]:
    """``(path, parsed YAML)`` of a space file or built-in name; invalid YAML is a one-line error."""
    path = resolve_space_path(path_or_name)
    try:
        return path, yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpaceError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


def check_space_keys(data: Any, allowed: Sequence[str], source: str) -> None:
    """A space file is a mapping of known keys (one-line errors name the file and the key)."""
    if not isinstance(data, Mapping):
        raise SpaceError(f"{source}: a search space must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise SpaceError(f"{source}: unknown key(s) {unknown}; allowed: {list(allowed)}")


def builtin_spaces() -> list[str]:
    names: set[str] = set()
    for d in BUILTIN_SPACE_DIRS:
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.yml"))
    return sorted(names)


def resolve_space_path(path_or_name: str | Path) -> Path:
    path = Path(path_or_name)
    if path.is_file():
        return path
    if path.suffix == "" or not path.exists():
        for d in BUILTIN_SPACE_DIRS:
            cand = d / f"{path.stem}.yml"
            if path.parent == Path(".") and cand.is_file():
                return cand
    raise SpaceError(f"search space '{path_or_name}' not found (a YAML file, or one of {builtin_spaces()})")


def space_from_config(cfg: Any, space_type: Any) -> Any:
    """The model's space: the copy embedded in the config (checkpoints), else the file it names.
    ``space_type``: the family's space class (``from_json`` / ``load`` / ``to_json``)."""
    spec = getattr(cfg, "search_space_spec", "")
    if spec:
        return space_type.from_json(spec)
    space = space_type.load(cfg.search_space)
    if hasattr(cfg, "_metadata"):  # omegaconf: make the embedded copy part of the saved config
        with open_dict(cfg):
            cfg.search_space_spec = space.to_json()
    else:
        cfg.search_space_spec = space.to_json()
    return space
