"""Search constraints (latency in ms from an estimator, or parameter count) and their parsing.

A constraint is an upper bound on one cost of a candidate architecture: ``latency`` (the latency
estimator's prediction, milliseconds) or ``params`` (the exact parameter count of the exported
model). ``--param-constraint 30M 45000000`` and ``--latency-constraint 100 150`` parse here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mos_fairseq.core.errors import UserError

KINDS = ("latency", "params")
_SUFFIX = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9, "G": 1e9, "b": 1e9, "B": 1e9}


@dataclass(frozen=True)
class Constraint:
    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"constraint kind must be one of {KINDS}, got {self.kind!r}")
        if not math.isfinite(self.value) or self.value <= 0:
            raise UserError(f"a {self.kind} constraint must be a positive number, got {self.value}")

    @property
    def name(self) -> str:
        """File-name-safe label, e.g. ``latency_150ms`` or ``params_30M``."""
        if self.kind == "latency":
            return f"latency_{self.value:g}ms"
        v = self.value
        return f"params_{v / 1e6:g}M" if v >= 1e6 else f"params_{v:g}"

    def allows(self, costs: dict[str, float]) -> bool:
        return costs[self.kind] <= self.value

    def describe(self) -> str:
        return f"latency <= {self.value:g} ms" if self.kind == "latency" else f"parameters <= {self.value:,.0f}"


def parse_number(text: str, what: str) -> float:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGbB]?)\s*", str(text))
    if not m:
        raise UserError(f"{what}: cannot read {text!r} as a number (e.g. 150, 30M, 4.5e7)")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def parse_constraints(latency: list[str] | None, params: list[str] | None) -> list[Constraint]:
    out = [Constraint("latency", parse_number(v, "--latency-constraint")) for v in latency or []]
    out += [Constraint("params", parse_number(v, "--param-constraint")) for v in params or []]
    if not out:
        raise UserError("give at least one --latency-constraint or --param-constraint")
    if len({(c.kind, c.value) for c in out}) != len(out):
        raise UserError("a constraint is given twice")
    return out
