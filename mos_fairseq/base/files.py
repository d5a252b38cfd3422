"""Files every stage writes (the base layer): atomic text writes (readers never see half a file),
the umask and the YAML of an architecture file.

Shared by both families, the latency campaign, the search and the CLI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from mos_fairseq.base.errors import ArchError


def write_text_atomic(path: Path, text: str) -> None:
    """Write a file so that readers never see it half-written (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_arch_file(path: Path) -> Any:
    """The parsed YAML of an architecture file (either family); one-line errors if missing or invalid."""
    if not path.is_file():
        raise ArchError(f"architecture file '{path}' not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ArchError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
