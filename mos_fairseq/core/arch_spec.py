"""The architecture a static model's config carries (``arch_spec``: the architecture and its space as
JSON), written and read the same way for both families.

A static model built from ``--subnet-arch ARCH.yml`` writes ``arch_spec`` back into its config, so
its checkpoint is self-contained.
"""

from __future__ import annotations

import json
from typing import Any

from mos_fairseq.base.errors import CheckpointError


def arch_spec_json(arch: Any) -> str:
    """The self-contained JSON form kept in ``arch_spec`` (architecture plus its space)."""
    return json.dumps({"space": arch.space.to_dict(), "arch": arch.to_dict()}, sort_keys=True)


def arch_from_config(cfg: Any, space_type: Any, arch_type: Any, model_name: str) -> Any:
    """The architecture a static model config describes (``arch_spec``, else ``subnet_arch``, whose
    JSON form is then written back into ``cfg``)."""
    spec = getattr(cfg, "arch_spec", "")
    if spec:
        data = json.loads(spec)
        return arch_type.from_dict(data["arch"], space_type.from_dict(data["space"], source="arch_spec"))
    if not getattr(cfg, "subnet_arch", ""):
        raise CheckpointError(f"{model_name} needs --subnet-arch ARCH.yml (or an arch_spec in its checkpoint)")
    arch = arch_type.load(cfg.subnet_arch)
    if hasattr(cfg, "_metadata"):
        from omegaconf import open_dict

        with open_dict(cfg):
            cfg.arch_spec = arch_spec_json(arch)
    else:
        cfg.arch_spec = arch_spec_json(arch)
    return arch
