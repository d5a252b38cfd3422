"""The recalibration step of an estimator adapted to another device, as stored in its file.

:mod:`mos_fairseq.latency.adaptation` fits it; :class:`~mos_fairseq.latency.estimator.LatencyEstimator`
applies it last, to its own prediction ``ms`` and its standardised features ``z``:

- ``linear``: ``a * ms + b + c . z``
- ``log``:    ``exp(a * log ms + b + c . z)`` (a device that is uniformly k times slower is ``b = log k``)
- ``chain``:  several steps in order (an adapted estimator adapted again in another form).

A step is a plain JSON dict (``space``, ``scale``, ``offset``, ``correction``, ``ridge``, ``rows``);
files written before the ``space`` key existed hold linear steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LOG_FLOOR_MS = 1e-3  # a prediction at or below zero is taken as this before the logarithm


def apply_recalibration(step: dict[str, Any] | None, ms: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``ms`` (the estimator's own prediction) mapped to the other device by ``step``."""
    if not step:
        return ms
    kind = step.get("space", "linear")
    if kind == "chain":
        for inner in step["steps"]:
            ms = apply_recalibration(inner, ms, z)
        return ms
    correction = z @ np.asarray(step["correction"], dtype=np.float64)
    if kind == "log":
        return np.exp(step["scale"] * np.log(np.maximum(ms, LOG_FLOOR_MS)) + step["offset"] + correction)
    return step["scale"] * ms + step["offset"] + correction


def compose(first: dict[str, Any] | None, second: dict[str, Any]) -> dict[str, Any]:
    """One step equal to applying ``first`` and then ``second``: two linear steps merge into one
    (the correction is linear in ``z``); any other pair becomes a chain."""
    if not first:
        return second
    if first.get("space", "linear") == "linear" and second.get("space", "linear") == "linear":
        s = second["scale"]
        return {
            **second,
            "scale": s * first["scale"],
            "offset": s * first["offset"] + second["offset"],
            "correction": [s * a + b for a, b in zip(first["correction"], second["correction"])],
        }
    steps = first["steps"] if first.get("space") == "chain" else [first]
    return {"space": "chain", "steps": [*steps, second], "rows": second.get("rows")}
