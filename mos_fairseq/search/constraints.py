"""Search constraints (latency in ms from an estimator per device, or parameter count) and their parsing.

A constraint is an upper bound on one cost of a candidate architecture: ``latency`` (a latency
estimator's prediction, milliseconds; ``device`` names the estimator when a search has several) or
``params`` (the exact parameter count of the exported model). :class:`AllOf` joins several bounds
("at most 100 ms on the CPU *and* 30 ms on the GPU"). ``--param-constraint 30M 45000000``,
``--latency-constraint 100 150`` (one estimator) and ``--latency-constraint cpu:150 gpu:40
cpu:100,gpu:30`` (named estimators) parse here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mos_fairseq.base.errors import UserError

KINDS = ("latency", "params")
_SUFFIX = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "g": 1e9, "G": 1e9, "b": 1e9, "B": 1e9}


@dataclass(frozen=True)
class Constraint:
    kind: str
    value: float
    device: str | None = None  # the named estimator of a latency bound (None: the search's only one)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"constraint kind must be one of {KINDS}, got {self.kind!r}")
        if not math.isfinite(self.value) or self.value <= 0:
            raise UserError(f"a {self.kind} constraint must be a positive number, got {self.value}")

    @property
    def cost_key(self) -> str:
        """The key of this bound's cost in a candidate's costs (``latency``, ``latency:cpu``, ``params``)."""
        return self.kind if self.device is None else f"{self.kind}:{self.device}"

    @property
    def parts(self) -> tuple[Constraint, ...]:
        return (self,)

    @property
    def name(self) -> str:
        """File-name-safe label, e.g. ``latency_150ms``, ``latency_cpu_150ms`` or ``params_30M``."""
        if self.kind == "latency":
            return f"latency_{self.device + '_' if self.device else ''}{self.value:g}ms"
        v = self.value
        return f"params_{v / 1e6:g}M" if v >= 1e6 else f"params_{v:g}"

    def allows(self, costs: dict[str, float]) -> bool:
        return costs[self.cost_key] <= self.value

    def describe(self) -> str:
        if self.kind == "params":
            return f"parameters <= {self.value:,.0f}"
        return f"{self.device + ' ' if self.device else ''}latency <= {self.value:g} ms"

    def to_dict(self) -> dict:
        """The JSON form in a search's identity (``device`` only when set, so one-estimator searches
        written before named estimators existed resume)."""
        return {"kind": self.kind, "value": self.value, **({"device": self.device} if self.device else {})}


@dataclass(frozen=True)
class AllOf:
    """Several bounds at once (a candidate must satisfy every one), e.g. CPU and GPU latency."""

    parts: tuple[Constraint, ...]

    def __post_init__(self) -> None:
        if len(self.parts) < 2:
            raise UserError("a joined constraint needs at least two bounds")
        if len({p.cost_key for p in self.parts}) != len(self.parts):
            raise UserError(f"a joined constraint bounds one cost twice: {self.describe()}")

    @property
    def kind(self) -> str:
        return "latency" if any(p.kind == "latency" for p in self.parts) else "params"

    @property
    def value(self) -> dict[str, float]:
        return {p.cost_key: p.value for p in self.parts}

    @property
    def name(self) -> str:
        return "_".join(p.name for p in self.parts)

    def allows(self, costs: dict[str, float]) -> bool:
        return all(p.allows(costs) for p in self.parts)

    def describe(self) -> str:
        return " and ".join(p.describe() for p in self.parts)

    def to_dict(self) -> dict:
        return {"all": [p.to_dict() for p in self.parts]}


AnyConstraint = Constraint | AllOf


def parse_number(text: str, what: str) -> float:
    """A positive number with an optional k/M/G suffix; a negative or zero bound is refused as such."""
    m = re.fullmatch(r"\s*([+-]?)([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGbB]?)\s*", str(text))
    if not m:
        raise UserError(f"{what}: cannot read {text!r} as a number (e.g. 150, 30M, 4.5e7)")
    value = float(m.group(2)) * _SUFFIX[m.group(3)]
    if m.group(1) == "-" or value == 0:
        raise UserError(f"{what}: {text.strip()} must be positive (an upper bound, e.g. 150)")
    return value


def _latency_bound(text: str, devices: Sequence[str]) -> Constraint:
    device, sep, number = text.rpartition(":")
    if not sep:
        if len(devices) > 1:
            raise UserError(
                f"--latency-constraint {text}: name the device ({', '.join(devices)}), e.g. {devices[0]}:{text}"
            )
        return Constraint("latency", parse_number(text, "--latency-constraint"), devices[0] if devices else None)
    device = device.strip()
    if device not in devices:
        known = f"the named estimators are {', '.join(devices)}" if devices else "no --estimator NAME=FILE names it"
        raise UserError(f"--latency-constraint {text}: unknown device '{device}' ({known})")
    return Constraint("latency", parse_number(number, "--latency-constraint"), device)


def parse_constraints(
    latency: list[str] | None, params: list[str] | None, devices: Sequence[str] = ()
) -> list[AnyConstraint]:
    """``devices``: the names of the search's estimators (``--estimator NAME=FILE``); empty with one
    unnamed estimator (or none). A latency value joins bounds with commas: ``cpu:100,gpu:30``."""
    out: list[AnyConstraint] = []
    for text in latency or []:
        bounds = [_latency_bound(part, devices) for part in str(text).split(",")]
        out.append(bounds[0] if len(bounds) == 1 else AllOf(tuple(bounds)))
    out += [Constraint("params", parse_number(v, "--param-constraint")) for v in params or []]
    if not out:
        raise UserError("give at least one --latency-constraint or --param-constraint")
    if len({json.dumps(c.to_dict(), sort_keys=True) for c in out}) != len(out):
        raise UserError("a constraint is given twice")
    return out
