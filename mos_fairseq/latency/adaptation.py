"""A latency estimator for a new device from a few of its measurements: ``train-estimator --init-from``.

The known device's estimator keeps its shape; the new device's rows fit a recalibration on top of it,

    latency_new(x) = a * latency_known(x) + b + c . z(x)

(``z``: the known estimator's standardised features), with ``a`` and ``b`` free and ``c`` a ridge
correction whose strength is chosen by leave-one-out error on the new rows (exact, closed form).
Ten rows fix ``a`` and ``b``; more rows let ``c`` follow what the new device does differently (for
example decoder depth costing relatively more on more threads). The result is one ordinary
estimator file (the recalibration is stored in its header), used by ``search`` like any other.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mos_fairseq.core.errors import UserError
from mos_fairseq.latency.estimator import LatencyEstimator

RIDGE_GRID = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e6)
MIN_ROWS = 3


def _design(source: LatencyEstimator, features: np.ndarray) -> np.ndarray:
    base = source.predict(features)
    return np.c_[base, np.ones(len(base)), source.standardized(features)]


def _ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and leave-one-out residuals; the first two columns (scale, offset) are not penalised."""
    penalty = np.diag([0.0, 0.0] + [lam] * (x.shape[1] - 2))
    inv = np.linalg.pinv(x.T @ x + penalty)
    coef = inv @ x.T @ y
    hat = np.einsum("ij,jk,ik->i", x, inv, x)
    loo = (y - x @ coef) / np.maximum(1.0 - hat, 1e-9)
    return coef, loo


def adapt(
    source: LatencyEstimator, features: np.ndarray, latency_ms: np.ndarray, grid: tuple[float, ...] = RIDGE_GRID
) -> LatencyEstimator:
    """``source`` recalibrated to the rows ``(features, latency_ms)`` of another device."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(latency_ms, dtype=np.float64)
    if len(y) < MIN_ROWS:
        raise UserError(f"--init-from needs at least {MIN_ROWS} rows of the new device, got {len(y)}")
    if x.shape[1] != len(source.feature_names):
        raise UserError(f"the new device's rows have {x.shape[1]} features, the estimator {len(source.feature_names)}")
    design = _design(source, x)
    fits = {lam: _ridge(design, y, lam) for lam in grid}
    lam = min(grid, key=lambda g: (float(np.mean(fits[g][1] ** 2)), -g))  # ties: the stronger pull to the source
    coef = fits[lam][0]
    step = {
        "scale": float(coef[0]),
        "offset": float(coef[1]),
        "correction": [float(v) for v in coef[2:]],
        "ridge": lam,
        "loo_rmse": float(np.sqrt(np.mean(fits[lam][1] ** 2))),
        "rows": int(len(y)),
    }
    adapted = dataclasses.replace(source, info={}, adaptation=_compose(source.adaptation, step))
    return adapted


def _compose(first: dict[str, Any] | None, second: dict[str, Any]) -> dict[str, Any]:
    """One recalibration equal to applying ``first`` and then ``second`` (an adapted estimator adapted again)."""
    if not first:
        return second
    s = second["scale"]
    return {
        **second,
        "scale": s * first["scale"],
        "offset": s * first["offset"] + second["offset"],
        "correction": [s * a + b for a, b in zip(first["correction"], second["correction"])],
    }
